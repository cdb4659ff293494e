"""Data loaders. Each returns `(x, y)`: `x` as stored (uint8 pixels stay uint8; images
as `(n, height, width, channels)`, tables as `(n, n_features)`) and int labels `y` (or
None when the source has none). The models learn their input scaling from these raw
values (`scaling=`), so what `fit` read is what `predict`, `assign` and `serve` take.

One function, `identify`, decides what a `--dataset` value is (a named data set; a
folder of IDX files, of images or of TFRecord shards; a file, by its suffix), and
`load`, `stream` and `tfrecords.convert` all go through it. Every reader refuses a bad
file with a `ValueError` that names the file and what is wrong with it, before any
work starts: a file that is not of its format, cut short or empty; samples that are not
numbers, NaN or infinite; labels that are fractional or missing; fewer than 2 samples.

numpy only (scikit-learn for the bundled digits, pyarrow for Parquet, h5py for USPS,
matplotlib for images); no TensorFlow.
"""

import csv
import gzip
import importlib
import io
import os
import zipfile
import zlib
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from keras_deepclust._validation import (
    check_array,
    check_class_ids,
    check_finite,
    check_labels,
    check_layout,
    check_positive_int,
)

DATA_DIR_ENV = "KERAS_DEEPCLUST_DATA"
LABEL_COLUMNS = ("label", "labels", "y")  # the column (or .npz array) holding the labels
MIN_SAMPLES = 2  # a data set to cluster or score
CONVERTED_META = "meta.json"  # written last by `tfrecords.convert`
IMAGE_SUFFIXES = (".png", ".jpg", ".jpeg", ".bmp", ".gif", ".tif", ".tiff")
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
_IDX_SPLITS = {"train": ["train"], "test": ["t10k"], "all": ["train", "t10k"]}
_NPY_MAGIC = b"\x93NUMPY"
_CHECK_CHUNK_BYTES = 1 << 24  # float32 bytes held at a time by `Records.check_values`
_SUFFIX_KINDS = {".npy": "npy", ".npz": "npz", ".csv": "csv", ".parquet": "parquet",
                 ".pq": "parquet", ".h5": "usps", ".hdf5": "usps"}
_FORMATS = ".npy, .npz, .csv, .parquet, usps .h5 or IDX (*-ubyte[.gz])"


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


# ------------------------------------------------------------ what a path is
NAMED = {  # name: (data set, IDX split)
    "digits": ("digits", None),
    "fashion_mnist": ("fashion_mnist", "test"),
    "fashion_mnist_train": ("fashion_mnist", "train"),
    "fashion_mnist_all": ("fashion_mnist", "all"),
    "mnist": ("mnist", "test"),
    "mnist_all": ("mnist", "all"),
}


@dataclass(frozen=True)
class Source:
    """What a `--dataset` value names, as `identify` decided.

    `kind` is "digits"; "named" (an IDX data set by name that is not on this machine);
    "idx_folder" (with `split`); "images" (a folder of same-size images); "converted"
    (a folder written by `tfrecords.convert`); or, for a file, "npy", "npz", "csv",
    "parquet", "usps" or "idx". `path` is the file or folder (None for "digits" and
    "named"); `name` the data set's name when it was given by name.
    """

    kind: str
    path: Path = None
    name: str = ""
    split: str = "test"

    def __str__(self):
        return self.name or str(self.path)


def identify(name_or_path):
    """Decides what `name_or_path` is: a name of `NAMED`, a folder (written by `convert`
    when it holds `meta.json`; else of IDX files; else of images) or a file (by its
    suffix; IDX by `ubyte` or `idx` in its name). `load`, `stream` and
    `tfrecords.convert` all ask this one function.

    Returns:
        a `Source`.

    Raises:
        DataNotFoundError: neither a name nor an existing file or folder.
        ValueError: a folder without data, a file of unknown format.
    """
    if isinstance(name_or_path, Source):
        return name_or_path
    if not str(name_or_path).strip():
        raise ValueError("No data set given: the name or path is empty.")
    key = str(name_or_path).replace("-", "_").lower()
    if key in NAMED:
        dataset, split = NAMED[key]
        if dataset == "digits":
            return Source("digits", name=key)
        folder = _named_folder(dataset)
        if folder is None:
            return Source("named", name=key, split=split)
        return Source("idx_folder", Path(folder), name=key, split=split)
    path = Path(name_or_path)
    if path.is_dir():
        return _identify_folder(path)
    if not path.exists():
        raise DataNotFoundError(
            f"Unknown dataset {str(name_or_path)!r}: not a name ({', '.join(sorted(NAMED))}) "
            "and no such file or folder."
        )
    if not path.is_file():
        raise ValueError(f"{path} is not a regular file.")
    kind = _SUFFIX_KINDS.get(path.suffix.lower())
    if kind is None and ("ubyte" in path.name or "idx" in path.name):
        kind = "idx"
    if kind is None:
        raise ValueError(f"Cannot tell the format of {path}: use {_FORMATS}.")
    return Source(kind, path)


