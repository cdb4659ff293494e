"""DAMIC: deep autoencoder mixture clustering (Chazan, Gannot and Goldberger, 2019).

Each cluster i is represented by its own autoencoder f_i, and a clustering network,
sharing nothing with the autoencoders, gives

    p(c = i | x) = exp(w_i . h(x) + b_i) / sum_j exp(w_j . h(x) + b_j).

Autoencoders and clustering network are trained jointly on

    L = -sum_t log sum_i p(c_t = i | x_t) exp(-1/2 ||x_t - f_i(x_t)||^2)

and a sample goes to argmax_i p(c = i | x). Pretraining is the paper's DAE+KM: one
autoencoder on all the data and k-means on its codes, which initialise the K
autoencoders and the clustering network.
"""

import warnings

import keras
import numpy as np
import tensorflow as tf
from keras import ops

from keras_deepclust import networks, options
from keras_deepclust._validation import check_n_clusters, check_positive_int
from keras_deepclust.clusterers import CLUSTERERS, N_INIT, make_clusterer
from keras_deepclust.distribute import is_multi_worker
from keras_deepclust.layers import (
    GaussianMixturePosterior,
    MixtureOfAutoencoders,
    NearestCentroidSoftmax,
)
from keras_deepclust.models.autoencoder import AutoencoderClusteringModel
from keras_deepclust.models.base import register_method
from keras_deepclust.models.row_state import EncoderSnapshot
from keras_deepclust.models.trainer import (
    IterativeClusteringModel,
    epoch_seed,
    jit_default,
    multi_worker_epochs,
)

CLUSTERING_UNITS = (512, 256)
# Seed offsets of the DAMIC-only weights, above those of the pretrained autoencoder
# (networks.dense_autoencoder uses random_state * 1000 + 1, 2, ...).
_MIXTURE_SEED, _TRUNK_SEED, _HEAD_SEED = 100, 200, 300


def mixture_loss(log_probabilities, squared_errors):
    """Per-example DAMIC loss -log sum_i p(c = i | x) exp(-1/2 ||x - f_i(x)||^2).

    Computed as -logsumexp_i(log p_i - squared_error_i / 2), which stays finite when
    every exp(-squared_error_i / 2) underflows to zero.

    Args:
        log_probabilities: `(batch, K)` log p(c = i | x), e.g. a log-softmax.
        squared_errors: `(batch, K)` squared reconstruction errors ||x - f_i(x)||^2.

    Returns:
        `(batch,)` tensor of losses.

    Example:

    >>> import numpy as np
    >>> loss = mixture_loss(np.log([[0.5, 0.5]]), np.array([[2000.0, 2002.0]]))
    >>> round(float(loss[0]), 3)
    1000.38
    """
    log_probabilities = ops.convert_to_tensor(log_probabilities)
    squared_errors = ops.cast(squared_errors, log_probabilities.dtype)
    return -ops.logsumexp(log_probabilities - 0.5 * squared_errors, axis=-1)


def _assigned_squared_error(one_hot_labels, squared_errors):
    """Squared error of each sample under the autoencoder of its own label only."""
    return ops.sum(one_hot_labels * squared_errors, axis=-1)


