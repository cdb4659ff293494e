"""Input checks shared by the entry points. numpy only: no Keras, no TensorFlow."""

import numbers

import numpy as np


def check_layout(shape, dtype, name="x", min_samples=1):
    """Checks an array's shape and dtype (of an array, or of a file's header before its
    data is read): real numbers (or bool), at least 2 dimensions, samples of at least one
    value, at least `min_samples` rows. Raises a `ValueError` naming `name` and the
    problem."""
    dtype = np.dtype(dtype)
    if dtype.names:
        raise ValueError(f"{name} must be a plain numeric array, got a structured array with "
                         f"fields {', '.join(dtype.names)}; stack them into columns first.")
    if dtype.kind == "c":
        raise ValueError(f"{name} must hold real numbers, got dtype {dtype}.")
    if dtype.hasobject or not (np.issubdtype(dtype, np.number) or dtype == bool):
        raise ValueError(f"{name} must be numeric, got dtype {dtype}.")
    if len(shape) < 2:
        raise ValueError(
            f"{name} must have shape (n_samples, n_features) or (n_samples, height, width, "
            f"channels), got shape {tuple(shape)}."
        )
    if 0 in shape[1:]:
        raise ValueError(f"{name} has samples of shape {tuple(shape[1:])}: no values to cluster.")
    if shape[0] < min_samples:
        raise ValueError(f"{name} has {shape[0]} sample{'' if shape[0] == 1 else 's'}; at least "
                         f"{min_samples} are needed.")


def check_array(x, name="x", min_samples=1, dtype=np.float32):
    """Returns `x` as a finite numeric numpy array with at least 2 dimensions, cast to
    `dtype` (None keeps the dtype).

    Raises a `ValueError` naming the problem: wrong rank, too few samples,
    non-numeric or complex dtype, NaN or infinite values (the first one's row and
    position).
    """
    if x is None:
        raise ValueError(f"{name} is None; pass an array of shape (n_samples, ...).")
    array = np.asarray(x)
    check_layout(array.shape, array.dtype, name=name, min_samples=min_samples)
    if dtype is not None:
        array = array.astype(dtype, copy=False)
    check_finite(array, name)
    return array


def check_finite(array, name="x", first_row=None):
    """Raises a `ValueError` when `array` (samples along axis 0) holds NaN or infinite
    values, saying where the first is: its index, row and column (or position within
    the sample), counting from 0, and for a whole array (`first_row` None) how many
    there are. For a chunk of a larger data set, `first_row` is the data's row of the
    chunk's first sample."""
    if array.dtype.kind not in "fc":
        return  # integers and bools are always finite
    finite = np.isfinite(array)
    if finite.all():
        return
    bad = tuple(int(i) for i in np.argwhere(~finite)[0])
    index = (bad[0] + (first_row or 0), *bad[1:])
    within = {1: "", 2: f", column {bad[1]}"}.get(len(bad), f", position {bad[1:]} of the sample")
    count = f"{int((~finite).sum())} of them, " if first_row is None else ""
    raise ValueError(
        f"{name} contains NaN or infinite values ({count}first at index {index}): "
        f"row {index[0]}{within} holds {array[bad]} (counting from 0)."
    )


def check_class_ids(labels, name="labels", where=None):
    """Returns class labels as int64 ids, one per sample.

    Whole numbers (ints, bools, or floats like 3.0) are kept; text labels (class names)
    are mapped to 0..C-1 in sorted order, since the clustering scores only compare
    which samples share a class. Refused with a `ValueError` naming `name`, the first
    bad value and where it is (`where(i)` describes index i; default "index i"):
    fractional numbers (never cut to integers), NaN or infinite values, missing
    (None) labels and other types.
    """
    array = np.asarray(labels)
    where = where or (lambda i: f"index {i}")
    if array.dtype == bool or np.issubdtype(array.dtype, np.integer):
        return array.astype(np.int64)
    if array.dtype.kind == "f":
        bad = ~np.isfinite(array)
        if bad.any():
            i = int(np.flatnonzero(bad)[0])
            raise ValueError(f"{name} must name a class for every sample; {where(i)} holds "
                             f"{array[i]}.")
        fractional = array != np.round(array)
        if fractional.any():
            i = int(np.flatnonzero(fractional)[0])
            raise ValueError(f"{name} must be whole numbers (class ids), not fractions; "
                             f"{where(i)} holds {array[i].item()!r}.")
        return array.astype(np.int64)
    if array.dtype.kind in "US" or (array.dtype == object and array.size and all(
            isinstance(v, (str, bytes)) for v in array.reshape(-1))):
        _, ids = np.unique(array, return_inverse=True)
        return ids.reshape(array.shape).astype(np.int64)
    if array.dtype == object:
        i = next(i for i, v in enumerate(array.reshape(-1)) if not isinstance(v, (str, bytes)))
        raise ValueError(f"{name} must be class ids or class names; {where(i)} holds "
                         f"{array.reshape(-1)[i]!r}.")
    raise ValueError(f"{name} must be class ids or class names, got dtype {array.dtype}.")


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
