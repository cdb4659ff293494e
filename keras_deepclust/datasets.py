"""Data loaders. Each returns `(x, y)`: `x` as stored (uint8 pixels stay uint8; images
as `(n, height, width, channels)`, tables as `(n, n_features)`) and int labels `y` (or
None when the source has none). The models learn their input scaling from these raw
values (`scaling=`), so what `fit` read is what `predict`, `assign` and `serve` take.

numpy only (scikit-learn for the bundled digits, pyarrow for Parquet); no TensorFlow.
"""

import csv
import gzip
import os
from pathlib import Path

import numpy as np

from keras_deepclust._validation import check_array, check_labels

DATA_DIR_ENV = "KERAS_DEEPCLUST_DATA"
_DEBIAN_DIRS = {
    "fashion_mnist": "/usr/share/datasets/fashion-mnist",
    "mnist": "/usr/share/datasets/mnist",
}
_HOW_TO_GET = {
    "fashion_mnist": "On Debian/Ubuntu: `apt-get install dataset-fashion-mnist`; or download "
    "the four *-ubyte.gz files from https://github.com/zalandoresearch/fashion-mnist",
    "mnist": "Download the four *-ubyte(.gz) files of MNIST (train/t10k images and labels)",
}
_IDX_DTYPES = {
    0x08: np.uint8, 0x09: np.int8, 0x0B: np.dtype(">i2"),
    0x0C: np.dtype(">i4"), 0x0D: np.dtype(">f4"), 0x0E: np.dtype(">f8"),
}


class DataNotFoundError(FileNotFoundError):
    """Raised when a data set is not on this machine; the message says how to get it."""


def scale_to_unit(x):
    """Scales `x` to [0, 1]: uint8 pixels by 255; anything already within [0, 1] is
    kept; anything else is min-max scaled over the whole array. (The models scale
    their inputs themselves; this is for baselines on the pixels.)"""
    x = np.asarray(x)
    if x.dtype == np.uint8:
        return x.astype(np.float32) / 255.0
    x = x.astype(np.float32)
    low, high = float(x.min()), float(x.max())
    if low >= 0.0 and high <= 1.0:
        return x
    return (x - low) / (high - low) if high > low else np.zeros_like(x)


def load_digits():
    """scikit-learn's bundled 8x8 digits (1797 images), the embedded default data.

    Returns:
        `(x, y)`: x `(1797, 8, 8, 1)` float32 in [0, 1] (pixel values 0..16 / 16), y int.

    Example:

    >>> x, y = load_digits()
    >>> x.shape
    (1797, 8, 8, 1)
    """
    from sklearn.datasets import load_digits as sklearn_digits

    bunch = sklearn_digits()
    x = (bunch.images / 16.0).astype(np.float32)[..., np.newaxis]
    return x, bunch.target.astype(np.int64)


def read_idx(path):
    """Reads one IDX file (gzipped or not) into a numpy array of its stored dtype."""
    path = Path(path)
    if not path.is_file():
        raise DataNotFoundError(f"IDX file not found: {path}")
    opener = gzip.open if path.suffix == ".gz" else open
    with opener(path, "rb") as f:
        data = f.read()
    if len(data) < 4 or data[0] != 0 or data[1] != 0 or data[2] not in _IDX_DTYPES:
        raise ValueError(f"{path} is not an IDX file (bad magic number {data[:4]!r}).")
    dtype, ndim = np.dtype(_IDX_DTYPES[data[2]]), data[3]
    header = 4 + 4 * ndim
    shape = tuple(int.from_bytes(data[4 + 4 * i: 8 + 4 * i], "big") for i in range(ndim))
    expected = int(np.prod(shape)) * dtype.itemsize
    if len(data) - header != expected:
        raise ValueError(
            f"{path}: header says shape {shape} ({expected} bytes) but the file has "
            f"{len(data) - header} bytes of data."
        )
    return np.frombuffer(data, dtype=dtype, offset=header).reshape(shape).astype(dtype.newbyteorder("="))


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
    x = check_array(images, name=str(images_path), dtype=None)
    y = None
    if labels_path is not None:
        y = check_labels(read_idx(labels_path).astype(np.int64), len(x), name=str(labels_path))
    return x, y


