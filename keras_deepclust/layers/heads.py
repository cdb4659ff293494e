"""Exportable inference heads shared by every method's assigner."""

import keras
import numpy as np
import tensorflow as tf

from keras_deepclust.layers.clustering import assign_checked
from keras_deepclust.layers.precision import Float32Layer


@keras.saving.register_keras_serializable(package="keras_deepclust")
class HardAssignment(Float32Layer):
    """Cluster id of each row of soft assignments: argmax over the last axis, as int32.

    Uses `tf.argmax(..., output_type=tf.int32)` on purpose: `keras.ops.argmax` on the
    TensorFlow backend emits Bitcast/BitwiseAnd ops that ONNX Runtime and builtin
    TFLite cannot run.

    Returns:
        A `(batch,)` int32 tensor.

    Example:

    >>> HardAssignment()(tf.constant([[0.2, 0.8], [0.9, 0.1]])).numpy().tolist()
    [1, 0]
    """

    def call(self, probabilities):
        return tf.argmax(probabilities, axis=-1, output_type=tf.int32)

    def compute_output_shape(self, input_shape):
        return tuple(input_shape[:-1])

    def compute_output_spec(self, probabilities):
        return keras.KerasTensor(probabilities.shape[:-1], dtype="int32")


@keras.saving.register_keras_serializable(package="keras_deepclust")
class NearestCentroidSoftmax(Float32Layer):
    """Soft assignment to the nearest centroid: softmax_k(-||z - c_k||^2 / temperature).

    The exportable head of k-means-based methods: its argmax is k-means' `predict`.

    Args:
        n_clusters: number of centroids K.
        temperature: > 0; smaller is harder.

    Example:

    ```python
    head = NearestCentroidSoftmax(10)
    head.build((None, 10))
    head.set_centroids(kmeans.cluster_centers_)
    ```
    """

    def __init__(self, n_clusters, temperature=1.0, **kwargs):
        super().__init__(**kwargs)
        if not temperature > 0:
            raise ValueError(f"temperature must be > 0, got {temperature!r}.")
        self.n_clusters = int(n_clusters)
        self.temperature = float(temperature)

    def build(self, input_shape):
        self.centroids = self.add_weight(shape=(self.n_clusters, input_shape[-1]),
                                         initializer="zeros", trainable=False, name="centroids")

    def set_centroids(self, centroids):
        """Assigns the centroids (e.g. k-means' `cluster_centers_`), checking their shape."""
        assign_checked(self.centroids, centroids, "centroids")

    def call(self, inputs):
        squared = tf.reduce_sum(tf.square(inputs[:, None, :] - self.centroids[None]), axis=-1)
        return tf.nn.softmax(-squared / self.temperature, axis=-1)

    def compute_output_shape(self, input_shape):
        return (input_shape[0], self.n_clusters)

    def get_config(self):
        config = super().get_config()
        config.update({"n_clusters": self.n_clusters, "temperature": self.temperature})
        return config