def _identify_folder(path):
    if (path / CONVERTED_META).exists():
        return Source("converted", path)
    has_test = _find_idx(path, "t10k-images-idx3") is not None
    if has_test or _find_idx(path, "train-images-idx3") is not None:
        return Source("idx_folder", path, split="test" if has_test else "train")
    if image_files(path):
        return Source("images", path)
    if any(path.glob("*.tfrecord")):
        raise ValueError(f"{path} holds TFRecord shards but no {CONVERTED_META}: an "
                         "interrupted conversion. Convert again into a new folder.")
    raise ValueError(
        f"{path} is a folder without data: a data folder holds "
        "{train,t10k}-{images-idx3,labels-idx1}-ubyte[.gz] files, or images "
        f"({', '.join(IMAGE_SUFFIXES)}), or is one written by `keras-deepclust convert`."
    )


# ---------------------------------------------------------------- loading whole
def load(name_or_path, min_samples=MIN_SAMPLES):
    """A data set by name (see `NAMED`) or path: a folder of IDX files or of images,
    `.npy`, `.npz`, `.csv` or `.parquet` (a column named "label", "labels" or "y" as
    labels), `usps.h5` or an IDX file. Used by the CLI's `--dataset` and by `assign`.

    Args:
        name_or_path: the name, file or folder (what `identify` takes).
        min_samples: fewer samples are refused (2: a data set to cluster or score).

    Returns:
        `(x, y)`; y may be None.
    """
    source = identify(name_or_path)
    x, y = _LOADERS[source.kind](source)
    check_layout(x.shape, x.dtype, name=str(source), min_samples=min_samples)
    return x, y


def _refuse_converted(source):
    raise ValueError(f"{source} is a folder of TFRecord shards written by `convert`: it is "
                     "read batch by batch, with --stream (datasets.stream), not loaded whole.")


_LOADERS = {
    "digits": lambda source: load_digits(),
    "named": lambda source: _named_idx_dataset(*NAMED[source.name]),
    "idx_folder": lambda source: load_idx_directory(source.path, source.split),
    "images": lambda source: load_image_folder(source.path),
    "converted": _refuse_converted,
    "npy": lambda source: from_npy(source.path),
    "npz": lambda source: from_npz(source.path),
    "csv": lambda source: from_csv(source.path, label_column=LABEL_COLUMNS),
    "parquet": lambda source: from_parquet(source.path, label_column=LABEL_COLUMNS),
    "usps": lambda source: load_usps(source.path),
    "idx": lambda source: from_idx(source.path),
}


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


# ------------------------------------------------------------------------ IDX
def read_idx(path):
    """Reads one IDX file (gzipped or not) into a numpy array of its stored dtype."""
    path = _existing(path)
    with _reading(path, "a gzipped IDX file" if _gzipped(path) else "an IDX file"):
        with _open_binary(path) as f:
            data = f.read()
    dtype, shape, offset = _idx_header(io.BytesIO(data), path)
    expected = int(np.prod(shape)) * dtype.itemsize
    if len(data) - offset != expected:
        raise ValueError(
            f"{path}: header says shape {shape} ({expected} bytes) but the file has "
            f"{len(data) - offset} bytes of data."
        )
    return np.frombuffer(data, dtype=dtype, offset=offset).reshape(shape).astype(
        dtype.newbyteorder("="))


def _idx_header(f, path):
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
    return _finish(images, labels, images_path, labels_name=f"labels {labels_path}")


def _find_idx(directory, stem):
    for suffix in ("-ubyte.gz", "-ubyte", ".gz", ""):
        candidate = Path(directory) / f"{stem}{suffix}"
        if candidate.is_file():
            return candidate
    return None


def _idx_files(directory, split, kind):
    """The IDX files of `kind` ("images-idx3" or "labels-idx1") of a split, in order;
    a missing one is refused naming the folder."""
    if split not in _IDX_SPLITS:
        raise ValueError(f"split must be 'train', 'test' or 'all', got {split!r}.")
    files = []
    for prefix in _IDX_SPLITS[split]:
        found = _find_idx(directory, f"{prefix}-{kind}")
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
    images = _idx_files(directory, split, "images-idx3")
    labels = _idx_files(directory, split, "labels-idx1")
    parts = [from_idx(x, y) for x, y in zip(images, labels, strict=True)]
    shapes = {x.shape[1:] for x, _ in parts}
    if len(shapes) > 1:
        raise ValueError(f"{directory}: the train and t10k images differ in shape ({shapes}).")
    return np.concatenate([x for x, _ in parts]), np.concatenate([y for _, y in parts])


