"""What every reader shares: the errors they raise, the checks of what they return, and
how a file is opened and its failures reported. numpy only."""

import csv
import gzip
import importlib
import zipfile
import zlib
from contextlib import contextmanager
from pathlib import Path

import numpy as np

from keras_deepclust._validation import check_array, check_class_ids, check_labels

MIN_SAMPLES = 2  # a data set to cluster or score


class DataNotFoundError(FileNotFoundError):
    """Raised when a data set is not on this machine; the message says how to get it."""


def is_number(cell):
    try:
        float(cell)
    except ValueError:
        return False
    return True


def import_for(path, module, package):
    """Imports `module` to read `path`, or raises a `ValueError` naming the file and the
    package to install (the light `assign` install has no pyarrow, h5py or pillow)."""
    try:
        return importlib.import_module(module)
    except ImportError:
        raise ValueError(f"Reading {path} needs {package}: pip install {package}") from None


def existing(path):
    path = Path(path)
    if not path.exists():
        raise DataNotFoundError(f"No such file: {path}")
    if not path.is_file():
        raise ValueError(f"{path} is not a file.")
    return path


def check_not_empty(path):
    if path.stat().st_size == 0:
        raise ValueError(f"{path} is empty (0 bytes).")


def gzipped(path):
    return Path(path).suffix.lower() == ".gz"


def open_binary(path):
    return gzip.open(path, "rb") if gzipped(path) else open(path, "rb")


@contextmanager
def reading(path, what):
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


def finish(x, y, path, x_name=None, labels_name=None):
    """Checks the samples (numeric, at least 2-D, finite; see `check_array`) and turns
    the labels into class ids of the same length."""
    x = check_array(x, name=x_name or str(path), dtype=None)
    if y is not None:
        labels_name = labels_name or f"labels of {path}"
        y = check_labels(np.reshape(np.asarray(y), -1), len(x), name=labels_name)
        y = check_class_ids(y, name=labels_name)
    return x, y


