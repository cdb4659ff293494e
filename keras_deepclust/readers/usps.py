"""USPS from the common `usps.h5` (needs h5py)."""

from pathlib import Path

import numpy as np

from keras_deepclust.readers._files import (
    DataNotFoundError,
    check_not_empty,
    finish,
    import_for,
    reading,
)


def load_usps(path):
    """USPS from the common `usps.h5` (groups `train` and `test`, datasets `data`
    with 256 values in [0, 1] and `target`). Returns all 9298 images `(n, 16, 16, 1)`."""
    path = Path(path)
    if not path.is_file():
        raise DataNotFoundError(f"USPS file not found: {path}. Download usps.h5 and pass its path.")
    h5py = import_for(path, "h5py", "h5py")
    check_not_empty(path)
    if not h5py.is_hdf5(path):
        raise ValueError(f"{path} is not an HDF5 file (usps.h5 is one).")
    layout = ("usps.h5 holds groups train and test, each with datasets data (rows of 256 "
              "pixels) and target (their digits)")
    members = ("train/data", "train/target", "test/data", "test/target")
    with reading(path, "an HDF5 file"):
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
    return finish(np.concatenate(x).reshape(-1, 16, 16, 1),
                   np.concatenate([np.reshape(t, -1) for t in y]), path,
                   labels_name=f"labels (target) of {path}")