def _data_folders(name, path=None):
    """Where a named IDX data set is looked for, in order."""
    candidates = [path, os.environ.get(DATA_DIR_ENV)]
    if os.environ.get(DATA_DIR_ENV):
        candidates.append(str(Path(os.environ[DATA_DIR_ENV]) / name.replace("_", "-")))
    candidates.append(_DEBIAN_DIRS[name])
    return [c for c in candidates if c]


def _named_folder(name, path=None):
    """The first folder of `_data_folders` holding the data set's IDX files, or None."""
    for directory in _data_folders(name, path):
        if _find_idx(directory, "t10k-images-idx3") or _find_idx(directory, "train-images-idx3"):
            return directory
    return None


def _not_found(name, path=None):
    return DataNotFoundError(
        f"{name} not found. Looked in: {', '.join(map(str, _data_folders(name, path)))}. "
        f"{_HOW_TO_GET[name]}, then pass the folder as path=..., --dataset DIR, or set "
        f"{DATA_DIR_ENV}=DIR. With tensorflow-datasets installed and internet access it is "
        "downloaded instead."
    )


def _named_idx_dataset(name, split, path=None):
    folder = _named_folder(name, path)
    if folder is not None:
        return load_idx_directory(folder, split)
    tfds_data = _from_tensorflow_datasets(name, split)
    if tfds_data is not None:
        return tfds_data
    raise _not_found(name, path)


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
    return _named_idx_dataset("fashion_mnist", split, path)


def load_mnist(path=None, split="test"):
    """MNIST from the standard IDX files; same search order and arguments as
    `load_fashion_mnist` (Debian folder `/usr/share/datasets/mnist`)."""
    return _named_idx_dataset("mnist", split, path)


# ------------------------------------------------------------- other formats
def load_usps(path):
    """USPS from the common `usps.h5` (groups `train` and `test`, datasets `data`
    with 256 values in [0, 1] and `target`). Returns all 9298 images `(n, 16, 16, 1)`."""
    path = Path(path)
    if not path.is_file():
        raise DataNotFoundError(f"USPS file not found: {path}. Download usps.h5 and pass its path.")
    h5py = _import_for(path, "h5py", "h5py")
    _check_not_empty(path)
    if not h5py.is_hdf5(path):
        raise ValueError(f"{path} is not an HDF5 file (usps.h5 is one).")
    layout = ("usps.h5 holds groups train and test, each with datasets data (rows of 256 "
              "pixels) and target (their digits)")
    members = ("train/data", "train/target", "test/data", "test/target")
    with _reading(path, "an HDF5 file"):
        with h5py.File(path, "r") as f:
            missing = [m for m in members if not isinstance(f.get(m), h5py.Dataset)]
            if not missing:
                x = [f[f"{group}/data"][()] for group in ("train", "test")]
                y = [f[f"{group}/target"][()] for group in ("train", "test")]
    if missing:
        raise ValueError(f"{path} has no dataset {missing[0]}: {layout}.")
    for group, data in zip(("train", "test"), x, strict=True):
        if data.ndim != 2 or data.shape[1] != 256:
            raise ValueError(f"{path}: {group}/data has shape {data.shape}; {layout}.")
    return _finish(np.concatenate(x).reshape(-1, 16, 16, 1),
                   np.concatenate([np.reshape(t, -1) for t in y]), path,
                   labels_name=f"labels (target) of {path}")


def from_npz(path, x_key=None, y_key=None):
    """Arrays from an `.npz`: `x_key` (default: "x", else the only array that is not
    the labels; several are refused) and `y_key` (default: "y", "labels" or "label"
    when present)."""
    path = _existing(path)
    _check_not_empty(path)
    if not zipfile.is_zipfile(path):
        with open(path, "rb") as f:
            head = f.read(8)
        hint = " (it is an .npy file: name it .npy)" if head.startswith(_NPY_MAGIC) else ""
        raise ValueError(f"{path} is not an .npz archive{hint}; it starts with {head!r}.")
    with _reading(path, "an .npz archive"):
        archive = np.load(path, allow_pickle=False)
    with archive:
        keys = list(archive.keys())
        if not keys:
            raise ValueError(f"{path} holds no arrays.")
        y_key = _npz_labels_key(path, keys, y_key)
        x_key = _npz_samples_key(path, keys, x_key, y_key)
        x = _npz_array(archive, x_key, path)
        y = _npz_array(archive, y_key, path) if y_key else None
    return _finish(x, y, path, x_name=f"array {x_key!r} of {path}",
                   labels_name=f"labels (array {y_key!r}) of {path}")


def _npz_labels_key(path, keys, y_key):
    if y_key is None:
        return next((k for k in ("y", "labels", "label") if k in keys), None)
    if y_key not in keys:
        raise ValueError(f"{path} has no array {y_key!r}; it has {keys}.")
    return y_key


