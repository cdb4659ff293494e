"""DAC: deep autoencoder-based clustering with a clustering-weighted MSE.

Lu & Li, "DAC: Deep Autoencoder-based Clustering, a General Deep Learning
Framework of Representation Learning". A dense autoencoder is trained on

    L = L_cmse + beta * L_r                                  (Eq. 6)
    L_cmse = sum_i w_i (x_i - x_hat_i)^2 / n                 (Eq. 4)

where L_r is the sum of squares of all autoencoder parameters and the feature
weights w_i (Eq. 5) come from m sampled rows and their labels. k-means on the
codes then gives the clusters.
"""

import logging
import math

import keras
import numpy as np
import tensorflow as tf

from keras_deepclust._validation import (
    check_array,
    check_labels,
    check_positive_int,
    data_fingerprint,
)
from keras_deepclust.callbacks import ClusteringMetrics
from keras_deepclust.clusterers import N_INIT, make_clusterer
from keras_deepclust.models.autoencoder import AutoencoderClusteringModel
from keras_deepclust.models.base import register_method
from keras_deepclust.models.heads import NearestCentroidHead
from keras_deepclust.models.trainer import IterativeClusteringModel, steps_per_epoch

logger = logging.getLogger(__name__)

# The paper's figure with the layer widths is missing from its text; the text says the
# encoder has 8 layers counting the input and the code, and the MNIST code has 10 units.
HIDDEN_UNITS = (512, 256, 128, 64, 32, 16)
# Where the labels of the sampled rows come from, by the code stored with the model.
WEIGHT_SOURCES = (None, "labels", "kmeans-pseudo-labels")
# The pairs p < q are covered by about this many row blocks, so only about half of the
# m x m differences are computed (1/2 + 1/(2 * _ROW_BLOCKS) of them).
_ROW_BLOCKS = 8


def feature_weights(x, labels, max_elements=2**24):
    """Clustering weight of each feature (Eq. 5 of the DAC paper).

    For feature i, over the pairs of rows p != q:

        w_i = mean_{l_p = l_q} exp(-(x_ip - x_iq)^2)
              * mean_{l_p != l_q} (1 - exp(-(x_ip - x_iq)^2))

    A feature is heavy when rows of one label agree on it and rows of different
    labels disagree. The pairs p = q, whose term is always 1, are left out of the
    first mean: the paper's sum does not say, and counting them would pull the first
    factor towards 1, the more so the smaller the groups. Each unordered pair is
    counted once, which gives the same means as ordered pairs.

    The work is vectorised over blocks of rows and features, each block holding at
    most `max_elements` pair differences (at least one row of pairs), so memory stays
    bounded for large `m`.

    Args:
        x: `(m, ...)` sampled rows; samples of any rank are flattened.
        labels: `(m,)` labels of the rows (any hashable values).
        max_elements: upper bound on the pair differences held at once.

    Returns:
        `(n_features,)` float32 weights in [0, 1].

    Example:

    >>> x = np.array([[0.0, 0.0], [0.0, 1.0], [1.0, 0.0], [1.0, 1.0]])
    >>> feature_weights(x, [0, 0, 1, 1]).round(3).tolist()
    [0.632, 0.116]
    """
    x = check_array(x)
    x = x.reshape(len(x), -1)
    labels = check_labels(labels, len(x))
    max_elements = check_positive_int(max_elements, "max_elements")
    _, codes = np.unique(labels, return_inverse=True)
    counts = np.bincount(codes)
    n_same = int((counts * (counts - 1)).sum()) // 2
    n_different = len(x) * (len(x) - 1) // 2 - n_same
    if n_different == 0:
        raise ValueError(
            "labels must hold at least two distinct values, got only "
            f"{np.unique(labels).tolist()}."
        )
    if n_same == 0:
        raise ValueError(
            "Every label has a single row, so no pair of rows shares a label: the first "
            "factor of the feature weights is undefined. Sample more rows per label."
        )
    sums = _pair_kernel_sums(np.ascontiguousarray(x.T), codes, max_elements)
    return (sums[:, 0] / n_same * (1.0 - sums[:, 1] / n_different)).astype(np.float32)


