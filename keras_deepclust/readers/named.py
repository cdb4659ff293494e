"""Data sets by name: scikit-learn's bundled digits, and Fashion-MNIST and MNIST from
their IDX files wherever this machine has them."""

import os
from pathlib import Path

import numpy as np

from keras_deepclust.readers._files import DataNotFoundError
from keras_deepclust.readers.idx import find_idx, load_idx_directory

DATA_DIR_ENV = "KERAS_DEEPCLUST_DATA"
NAMED = {  # name: (data set, IDX split)
    "digits": ("digits", None),
    "fashion_mnist": ("fashion_mnist", "test"),
    "fashion_mnist_train": ("fashion_mnist", "train"),
    "fashion_mnist_all": ("fashion_mnist", "all"),
    "mnist": ("mnist", "test"),
    "mnist_all": ("mnist", "all"),
}
DEBIAN_DIRS = {
    "fashion_mnist": "/usr/share/datasets/fashion-mnist",
    "mnist": "/usr/share/datasets/mnist",
}
_HOW_TO_GET = {
    "fashion_mnist": "On Debian/Ubuntu: `apt-get install dataset-fashion-mnist`; or download "
    "the four *-ubyte.gz files from https://github.com/zalandoresearch/fashion-mnist",
    "mnist": "Download the four *-ubyte(.gz) files of MNIST (train/t10k images and labels)",
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

def _data_folders(name, path=None):
    """Where a named IDX data set is looked for, in order."""
    candidates = [path, os.environ.get(DATA_DIR_ENV)]
    if os.environ.get(DATA_DIR_ENV):
        candidates.append(str(Path(os.environ[DATA_DIR_ENV]) / name.replace("_", "-")))
    candidates.append(DEBIAN_DIRS[name])
    return [c for c in candidates if c]


def named_folder(name, path=None):
    """The first folder of `_data_folders` holding the data set's IDX files, or None."""
    for directory in _data_folders(name, path):
        if find_idx(directory, "t10k-images-idx3") or find_idx(directory, "train-images-idx3"):
            return directory
    return None


def not_found(name, path=None):
    return DataNotFoundError(
        f"{name} not found. Looked in: {', '.join(map(str, _data_folders(name, path)))}. "
        f"{_HOW_TO_GET[name]}, then pass the folder as path=..., --dataset DIR, or set "
        f"{DATA_DIR_ENV}=DIR. With tensorflow-datasets installed and internet access it is "
        "downloaded instead."
    )


def named_idx_dataset(name, split, path=None):
    folder = named_folder(name, path)
    if folder is not None:
        return load_idx_directory(folder, split)
    tfds_data = _from_tensorflow_datasets(name, split)
    if tfds_data is not None:
        return tfds_data
    raise not_found(name, path)


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
    return named_idx_dataset("fashion_mnist", split, path)


def load_mnist(path=None, split="test"):
    """MNIST from the standard IDX files; same search order and arguments as
    `load_fashion_mnist` (Debian folder `/usr/share/datasets/mnist`)."""
    return named_idx_dataset("mnist", split, path)