def _npz_samples_key(path, keys, x_key, y_key):
    if x_key is not None:
        if x_key not in keys:
            raise ValueError(f"{path} has no array {x_key!r}; it has {keys}.")
        return x_key
    if "x" in keys:
        return "x"
    others = [k for k in keys if k != y_key]
    if not others:
        raise ValueError(f"{path} holds only labels ({y_key!r}); save the samples as 'x'.")
    if len(others) > 1:
        raise ValueError(f"{path} holds the arrays {keys} and none is named 'x': save the "
                         "samples as 'x' (and the labels as 'y').")
    return others[0]


def _npz_array(archive, key, path):
    try:
        return archive[key]
    except (ValueError, OSError, EOFError, zipfile.BadZipFile, zlib.error) as error:
        raise ValueError(f"array {key!r} of {path} cannot be read: {error}") from None


def from_npy(path, labels_path=None):
    """Samples from an `.npy` (memory-mapped while reading), labels optionally from another."""
    path = _existing(path)
    read_npy_header(path)
    with _reading(path, "an .npy file"):
        x = np.load(path, mmap_mode="r", allow_pickle=False)
    y = None
    if labels_path:
        labels_path = _existing(labels_path)
        _npy_header(labels_path)
        with _reading(labels_path, "an .npy file"):
            y = np.load(labels_path, allow_pickle=False)
    return _finish(x, y, path, labels_name=f"labels {labels_path}")


def read_npy_header(path, min_samples=1):
    """`(shape, fortran_order, dtype, data_offset)` of an `.npy` file, from its header
    alone, checked: a file that is empty, not an `.npy`, damaged, a pickle, not numeric
    samples (`check_layout`), with fewer than `min_samples` rows, or shorter or longer
    than its header announces is refused naming it."""
    shape, fortran, dtype, offset = _npy_header(path)
    check_layout(shape, dtype, name=str(path), min_samples=min_samples)
    _check_complete(path, offset, dtype, shape)
    return shape, fortran, dtype, offset


def _npy_header(path):
    """(shape, fortran_order, dtype, byte offset of the data) from an `.npy` file's
    header alone. A file that is empty, not an `.npy` or holds Python objects (a
    pickle) is refused naming it."""
    with open(path, "rb") as f:
        head = f.read(len(_NPY_MAGIC))
        if not head:
            raise ValueError(f"{path} is empty (0 bytes).")
        if head != _NPY_MAGIC:
            raise ValueError(f"{path} is not an .npy file (it starts with {head!r}; "
                             f"np.save writes files starting with {_NPY_MAGIC!r}).")
        f.seek(0)
        with _reading(path, "an .npy file"):
            version = np.lib.format.read_magic(f)
            read_header = (np.lib.format.read_array_header_1_0 if version == (1, 0)
                           else np.lib.format.read_array_header_2_0)
            shape, fortran, dtype = read_header(f)
        offset = f.tell()
    if dtype.hasobject:
        raise ValueError(f"{path} holds Python objects (a pickled {dtype} array), which are "
                         "never read: save a numeric array.")
    return tuple(shape), fortran, dtype, offset


def _check_complete(path, offset, dtype, shape):
    """Refuses an uncompressed file shorter or longer than its header announces."""
    size = path.stat().st_size
    row_bytes = int(np.prod(shape[1:])) * dtype.itemsize
    expected = offset + shape[0] * row_bytes
    if row_bytes and size < expected:
        complete = (size - offset) // row_bytes
        raise ValueError(f"{path} ends after {complete} of the {shape[0]} samples its "
                         "header announces.")
    if size > expected:
        raise ValueError(f"{path} has {size - expected} bytes after the {shape[0]} samples "
                         "its header announces: it is not one array as written by np.save "
                         "or an IDX writer.")