class ClusterSizeMonitor(keras.callbacks.Callback):
    """Counts the samples of each cluster after every epoch; warns when one empties.

    A cluster is empty when no sample of `x` has it as its most probable cluster: the
    collapse DAMIC's paper discusses. `DAMIC.fit` adds this callback itself, first.
    The smallest size goes into the epoch logs (so into `History`) as
    `min_cluster_size`; each emptied cluster is warned about once per fit.

    Args:
        x: the data whose labels are counted.
        batch_size: batch size of the prediction.

    Attributes:
        sizes: one `(K,)` int array of cluster sizes per epoch of this fit.
    """

    def __init__(self, x, batch_size=256):
        super().__init__()
        self.x = x
        self.batch_size = batch_size
        self.sizes = []
        self._warned = set()

    def on_train_begin(self, logs=None):
        self.sizes, self._warned = [], set()

    def _sizes(self):
        k = self.model.n_clusters
        if not isinstance(self.x, tf.data.Dataset):
            return np.bincount(self.model.predict_labels(self.x, batch_size=self.batch_size),
                               minlength=k)
        sizes = np.zeros(k, np.int64)  # batch by batch: no N x K predictions held
        for batch in self.x:
            sizes += np.bincount(np.argmax(self.model(batch, training=False), axis=1), minlength=k)
        return sizes

    def on_epoch_end(self, epoch, logs=None):
        sizes = self._sizes()
        self.sizes.append(sizes)
        if logs is not None:
            logs["min_cluster_size"] = int(sizes.min())
        for cluster in np.flatnonzero(sizes == 0):
            if int(cluster) not in self._warned:
                self._warned.add(int(cluster))
                warnings.warn(
                    f"Cluster {int(cluster)} is empty after epoch {epoch + 1}: no sample has "
                    "it as its most probable cluster. If clusters keep emptying, lower the "
                    "learning_rate or raise init_epochs.",
                    stacklevel=2,
                )


