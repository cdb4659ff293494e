"""An exportable nearest-neighbour interpolation: new points placed among stored ones."""

import keras
import numpy as np
import tensorflow as tf

from keras_deepclust._validation import check_positive_int
from keras_deepclust.layers.clustering import assign_checked
from keras_deepclust.layers.precision import Float32Layer


@keras.saving.register_keras_serializable(package="keras_deepclust")
class NeighborInterpolation(Float32Layer):
    """Maps a point to the weighted mean of the targets of its nearest stored points.

    This is how UMAP's `transform` places a new point before refining it: among the
    `n_neighbors` nearest reference codes, at the mean of their embedding coordinates,
    weighted by exp(-(d - d_1) / sigma) with d_1 the nearest distance and sigma the
    mean distance beyond it (a closed-form stand-in for UMAP's fuzzy membership).
    A point that coincides with stored points (within `COINCIDENCE` of the mean
    neighbour distance, i.e. float32 rounding) takes the mean of their targets
    exactly, so the rows the references came from map back to their own targets
    (N2D's fitted rows keep UMAP's coordinates, hence the method's own labels).
    Nothing is trained; the layer holds the references as non-trainable weights of
    a fixed `capacity`, of which the first `set_references` rows count, and exports
    with plain ops (MatMul, TopK, Gather).

    Args:
        n_neighbors: neighbours averaged (>= 1).
        capacity: most references the layer can hold (its weights' first dimension).
        output_dim: dimension of the targets (e.g. UMAP's n_components).

    Returns:
        `(batch, output_dim)` interpolated targets.

    Example:

    ```python
    layer = NeighborInterpolation(n_neighbors=10, capacity=20000, output_dim=10)
    layer.build((None, codes.shape[1]))
    layer.set_references(codes, umap_embedding)
    coordinates = layer(new_codes)
    ```
    """

    COINCIDENCE = 1e-3

    def __init__(self, n_neighbors, capacity, output_dim, **kwargs):
        super().__init__(**kwargs)
        self.n_neighbors = check_positive_int(n_neighbors, "n_neighbors")
        self.capacity = check_positive_int(capacity, "capacity")
        self.output_dim = check_positive_int(output_dim, "output_dim")
        if self.n_neighbors > self.capacity:
            raise ValueError(f"n_neighbors={n_neighbors} exceeds capacity={capacity}.")

    def build(self, input_shape):
        def weight(name, shape):
            return self.add_weight(shape=shape, initializer="zeros", trainable=False, name=name)

        self.references = weight("references", (self.capacity, input_shape[-1]))
        self.targets = weight("targets", (self.capacity, self.output_dim))
        # 1 for the rows that hold a reference; empty rows are never anyone's neighbour.
        self.occupied = weight("occupied", (self.capacity,))

    def set_references(self, references, targets):
        """Stores `references` (n, d) and their `targets` (n, output_dim), n between
        `n_neighbors` and `capacity`."""
        references = np.asarray(references, np.float32)
        targets = np.asarray(targets, np.float32)
        n = len(references)
        if not self.n_neighbors <= n <= self.capacity:
            raise ValueError(f"set_references needs between n_neighbors={self.n_neighbors} "
                             f"and capacity={self.capacity} rows, got {n}.")
        if len(targets) != n:
            raise ValueError(f"{n} references but {len(targets)} targets.")
        padding = self.capacity - n
        assign_checked(self.references, np.pad(references, ((0, padding), (0, 0))), "references")
        assign_checked(self.targets, np.pad(targets, ((0, padding), (0, 0))), "targets")
        self.occupied.assign(np.pad(np.ones(n, np.float32), (0, padding)))

    def call(self, inputs):
        # ||z - r||^2 expanded (N x capacity, never N x capacity x d), about the
        # references' mean, which keeps the terms small and the rounding with them.
        center = (tf.reduce_sum(self.references * self.occupied[:, None], axis=0)
                  / tf.maximum(tf.reduce_sum(self.occupied), 1.0))
        inputs, references = inputs - center, self.references - center
        squared = (tf.reduce_sum(tf.square(inputs), axis=-1, keepdims=True)
                   - 2.0 * tf.matmul(inputs, references, transpose_b=True)
                   + tf.reduce_sum(tf.square(references), axis=-1)[None])
        squared = tf.where(self.occupied[None] > 0, tf.maximum(squared, 0.0), np.float32(3e38))
        _, index = tf.math.top_k(-squared, k=self.n_neighbors)
        # The expansion picks the neighbours; their distances are then taken directly
        # (N x k x d): the weights below divide by small distance gaps, which the
        # expansion's rounding would swamp.
        offsets = inputs[:, None, :] - tf.gather(references, index)
        distances = tf.sqrt(tf.reduce_sum(tf.square(offsets), axis=-1))
        nearest = distances[:, :1]
        mean = tf.reduce_mean(distances, axis=-1, keepdims=True)
        weights = tf.exp(-(distances - nearest) / tf.maximum(mean - nearest, 1e-6))
        coincident = tf.cast(distances <= self.COINCIDENCE * mean, weights.dtype)
        # Float arithmetic rather than tf.where/reduce_any: plain ops on every export path.
        any_coincident = tf.reduce_max(coincident, axis=-1, keepdims=True)
        weights = any_coincident * coincident + (1.0 - any_coincident) * weights
        weights = weights / tf.reduce_sum(weights, axis=-1, keepdims=True)
        return tf.reduce_sum(weights[..., None] * tf.gather(self.targets, index), axis=1)

    def compute_output_shape(self, input_shape):
        return (input_shape[0], self.output_dim)

    def get_config(self):
        config = super().get_config()
        config.update({"n_neighbors": self.n_neighbors, "capacity": self.capacity,
                       "output_dim": self.output_dim})
        return config
