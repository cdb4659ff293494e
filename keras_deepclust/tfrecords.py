"""TFRecord shards: the on-disk form of data larger than memory, written by
`keras-deepclust convert` and read back, batch by batch, by `datasets.stream`.

A converted folder holds `part-00000-of-0000N.tfrecord` shards of `tf.train.Example`s
(`x`: the float32 sample as raw bytes; `y`: the label when the source has
labels) and `meta.json` (sample shape, row count, shards), written last: a folder
without it is an interrupted conversion.
"""

import json
import os
from pathlib import Path

import numpy as np

from keras_deepclust._io import write_json

META = "meta.json"
IMAGE_SUFFIXES = (".png", ".jpg", ".jpeg", ".bmp", ".gif", ".tif", ".tiff")


def convert(source, out_dir, rows_per_shard=100_000):
    """Writes `source` as TFRecord shards in `out_dir`.

    Args:
        source: an `.npy` or IDX file (read batch by batch, never whole), anything else
            `datasets.load` reads (`.npz`, `.csv`, `usps.h5`, a named data set; labels
            kept), or a folder of images of one size (PNG, JPEG, ...; sorted by name).
        out_dir: the folder to write (created; must not hold a conversion already).
        rows_per_shard: samples per shard.

    Returns:
        The metadata written to `out_dir/meta.json`.

    Example:

    ```python
    keras_deepclust.tfrecords.convert("train-images-idx3-ubyte.gz", "shards/")
    dataset, n = keras_deepclust.datasets.stream("shards/")
    ```
    """
    import tensorflow as tf

    if rows_per_shard < 1:
        raise ValueError(f"rows_per_shard must be >= 1, got {rows_per_shard!r}.")
    out_dir = Path(out_dir)
    if (out_dir / META).exists():
        raise ValueError(f"{out_dir} already holds a conversion ({META}); use another folder.")
    out_dir.mkdir(parents=True, exist_ok=True)
    chunks, sample_shape = _chunks(Path(source))
    shards, n_rows, has_labels, writer, tmp = [], 0, False, None, None
    for x, y in chunks:
        has_labels = y is not None
        for i in range(len(x)):
            if n_rows % rows_per_shard == 0:
                if writer is not None:
                    writer.close()
                    shards.append(_finish_shard(tmp, out_dir, len(shards)))
                tmp = out_dir / f".part-{len(shards):05d}.tfrecord.tmp"
                writer = tf.io.TFRecordWriter(str(tmp))
            feature = {"x": tf.train.Feature(bytes_list=tf.train.BytesList(
                value=[np.ascontiguousarray(x[i], dtype=np.float32).tobytes()]))}
            if has_labels:
                feature["y"] = tf.train.Feature(int64_list=tf.train.Int64List(value=[int(y[i])]))
            writer.write(tf.train.Example(features=tf.train.Features(feature=feature))
                         .SerializeToString())
            n_rows += 1
    if writer is None:
        raise ValueError(f"{source} holds no samples.")
    writer.close()
    shards.append(_finish_shard(tmp, out_dir, len(shards)))
    names = [f"part-{i:05d}-of-{len(shards):05d}.tfrecord" for i in range(len(shards))]
    for old, new in zip(shards, names, strict=True):
        os.replace(old, out_dir / new)
    meta = {"sample_shape": list(sample_shape), "n_samples": n_rows, "shards": names,
            "has_labels": has_labels, "source": str(source)}
    write_json(out_dir / META, meta)
    return meta


def _finish_shard(tmp, out_dir, index):
    path = out_dir / f".part-{index:05d}.tfrecord.done"
    os.replace(tmp, path)
    return path


def _chunks(source):
    """(iterator of (x, y) chunks, sample shape) of any source `convert` takes."""
    from keras_deepclust import datasets

    if source.is_dir():
        images = sorted(p for p in source.iterdir() if p.suffix.lower() in IMAGE_SUFFIXES)
        if not images:
            raise ValueError(f"{source} holds no images ({', '.join(IMAGE_SUFFIXES)}).")
        first = _read_image(images[0])

        def image_chunks():
            for path in images:
                image = _read_image(path)
                if image.shape != first.shape:
                    raise ValueError(f"{path} has shape {image.shape}, the first image "
                                     f"{images[0].name} {first.shape}: resize them alike.")
                yield image[np.newaxis], None

        return image_chunks(), first.shape
    if source.suffix == ".npy" or "idx" in source.name:
        dataset, _ = datasets.stream(source, batch_size=4096)
        return ((batch, None) for batch in dataset.as_numpy_iterator()), tuple(
            dataset.element_spec.shape[1:])
    x, y = datasets.load(source)
    return iter([(x, y)]), x.shape[1:]


def _read_image(path):
    from matplotlib import image as mpimg

    from keras_deepclust.datasets import scale_to_unit

    pixels = np.asarray(mpimg.imread(path))
    if pixels.ndim == 2:
        pixels = pixels[..., np.newaxis]
    return scale_to_unit(pixels)


def read(folder, batch_size=256, with_labels=False):
    """Batches of a converted folder as a `tf.data.Dataset`.

    Args:
        folder: a folder written by `convert`.
        batch_size: samples per batch.
        with_labels: yield `(x, y)` batches (the folder must have labels).

    Returns:
        `(dataset, n_samples)`.
    """
    import tensorflow as tf

    folder = Path(folder)
    if not (folder / META).is_file():
        raise ValueError(f"{folder} has no {META}: not a conversion, or an interrupted one.")
    meta = json.loads((folder / META).read_text())
    if with_labels and not meta["has_labels"]:
        raise ValueError(f"{folder} was converted without labels.")
    shape = tuple(meta["sample_shape"])
    spec = {"x": tf.io.FixedLenFeature([], tf.string)}
    if with_labels:
        spec["y"] = tf.io.FixedLenFeature([], tf.int64)

    def parse(records):
        example = tf.io.parse_example(records, spec)
        x = tf.reshape(tf.io.decode_raw(example["x"], tf.float32), (-1, *shape))
        return (x, example["y"]) if with_labels else x

    files = [str(folder / name) for name in meta["shards"]]
    dataset = (tf.data.TFRecordDataset(files, num_parallel_reads=tf.data.AUTOTUNE)
               .batch(batch_size).map(parse, num_parallel_calls=tf.data.AUTOTUNE)
               .prefetch(tf.data.AUTOTUNE))
    return dataset, int(meta["n_samples"])
