"""Student-t soft assignment layer of DEC (Xie et al., 2016), as used by IDEC and DCEC."""

import keras
from keras import ops

from keras_deepclust._validation import check_n_clusters
from keras_deepclust.layers.precision import Float32Layer


@keras.saving.register_keras_serializable(package="keras_deepclust")
class ClusteringLayer(Float32Layer):
    """Soft-assigns embedded points to `n_clusters` centroids with a Student's t kernel.

    q_ij = (1 + ||z_i - mu_j||^2 / alpha)^(-(alpha + 1) / 2), normalised over j
    (Eq. 6 of the DCEC paper for alpha = 1). The centroids mu are a trainable
    `(n_clusters, embedding_dim)` weight named `centroids`.

    Args:
        n_clusters: int >= 2, number of clusters K.
        alpha: float > 0, degrees of freedom of the Student's t kernel.
        **kwargs: standard `keras.layers.Layer` arguments.

    Returns:
        A `(batch, n_clusters)` tensor of soft assignments whose rows sum to 1.

    Example:

    >>> import numpy as np
    >>> layer = ClusteringLayer(n_clusters=3)
    >>> q = layer(np.zeros((4, 2), "float32"))
    >>> q.shape
    TensorShape([4, 3])
    """

    def __init__(self, n_clusters, alpha=1.0, **kwargs):
        super().__init__(**kwargs)
        if not alpha > 0:
            raise ValueError(f"alpha must be > 0, got {alpha!r}.")
        self.n_clusters = check_n_clusters(n_clusters)
        self.alpha = float(alpha)
        self.input_spec = keras.layers.InputSpec(ndim=2)

    def build(self, input_shape):
        embedding_dim = input_shape[-1]
        if embedding_dim is None:
            raise ValueError(
                "ClusteringLayer needs a known embedding size (last input dimension), "
                f"got input shape {input_shape}."
            )
        self.centroids = self.add_weight(
            shape=(self.n_clusters, embedding_dim),
            initializer="glorot_uniform",
            name="centroids",
        )

    def call(self, inputs):
        inputs = ops.convert_to_tensor(inputs, dtype=self.compute_dtype)
        return student_t_assignments(inputs, self.centroids, self.alpha)

    def set_centroids(self, centroids):
        """Assigns new centroid values (e.g. from k-means), checking their shape."""
        assign_checked(self.centroids, centroids, "centroids")

    def compute_output_shape(self, input_shape):
        return (input_shape[0], self.n_clusters)

    def get_config(self):
        config = super().get_config()
        config.update({"n_clusters": self.n_clusters, "alpha": self.alpha})
        return config


def student_t_assignments(codes, centroids, alpha):
    """q_ij of `codes` `(n, d)` to `centroids` `(K, d)` under a Student's t kernel with
    `alpha` degrees of freedom, `(n, K)` rows summing to 1."""
    squared_distances = ops.sum(ops.square(ops.expand_dims(codes, axis=1) - centroids), axis=2)
    kernel = ops.power(1.0 + squared_distances / alpha, -(alpha + 1.0) / 2.0)
    return kernel / ops.sum(kernel, axis=1, keepdims=True)


def assign_checked(variable, value, name):
    """`variable.assign(value)` after checking the shape, with an error naming `name`."""
    expected = tuple(variable.shape)
    if tuple(value.shape) != expected:
        raise ValueError(f"{name} must have shape {expected}, got {tuple(value.shape)}.")
    variable.assign(value)
