"""TFRecord shards: the on-disk form of data larger than memory, written by
`keras-deepclust convert` and read back, batch by batch, by `datasets.stream`.

A converted folder holds `part-00000-of-0000N.tfrecord` shards of `tf.train.Example`s
(`x`: the float32 sample as raw bytes; `y`: the label when the source has
labels) and `meta.json` (sample shape, row count, shards). `convert` writes them into
a temporary folder beside the target and renames it when complete, so a folder with
`meta.json` is a whole conversion; `read_meta` checks it before anything is read.
"""

import json
import math
import os
import shutil
import tempfile
from pathlib import Path

import numpy as np

from keras_deepclust import readers
from keras_deepclust._io import check_can_write_in, write_json
from keras_deepclust._validation import check_positive_int

META = readers.CONVERTED_META


def convert(source, out_dir, rows_per_shard=100_000, when_checked=None, image_size=None,
            color_mode="auto"):
    """Writes `source` as TFRecord shards in `out_dir`.

    Everything is checked before anything is written: the source (as `readers.load`
    or `readers.records` check it) and `out_dir`, which must be a new or empty folder,
    so that the shards are never mixed with other files and no file is replaced. The
    shards and `meta.json` are written into a temporary folder beside `out_dir`, renamed
    to `out_dir` when complete (and removed when the conversion fails).

    Args:
        source: anything `readers.load` reads, as `readers.identify` decides: an
            `.npy` or IDX file, a folder of IDX files or a named Fashion-MNIST or MNIST
            (read batch by batch, never whole; an IDX folder's labels kept), or an
            `.npz`, `.csv`, `.parquet`, `usps.h5`, `digits` (loaded; labels kept), or a
            folder of images (PNG, JPEG, ...; scaled to [0, 1]; read one by one; the
            class sub-folders' labels kept).
        out_dir: the folder to write (must not exist, or be empty).
        rows_per_shard: samples per shard, a positive integer.
        when_checked: called with no arguments once the checks have passed, before
            TensorFlow is imported to write (the command line imports it quietly then).
        image_size, color_mode: how a folder of images is read
            (`readers.images.image_folder`: resized to `(height, width)`; "grayscale",
            "rgb", "rgba" or "auto"); refused for any other source.

    Returns:
        The metadata written to `out_dir/meta.json`.

    Example:

    ```python
    keras_deepclust.tfrecords.convert("train-images-idx3-ubyte.gz", "shards/")
    dataset, n = keras_deepclust.datasets.stream("shards/")
    ```
    """
    rows_per_shard = check_positive_int(rows_per_shard, "rows_per_shard")
    out_dir = _check_new_folder(Path(out_dir))
    samples = _samples(readers.identify(source), image_size, color_mode)
    if when_checked is not None:
        when_checked()
    import tensorflow as tf

    n_shards = math.ceil(samples.n_samples / rows_per_shard)
    names = [f"part-{i:05d}-of-{n_shards:05d}.tfrecord" for i in range(n_shards)]
    out_dir.parent.mkdir(parents=True, exist_ok=True)
    work = Path(tempfile.mkdtemp(dir=out_dir.parent, prefix=f".{out_dir.name}.", suffix=".tmp"))
    try:
        rows = _chunked_rows(samples)
        for name in names:
            with tf.io.TFRecordWriter(str(work / name)) as writer:
                for _ in range(min(rows_per_shard, samples.n_samples)):
                    x, y = next(rows, (None, None))
                    if x is None:
                        break
                    writer.write(_example(tf, x, y))
        meta = {"sample_shape": list(samples.sample_shape), "n_samples": samples.n_samples,
                "shards": names, "has_labels": samples.labels is not None,
                "source": str(source)}
        write_json(work / META, meta)
        _move_into_place(work, out_dir)
    finally:
        shutil.rmtree(work, ignore_errors=True)
    return meta


def _check_new_folder(out_dir):
    """Returns `out_dir` when it does not exist or is an empty folder; refuses a file, a
    link, or a folder holding anything (another conversion, the user's own files)."""
    if out_dir.is_symlink() or (out_dir.exists() and not out_dir.is_dir()):
        raise ValueError(f"{out_dir} is a file; convert writes a folder of shards: give the "
                         "name of a new folder.")
    if out_dir.is_dir():
        held = sorted(p.name for p in out_dir.iterdir())
        if META in held:
            raise ValueError(f"{out_dir} already holds a conversion ({META}); use another "
                             "folder.")
        if held:
            shown = ", ".join(held[:3]) + (", ..." if len(held) > 3 else "")
            raise ValueError(f"{out_dir} is not empty (it holds {shown}); convert writes into "
                             "a new or empty folder, so that nothing in it is mixed up with "
                             "the shards or replaced.")
    check_can_write_in(out_dir.parent, out_dir)
    return out_dir


def _move_into_place(work, out_dir):
    """Renames the finished folder `work` to `out_dir` (absent, or an empty folder)."""
    try:
        os.replace(work, out_dir)
    except OSError:
        raise ValueError(f"{out_dir} was filled by something else during the conversion; "
                         "nothing was written to it.") from None


