"""AEC: auto-encoder based data clustering (Song, Liu, Huang, Wang and Tan, 2013).

Objective (Eq. 4), per sample:

    ||x - g(f(x))||^2 + lambda * ||f(x) - c*||^2,   c* = the centroid nearest to f(x)  (Eq. 5)

The slides print Eq. 4 with a minus before lambda; the slide before it and the stated
aim ("restrains added to achieve compact distribution") need a plus, which is what
is implemented. Algorithm 1 alternates, once per epoch: one SGD epoch on Eq. 4 with
the centroids fixed, the centroids as means of the codes of the previous assignment
(Eq. 6), and the hard re-assignment to the nearest centroid (Eq. 5), starting from a
random assignment.
"""

import keras
import numpy as np
import tensorflow as tf
from scipy.spatial.distance import pdist

from keras_deepclust import options
from keras_deepclust._validation import check_n_clusters, check_positive_int
from keras_deepclust.clusterers import N_INIT, centroids_of, make_clusterer
from keras_deepclust.models.autoencoder import AutoencoderClusteringModel
from keras_deepclust.models.base import register_method
from keras_deepclust.models.heads import NearestCentroidHead
from keras_deepclust.models.row_state import FrozenRowState
from keras_deepclust.models.trainer import IterativeClusteringModel

OPTIMIZERS = ("adam", "sgd")