def from_csv(path, label_column=None, delimiter="auto", skip_header="auto"):
    """Rows of a numeric CSV as samples; `label_column` as labels.

    Read as UTF-8, with or without the byte-order mark of Excel's "CSV UTF-8". Lines
    without any value are skipped.

    Args:
        path: the file.
        label_column: a column index, a header name, a tuple of header names (the first
            one present; none present: no labels), or None (no labels). Labels are whole
            numbers or class names (text, mapped to ids 0..C-1 in sorted order);
            fractions, empty cells and a mix of numbers and text are refused.
        delimiter: the cell separator; "auto" takes the first of ",", ";" and tab that
            appears in the first line (Excel writes ";" in many locales).
        skip_header: whether the first line is a header; "auto": when it holds a cell
            that is not a number.

    A cell that is not a number, or an empty one, is refused with the line and the
    column (by its header name when there is a header), never read as NaN.
    """
    path = _existing(path)
    lines, delimiter = _csv_lines(path, delimiter)
    if not lines:
        raise ValueError(f"{path} is empty.")
    first_line, first = lines[0]
    has_header = skip_header if skip_header != "auto" else not all(map(_is_number, first))
    header = [_column_name(c) for c in first] if has_header else [
        str(i) for i in range(len(first))]
    body = lines[int(has_header):]
    if not body:
        raise ValueError(f"{path} has a header but no rows.")
    for number, row in body:
        if len(row) != len(header):
            raise ValueError(f"{path}, line {number}: {len(row)} cells where line {first_line} "
                             f"has {len(header)}.")
    label_index = _label_index(path, label_column, header if has_header else None, len(header))
    numbers = [number for number, _ in body]
    if has_header and not header[0] and _row_numbers([row[0] for _, row in body]):
        raise ValueError(f"{path}: the first column has no name and holds the row numbers 0 to "
                         f"{len(body) - 1}: a row index (pandas writes one unless "
                         "to_csv(..., index=False)), not a feature. Drop it.")
    table = np.empty((len(body), len(header)))
    for column, name in enumerate(header):
        if column == label_index:
            continue
        cells = [row[column] for _, row in body]
        try:
            table[:, column] = [float(c) for c in cells]
        except ValueError:
            i = next(i for i, c in enumerate(cells) if not _is_number(c))
            raise ValueError(
                f"{path}: column {name!r} is not numeric (line {numbers[i]}: {cells[i]!r})."
                f"{_delimiter_hint(cells[i], delimiter)} Encode or drop non-numeric columns "
                "first.") from None
        _check_column_finite(table[:, column], path, name, cells,
                             lambda i: f"line {numbers[i]}")
    y = None
    if label_index is not None:
        y = _csv_labels(path, header[label_index], [row[label_index] for _, row in body],
                        numbers)
        table = np.delete(table, label_index, axis=1)
    return _finish(table.astype(np.float32), y, path)


def _csv_lines(path, delimiter):
    """(`[(line number, cells)]` of the lines holding a value, delimiter used)."""
    data = path.read_bytes()
    try:
        text = data.decode("utf-8-sig")
    except UnicodeDecodeError as error:
        line = data[:error.start].count(b"\n") + 1
        raise ValueError(f"{path} is not UTF-8 text (byte {data[error.start]:#04x} on line "
                         f"{line}): save it as \"CSV UTF-8\".") from None
    if delimiter == "auto":
        first = next((line for line in text.splitlines() if line.strip()), "")
        delimiter = next((d for d in (",", ";", "\t") if d in first), ",")
    reader = csv.reader(io.StringIO(text, newline=""), delimiter=delimiter)
    with _reading(path, "a CSV file"):
        lines = [(reader.line_num, row) for row in reader if any(c.strip() for c in row)]
    return lines, delimiter


def _row_numbers(cells):
    """Whether the cells are 0, 1, 2, ... in order (a written row index)."""
    return all(c.strip() == str(i) for i, c in enumerate(cells))


def _column_name(cell):
    return cell.lstrip("\ufeff").strip()


def _label_index(path, label_column, header, width):
    """The index of the label column (see `from_csv`), or None."""
    if label_column is None:
        return None
    if isinstance(label_column, (tuple, list)):
        return next((header.index(c) for c in label_column if header and c in header), None)
    if isinstance(label_column, str):
        if header is None or label_column not in header:
            raise ValueError(f"{path} has no column named {label_column!r}; "
                             + (f"header: {header}." if header else "it has no header."))
        return header.index(label_column)
    if not -width <= label_column < width:
        raise ValueError(f"{path} has {width} columns; there is no column {label_column}.")
    return label_column % width


def _csv_labels(path, name, cells, numbers):
    """Class ids of a CSV label column: whole numbers, or class names mapped to ids."""
    where = lambda i: f"line {numbers[i]}"  # noqa: E731
    what = f"labels (column {name!r}) of {path}"
    empty = next((i for i, c in enumerate(cells) if not c.strip()), None)
    if empty is not None:
        raise ValueError(f"{what} must name a class for every row; {where(empty)} is empty.")
    is_number = [_is_number(c) for c in cells]
    if all(is_number):
        return check_class_ids(np.array([float(c) for c in cells]), name=what, where=where)
    if any(is_number):
        i, j = is_number.index(True), is_number.index(False)
        raise ValueError(f"{what} mix numbers ({where(i)}: {cells[i]!r}) and text ({where(j)}: "
                         f"{cells[j]!r}); give every row a class id or every row a class name.")
    return check_class_ids(np.array([c.strip() for c in cells]), name=what, where=where)


def _delimiter_hint(cell, delimiter):
    if delimiter == ";" and "," in cell:
        return " Decimal commas are not read: write numbers with a decimal point."
    if delimiter == "," and ";" in cell:
        return " The file looks separated by ';' with decimal commas: save it with ',' " \
               "between cells and '.' in numbers."
    return ""