class _Samples:
    """What `convert` writes: `n_samples` samples of `sample_shape`, `labels` (int64
    array or None), and `chunks(rows)`, float32 arrays of at most `rows` samples."""

    def __init__(self, n_samples, sample_shape, chunks, labels=None):
        self.n_samples, self.sample_shape = n_samples, tuple(sample_shape)
        self.chunks, self.labels = chunks, labels


def _samples(source, image_size, color_mode):
    """The `_Samples` of any source `convert` takes, checked before anything is written."""
    if source.kind == "converted":
        raise ValueError(f"{source} is already a folder of TFRecord shards ({META}): stream "
                         "it as it is.")
    if source.kind in ("npy", "idx", "idx_folder", "images"):
        data = readers.records(source, with_labels=source.kind == "idx_folder",
                               image_size=image_size, color_mode=color_mode)
        return _Samples(data.n_samples, data.sample_shape, data.chunks, data.labels)
    x, y = readers.load(source, image_size=image_size, color_mode=color_mode)
    return _Samples(len(x), x.shape[1:], lambda rows: (
        np.asarray(x[i:i + rows], dtype=np.float32) for i in range(0, len(x), rows)), y)


def _chunked_rows(samples):
    """(sample, label or None) pairs, read chunk by chunk."""
    start = 0
    for chunk in samples.chunks(4096):
        for i, x in enumerate(chunk):
            yield x, None if samples.labels is None else samples.labels[start + i]
        start += len(chunk)


def _example(tf, x, y):
    feature = {"x": tf.train.Feature(bytes_list=tf.train.BytesList(
        value=[np.ascontiguousarray(x, dtype=np.float32).tobytes()]))}
    if y is not None:
        feature["y"] = tf.train.Feature(int64_list=tf.train.Int64List(value=[int(y)]))
    return tf.train.Example(features=tf.train.Features(feature=feature)).SerializeToString()


def read_meta(folder):
    """The checked `meta.json` of a converted folder: a JSON object with `sample_shape`
    (positive integers), `n_samples` (a positive integer), `shards` (files present in
    the folder) and `has_labels` (true or false). Anything else is refused naming the
    file and the entry."""
    folder = Path(folder)
    path = folder / META
    if not path.is_file():
        raise ValueError(f"{folder} has no {META}: not a conversion, or an interrupted one.")
    try:
        meta = json.loads(path.read_text(encoding="utf-8"))
    except (UnicodeDecodeError, json.JSONDecodeError) as error:
        raise ValueError(f"{path} is not valid JSON ({error}): the folder is not a "
                         "complete conversion; convert again.") from None
    checks = {
        "sample_shape": lambda v: isinstance(v, list) and all(
            isinstance(d, int) and not isinstance(d, bool) and d > 0 for d in v),
        "n_samples": lambda v: isinstance(v, int) and not isinstance(v, bool) and v > 0,
        "shards": lambda v: isinstance(v, list) and v and all(isinstance(n, str) for n in v),
        "has_labels": lambda v: isinstance(v, bool),
    }
    if not isinstance(meta, dict):
        raise ValueError(f"{path} is not a conversion's metadata (a JSON object).")
    for key, valid in checks.items():
        if key not in meta or not valid(meta[key]):
            raise ValueError(f"{path}: {key!r} is missing or invalid ({meta.get(key)!r}): the "
                             "folder is not a complete conversion; convert again.")
    for name in meta["shards"]:
        shard = folder / name
        if Path(name).name != name or not shard.is_file() or shard.stat().st_size == 0:
            raise ValueError(f"{folder}: shard {name!r} listed in {META} is missing or empty.")
    return meta


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
    meta = read_meta(folder)
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
    _check_first_record(tf, files[0], shape)
    dataset = (tf.data.TFRecordDataset(files, num_parallel_reads=tf.data.AUTOTUNE)
               .batch(batch_size).map(parse, num_parallel_calls=tf.data.AUTOTUNE)
               .prefetch(tf.data.AUTOTUNE))
    return dataset, int(meta["n_samples"])


def _check_first_record(tf, shard, sample_shape):
    """Reads the first record of `shard`: a damaged file, or samples of another size than
    `meta.json` says, fail here, naming the shard, rather than in the middle of training."""
    try:
        record = next(iter(tf.data.TFRecordDataset(shard).take(1)), None)
        example = None if record is None else tf.train.Example.FromString(record.numpy())
    except (tf.errors.OpError, ValueError) as error:
        reason = str(getattr(error, "message", error)).split("}}")[-1].split(" [Op:")[0]
        raise ValueError(f"{shard} is not a readable TFRecord file ({reason.strip()}): the "
                         "folder is damaged; convert again.") from None
    values = None if example is None else example.features.feature["x"].bytes_list.value
    expected = int(np.prod(sample_shape)) * 4
    if not values or len(values[0]) != expected:
        raise ValueError(f"{shard}: its first sample is not {expected} bytes of float32 (shape "
                         f"{tuple(sample_shape)} in meta.json): the folder is damaged; convert "
                         "again.")