@register_method("aec")
@keras.saving.register_keras_serializable(package="keras_deepclust")
class AEC(NearestCentroidHead, AutoencoderClusteringModel, IterativeClusteringModel):
    """Autoencoder with a centroid-compactness penalty, alternating with hard assignment.

    `fit(x)` runs Algorithm 1 of the paper inside `keras.Model.fit`: every epoch is
    one SGD pass over Eq. 4 followed (in a callback) by the centroid update and the
    re-assignment. The history logs, per epoch, `centroid_distance` (the summed
    distance between all pairs of centroids, the paper's "Distance" column),
    `empty_clusters` (clusters that lost all samples and were re-seeded from the
    sample farthest from its centroid) and `label_change` (fraction of samples that
    changed cluster). Pass `keras_deepclust.callbacks.ClusteringMetrics(x, y)` to log
    ACC too. Pretraining is not part of the paper's algorithm; `pretrain(x)` is
    available and pairs well with `init="kmeans"`.

    `fit` also takes a `tf.data.Dataset` of batches (data larger than memory). Its
    assignment is not stored per row but recomputed when needed from a frozen copy
    of the encoder and the centroids of the last re-assignment, which gives the same
    assignment; the random initial assignment of a stream is a seeded hash of each
    row's values. A later `fit` on a stream continues from the last assignment.

    Args:
        n_clusters: number of clusters K (>= 2).
        compactness_weight: lambda of Eq. 4.
        init: initial assignment, "random" (the paper) or "kmeans" (on the codes).
        n_init: restarts of the k-means (or mixture) fit of `init="kmeans"` ("gmm").
        optimizer: "adam" or "sgd" (the paper's), used when `fit` compiles the model.
            Adam is the default because on the digits SGD (learning rate 0.1 to 0.5,
            momentum 0.9) left the sigmoid network reconstructing the mean image.
        learning_rate: of that optimizer.
        momentum: of SGD.
        activation, embedding_activation, output_activation: sigmoid everywhere
            by default, as in the paper.
        hidden_units: widths of the dense encoder (the decoder mirrors them). One
            layer of 500 by default: with three sigmoid layers (500-500-2000) the
            network did not learn to reconstruct the digits within 30 epochs.
        **kwargs: other `AutoencoderClusteringModel` arguments (network,
            embedding_dim, filters, kernel_sizes, sample_shape, random_state, name).

    Example:

    ```python
    model = AEC(n_clusters=10, random_state=0)
    history = model.fit(x, epochs=50)
    history.history["centroid_distance"]
    ```
    """

    NEEDS_PRETRAINING = False  # Algorithm 1 starts from a random assignment
    EPOCHS = 100  # alternations when `fit(epochs=None)`
    OPTIONS = AutoencoderClusteringModel.OPTIONS + ("init",)
    PAPER = ("Song, Liu, Huang, Wang and Tan, Auto-encoder Based Data Clustering, "
             "CIARP 2013")
    STREAMING_FIT = True  # a stream's assignment is recomputed per batch (FrozenRowState)

    def __init__(
        self,
        n_clusters=10,
        compactness_weight=0.1,
        init="random",
        n_init=N_INIT,
        optimizer="adam",
        learning_rate=0.001,
        momentum=0.9,
        hidden_units=(500,),
        activation="sigmoid",
        embedding_activation="sigmoid",
        output_activation="sigmoid",
        **kwargs,
    ):
        super().__init__(
            n_clusters=n_clusters, hidden_units=hidden_units, activation=activation,
            embedding_activation=embedding_activation, output_activation=output_activation,
            **kwargs,
        )
        if not compactness_weight >= 0:
            raise ValueError(f"compactness_weight must be >= 0, got {compactness_weight!r}.")
        if optimizer not in OPTIMIZERS:
            raise ValueError(f"optimizer must be one of {OPTIMIZERS}, got {optimizer!r}.")
        if not learning_rate > 0:
            raise ValueError(f"learning_rate must be > 0, got {learning_rate!r}.")
        self.compactness_weight = float(compactness_weight)
        self.init = options.check("init", init)
        self.n_init = check_positive_int(n_init, "n_init")
        self.optimizer_name = optimizer
        self.learning_rate = float(learning_rate)
        self.momentum = float(momentum)
        # Each row's nearest centroid at the last re-assignment (Eq. 5).
        self.assignment = FrozenRowState(
            self, "assignments", _nearest, centroids=lambda: self.centroid_head.centroids,
            dtype="int32", initial=self._random_assignment)
        self._add_trackers("loss", "reconstruction_loss", "compactness_loss")
        self._build_if_shape_known()

    def _build_head(self):
        self._build_centroid_head()

    def _default_pretrain_optimizer(self):
        if self.optimizer_name == "sgd":
            return keras.optimizers.SGD(learning_rate=self.learning_rate, momentum=self.momentum)
        return keras.optimizers.Adam(learning_rate=self.learning_rate)

    def _after_pretraining(self):
        self.assignment.forget()

    # ------------------------------------------------------------ the objective
    def compute_losses(self, x, training=False):
        """Per-example reconstruction ||x - x'||^2 and compactness min_k ||f(x) - c_k||^2."""
        codes = self.encoder(x, training=training)
        reconstruction = self.decoder(codes, training=training)
        squared = tf.square(tf.reshape(x - reconstruction, (tf.shape(x)[0], -1)))
        distances = tf.reduce_sum(
            tf.square(codes[:, None, :] - self.centroid_head.centroids[None]), axis=-1
        )
        return tf.reduce_sum(squared, axis=-1), tf.reduce_min(distances, axis=-1)

    def train_step(self, data):
        x = keras.utils.unpack_x_y_sample_weight(data)[0]
        variables = self.encoder.trainable_variables + self.decoder.trainable_variables
        with tf.GradientTape() as tape:
            reconstruction, compactness = self.compute_losses(x, training=True)
            loss = tf.reduce_mean(reconstruction + self.compactness_weight * compactness)
        self._descend(tape, loss, variables)
        return self._update_trackers(loss, reconstruction, compactness)

    def test_step(self, data):
        x = keras.utils.unpack_x_y_sample_weight(data)[0]
        reconstruction, compactness = self.compute_losses(x)
        loss = tf.reduce_mean(reconstruction + self.compactness_weight * compactness)
        return self._update_trackers(loss, reconstruction, compactness)

    def _update_trackers(self, loss, reconstruction, compactness):
        return self._track(loss=loss, reconstruction_loss=tf.reduce_mean(reconstruction),
                           compactness_loss=tf.reduce_mean(compactness))

    # ------------------------------------------------------------ alternation
    def initialize_assignments(self, x, batch_size=256):
        """The initial assignment C^0 and its centroids (Eq. 6).

        `init="random"`: a seeded hash of each row's values, so a stream starts as its
        array does; "kmeans" or "gmm": each code's nearest k-means centre or mixture
        mean (`n_init` restarts, seeded), as the head assigns.

        Args:
            x: the data, `(n_samples, ...)`, or a `tf.data.Dataset` of batches.
            batch_size: batch size of the encoding (of arrays).

        Returns:
            The assignment, `(n_samples,)` int32; None for a stream (not kept).
        """
        x = self.prepare_inputs(x, adapt=True)
        if self.init == "random":
            self.assignment.start(x)
        else:
            codes = self.finite_codes(x, batch_size=batch_size)
            check_n_clusters(self.n_clusters, len(codes))
            clusterer, _ = self._fit_clusterer(
                make_clusterer(self.init, self.n_clusters, self.n_init, self.random_state), codes)
            self.centroid_head.set_centroids(centroids_of(clusterer).astype(np.float32))
            self.assignment.take(x, [(codes, None)])
        self.update_centroids_and_assignments(x, batch_size=batch_size, reassign=False)
        return None if isinstance(x, tf.data.Dataset) else self.assignment.values.numpy()

    def _random_assignment(self, x):
        """A seeded universal hash of each row's bits, modulo K: sum_i a_i b_i mod p
        (p = 2^31 - 1, a prime; a_i drawn from `random_state`), then modulo K.
        Repeatable, a function of the row alone, and close to uniform over the
        clusters even when the bits share factors (values k/16 end in zero bits)."""
        prime = 2**31 - 1
        n_features = int(np.prod(x.shape[1:]))
        multipliers = np.random.default_rng(self.random_state).integers(1, prime, n_features)
        bits = tf.cast(tf.bitcast(tf.reshape(x, (tf.shape(x)[0], -1)), tf.int32), tf.int64)
        terms = tf.math.floormod(tf.math.floormod(bits, prime) * multipliers, prime)  # < 2^62
        hashed = tf.math.floormod(tf.reduce_sum(terms, axis=1), prime)
        return tf.cast(tf.math.floormod(hashed, self.n_clusters), tf.int32)

    def has_assignments_for(self, x):
        """Whether the stored assignment belongs to this very `x` (resuming a fit), or,
        for a stream, whether an assignment of streams exists."""
        return self.assignment.holds(self.prepare_inputs(x))

    def update_centroids_and_assignments(self, x, batch_size=256, reassign=True):
        """One centroid update (Eq. 6) from the stored assignment, then (with `reassign`)
        the re-assignment (Eq. 5) of every sample to its nearest new centroid.

        A cluster without samples is re-seeded with the code farthest from its own
        centroid (which then is that sample's nearest).

        Args:
            x: the data, `(n_samples, ...)`, or a `tf.data.Dataset` of batches (read
                in up to three passes: centroids, re-seeds, label change).
            batch_size: batch size of the encoding (of arrays).
            reassign: re-assign after the centroid update.

        Returns:
            `{"centroid_distance", "empty_clusters", "label_change"}` for the logs.
        """
        x = self.prepare_inputs(x)
        chunks = self.assignment.chunks(x, batch_size=batch_size)
        k = self.n_clusters
        sums, counts = np.zeros((k, self.embedding_dim)), np.zeros(k, np.int64)
        for codes, labels in chunks:
            sums += tf.math.unsorted_segment_sum(tf.cast(codes, tf.float64), labels, k).numpy()
            counts += tf.math.bincount(labels, minlength=k, maxlength=k, dtype=tf.int64).numpy()
        centroids = sums / np.maximum(counts, 1)[:, None]
        empty = np.flatnonzero(counts == 0)
        if len(empty):
            centroids[empty] = _farthest_codes(chunks, centroids, len(empty))
        self.centroid_head.set_centroids(centroids.astype(np.float32))
        change = 0.0
        if reassign:
            new_centroids = self.centroid_head.centroids
            changed = sum(int(tf.math.count_nonzero(_nearest(codes, new_centroids) != labels))
                          for codes, labels in chunks)
            change = changed / int(counts.sum())
            self.assignment.take(x, chunks)
        return _alternation_logs(centroids, len(empty), change)

    # ------------------------------------------------------- fit skeleton hooks
    # `fit(x)` is Algorithm 1: `epochs` is T, the number of alternations (one SGD
    # epoch each); the history has `centroid_distance`, `empty_clusters` and
    # `label_change` per epoch besides the losses.
    def _fit_optimizer(self, x, batch_size):
        return self._default_pretrain_optimizer()

    def _initialize_for_fit(self, x, batch_size, verbose, shuffle):
        if not self.has_assignments_for(x):
            self.initialize_assignments(x, batch_size=batch_size)

    def _fit_callbacks(self, x, batch_size, user_callbacks):
        return [_Alternation(x, batch_size)]

    def get_config(self):
        config = super().get_config()
        config.update({"compactness_weight": self.compactness_weight, "init": self.init,
                       "n_init": self.n_init, "optimizer": self.optimizer_name,
                       "learning_rate": self.learning_rate, "momentum": self.momentum})
        return config