def _check_column_finite(values, path, name, cells, where):
    """Refuses a column holding NaN, an infinite value or one beyond float32's range (the
    samples are float32), naming the first (`cells[i]`, as written) and `where(i)` it is."""
    with np.errstate(over="ignore"):
        bad = ~np.isfinite(values.astype(np.float32))
    if bad.any():
        i = int(np.flatnonzero(bad)[0])
        cell = cells[i].item() if isinstance(cells[i], np.generic) else cells[i]
        beyond = "" if not np.isfinite(values[i]) else " beyond float32's range"
        raise ValueError(f"{path}: column {name!r} holds NaN or an infinite value{beyond} "
                         f"({where(i)}: {cell!r}).")


def from_parquet(path, label_column=None):
    """Rows of a Parquet file (needs pyarrow) as samples: every numeric column a
    feature, `label_column` (a name, or a tuple of names: the first one present) the
    labels (whole numbers or class names). Non-numeric, null, NaN or infinite cells are
    refused with the column's name and the row."""
    path = _existing(path)
    pa = _import_for(path, "pyarrow", "pyarrow")
    pq = _import_for(path, "pyarrow.parquet", "pyarrow")
    _check_not_empty(path)
    try:
        table = pq.read_table(path)
    except (pa.ArrowException, OSError, ValueError) as error:
        raise ValueError(f"{path} is not a readable Parquet file: {error}") from None
    index_columns = [c for c in (table.schema.pandas_metadata or {}).get("index_columns", [])
                     if isinstance(c, str)]
    table = table.drop_columns(index_columns)  # a DataFrame's index, not a feature
    names = [_column_name(n) for n in table.column_names]
    label_index = _label_index(path, label_column, names, len(names))
    columns, y = [], None
    for index, (name, column) in enumerate(zip(names, table.columns, strict=True)):
        if column.null_count:
            row = int(np.flatnonzero(column.is_null().to_numpy(zero_copy_only=False))[0])
            raise ValueError(f"{path}: column {name!r} has {column.null_count} null cells "
                             f"(the first in row {row}, counting from 0).")
        if index == label_index:
            labels = column.to_numpy() if _arrow_numeric(column.type) else np.array(
                [str(v) for v in column.to_pylist()])
            y = check_class_ids(labels, name=f"labels (column {name!r}) of {path}",
                                where=lambda i: f"row {i}")
            continue
        if not _arrow_numeric(column.type):
            raise ValueError(f"{path}: column {name!r} is not numeric ({column.type}). "
                             "Encode or drop non-numeric columns first.")
        values = column.to_numpy().astype(np.float64)
        _check_column_finite(values, path, name, values, lambda i: f"row {i}")
        columns.append(values.astype(np.float32))
    if not columns:
        raise ValueError(f"{path} has no feature columns.")
    return _finish(np.column_stack(columns), y, path)


def _arrow_numeric(arrow_type):
    import pyarrow.types as types

    return types.is_integer(arrow_type) or types.is_floating(arrow_type) or types.is_boolean(
        arrow_type)


# --------------------------------------------------------------------- images
def image_files(folder):
    """The image files of a folder (`IMAGE_SUFFIXES`), sorted by name."""
    return sorted(p for p in Path(folder).iterdir()
                  if p.suffix.lower() in IMAGE_SUFFIXES and p.is_file())


def read_image(path):
    """One image as float32 `(height, width, channels)` in [0, 1] (`scale_to_unit`)."""
    mpimg = _import_for(path, "matplotlib.image", "matplotlib")
    try:
        pixels = np.asarray(mpimg.imread(path))
    except (OSError, ValueError, SyntaxError, EOFError) as error:
        raise ValueError(f"{path} is not a readable image: {error}") from None
    if pixels.ndim == 2:
        pixels = pixels[..., np.newaxis]
    return scale_to_unit(pixels)


def check_same_shape(image, path, first, first_path):
    """Refuses an image whose shape differs from the first image's."""
    if image.shape != first.shape:
        raise ValueError(f"{path} has shape {image.shape}, the first image "
                         f"{Path(first_path).name} {first.shape}: resize them alike.")


def load_image_folder(folder):
    """The images of a folder (same size; PNG, JPEG, ...; sorted by name) as float32
    `(n, height, width, channels)` in [0, 1], without labels."""
    paths = image_files(folder)
    if not paths:
        raise ValueError(f"{folder} holds no images ({', '.join(IMAGE_SUFFIXES)}).")
    images = [read_image(p) for p in paths]
    for path, image in zip(paths, images, strict=True):
        check_same_shape(image, path, images[0], paths[0])
    return _finish(np.stack(images), None, folder)