def _find_idx(directory, stem):
    for suffix in ("-ubyte.gz", "-ubyte", ".gz", ""):
        candidate = Path(directory) / f"{stem}{suffix}"
        if candidate.is_file():
            return candidate
    return None


def load_idx_directory(directory, split="test"):
    """MNIST-style directory with `{train,t10k}-{images-idx3,labels-idx1}-ubyte[.gz]`.

    Args:
        directory: folder holding the files.
        split: "train", "test" or "all" (train followed by test).
    """
    if split not in ("train", "test", "all"):
        raise ValueError(f"split must be 'train', 'test' or 'all', got {split!r}.")
    parts = {"train": ["train"], "test": ["t10k"], "all": ["train", "t10k"]}[split]
    xs, ys = [], []
    for prefix in parts:
        images = _find_idx(directory, f"{prefix}-images-idx3")
        labels = _find_idx(directory, f"{prefix}-labels-idx1")
        if images is None or labels is None:
            raise DataNotFoundError(
                f"{directory} has no {prefix}-images-idx3-ubyte[.gz] / "
                f"{prefix}-labels-idx1-ubyte[.gz] files."
            )
        x, y = from_idx(images, labels)
        xs.append(x)
        ys.append(y)
    return np.concatenate(xs), np.concatenate(ys)


def _named_idx_dataset(name, path, split):
    candidates = [path, os.environ.get(DATA_DIR_ENV)]
    if os.environ.get(DATA_DIR_ENV):
        candidates.append(str(Path(os.environ[DATA_DIR_ENV]) / name.replace("_", "-")))
    candidates.append(_DEBIAN_DIRS[name])
    for directory in filter(None, candidates):
        if _find_idx(directory, "t10k-images-idx3") or _find_idx(directory, "train-images-idx3"):
            return load_idx_directory(directory, split)
    tfds_data = _from_tensorflow_datasets(name, split)
    if tfds_data is not None:
        return tfds_data
    raise DataNotFoundError(
        f"{name} not found. Looked in: {', '.join(filter(None, candidates))}. "
        f"{_HOW_TO_GET[name]}, then pass the folder as path=..., --dataset DIR, or set "
        f"{DATA_DIR_ENV}=DIR. With tensorflow-datasets installed and internet access it is "
        "downloaded instead."
    )


def _from_tensorflow_datasets(name, split):
    try:
        import tensorflow_datasets as tfds
    except ImportError:
        return None
    tfds_split = {"train": "train", "test": "test", "all": "train+test"}[split]
    try:
        images, labels = tfds.as_numpy(
            tfds.load(name, split=tfds_split, batch_size=-1, as_supervised=True)
        )
    except Exception:  # offline, or the download failed: fall through to the error
        return None
    return images, labels.astype(np.int64)


def load_fashion_mnist(path=None, split="test"):
    """Fashion-MNIST from the standard IDX files.

    Looks in `path`, then `$KERAS_DEEPCLUST_DATA` (and its `fashion-mnist/`), then
    the Debian package's `/usr/share/datasets/fashion-mnist`, then tries
    `tensorflow_datasets` when installed and online.

    Args:
        path: folder with the IDX files, or None.
        split: "test" (10k), "train" (60k) or "all" (70k).

    Returns:
        `(x, y)`, x `(n, 28, 28, 1)` uint8 pixels.
    """
    return _named_idx_dataset("fashion_mnist", path, split)


def load_mnist(path=None, split="test"):
    """MNIST from the standard IDX files; same search order and arguments as
    `load_fashion_mnist` (Debian folder `/usr/share/datasets/mnist`)."""
    return _named_idx_dataset("mnist", path, split)


