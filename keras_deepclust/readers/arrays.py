"""numpy's own files: `.npy` (header checked before anything is read) and `.npz`."""

import zipfile
import zlib

import numpy as np

from keras_deepclust._validation import check_layout
from keras_deepclust.readers._files import check_not_empty, existing, finish, reading

NPY_MAGIC = b"\x93NUMPY"


def from_npz(path, x_key=None, y_key=None):
    """Arrays from an `.npz`: `x_key` (default: "x", else the only array that is not
    the labels; several are refused) and `y_key` (default: "y", "labels" or "label"
    when present)."""
    path = existing(path)
    check_not_empty(path)
    if not zipfile.is_zipfile(path):
        with open(path, "rb") as f:
            head = f.read(8)
        hint = " (it is an .npy file: name it .npy)" if head.startswith(NPY_MAGIC) else ""
        raise ValueError(f"{path} is not an .npz archive{hint}; it starts with {head!r}.")
    with reading(path, "an .npz archive"):
        archive = np.load(path, allow_pickle=False)
    with archive:
        keys = list(archive.keys())
        if not keys:
            raise ValueError(f"{path} holds no arrays.")
        y_key = _npz_labels_key(path, keys, y_key)
        x_key = _npz_samples_key(path, keys, x_key, y_key)
        x = _npz_array(archive, x_key, path)
        y = _npz_array(archive, y_key, path) if y_key else None
    return finish(x, y, path, x_name=f"array {x_key!r} of {path}",
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
    path = existing(path)
    read_npy_header(path)
    with reading(path, "an .npy file"):
        x = np.load(path, mmap_mode="r", allow_pickle=False)
    y = None
    if labels_path:
        labels_path = existing(labels_path)
        npy_header(labels_path)
        with reading(labels_path, "an .npy file"):
            y = np.load(labels_path, allow_pickle=False)
    return finish(x, y, path, labels_name=f"labels {labels_path}")


def read_npy_header(path, min_samples=1):
    """`(shape, fortran_order, dtype, data_offset)` of an `.npy` file, from its header
    alone, checked: a file that is empty, not an `.npy`, damaged, a pickle, not numeric
    samples (`check_layout`), with fewer than `min_samples` rows, or shorter or longer
    than its header announces is refused naming it."""
    shape, fortran, dtype, offset = npy_header(path)
    check_layout(shape, dtype, name=str(path), min_samples=min_samples)
    check_complete(path, offset, dtype, shape)
    return shape, fortran, dtype, offset


def npy_header(path):
    """(shape, fortran_order, dtype, byte offset of the data) from an `.npy` file's
    header alone. A file that is empty, not an `.npy` or holds Python objects (a
    pickle) is refused naming it."""
    with open(path, "rb") as f:
        head = f.read(len(NPY_MAGIC))
        if not head:
            raise ValueError(f"{path} is empty (0 bytes).")
        if head != NPY_MAGIC:
            raise ValueError(f"{path} is not an .npy file (it starts with {head!r}; "
                             f"np.save writes files starting with {NPY_MAGIC!r}).")
        f.seek(0)
        with reading(path, "an .npy file"):
            version = np.lib.format.read_magic(f)
            read_header = (np.lib.format.read_array_header_1_0 if version == (1, 0)
                           else np.lib.format.read_array_header_2_0)
            shape, fortran, dtype = read_header(f)
        offset = f.tell()
    if dtype.hasobject:
        raise ValueError(f"{path} holds Python objects (a pickled {dtype} array), which are "
                         "never read: save a numeric array.")
    return tuple(shape), fortran, dtype, offset


def check_complete(path, offset, dtype, shape):
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