# --------------------------------------------------------------------- shared
def _is_number(cell):
    try:
        float(cell)
    except ValueError:
        return False
    return True


def _import_for(path, module, package):
    """Imports `module` to read `path`, or raises a `ValueError` naming the file and the
    package to install (the light `assign` install has no pyarrow, h5py or matplotlib)."""
    try:
        return importlib.import_module(module)
    except ImportError:
        raise ValueError(f"Reading {path} needs {package}: pip install {package}") from None


def _existing(path):
    path = Path(path)
    if not path.exists():
        raise DataNotFoundError(f"No such file: {path}")
    if not path.is_file():
        raise ValueError(f"{path} is not a file.")
    return path


def _check_not_empty(path):
    if path.stat().st_size == 0:
        raise ValueError(f"{path} is empty (0 bytes).")


def _gzipped(path):
    return Path(path).suffix.lower() == ".gz"


def _open_binary(path):
    return gzip.open(path, "rb") if _gzipped(path) else open(path, "rb")


@contextmanager
def _reading(path, what):
    """Turns what a library raises on a bad or cut-short file into one `ValueError`
    that names the file and what it was read as. Wrap library calls only: the checks of
    this module raise their own messages."""
    try:
        yield
    except FileNotFoundError:
        raise
    except (OSError, EOFError, ValueError, KeyError, zlib.error, zipfile.BadZipFile,
            csv.Error) as error:
        raise ValueError(f"{path} cannot be read as {what}: {error}") from None


def _finish(x, y, path, x_name=None, labels_name=None):
    """Checks the samples (numeric, at least 2-D, finite; see `check_array`) and turns
    the labels into class ids of the same length."""
    x = check_array(x, name=x_name or str(path), dtype=None)
    if y is not None:
        labels_name = labels_name or f"labels of {path}"
        y = check_labels(np.reshape(np.asarray(y), -1), len(x), name=labels_name)
        y = check_class_ids(y, name=labels_name)
    return x, y


# ------------------------------------------------------------------ streaming
@dataclass(frozen=True)
class _RecordFile:
    """Where the samples of one `.npy` or IDX file lie: they are read in order, from
    `offset` on, as `dtype` rows of `shape[1:]`."""

    path: Path
    offset: int
    dtype: np.dtype
    shape: tuple

    def chunks(self, rows):
        """Arrays of at most `rows` samples, read sequentially (gzip too)."""
        what = "a gzipped file" if _gzipped(self.path) else "a file"
        row_bytes = int(np.prod(self.shape[1:])) * self.dtype.itemsize
        with _open_binary(self.path) as f:
            with _reading(self.path, what):
                f.read(self.offset) if _gzipped(self.path) else f.seek(self.offset)
            for start in range(0, self.shape[0], rows):
                count = min(rows, self.shape[0] - start)
                with _reading(self.path, what):
                    data = f.read(count * row_bytes)
                if len(data) != count * row_bytes:
                    raise ValueError(f"{self.path} ends after {start + len(data) // row_bytes} "
                                     f"of the {self.shape[0]} samples its header announces.")
                yield np.frombuffer(data, dtype=self.dtype).reshape(count, *self.shape[1:])


