"""Clustering losses. Each returns per-example values so callers reduce them
over the global batch (correct under `tf.distribute`)."""

from keras import ops

_EPSILON = 1e-12


def target_distribution(q, frequency=None):
    """Sharpened target P of DEC: p_ij = (q_ij^2 / f_j) / sum_j' (q_ij'^2 / f_j').

    f_j = sum_i q_ij is the soft frequency of cluster j over the whole data set
    (Eq. 8 of the DCEC paper): pass *all* rows, or a batch of rows together with
    the frequency of the whole data set.

    Args:
        q: `(n, K)` array or tensor of soft assignments, rows summing to 1.
        frequency: `(K,)` soft cluster frequencies f; None computes them from `q`.

    Returns:
        `(n, K)` target distribution of the same type family (a tensor).

    Example:

    >>> import numpy as np
    >>> p = target_distribution(np.array([[0.6, 0.4], [0.5, 0.5]], "float32"))
    """
    q = ops.convert_to_tensor(q)
    weight = ops.square(q) / (ops.sum(q, axis=0) if frequency is None else frequency)
    return weight / ops.sum(weight, axis=1, keepdims=True)


def kl_divergence(p, q):
    """Per-example KL(P || Q) = sum_j p_ij log(p_ij / q_ij) (Eq. 7 of the DCEC paper).

    Args:
        p: `(batch, K)` target distribution (treated as a constant).
        q: `(batch, K)` soft assignments.

    Returns:
        `(batch,)` tensor of divergences.
    """
    p = ops.clip(ops.convert_to_tensor(p), _EPSILON, 1.0)
    q = ops.clip(ops.convert_to_tensor(q), _EPSILON, 1.0)
    return ops.sum(p * ops.log(p / q), axis=-1)


def reconstruction_error(x, x_reconstructed):
    """Per-example mean squared error over all features of each sample.

    Args:
        x: `(batch, ...)` inputs.
        x_reconstructed: reconstruction of the same shape.

    Returns:
        `(batch,)` tensor.
    """
    squared = ops.square(ops.convert_to_tensor(x) - ops.convert_to_tensor(x_reconstructed))
    return ops.mean(ops.reshape(squared, (ops.shape(squared)[0], -1)), axis=-1)


def entropy(p):
    """Per-example entropy -sum_j p_ij log p_ij (nats) of rows of soft assignments.

    Pass the batch's mean assignment, `(1, K)`, for the entropy of the marginal H(Y).

    Args:
        p: `(batch, K)` soft assignments, rows summing to 1.

    Returns:
        `(batch,)` tensor.
    """
    p = ops.clip(ops.convert_to_tensor(p), _EPSILON, 1.0)
    return -ops.sum(p * ops.log(p), axis=-1)