def _pair_kernel_sums(columns, codes, max_elements):
    """Sums of exp(-(x_ip - x_iq)^2) over the pairs p < q with equal and with different
    labels, for every feature i: a `(n_features, 2)` float64 array."""
    n_features, m = columns.shape
    rows = max(1, min(max_elements // m, math.ceil(m / _ROW_BLOCKS)))
    # One buffer reused by every block: allocating it anew per block costs page faults.
    buffer = np.empty(min(max(max_elements, rows * m), n_features * rows * m), np.float32)
    sums = np.zeros((n_features, 2))
    for start in range(0, m - 1, rows):
        stop = min(start + rows, m)
        same = codes[start:stop, None] == codes[None, start:]
        upper = np.triu(np.ones(same.shape, dtype=bool), k=1)  # column index > row index
        masks = np.stack([same & upper, ~same & upper], axis=-1).reshape(-1, 2)
        masks = masks.astype(np.float32)
        chunk = max(1, max_elements // same.size)
        for first in range(0, n_features, chunk):
            block = columns[first:first + chunk]
            kernel = buffer[:len(block) * same.size].reshape(len(block), *same.shape)
            np.subtract(block[:, start:stop, None], block[:, None, start:], out=kernel)
            np.square(kernel, out=kernel)
            np.negative(kernel, out=kernel)
            np.exp(kernel, out=kernel)
            sums[first:first + chunk] += kernel.reshape(len(block), -1) @ masks
    return sums


@register_method("dac")
@keras.saving.register_keras_serializable(package="keras_deepclust")
class DAC(NearestCentroidHead, AutoencoderClusteringModel, IterativeClusteringModel):
    """DAC (Lu & Li): an autoencoder trained on a clustering-weighted MSE, then k-means.

    Workflow: `fit(x)` samples `n_weight_samples` rows, labels them (by k-means on
    their pixels unless `weight_labels` is given), computes the feature weights of
    Eq. 5 from them, trains the autoencoder on Eq. 6 with Adam inside
    `keras.Model.fit`, and finally runs k-means on the codes of `x`. `predict`
    returns soft assignments to the k-means centroids (a `NearestCentroidSoftmax`
    head) whose argmax is k-means' label. No separate pretraining is needed.

    Network: a dense encoder whose hidden layers apply ReLU then Tanh
    (`activation="relu_tanh"`), a linear code, a Tanh decoder and a Sigmoid output,
    so the inputs are scaled to [0, 1] (`scaling="auto"` takes tables to [0, 1] per
    feature, by min-max, for this reason). The paper's figure with the layer widths
    is missing from its text: the default `hidden_units=(512, 256, 128, 64, 32, 16)`
    with `embedding_dim=10` gives the stated 8 encoder layers counting the input and
    the code.

    Choices where the paper is silent:
    - The paper computes the weights from ground-truth labels of the sampled rows. A
      fully unsupervised user has none, so k-means pseudo-labels (K = `n_clusters`,
      on the flattened sampled rows) are the default; `fit(weight_labels=...)` uses
      given labels instead. `weight_source` records which one was used.
    - Eq. 5 leaves out the pairs p = q (see `feature_weights`).
    - "The learning rate decreases with the number of epochs": it is multiplied by
      `lr_decay` after every epoch (0.003 * 0.99^epoch: 0.0004 after 200 epochs).
    - The L2 term covers all autoencoder parameters, kernels and biases.
    - The weights are computed at the first `fit` and kept while later fits get the
      same data and labels (resuming); a change of either recomputes them.

    Scale of the objective, and the one default that departs from the paper: the
    weights of Eq. 5 average about 0.1 on [0, 1] data, so the weighted MSE is small
    next to `beta * L_r` (on the 8x8 digits both start near 0.014, and Adam first
    shrinks the parameters' squares from about 1450 to 200). With the raw weights
    the codes clustered worse than the pixels on the digits (ACC 0.591 with
    pseudo-labels, 0.621 with true labels, mean of seeds 0-2, against 0.792 for
    k-means on the pixels); divided by their mean (`normalize_weights=True`, the
    default) 0.774 and 0.755. `normalize_weights=False` is the paper's objective.

    Args:
        n_clusters: number of clusters K (>= 2).
        network: only "dense"; DAC works on feature vectors.
        hidden_units: widths of the encoder's hidden layers; the decoder mirrors them.
        embedding_dim: size of the code.
        activation: activation of the encoder's hidden layers.
        decoder_activation: activation of the decoder's hidden layers.
        output_activation: activation of the reconstruction.
        beta: weight of the L2 term on all parameters (Eq. 6).
        n_weight_samples: m, rows sampled to compute the feature weights.
        learning_rate: initial Adam learning rate.
        lr_decay: factor applied to the learning rate after each epoch, in (0, 1]
            (1 keeps it constant).
        n_init: k-means restarts, for the pseudo-labels and for the final clustering.
        normalize_weights: divide the feature weights by their mean, so the weighted
            MSE has the scale of a plain MSE. The paper does not (False), but its
            weights average about 0.1 on [0, 1] data, which lets the L2 term
            dominate the objective (see "Scale of the objective" above).
            Their relative sizes, the paper's point, are unchanged.
        **kwargs: `sample_shape`, `random_state` (int seed for the weights, the row
            sampling, shuffling and k-means), `name`, as in
            `AutoencoderClusteringModel`.

    Example:

    ```python
    import keras_deepclust as kdc
    from keras_deepclust.models import DAC

    x, y = kdc.datasets.load_digits()
    model = DAC(n_clusters=10, random_state=0)
    model.fit(x, epochs=200)
    print(kdc.metrics.clustering_scores(y, model.predict_labels(x)))
    ```
    """

    NEEDS_PRETRAINING = False
    PAPER = ("Lu and Li, DAC: Deep Autoencoder-based Clustering, a General Deep "
             "Learning Framework of Representation Learning")
    STREAMING_FIT = True  # weights from a reservoir sample, k-means on a sample of codes
    FIT_OPTIONS = ("weight_labels",)
    DRAWS = AutoencoderClusteringModel.DRAWS + ("feature_weights",)
    EPOCHS = 200  # the paper's training epochs, when `fit(epochs=None)`

    def __init__(
        self,
        n_clusters=10,
        network="dense",
        hidden_units=HIDDEN_UNITS,
        embedding_dim=10,
        activation="relu_tanh",
        decoder_activation="tanh",
        output_activation="sigmoid",
        beta=1e-5,
        n_weight_samples=1000,
        learning_rate=0.003,
        lr_decay=0.99,
        n_init=N_INIT,
        normalize_weights=True,
        **kwargs,
    ):
        if network != "dense":
            raise ValueError(
                f"DAC uses a dense autoencoder on feature vectors: network must be 'dense', "
                f"got {network!r}."
            )
        super().__init__(
            n_clusters=n_clusters, network=network, hidden_units=hidden_units,
            embedding_dim=embedding_dim, activation=activation,
            output_activation=output_activation, **kwargs,
        )
        if not beta >= 0:
            raise ValueError(f"beta must be >= 0, got {beta!r}.")
        if not learning_rate > 0:
            raise ValueError(f"learning_rate must be > 0, got {learning_rate!r}.")
        if not 0 < lr_decay <= 1:
            raise ValueError(f"lr_decay must be in (0, 1], got {lr_decay!r}.")
        if check_positive_int(n_weight_samples, "n_weight_samples") < 2:
            raise ValueError(f"n_weight_samples must be >= 2, got {n_weight_samples!r}.")
        self.decoder_activation = decoder_activation
        self.beta = float(beta)
        self.n_weight_samples = int(n_weight_samples)
        self.learning_rate = float(learning_rate)
        self.lr_decay = float(lr_decay)
        self.n_init = check_positive_int(n_init, "n_init")
        self.normalize_weights = bool(normalize_weights)
        self._weight_labels = None  # `fit`'s weight_labels while it runs
        self._add_trackers("loss", "weighted_mse", "l2")
        self._build_if_shape_known()

    # ----------------------------------------------------------------- building
    def _network_options(self):
        return {**super()._network_options(), "decoder_activation": self.decoder_activation}

    def _build_head(self):
        self._build_centroid_head()
        self._feature_weights = self.add_weight(
            shape=(math.prod(self.sample_shape),), initializer="ones", trainable=False,
            name="feature_weights",
        )
        self._weight_source = self.add_weight(
            shape=(), dtype="int32", initializer="zeros", trainable=False, name="weight_source"
        )
        # Identifies the data and labels the weights were computed from (see `_fingerprint`).
        self._weights_fingerprint = self.add_weight(
            shape=(4,), dtype="float64", initializer="zeros", trainable=False,
            name="weights_fingerprint",
        )

    # ---------------------------------------------------------- feature weights
    @property
    def feature_weights(self):
        """The weights the loss uses, `(n_features,)` (ones before they are computed)."""
        return self._feature_weights.numpy()

    @property
    def weight_source(self):
        """Where the labels behind the weights came from: "labels" (given),
        "kmeans-pseudo-labels", or None before the weights were computed."""
        return WEIGHT_SOURCES[int(self._weight_source.numpy())] if self.built else None

    def compute_feature_weights(self, x, weight_labels=None, verbose=0):
        """Computes the weights of Eq. 5 on `n_weight_samples` rows of `x` and stores them.

        `fit` calls this when needed; call it yourself to inspect the weights first.

        Args:
            x: the training data, `(n_samples, ...)`, or a `tf.data.Dataset` of batches
                (then the rows are a seeded reservoir sample of one pass).
            weight_labels: `(n_samples,)` labels of `x` (arrays only), or None to label
                the sampled rows by k-means (K = `n_clusters`) on their flattened values.
            verbose: print which labels were used when truthy (always logged).

        Returns:
            The weights the loss uses, `(n_features,)` float32 (divided by their
            mean with `normalize_weights`).
        """
        x = self.prepare_inputs(x, adapt=True)
        streamed = isinstance(x, tf.data.Dataset)
        if weight_labels is not None:
            if streamed:
                raise ValueError("weight_labels need x as an array; a stream's weights use "
                                 "k-means pseudo-labels.")
            weight_labels = check_labels(weight_labels, len(x), "weight_labels")
        if streamed:
            sampled = self._reservoir_sample(x)
        else:
            rows = self._weight_rows(len(x))
            sampled = x[rows].reshape(len(rows), -1)
        if weight_labels is None:
            source, labels = "kmeans-pseudo-labels", self._pseudo_labels(sampled)
        else:
            source, labels = "labels", weight_labels[rows]
        weights = feature_weights(sampled, labels)
        if not weights.any():
            raise ValueError(
                f"Every feature weight is 0: the {len(sampled)} sampled rows do not differ "
                "between labels. Check the data and the labels."
            )
        if self.normalize_weights:
            weights = weights / weights.mean()
        self._feature_weights.assign(weights)
        self._weight_source.assign(WEIGHT_SOURCES.index(source))
        if not streamed:
            self._weights_fingerprint.assign(_fingerprint(x, weight_labels))
        message = f"DAC feature weights from {source} of {len(sampled)} sampled rows."
        logger.info(message)
        if verbose:
            print(message)
        return weights

    def _weight_rows(self, n_samples):
        """Indices of the m rows the weights are computed on (all rows when m >= N)."""
        if self.n_weight_samples >= n_samples:
            return np.arange(n_samples)
        rng = np.random.default_rng(self.random_state)
        return np.sort(rng.choice(n_samples, self.n_weight_samples, replace=False))

    def _reservoir_sample(self, dataset):
        """`n_weight_samples` rows drawn uniformly from one pass over a stream
        (reservoir sampling, seeded; all rows, in order, when there are fewer)."""
        rng = np.random.default_rng(self.random_state)
        reservoir, seen = [], 0
        for batch in dataset:
            rows = batch.numpy().reshape(len(batch), -1)
            free = max(0, min(self.n_weight_samples - seen, len(rows)))
            reservoir.extend(rows[:free])
            if free < len(rows):
                sample = np.asarray(reservoir)
                # Algorithm R: row i replaces a uniform slot j <= i when j < m; of the
                # rows of this batch that draw the same slot, the last one stays.
                slots = rng.integers(0, seen + np.arange(free, len(rows)) + 1)
                candidates = np.flatnonzero(slots < self.n_weight_samples)[::-1]
                targets, first = np.unique(slots[candidates], return_index=True)
                sample[targets] = rows[free:][candidates[first]]
                reservoir = list(sample)
            seen += len(rows)
        return np.asarray(reservoir)

    def _pseudo_labels(self, sampled):
        if len(sampled) < self.n_clusters:
            raise ValueError(
                f"k-means pseudo-labels need at least n_clusters={self.n_clusters} sampled "
                f"rows, got {len(sampled)}; raise n_weight_samples or pass weight_labels."
            )
        return make_clusterer("kmeans", self.n_clusters, self.n_init,
                              self.random_state).fit_predict(sampled)

    # ------------------------------------------------------------------ training
    LABELS_HINT = "; to compute the feature weights from known labels, pass weight_labels"

    def fit(self, x=None, y=None, weight_labels=None, **kwargs):
        """Computes the feature weights, trains the autoencoder on Eq. 6, then k-means.

        Arguments as in `AutoencoderClusteringModel.fit` (`epochs=None`: the paper's
        200), and:

        Args:
            weight_labels: `(n_samples,)` labels used only for the feature weights of
                Eq. 5 (the paper's setting); None uses k-means pseudo-labels. A stream's
                weights are always computed anew, from pseudo-labels.
            callbacks: with a `ClusteringMetrics` among them, the centroids are refitted
                on the codes at every epoch end, before the scores; otherwise only after
                the last epoch (other callbacks calling `predict` during training see the
                previous centroids).

        Returns:
            The `History`, with `loss`, `weighted_mse` and `l2` per epoch.
        """
        if weight_labels is not None and not isinstance(x, tf.data.Dataset):
            weight_labels = check_labels(weight_labels, len(x), "weight_labels")
        self._weight_labels = weight_labels
        try:
            return super().fit(x, y, **kwargs)
        finally:
            self._weight_labels = None

    # ------------------------------------------------------- fit skeleton hooks
    def _fit_optimizer(self, x, batch_size):
        return self._default_optimizer(steps_per_epoch(x, batch_size))

    def _initialize_for_fit(self, x, batch_size, verbose, shuffle):
        labels = self._weight_labels
        if isinstance(x, tf.data.Dataset) or not np.array_equal(
                self._weights_fingerprint.numpy(), _fingerprint(x, labels)):
            self.compute_feature_weights(x, labels, verbose=verbose)

    def _fit_callbacks(self, x, batch_size, user_callbacks):
        if any(isinstance(callback, ClusteringMetrics) for callback in user_callbacks):
            return [keras.callbacks.LambdaCallback(
                on_epoch_end=lambda epoch, logs: self.fit_centroids(x, batch_size=batch_size))]
        return []

    def _after_fit(self, x, batch_size):
        self.fit_centroids(x, batch_size=batch_size)

    def _default_optimizer(self, steps_per_epoch):
        schedule = keras.optimizers.schedules.ExponentialDecay(
            self.learning_rate, decay_steps=steps_per_epoch, decay_rate=self.lr_decay,
            staircase=True,
        )
        return keras.optimizers.Adam(learning_rate=schedule)

    def fit_centroids(self, x, batch_size=256):
        """Runs k-means (`n_init` restarts) on the codes of `x` and sets the head's centroids.

        Returns:
            The k-means labels, `(n_samples,)` int32 (equal to `predict_labels(x)`).
        """
        x = self.prepare_inputs(x, adapt=True)
        codes = self.finite_codes(x, batch_size=batch_size).astype(np.float64)
        kmeans, labels = self._fit_clusterer(
            make_clusterer("kmeans", self.n_clusters, self.n_init, self.random_state), codes)
        self.centroid_head.set_centroids(kmeans.cluster_centers_.astype(np.float32))
        return labels

    def _compute_losses(self, x, training):
        reconstruction = self.decoder(self.encoder(x, training=training), training=training)
        squared = tf.reshape(tf.square(x - reconstruction), (tf.shape(x)[0], -1))
        weighted_mse = tf.reduce_mean(tf.reduce_mean(squared * self._feature_weights, axis=1))
        l2 = tf.add_n([tf.reduce_sum(tf.square(v)) for v in self.trainable_variables])
        return weighted_mse + self.beta * l2, weighted_mse, l2

    def train_step(self, data):
        x = keras.utils.unpack_x_y_sample_weight(data)[0]
        variables = self.trainable_variables
        with tf.GradientTape() as tape:
            loss, weighted_mse, l2 = self._compute_losses(x, training=True)
        self._descend(tape, loss, variables)
        return self._track(loss=loss, weighted_mse=weighted_mse, l2=l2)

    def test_step(self, data):
        x = keras.utils.unpack_x_y_sample_weight(data)[0]
        loss, weighted_mse, l2 = self._compute_losses(x, training=False)
        return self._track(loss=loss, weighted_mse=weighted_mse, l2=l2)

    # ------------------------------------------------------------------- saving
    def get_config(self):
        config = super().get_config()
        config.update(
            {
                "decoder_activation": self.decoder_activation,
                "beta": self.beta,
                "n_weight_samples": self.n_weight_samples,
                "learning_rate": self.learning_rate,
                "lr_decay": self.lr_decay,
                "n_init": self.n_init,
                "normalize_weights": self.normalize_weights,
            }
        )
        return config


def _fingerprint(x, weight_labels):
    """Sums identifying the data and the weight labels (-1s for pseudo-labels)."""
    if weight_labels is None:
        label_part = np.array([-1.0, -1.0])
    else:
        codes = np.unique(weight_labels, return_inverse=True)[1].astype(np.float64)
        label_part = np.array([codes.sum(), codes @ np.arange(len(codes), dtype=np.float64)])
    return np.concatenate([data_fingerprint(x), label_part])