@keras.saving.register_keras_serializable(package="keras_deepclust")
class GaussianMixturePosterior(Float32Layer):
    """Posterior p(k | z) of a Gaussian mixture, for any covariance type.

    Every covariance type is held in full form: `precisions_cholesky` (K, d, d) with
    Sigma_k^-1 = L_k L_k^T, as scikit-learn stores it; diagonal, spherical and tied
    mixtures are converted by `set_from_sklearn`. Only matrix products, sums and a
    softmax are used, so the head exports to ONNX and builtin TFLite.

    Args:
        n_components: number of mixture components K.

    Example:

    ```python
    head = GaussianMixturePosterior(10)
    head.build((None, codes.shape[1]))
    head.set_from_sklearn(sklearn_mixture)
    ```
    """

    def __init__(self, n_components, **kwargs):
        super().__init__(**kwargs)
        self.n_components = int(n_components)

    def build(self, input_shape):
        k, d = self.n_components, input_shape[-1]
        self.log_weights = self.add_weight(shape=(k,), initializer="zeros", trainable=False,
                                           name="log_weights")
        self.means = self.add_weight(shape=(k, d), initializer="zeros", trainable=False,
                                     name="means")
        self.precisions_cholesky = self.add_weight(
            shape=(k, d, d), initializer=keras.initializers.Constant(0.0), trainable=False,
            name="precisions_cholesky")

    def set_from_sklearn(self, mixture):
        """Copies a fitted `sklearn.mixture.GaussianMixture` of any covariance type."""
        k, d = self.means.shape
        chol = np.asarray(mixture.precisions_cholesky_, dtype=np.float64)
        full = {
            "full": lambda: chol,
            "tied": lambda: np.broadcast_to(chol, (k, d, d)),
            "diag": lambda: np.stack([np.diag(c) for c in chol]),
            "spherical": lambda: chol[:, None, None] * np.eye(d)[None],
        }[mixture.covariance_type]()
        if mixture.means_.shape != (k, d):
            raise ValueError(f"the mixture has means of shape {mixture.means_.shape}; this "
                             f"head expects {(k, d)}.")
        self.log_weights.assign(np.log(mixture.weights_).astype(np.float32))
        self.means.assign(mixture.means_.astype(np.float32))
        self.precisions_cholesky.assign(full.astype(np.float32))

    def call(self, inputs):
        # y_k = (z - mu_k) L_k, differences first: expanding it as z L_k - mu_k L_k
        # cancels catastrophically in float32 when the precisions are large (a sharp
        # mixture on a UMAP manifold), which made exports disagree in the 4th digit.
        differences = tf.transpose(inputs[:, None, :] - self.means[None], [1, 0, 2])  # (k, n, d)
        projected = tf.matmul(differences, self.precisions_cholesky)  # batched: (k, n, d)
        mahalanobis = tf.transpose(tf.reduce_sum(tf.square(projected), axis=-1))  # (n, k)
        log_det = tf.reduce_sum(
            tf.math.log(tf.linalg.diag_part(self.precisions_cholesky)), axis=-1)
        log_joint = self.log_weights + log_det - 0.5 * mahalanobis
        return tf.nn.softmax(log_joint, axis=-1)

    def compute_output_shape(self, input_shape):
        return (input_shape[0], self.n_components)

    def get_config(self):
        config = super().get_config()
        config.update({"n_components": self.n_components})
        return config


@keras.saving.register_keras_serializable(package="keras_deepclust")
class NormalizedSoftmax(Float32Layer):
    """A trainable softmax head on batch-normalised codes: softmax(W BN(z) + b).

    The head of methods that learn their clusters as a classifier would (IMSAT). The
    normalisation keeps the codes spread: without it an encoder can shrink every code
    toward one point, where each row's assignment is uniform. At inference it uses the
    moving statistics of training, so the head is a fixed affine map and a softmax,
    which ONNX and builtin TFLite run.

    Args:
        n_clusters: number of clusters K.
        seed: int seed of the Glorot-uniform kernel, or None.

    Example:

    ```python
    head = NormalizedSoftmax(10, seed=0)
    probabilities = head(codes, training=True)
    ```
    """

    def __init__(self, n_clusters, seed=None, **kwargs):
        super().__init__(**kwargs)
        self.n_clusters = int(n_clusters)
        self.seed = seed
        self.normalization = keras.layers.BatchNormalization(dtype="float32",
                                                             name="normalization")
        self.assignment = keras.layers.Dense(
            self.n_clusters, activation="softmax", dtype="float32", name="assignment",
            kernel_initializer=keras.initializers.GlorotUniform(seed))

    def build(self, input_shape):
        self.normalization.build(input_shape)
        self.assignment.build(input_shape)

    def call(self, inputs, training=None):
        return self.assignment(self.normalization(inputs, training=training))

    def compute_output_shape(self, input_shape):
        return (input_shape[0], self.n_clusters)

    def get_config(self):
        config = super().get_config()
        config.update({"n_clusters": self.n_clusters, "seed": self.seed})
        return config
