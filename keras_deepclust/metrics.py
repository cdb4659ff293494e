"""Clustering metrics: ACC with Hungarian matching, NMI, ARI and v-measure.

numpy / scipy / scikit-learn only (no TensorFlow).
"""

import numpy as np
from scipy.optimize import linear_sum_assignment
from sklearn import metrics as sk_metrics

from keras_deepclust._validation import check_labels


def _paired_labels(y_true, y_pred):
    y_true = np.asarray(y_true)
    if y_true.ndim != 1:
        raise ValueError(f"y_true must be 1-D, got shape {y_true.shape}.")
    y_pred = check_labels(y_pred, y_true.shape[0], "y_pred")
    return y_true, y_pred


def cluster_accuracy(y_true, y_pred):
    """Best accuracy over one-to-one maps from clusters to classes (Hungarian method).

    Works when the number of clusters differs from the number of classes: clusters
    left without a class (or classes without a cluster) count as errors.

    Args:
        y_true: `(n,)` true class labels (any hashable values).
        y_pred: `(n,)` cluster labels.

    Returns:
        float in [0, 1].

    Example:

    >>> cluster_accuracy([0, 0, 1, 1], [1, 1, 0, 0])
    1.0
    """
    y_true, y_pred = _paired_labels(y_true, y_pred)
    if y_true.size == 0:
        raise ValueError("y_true is empty.")
    _, true_codes = np.unique(y_true, return_inverse=True)
    _, pred_codes = np.unique(y_pred, return_inverse=True)
    counts = np.zeros((pred_codes.max() + 1, true_codes.max() + 1), dtype=np.int64)
    np.add.at(counts, (pred_codes, true_codes), 1)
    rows, cols = linear_sum_assignment(counts, maximize=True)
    return float(counts[rows, cols].sum() / y_true.size)


def normalized_mutual_info(y_true, y_pred):
    """NMI with arithmetic-mean normalisation (scikit-learn's default)."""
    return float(sk_metrics.normalized_mutual_info_score(*_paired_labels(y_true, y_pred)))


def adjusted_rand_index(y_true, y_pred):
    """Adjusted Rand index."""
    return float(sk_metrics.adjusted_rand_score(*_paired_labels(y_true, y_pred)))


def v_measure(y_true, y_pred):
    """V-measure (harmonic mean of homogeneity and completeness)."""
    return float(sk_metrics.v_measure_score(*_paired_labels(y_true, y_pred)))


def clustering_scores(y_true, y_pred):
    """All four metrics as a dict `{"acc", "nmi", "ari", "v_measure"}`.

    Example:

    >>> clustering_scores([0, 0, 1, 1], [1, 1, 0, 0])["acc"]
    1.0
    """
    y_true, y_pred = _paired_labels(y_true, y_pred)
    return {
        "acc": cluster_accuracy(y_true, y_pred),
        "nmi": normalized_mutual_info(y_true, y_pred),
        "ari": adjusted_rand_index(y_true, y_pred),
        "v_measure": v_measure(y_true, y_pred),
    }