class Records:
    """The samples of one or more `.npy`/IDX files (an IDX folder's "all" split is two),
    read in order chunk by chunk, never whole, as float32; and their labels when asked
    for and the source has them (an IDX folder's label files, read whole).

    Made by `records`, which checks every header (a readable format, numeric samples of
    one shape, at least 2 of them, files as long as they announce) and, for floating
    point or gzipped files, reads the data once to refuse NaN, infinite values or a
    cut-short file before any work starts. `n_samples`, `sample_shape` and `labels`
    (an int64 array or None) describe it.
    """

    def __init__(self, files, sample_shape, labels=None):
        self.files = files
        self.sample_shape = tuple(sample_shape)
        self.n_samples = sum(f.shape[0] for f in files)
        self.labels = labels

    def chunks(self, rows):
        """float32 arrays `(rows, *sample_shape)` across the files (the last one
        shorter); NaN or infinite values are refused with their file, row and column."""
        pending, held = [], 0
        for file in self.files:
            row = 0
            for chunk in file.chunks(rows):
                values = chunk.astype(np.float32).reshape(len(chunk), *self.sample_shape)
                check_finite(values, str(file.path), first_row=row)
                row += len(chunk)
                pending.append(values)
                held += len(values)
                while held >= rows:
                    joined = np.concatenate(pending)
                    yield joined[:rows]
                    pending, held = [joined[rows:]], held - rows
        if held:
            yield np.concatenate(pending)

    def check_values(self):
        """Reads the data once when it can hold NaN or be cut short (floating point or
        gzipped files), so that a bad value fails before training, not in the middle."""
        if any(f.dtype.kind == "f" or _gzipped(f.path) for f in self.files):
            rows = max(1, _CHECK_CHUNK_BYTES // (4 * int(np.prod(self.sample_shape))))
            for _ in self.chunks(rows):
                pass


def records(name_or_path, with_labels=False):
    """The samples of an `.npy` or IDX file, or of a folder of IDX files (a named
    Fashion-MNIST or MNIST too), as `Records`, checked (see there).

    Args:
        name_or_path: what `identify` takes.
        with_labels: also read an IDX folder's labels (`Records.labels`).

    Raises:
        ValueError: a source that cannot be read batch by batch (CSV, .npz, ...): the
            message says to convert it first.
    """
    source = identify(name_or_path)
    if source.kind == "named":
        raise _not_found(NAMED[source.name][0])
    if source.kind in ("npy", "idx"):
        paths, label_paths = [source.path], []
    elif source.kind == "idx_folder":
        paths = _idx_files(source.path, source.split, "images-idx3")
        label_paths = _idx_files(source.path, source.split, "labels-idx1") if with_labels else []
    else:
        raise ValueError(
            f"{source} is not read batch by batch: streaming reads .npy and IDX files, folders "
            "of IDX files and folders written by `keras-deepclust convert`. Convert it first "
            f"(keras-deepclust convert {source} --out DIR) and stream DIR.")
    files = [_record_file(path) for path in paths]
    sample_shapes = {_sample_shape(f) for f in files}
    if len(sample_shapes) > 1:
        raise ValueError(f"{source}: the files' samples differ in shape ({sample_shapes}).")
    sample_shape = sample_shapes.pop()
    n_samples = sum(f.shape[0] for f in files)
    check_layout((n_samples, *sample_shape), np.float32, name=str(source),
                 min_samples=MIN_SAMPLES)
    labels = None
    if label_paths:
        labels = np.concatenate([read_idx(p).reshape(-1) for p in label_paths])
        labels = check_class_ids(check_labels(labels, n_samples, name=f"labels of {source}"),
                                 name=f"labels of {source}")
    data = Records(files, sample_shape, labels)
    data.check_values()
    return data


def _record_file(path):
    """The checked `_RecordFile` of an `.npy` or IDX file, from its header."""
    if path.suffix.lower() == ".npy":
        shape, fortran, dtype, offset = _npy_header(path)
        if fortran:
            raise ValueError(f"{path} is stored in Fortran order; streaming reads rows in "
                             "C order: save np.ascontiguousarray(x) instead.")
    else:
        with _reading(path, "a gzipped IDX file" if _gzipped(path) else "an IDX file"):
            with _open_binary(path) as f:
                head = f.read(4 + 4 * 255)
        dtype, shape, offset = _idx_header(io.BytesIO(head), path)
    check_layout(shape, dtype, name=str(path))
    if not _gzipped(path):
        _check_complete(path, offset, dtype, shape)
    return _RecordFile(path, offset, dtype, shape)


def _sample_shape(file):
    shape = tuple(file.shape[1:])
    if file.path.suffix.lower() != ".npy" and len(shape) == 2:  # IDX images, as `from_idx`
        shape = (*shape, 1)
    return shape


def stream(path, batch_size=256):
    """Batches of an `.npy` or IDX file (gzipped or not), a folder of IDX files (a
    named Fashion-MNIST or MNIST too), or a folder of TFRecord shards written by
    `keras-deepclust convert`, as a `tf.data.Dataset` read from disk as they are needed,
    so the data never has to fit in memory.

    Values are as stored, cast to float32 (a model learns its input scaling from a
    pass over the stream, as it does from arrays). Before the dataset is made, the
    headers are checked and a floating-point or gzipped file is read once, so that NaN,
    infinite values or a file cut short fail here, naming the file, row and column.

    Args:
        path: what `identify` takes, of the kinds above.
        batch_size: samples per batch.

    Returns:
        `(dataset, n_samples)`: batches of float32 samples `(batch, *sample_shape)`.

    Example:

    ```python
    dataset, n = keras_deepclust.datasets.stream("train-images-idx3-ubyte.gz")
    model.pretrain(dataset, epochs=50)
    ```
    """
    batch_size = check_positive_int(batch_size, "batch_size")
    source = identify(path)
    if source.kind == "converted":
        from keras_deepclust import tfrecords

        dataset, n_samples = tfrecords.read(source.path, batch_size=batch_size)
        check_layout((n_samples, *dataset.element_spec.shape[1:]), np.float32,
                     name=str(source), min_samples=MIN_SAMPLES)
        return dataset, n_samples
    data = records(source)
    import tensorflow as tf

    dataset = tf.data.Dataset.from_generator(
        lambda: data.chunks(batch_size),
        output_signature=tf.TensorSpec((None, *data.sample_shape), tf.float32))
    return dataset.prefetch(tf.data.AUTOTUNE), data.n_samples