def load_usps(path):
    """USPS from the common `usps.h5` (groups `train` and `test`, datasets `data`
    with 256 values in [0, 1] and `target`). Returns all 9298 images `(n, 16, 16, 1)`."""
    import h5py

    path = Path(path)
    if not path.is_file():
        raise DataNotFoundError(f"USPS file not found: {path}. Download usps.h5 and pass its path.")
    with h5py.File(path, "r") as f:
        x = np.concatenate([f[g]["data"][:] for g in ("train", "test")])
        y = np.concatenate([f[g]["target"][:] for g in ("train", "test")])
    return x.reshape(-1, 16, 16, 1), y.astype(np.int64)


def from_npz(path, x_key=None, y_key=None):
    """Arrays from an `.npz`: `x_key` (default: "x", else the first array) and
    `y_key` (default: "y" or "labels" when present)."""
    path = _existing(path)
    with np.load(path, allow_pickle=False) as archive:
        keys = list(archive.keys())
        if not keys:
            raise ValueError(f"{path} holds no arrays.")
        x_key = x_key or ("x" if "x" in keys else keys[0])
        if x_key not in keys:
            raise ValueError(f"{path} has no array {x_key!r}; it has {keys}.")
        y_key = y_key or next((k for k in ("y", "labels") if k in keys), None)
        if y_key is not None and y_key not in keys:
            raise ValueError(f"{path} has no array {y_key!r}; it has {keys}.")
        x = archive[x_key]
        y = archive[y_key] if y_key else None
    return _finish(x, y, path)


def from_npy(path, labels_path=None):
    """Samples from an `.npy` (memory-mapped while reading), labels optionally from another."""
    path = _existing(path)
    x = np.load(path, mmap_mode="r", allow_pickle=False)
    y = np.load(_existing(labels_path), allow_pickle=False) if labels_path else None
    return _finish(x, y, path)


def from_csv(path, label_column=None, delimiter=",", skip_header="auto"):
    """Rows of a numeric CSV as samples; `label_column` (index or header name) as labels.

    A cell that is not a number, or an empty one, is refused with the row and the
    column (by its header name when there is a header), never read as NaN.
    """
    path = _existing(path)
    with open(path, newline="") as f:
        rows = list(csv.reader(f, delimiter=delimiter))
    rows = [row for row in rows if row]
    if not rows:
        raise ValueError(f"{path} is empty.")
    first = rows[0]
    has_header = skip_header if skip_header != "auto" else not _all_numeric(first)
    header = first if has_header else [str(i) for i in range(len(first))]
    if isinstance(label_column, str):
        if not has_header or label_column not in first:
            raise ValueError(f"{path} has no column named {label_column!r}; header: {first}.")
        label_column = first.index(label_column)
    body = rows[int(has_header):]
    if not body:
        raise ValueError(f"{path} has a header but no rows.")
    for number, row in enumerate(body, start=1 + int(has_header)):
        if len(row) != len(header):
            raise ValueError(f"{path}, line {number}: {len(row)} cells where the first line "
                             f"has {len(header)}.")
    table = np.empty((len(body), len(header)))
    for column, name in enumerate(header):
        cells = [row[column] for row in body]
        try:
            table[:, column] = [float(c) for c in cells]
        except ValueError:
            line = next(i for i, c in enumerate(cells) if not _is_number(c))
            raise ValueError(
                f"{path}: column {name!r} is not numeric (line {line + 1 + int(has_header)}: "
                f"{cells[line]!r}). Encode or drop non-numeric columns first.") from None
        if not np.isfinite(table[:, column]).all():
            line = int(np.flatnonzero(~np.isfinite(table[:, column]))[0])
            raise ValueError(f"{path}: column {name!r} holds NaN or an infinite value "
                             f"(line {line + 1 + int(has_header)}: {cells[line]!r}).")
    y = None
    if label_column is not None:
        y = table[:, label_column].astype(np.int64)
        table = np.delete(table, label_column, axis=1)
    return _finish(table.astype(np.float32), y, path)