@register_method("damic")
@keras.saving.register_keras_serializable(package="keras_deepclust")
class DAMIC(AutoencoderClusteringModel, IterativeClusteringModel):
    """Deep autoencoder mixture clustering (DAMIC, Chazan et al., 2019).

    Workflow: `pretrain(x)` trains one dense autoencoder on all of `x`
    (reconstruction alone; by default 200 epochs of Adam, lr 1e-3, as the slides
    give no schedule). `fit(x)` first initialises (once, see `initialize`): k-means on
    the pretrained codes; K copies of the pretrained autoencoder, each fine-tuned on
    its own k-means cluster; the clustering network fitted to the k-means labels.
    It then trains the K autoencoders and the clustering network jointly on the mixture
    loss (`mixture_loss`) with Adam, inside `keras.Model.fit`. The pretrained
    autoencoder itself is not trained by `fit`.

    `predict` returns p(c | x) of the clustering network alone, and `assigner()`
    exports only that network: the trunk h (`assignment_encoder()`, whose output is
    what `embed` returns) and the softmax head (`soft_assignment_head()`).

    Args:
        n_clusters: number of clusters K (>= 2), also the number of autoencoders.
        network: "dense" only (each cluster autoencoder is a dense network).
        hidden_units: widths of the encoder of the pretrained and of every cluster
            autoencoder (default 500-500-2000: K x 3.3M weights for 784 features).
        embedding_dim: size of the autoencoders' code.
        clustering_units: widths of the clustering network's trunk h (Dense layers with
            `activation`); its head is a `Dense(K, activation="softmax")`.
        init_epochs: epochs of the per-cluster fine-tuning of the autoencoders and of
            the clustering network's fit to the initial labels, each.
        n_init: k-means (or EM) restarts of the initialisation.
        init: what labels the pretrained codes for the initialisation:
            "kmeans" (the paper) or "gmm", the most probable component of a
            full-covariance Gaussian mixture fitted by EM (on Fashion-MNIST codes it
            starts from more accurate clusters than k-means; see benchmarks/README.md).
        init_learning_rate: Adam learning rate of the two initialisation fits.
        learning_rate: Adam learning rate of the joint training in `fit` (unless the
            model was compiled with another optimizer). Lower than the initialisation's:
            on digits, 1e-3 emptied clusters within a few epochs, 1e-4 did not.
        **kwargs: `activation`, `embedding_activation`, `output_activation`,
            `sample_shape`, `random_state` as in `AutoencoderClusteringModel`.

    Example:

    ```python
    import keras_deepclust as kdc
    from keras_deepclust.models import DAMIC

    x, y = kdc.datasets.load_digits()
    model = DAMIC(n_clusters=10, random_state=0)
    model.pretrain(x)
    model.fit(x, epochs=50, callbacks=[kdc.callbacks.ClusteringMetrics(x, y)])
    labels = model.predict_labels(x)
    ```
    """

    PRETRAIN_EPOCHS = {"dense": 200}
    OPTIONS = AutoencoderClusteringModel.OPTIONS + ("init",)
    EPOCHS = 50  # joint training epochs when `fit(epochs=None)`; the slides give none
    PAPER = ("Chazan, Gannot and Goldberger, Deep Clustering Based on a Mixture of "
             "Autoencoders, MLSP 2019")
    STREAMING_FIT = True  # no per-row state; a stream's k-means labels come per batch

    def __init__(
        self,
        n_clusters=10,
        network="dense",
        clustering_units=CLUSTERING_UNITS,
        init_epochs=20,
        n_init=N_INIT,
        init="kmeans",
        init_learning_rate=1e-3,
        learning_rate=1e-4,
        **kwargs,
    ):
        options.check("init", init, allowed=CLUSTERERS)
        if network not in ("dense", "auto"):  # "auto" is dense here: no conv network
            raise ValueError(
                f"DAMIC supports network='dense' only (dense cluster autoencoders), got "
                f"{network!r}."
            )
        super().__init__(n_clusters=n_clusters, network=network, **kwargs)
        for name, value in (("init_learning_rate", init_learning_rate),
                            ("learning_rate", learning_rate)):
            if not value > 0:
                raise ValueError(f"{name} must be > 0, got {value!r}.")
        self.clustering_units = tuple(
            check_positive_int(units, "clustering_units") for units in clustering_units
        )
        self.init_epochs = check_positive_int(init_epochs, "init_epochs")
        self.n_init = check_positive_int(n_init, "n_init")
        self.init = init
        self.init_learning_rate = float(init_learning_rate)
        self.learning_rate = float(learning_rate)
        self._add_trackers("loss")
        self._build_if_shape_known()

    # ----------------------------------------------------------------- building
    def _derived_seed(self, offset):
        return None if self.random_state is None else self.random_state * 1000 + offset

    def _build_head(self):
        self.mixture = MixtureOfAutoencoders(
            self.n_clusters, hidden_units=self.hidden_units, embedding_dim=self.embedding_dim,
            activation=self.activation, embedding_activation=self.embedding_activation,
            output_activation=self.output_activation, seed=self._derived_seed(_MIXTURE_SEED),
            name="mixture",
        )
        self.mixture.build((None, *self.sample_shape))
        self.clustering_trunk = self._build_trunk()
        self.clustering_head = keras.layers.Dense(  # float32: a softmax (layers.precision)
            self.n_clusters, activation="softmax", name="clustering_head", dtype="float32",
            kernel_initializer=keras.initializers.GlorotUniform(self._derived_seed(_HEAD_SEED)),
        )
        self.clustering_head.build(self.clustering_trunk.output.shape)
        self._initialized = self.add_weight(
            shape=(), dtype="int32", initializer="zeros", trainable=False, name="initialized"
        )

    def _build_trunk(self):
        inputs = keras.Input(shape=self.sample_shape, name="inputs")
        h = keras.layers.Flatten(name="flatten")(inputs)
        for i, units in enumerate(self.clustering_units):
            h = keras.layers.Dense(
                units, networks.resolve_activation(self.activation), name=f"clustering_{i}",
                kernel_initializer=keras.initializers.GlorotUniform(
                    self._derived_seed(_TRUNK_SEED + i)
                ),
            )(h)
        # float32 features: `embed`, the internal scores and the head's float32 kernel
        # take them so under a mixed policy too.
        return keras.Model(inputs, networks.float32_output(h, "features_float32"),
                           name="clustering_trunk")

    def call(self, inputs, training=None):
        return self.clustering_head(self.clustering_trunk(inputs, training=training))

    def assignment_encoder(self):
        return self.clustering_trunk

    def soft_assignment_head(self):
        return self.clustering_head

    def log_probabilities(self, inputs, training=None):
        """log p(c | x) from the head's logits by a log-softmax, `(batch, K)`."""
        features = self.clustering_trunk(inputs, training=training)
        logits = ops.matmul(features, self.clustering_head.kernel) + self.clustering_head.bias
        return ops.log_softmax(logits, axis=-1)

    @property
    def initialized(self):
        """True once `initialize` has run on the current pretrained autoencoder (saved)."""
        return self.built and bool(self._initialized.numpy())

    # -------------------------------------------------------- initialisation
    def _default_pretrain_optimizer(self):
        return keras.optimizers.Adam(learning_rate=1e-3)

    def _after_pretraining(self):
        self._initialized.assign(0)  # the mixture was initialised from the old autoencoder

    def _check_ready_to_assign(self):
        if not self.initialized:
            raise ValueError("DAMIC's mixture is not initialised yet: call fit(x) (after "
                             "pretrain(x)) before assigning clusters.")

    def initialize(self, x, batch_size=256, verbose=0, shuffle=True):
        """Initialises the mixture and the clustering network from the pretrained AE.

        k-means or a Gaussian mixture (`init`, `n_init` restarts) labels
        the pretrained codes of `x`; every cluster autoencoder becomes a copy of the
        pretrained one and is fine-tuned for `init_epochs` on the samples of its own
        cluster (all K at once, with a reconstruction loss masked by the labels); the
        clustering network is fitted to the labels by cross-entropy for `init_epochs`.
        `fit` calls it when the model is not initialised yet.

        Args:
            x: the data, `(n_samples, ...)`, or a `tf.data.Dataset` of batches (then the
                labels of each batch are recomputed from the pretrained encoder as it
                streams by).
            batch_size: samples per step (of arrays).
            verbose: verbosity of the two fine-tuning fits.
            shuffle: shuffle the rows of arrays at each fine-tuning epoch (a stream is
                read in its own order).

        Returns:
            The initial labels, `(n_samples,)` int32.
        """
        x = self.prepare_inputs(x, adapt=True)
        self._seed()
        codes = self.finite_codes(x, batch_size=batch_size)
        check_n_clusters(self.n_clusters, len(codes))
        clusterer, _ = self._fit_clusterer(
            make_clusterer(self.init, self.n_clusters, self.n_init, self.random_state),
            codes)
        self.mixture.set_from_autoencoder(self.encoder, self.decoder)
        # Labelled as the clusterer's exportable head does, arrays and streams alike.
        label_codes = self._label_codes_like(clusterer)
        labels = label_codes(codes).numpy()
        if isinstance(x, tf.data.Dataset):
            labelled = self._with_initial_labels(x, label_codes)
            one_hot = labelled.map(lambda batch, y: (batch, tf.one_hot(y, self.n_clusters)))
            self._fit_part(self.mixture.squared_errors, _assigned_squared_error, one_hot, None,
                           batch_size, verbose, shuffle)
            self._fit_part(self.call, "sparse_categorical_crossentropy", labelled, None,
                           batch_size, verbose, shuffle)
        else:
            self._fit_part(
                self.mixture.squared_errors, _assigned_squared_error, x,
                np.eye(self.n_clusters, dtype=np.float32)[labels], batch_size, verbose, shuffle,
            )
            self._fit_part(self.call, "sparse_categorical_crossentropy", x, labels, batch_size,
                           verbose, shuffle)
        self._initialized.assign(1)
        return labels

    def _label_codes_like(self, clusterer):
        """A TensorFlow function labelling codes as the fitted `clusterer` does, by the
        argmax of its exportable head (nearest centroid, or most probable component)."""
        if self.init == "kmeans":
            head = NearestCentroidSoftmax(self.n_clusters)
            head.build(clusterer.cluster_centers_.shape)
            head.set_centroids(clusterer.cluster_centers_)
        else:
            head = GaussianMixturePosterior(self.n_clusters)
            head.build(clusterer.means_.shape)
            head.set_from_sklearn(clusterer)
        return lambda z: tf.argmax(head(z), axis=1, output_type=tf.int32)

    def _with_initial_labels(self, dataset, label_codes):
        """`(batch, initial labels)` of a stream: `label_codes` on the codes of the
        pretrained encoder, which the initialisation does not train."""
        # Outside any strategy: dataset.map runs the copy on the host, not per replica.
        encoder = EncoderSnapshot(self.encoder, tf.distribute.get_strategy())
        encoder.take(self.encoder)
        return dataset.map(lambda batch: (batch, label_codes(encoder(batch))))

    def _fit_part(self, network, loss, x, y, batch_size, verbose, shuffle):
        """Fits `network` (a callable on the inputs) to `y` with Adam for `init_epochs`
        (`x` may be a stream of `(x, y)` batches, and `y` None)."""
        with self.distribute_strategy.scope():
            inputs = keras.Input(shape=self.sample_shape)
            model = keras.Model(inputs, network(inputs))
            model.compile(
                optimizer=keras.optimizers.Adam(self.init_learning_rate), loss=loss,
                jit_compile=jit_default(None),
            )
        if isinstance(x, tf.data.Dataset):  # batches of (x, y)
            model.fit(x, epochs=self.init_epochs, verbose=verbose, shuffle=False)
        elif is_multi_worker(self.distribute_strategy):
            multi_worker_epochs(model, (x, y), batch_size, self.init_epochs,
                                seed=epoch_seed(self) if shuffle else None, verbose=verbose)
        else:
            model.fit(x, y, epochs=self.init_epochs, batch_size=batch_size, verbose=verbose,
                      shuffle=shuffle)

    # ------------------------------------------------------------ clustering
    # ------------------------------------------------------- fit skeleton hooks
    # `fit(x)` trains the cluster autoencoders and the clustering network jointly.
    def _fit_optimizer(self, x, batch_size):
        return keras.optimizers.Adam(self.learning_rate)

    def _initialize_for_fit(self, x, batch_size, verbose, shuffle):
        if not self.initialized:
            self.initialize(x, batch_size=batch_size, verbose=verbose, shuffle=shuffle)

    def _fit_callbacks(self, x, batch_size, user_callbacks):
        """The cluster sizes after each epoch, kept as `self.cluster_monitor` (its
        `sizes`; `history.history["min_cluster_size"]` has the smallest)."""
        self.cluster_monitor = ClusterSizeMonitor(x, batch_size=batch_size)
        return [self.cluster_monitor]

    def per_example_loss(self, inputs, training=None):
        """`(batch,)` mixture loss of `inputs` under the current model."""
        return mixture_loss(
            self.log_probabilities(inputs, training=training),
            self.mixture.squared_errors(inputs),
        )

    def train_step(self, data):
        x = keras.utils.unpack_x_y_sample_weight(data)[0]
        variables = (self.mixture.trainable_variables + self.clustering_trunk.trainable_variables
                     + self.clustering_head.trainable_variables)
        with tf.GradientTape() as tape:
            loss = ops.mean(self.per_example_loss(x, training=True))
        self._descend(tape, loss, variables)
        return self._track(loss=loss)

    def test_step(self, data):
        x = keras.utils.unpack_x_y_sample_weight(data)[0]
        return self._track(loss=ops.mean(self.per_example_loss(x)))

    def reconstruct(self, x, batch_size=256, verbose=0):
        """Reconstruction of each sample by the autoencoder of its assigned cluster."""
        x = self.prepare_inputs(x)
        inputs = keras.Input(shape=self.sample_shape)
        assigned = ops.one_hot(ops.argmax(self.call(inputs), axis=-1), self.n_clusters)
        selected = ops.sum(assigned[:, :, None] * self.mixture(inputs), axis=1)
        model = keras.Model(inputs, ops.reshape(selected, (-1, *self.sample_shape)))
        return model.predict(x, batch_size=batch_size, verbose=verbose)

    # ------------------------------------------------------------ saving
    def get_config(self):
        config = super().get_config()
        config.update(
            {
                "clustering_units": list(self.clustering_units),
                "init_epochs": self.init_epochs,
                "n_init": self.n_init,
                "init": self.init,
                "init_learning_rate": self.init_learning_rate,
                "learning_rate": self.learning_rate,
            }
        )
        return config
