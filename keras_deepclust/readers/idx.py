"""IDX files (MNIST's format), gzipped or not, and folders of them."""

import io
from pathlib import Path

import numpy as np

from keras_deepclust.readers._files import (
    DataNotFoundError,
    existing,
    finish,
    gzipped,
    open_binary,
    reading,
)

_IDX_DTYPES = {
    0x08: np.uint8, 0x09: np.int8, 0x0B: np.dtype(">i2"),
    0x0C: np.dtype(">i4"), 0x0D: np.dtype(">f4"), 0x0E: np.dtype(">f8"),
}
_IDX_SPLITS = {"train": ["train"], "test": ["t10k"], "all": ["train", "t10k"]}


def read_idx(path):
    """Reads one IDX file (gzipped or not) into a numpy array of its stored dtype."""
    path = existing(path)
    with reading(path, "a gzipped IDX file" if gzipped(path) else "an IDX file"):
        with open_binary(path) as f:
            data = f.read()
    dtype, shape, offset = idx_header(io.BytesIO(data), path)
    expected = int(np.prod(shape)) * dtype.itemsize
    if len(data) - offset != expected:
        raise ValueError(
            f"{path}: header says shape {shape} ({expected} bytes) but the file has "
            f"{len(data) - offset} bytes of data."
        )
    return np.frombuffer(data, dtype=dtype, offset=offset).reshape(shape).astype(
        dtype.newbyteorder("="))


def idx_header(f, path):
    """(dtype, shape, byte offset of the data) from the IDX header at `f`'s start."""
    head = f.read(4)
    if not head:
        raise ValueError(f"{path} is empty (0 bytes).")
    if len(head) < 4 or head[0] != 0 or head[1] != 0 or head[2] not in _IDX_DTYPES:
        raise ValueError(f"{path} is not an IDX file (bad magic number {head!r}; an IDX file "
                         "starts with two zero bytes, a type code and its number of "
                         "dimensions).")
    ndim = head[3]
    dims = f.read(4 * ndim)
    if len(dims) < 4 * ndim:
        raise ValueError(f"{path} ends inside its IDX header ({ndim} dimensions announced).")
    shape = tuple(int.from_bytes(dims[4 * i: 4 * i + 4], "big") for i in range(ndim))
    return np.dtype(_IDX_DTYPES[head[2]]), shape, 4 + 4 * ndim


def from_idx(images_path, labels_path=None):
    """Images (and labels) from IDX files, e.g. MNIST's `t10k-images-idx3-ubyte.gz`.

    Returns:
        `(x, y)` with x `(n, height, width, 1)` (or `(n, height, width, channels)` for
        4-D files) in the file's dtype (uint8 pixels for MNIST-style files); y is None
        without `labels_path`.
    """
    images = read_idx(images_path)
    if images.ndim == 3:
        images = images[..., np.newaxis]
    labels = None if labels_path is None else read_idx(labels_path)
    return finish(images, labels, images_path, labels_name=f"labels {labels_path}")


def find_idx(directory, stem):
    for suffix in ("-ubyte.gz", "-ubyte", ".gz", ""):
        candidate = Path(directory) / f"{stem}{suffix}"
        if candidate.is_file():
            return candidate
    return None


def idx_files(directory, split, kind):
    """The IDX files of `kind` ("images-idx3" or "labels-idx1") of a split, in order;
    a missing one is refused naming the folder."""
    if split not in _IDX_SPLITS:
        raise ValueError(f"split must be 'train', 'test' or 'all', got {split!r}.")
    files = []
    for prefix in _IDX_SPLITS[split]:
        found = find_idx(directory, f"{prefix}-{kind}")
        if found is None:
            raise DataNotFoundError(f"{directory} has no {prefix}-{kind}-ubyte[.gz] file.")
        files.append(found)
    return files


def load_idx_directory(directory, split="test"):
    """MNIST-style directory with `{train,t10k}-{images-idx3,labels-idx1}-ubyte[.gz]`.

    Args:
        directory: folder holding the files.
        split: "train", "test" or "all" (train followed by test).
    """
    images = idx_files(directory, split, "images-idx3")
    labels = idx_files(directory, split, "labels-idx1")
    parts = [from_idx(x, y) for x, y in zip(images, labels, strict=True)]
    shapes = {x.shape[1:] for x, _ in parts}
    if len(shapes) > 1:
        raise ValueError(f"{directory}: the train and t10k images differ in shape ({shapes}).")
    return np.concatenate([x for x, _ in parts]), np.concatenate([y for _, y in parts])