def from_parquet(path, label_column=None):
    """Rows of a Parquet file (needs pyarrow) as samples: every numeric column a
    feature, `label_column` (a name) the labels. Non-numeric or null cells are refused
    with the column's name."""
    path = _existing(path)
    try:
        import pyarrow.parquet as pq
    except ImportError:
        raise ImportError(f"Reading {path} needs pyarrow: pip install pyarrow") from None
    table = pq.read_table(path)
    columns, y = [], None
    for name in table.column_names:
        column = table.column(name)
        if column.null_count:
            raise ValueError(f"{path}: column {name!r} has {column.null_count} null cells.")
        values = column.to_numpy()
        if name == label_column:
            y = values
            continue
        if not (np.issubdtype(values.dtype, np.number) or values.dtype == bool):
            raise ValueError(f"{path}: column {name!r} is not numeric ({column.type}). "
                             "Encode or drop non-numeric columns first.")
        columns.append(values.astype(np.float32))
    if label_column is not None and y is None:
        raise ValueError(f"{path} has no column named {label_column!r}; columns: "
                         f"{table.column_names}.")
    if not columns:
        raise ValueError(f"{path} has no feature columns.")
    return _finish(np.column_stack(columns), y, path)


def _is_number(cell):
    try:
        float(cell)
    except ValueError:
        return False
    return True


def _all_numeric(cells):
    return all(_is_number(c) for c in cells)


def _existing(path):
    path = Path(path)
    if not path.exists():
        raise DataNotFoundError(f"No such file: {path}")
    return path


def _finish(x, y, path):
    x = check_array(x, name=str(path), dtype=None)
    if y is not None:
        y = check_labels(np.asarray(y).reshape(-1), len(x), name=f"labels of {path}")
    return x, y


NAMED = {
    "digits": lambda: load_digits(),
    "fashion_mnist": lambda: load_fashion_mnist(split="test"),
    "fashion_mnist_train": lambda: load_fashion_mnist(split="train"),
    "fashion_mnist_all": lambda: load_fashion_mnist(split="all"),
    "mnist": lambda: load_mnist(split="test"),
    "mnist_all": lambda: load_mnist(split="all"),
}


def load(name_or_path):
    """A data set by name (see `NAMED`) or path: a folder of IDX files, `.npy`,
    `.npz`, `.csv` or `.parquet` (a column named "label", "labels" or "y" as labels),
    or `usps.h5`. Used by the CLI's `--dataset` and by `assign`.

    Returns:
        `(x, y)`; y may be None.
    """
    key = str(name_or_path).replace("-", "_").lower()
    if key in NAMED:
        return NAMED[key]()
    path = Path(name_or_path)
    if path.is_dir():
        return load_idx_directory(path)
    if not path.exists():
        raise DataNotFoundError(
            f"Unknown dataset {name_or_path!r}: not a name ({', '.join(sorted(NAMED))}) "
            "and no such file or folder."
        )
    suffixes = "".join(path.suffixes[-2:]).lower()
    if suffixes.endswith(".npz"):
        return from_npz(path)
    if suffixes.endswith(".npy"):
        return from_npy(path)
    if suffixes.endswith(".csv"):
        with open(path, newline="") as f:
            header = next(csv.reader(f), [])
        label = next((c for c in ("label", "labels", "y") if c in header), None)
        return from_csv(path, label_column=label)
    if suffixes.endswith(".parquet"):
        import pyarrow.parquet as pq

        names = pq.read_schema(path).names
        return from_parquet(path, next((c for c in ("label", "labels", "y") if c in names), None))
    if suffixes.endswith(".h5"):
        return load_usps(path)
    if "ubyte" in path.name or "idx" in path.name:
        return from_idx(path)
    raise ValueError(f"Cannot tell the format of {path}: use .npy, .npz, .csv, .parquet, "
                     ".h5 or IDX.")


