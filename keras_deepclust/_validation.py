"""Input checks shared by the entry points. numpy only: no Keras, no TensorFlow."""

import numbers

import numpy as np


def check_array(x, name="x", min_samples=1, dtype=np.float32):
    """Returns `x` as a finite numeric numpy array with at least 2 dimensions, cast to
    `dtype` (None keeps the dtype).

    Raises a `ValueError` naming the problem: wrong rank, too few samples,
    non-numeric dtype, NaN or infinite values.
    """
    if x is None:
        raise ValueError(f"{name} is None; pass an array of shape (n_samples, ...).")
    array = np.asarray(x)
    if array.dtype == object or not (
        np.issubdtype(array.dtype, np.number) or array.dtype == bool
    ):
        raise ValueError(f"{name} must be numeric, got dtype {array.dtype}.")
    if array.ndim < 2:
        raise ValueError(
            f"{name} must have shape (n_samples, n_features) or (n_samples, height, width, "
            f"channels), got shape {array.shape}."
        )
    if array.shape[0] < min_samples:
        raise ValueError(f"{name} has {array.shape[0]} samples; at least {min_samples} are needed.")
    if dtype is not None:
        array = array.astype(dtype, copy=False)
    finite = np.isfinite(array)
    if not finite.all():
        bad = np.argwhere(~finite)[0]
        raise ValueError(
            f"{name} contains NaN or infinite values ({int((~finite).sum())} of them, "
            f"first at index {tuple(int(i) for i in bad)})."
        )
    return array


def check_labels(labels, n_samples, name="labels"):
    """Returns `labels` as a 1-D integer-coded array of length `n_samples`."""
    array = np.asarray(labels)
    if array.ndim != 1:
        raise ValueError(f"{name} must be 1-D, got shape {array.shape}.")
    if array.shape[0] != n_samples:
        raise ValueError(
            f"{name} has {array.shape[0]} entries but the data has {n_samples} samples."
        )
    return array


def check_n_clusters(n_clusters, n_samples=None):
    """Checks that K is an integer >= 2 and, when known, not larger than the data."""
    if isinstance(n_clusters, bool) or not isinstance(n_clusters, numbers.Integral):
        raise ValueError(f"n_clusters must be an integer >= 2, got {n_clusters!r}.")
    if n_clusters < 2:
        raise ValueError(f"n_clusters must be an integer >= 2, got {n_clusters}.")
    if n_samples is not None and n_clusters > n_samples:
        raise ValueError(
            f"n_clusters={n_clusters} is larger than the number of samples ({n_samples})."
        )
    return int(n_clusters)


def check_positive_int(value, name):
    """Returns `value` as an int, or raises a `ValueError` naming `name` and the value."""
    if isinstance(value, bool) or not isinstance(value, numbers.Integral) or value < 1:
        raise ValueError(f"{name} must be a positive integer, got {value!r}.")
    return int(value)


def data_fingerprint(x):
    """Cheap identity check of a data set: its sum and sum of squares."""
    return np.array([x.sum(dtype=np.float64), np.square(x).sum(dtype=np.float64)])