class _Alternation(keras.callbacks.Callback):
    """After every SGD epoch: centroid update and re-assignment, logged."""

    def __init__(self, x, batch_size):
        super().__init__()
        self.x = x
        self.batch_size = batch_size

    def on_epoch_end(self, epoch, logs=None):
        logs.update(self.model.update_centroids_and_assignments(self.x, batch_size=self.batch_size))


def _alternation_logs(centroids, n_empty, label_change):
    return {"centroid_distance": float(pdist(centroids).sum()), "empty_clusters": n_empty,
            "label_change": label_change}


def _farthest_codes(chunks, centroids, n):
    """The `n` codes farthest from the centroid of their own assignment."""
    best_distances, best_codes = np.empty(0), np.empty((0, centroids.shape[1]))
    for codes, labels in chunks:
        codes = np.asarray(codes, np.float64)
        distances = np.sum((codes - centroids[np.asarray(labels)]) ** 2, axis=1)
        best_distances = np.concatenate([best_distances, distances])
        best_codes = np.concatenate([best_codes, codes])
        keep = np.argsort(best_distances, kind="stable")[::-1][:n]
        best_distances, best_codes = best_distances[keep], best_codes[keep]
    return best_codes


def _nearest(codes, centroids):
    """Each code's nearest centroid, `(n,)` int32, in the codes' precision (the head's)."""
    centroids = tf.cast(centroids, codes.dtype)
    distances = tf.reduce_sum(tf.square(codes[:, None, :] - centroids[None]), axis=-1)
    return tf.argmin(distances, axis=1, output_type=tf.int32)