# ------------------------------------------------------------------ streaming
def stream(path, batch_size=256):
    """Batches of an `.npy` or IDX file (gzipped or not), or of a folder of TFRecord
    shards written by `keras-deepclust convert`, as a `tf.data.Dataset` read from disk as
    they are needed, so the data never has to fit in memory.

    Values are as stored, cast to float32 (a model learns its input scaling from a
    pass over the stream, as it does from arrays); NaN and infinite values fail.

    Args:
        path: an `.npy` file, an IDX images file (`*-idx3-ubyte[.gz]`) or a folder
            written by `keras_deepclust.tfrecords.convert`.
        batch_size: samples per batch.

    Returns:
        `(dataset, n_samples)`: batches of float32 samples `(batch, *sample_shape)`.

    Example:

    ```python
    dataset, n = keras_deepclust.datasets.stream("train-images-idx3-ubyte.gz")
    model.pretrain(dataset, epochs=50)
    ```
    """
    import tensorflow as tf

    path = _existing(path)
    if batch_size < 1:
        raise ValueError(f"batch_size must be >= 1, got {batch_size!r}.")
    if path.is_dir():
        from keras_deepclust import tfrecords

        return tfrecords.read(path, batch_size=batch_size)
    opener, offset, dtype, shape = _record_layout(path)
    if len(shape) < 2 or shape[0] == 0:
        raise ValueError(f"{path} holds an array of shape {shape}; samples are rows of a "
                         "2-D or higher array.")
    row_bytes = int(np.prod(shape[1:])) * np.dtype(dtype).itemsize
    if opener is open and path.stat().st_size < offset + shape[0] * row_bytes:
        complete = (path.stat().st_size - offset) // row_bytes
        raise ValueError(f"{path} ends after {complete} of the {shape[0]} samples its "
                         "header announces.")
    sample_shape = tuple(shape[1:])
    if path.suffix != ".npy" and len(shape) == 3:  # IDX images (n, h, w), as `from_idx`
        sample_shape = (*sample_shape, 1)

    def batches():
        for chunk in _read_records(opener, path, offset, dtype, shape, batch_size):
            yield _float_chunk(chunk, path).reshape(len(chunk), *sample_shape)

    dataset = tf.data.Dataset.from_generator(
        batches, output_signature=tf.TensorSpec((None, *sample_shape), tf.float32))
    return dataset.prefetch(tf.data.AUTOTUNE), int(shape[0])


def _record_layout(path):
    """(opener, byte offset of the data, dtype, shape) of an `.npy` or IDX file."""
    if path.suffix == ".npy":
        with open(path, "rb") as f:
            version = np.lib.format.read_magic(f)
            read_header = (np.lib.format.read_array_header_1_0 if version == (1, 0)
                           else np.lib.format.read_array_header_2_0)
            shape, fortran, dtype = read_header(f)
            offset = f.tell()
        if fortran or dtype.hasobject:
            raise ValueError(f"{path}: streaming needs a C-ordered numeric array.")
        return open, offset, dtype, tuple(shape)
    opener = gzip.open if path.suffix == ".gz" else open
    with opener(path, "rb") as f:
        head = f.read(4)
        if len(head) < 4 or head[0] != 0 or head[1] != 0 or head[2] not in _IDX_DTYPES:
            raise ValueError(f"{path} is neither .npy nor IDX (magic number {head!r}).")
        ndim = head[3]
        shape = tuple(int.from_bytes(f.read(4), "big") for _ in range(ndim))
    return opener, 4 + 4 * ndim, np.dtype(_IDX_DTYPES[head[2]]), shape


def _read_records(opener, path, offset, dtype, shape, rows):
    """Chunks of at most `rows` samples, read sequentially (works through gzip too)."""
    row_bytes = int(np.prod(shape[1:])) * dtype.itemsize
    with opener(path, "rb") as f:
        f.read(offset) if opener is not open else f.seek(offset)
        for start in range(0, shape[0], rows):
            count = min(rows, shape[0] - start)
            data = f.read(count * row_bytes)
            if len(data) != count * row_bytes:
                raise ValueError(f"{path} ends after {start + len(data) // row_bytes} of "
                                 f"the {shape[0]} samples its header announces.")
            yield np.frombuffer(data, dtype=dtype).reshape(count, *shape[1:])


def _float_chunk(chunk, path):
    values = chunk.astype(np.float32)
    if not np.isfinite(values).all():
        raise ValueError(f"{path} contains NaN or infinite values.")
    return values
