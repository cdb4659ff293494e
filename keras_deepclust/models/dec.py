"""DEC, IDEC, DEC-conv and DCEC: the deep embedded clustering family.

One model class covers the four variants of Guo et al., "Deep Clustering with
Convolutional Autoencoders" (ICONIP 2017): a dense (SAE) or convolutional (CAE)
autoencoder, a `ClusteringLayer` on its code, and the objective

    L = L_r + gamma * L_c                    (Eq. 5)

with L_c = KL(P || Q) to a target P refreshed from the whole data every
`update_interval` steps (Eqs. 6-8). Without reconstruction (DEC, DEC-conv) the
objective is L_c alone, as Eq. 5 reduces to for gamma = 1, L_r = 0.
"""

import math

import keras
import numpy as np
import tensorflow as tf

from keras_deepclust import losses, options
from keras_deepclust._validation import check_n_clusters, check_positive_int
from keras_deepclust.backup import single_backup
from keras_deepclust.callbacks import TargetDistributionUpdater
from keras_deepclust.clusterers import CLUSTERERS, N_INIT, make_clusterer, nearest_centroid
from keras_deepclust.layers import ClusteringLayer
from keras_deepclust.layers.clustering import student_t_assignments
from keras_deepclust.models.autoencoder import AutoencoderClusteringModel
from keras_deepclust.models.base import method_variant
from keras_deepclust.models.heads import CentroidHead
from keras_deepclust.models.row_state import FrozenRowState
from keras_deepclust.models.trainer import IterativeClusteringModel, steps_per_epoch

# Upper bound on clustering-phase steps when `fit(epochs=None)`: the `maxiter` of the
# DCEC authors' code. Training normally ends earlier through `tol`.
MAX_ITERATIONS = 20000
_DCEC_PAPER = ("Guo, Liu, Zhu and Yin, Deep Clustering with Convolutional Autoencoders, "
               "ICONIP 2017")


@keras.saving.register_keras_serializable(package="keras_deepclust")
class DeepEmbeddedClustering(CentroidHead, AutoencoderClusteringModel, IterativeClusteringModel):
    """Deep embedded clustering with an optional reconstruction term (DEC/IDEC/DEC-conv/DCEC).

    Workflow: `pretrain(x)` trains the autoencoder on reconstruction alone;
    `fit(x)` initialises the centroids on the codes (once; k-means, or a Gaussian
    mixture with `init="gmm"`), then trains encoder (and decoder) and
    centroids with the clustering objective. The target
    distribution P is refreshed from all of `x` every `update_interval` steps, and
    training stops when fewer than `tol` of the labels changed between two
    refreshes, all inside `keras.Model.fit`, so callbacks, `validation_data`,
    `History` and progress bars work as usual.

    `fit` also takes a `tf.data.Dataset` of batches (data larger than memory, e.g.
    `datasets.stream(path)`). Its P is not stored per row but recomputed for each
    batch from a frozen copy of the encoder and centroids taken at the refresh (one
    more forward pass per step, no N x K state), which gives the same P.

    Args:
        n_clusters: number of clusters K (>= 2).
        network: "dense" (SAE d-500-500-2000-10) or "conv" (CAE
            conv32(5)-conv64(5)-conv128(3)-FC10).
        reconstruction: keep the decoder's reconstruction loss during clustering
            (IDEC, DCEC) or not (DEC, DEC-conv).
        gamma: weight of the clustering loss: L = L_r + gamma * L_c (paper: 0.1).
            Only used with `reconstruction=True`.
        alpha: degrees of freedom of the Student's t kernel.
        embedding_dim: size of the code.
        hidden_units: widths of the dense encoder (network="dense").
        filters: filters of the conv encoder (network="conv").
        kernel_sizes: kernel sizes of the conv encoder (network="conv").
        update_interval: T, steps between refreshes of the target distribution.
        tol: delta, stop when the fraction of changed labels between two refreshes is
            below it.
        n_init: restarts of the k-means (or mixture) fit of the centroid initialisation.
        init: how `fit` places the centroids on the pretrained codes:
            "kmeans" (the papers) takes the k-means centroids; "gmm" takes the means of
            a full-covariance Gaussian mixture fitted by EM, which follows elongated
            clusters better (on Fashion-MNIST it starts DCEC from higher accuracy;
            see benchmarks/README.md).
        augmentation: None, or a Keras layer that augments a batch of images when
            called with `training=True`, e.g. `layers.ImageAugmentation()`. As in
            DEC-DA (Guo et al., ACML 2018), `pretrain` then reconstructs augmented
            images (see `AutoencoderClusteringModel`), and `fit` fits the soft labels
            of augmented images to the target computed on the clean ones.
        augment_clustering: with an `augmentation`, whether `fit` trains on augmented
            images too (True, DEC-DA) or only `pretrain` does (False: on Fashion-MNIST,
            augmented pretraining with `init="gmm"` gave the best DCEC; see
            benchmarks/README.md).
        sample_shape: shape of one sample; inferred from the data when None.
        random_state: int seed for weights, shuffling, noise and k-means, or None.

    Example:

    ```python
    import keras_deepclust as kdc

    x, y = kdc.datasets.load_digits()
    model = kdc.DCEC(n_clusters=10, random_state=0)
    model.pretrain(x, epochs=100)
    model.fit(x, callbacks=[kdc.callbacks.ClusteringMetrics(x, y)])
    labels = model.predict_labels(x)
    ```
    """

    STREAMING_FIT = True  # a stream's refresh state is recomputed per batch (FrozenRowState)
    OPTIONS = AutoencoderClusteringModel.OPTIONS + ("init", "augment_clustering")

    def __init__(
        self,
        n_clusters=10,
        network="dense",
        reconstruction=True,
        gamma=0.1,
        alpha=1.0,
        update_interval=140,
        tol=0.001,
        n_init=N_INIT,
        init="kmeans",
        augmentation=None,
        augment_clustering=True,
        **kwargs,
    ):
        super().__init__(n_clusters=n_clusters, network=network, augmentation=augmentation,
                         **kwargs)
        if not gamma > 0:
            raise ValueError(f"gamma must be > 0, got {gamma!r}.")
        if not alpha > 0:
            raise ValueError(f"alpha must be > 0, got {alpha!r}.")
        if not 0 <= tol < 1:
            raise ValueError(f"tol must be in [0, 1), got {tol!r}.")
        self.reconstruction = bool(reconstruction)
        self.gamma = float(gamma)
        self.alpha = float(alpha)
        self.update_interval = check_positive_int(update_interval, "update_interval")
        self.tol = float(tol)
        self.n_init = check_positive_int(n_init, "n_init")
        self.init = options.check("init", init, allowed=CLUSTERERS)
        self.augment_clustering = bool(augment_clustering)
        # q at the last refresh; the target P of a row is target_distribution(q, f).
        self.refresh_assignments = FrozenRowState(
            self, "refresh_assignments",
            lambda codes, centroids: student_t_assignments(codes, centroids, self.alpha),
            centroids=lambda: self.clustering.centroids, trailing_shape=(self.n_clusters,))
        self._add_trackers("loss", "clustering_loss",
                           *(("reconstruction_loss",) if self.reconstruction else ()))
        self._build_if_shape_known()

    # ----------------------------------------------------------------- building
    def _build_head(self):
        self.clustering = ClusteringLayer(self.n_clusters, alpha=self.alpha, name="clustering")
        self.clustering.build((None, self.embedding_dim))
        self._centroids_ready = self.add_weight(
            shape=(), dtype="int32", initializer="zeros", trainable=False, name="centroids_ready"
        )
        # The soft cluster frequencies f at the last refresh; zeros: no target yet.
        self._frequency = self.add_weight(shape=(self.n_clusters,), initializer="zeros",
                                          trainable=False, name="cluster_frequency")

    def soft_assignment_head(self):
        return self.clustering

    @property
    def centroids_initialized(self):
        """True once the centroids were initialised (saved with the model)."""
        return self.built and bool(self._centroids_ready.numpy())

    def _check_ready_to_assign(self):
        if not self.centroids_initialized:
            raise ValueError(f"{type(self).__name__} has no cluster centroids yet: call "
                             "fit(x) (after pretrain(x)) before assigning clusters.")

    # -------------------------------------------------------------- pretraining
    def _default_pretrain_optimizer(self):
        # The papers: SGD lr 0.01 momentum 0.9 for the SAE, Adam for the CAE.
        if self.network == "dense":
            return keras.optimizers.SGD(learning_rate=0.01, momentum=0.9)
        return keras.optimizers.Adam()

    def _after_pretraining(self):
        self._centroids_ready.assign(0)  # old centroids belong to the old codes
        self._forget_target()

    def _forget_target(self):
        self.refresh_assignments.forget()
        self._frequency.assign(tf.zeros((self.n_clusters,)))

    # ------------------------------------------------------------ clustering
    def initialize_centroids(self, x, batch_size=256):
        """Sets the centroids from the codes of `x`: the k-means centroids, or the means
        of a full-covariance Gaussian mixture (`init`), best of `n_init` fits.

        Args:
            x: the data, `(n_samples, ...)`, or a `tf.data.Dataset` of batches.
            batch_size: batch size of the encoding (of arrays).

        Returns:
            The label of each row under the new centroids (its nearest centroid, which is
            what the model assigns), `(n_samples,)` int32.
        """
        x = self.prepare_inputs(x, adapt=True)
        codes = self.finite_codes(x, batch_size=batch_size)
        check_n_clusters(self.n_clusters, len(codes))
        clusterer, labels = self._fit_clusterer(
            make_clusterer(self.init, self.n_clusters, self.n_init, self.random_state),
            codes)
        if self.init == "kmeans":
            centroids = clusterer.cluster_centers_
        else:  # the Student-t head assigns the nearest mean, not the mixture's component
            centroids = clusterer.means_
            labels = nearest_centroid(codes, centroids)
        self.clustering.set_centroids(centroids.astype(np.float32))
        self._forget_target()
        # The first refresh compares its labels with these.
        self.refresh_assignments.take(x, [(codes, None)])
        self._centroids_ready.assign(1)
        return labels

    def has_target_for(self, x, fingerprint=None):
        """Whether the stored target distribution was computed on this very `x`
        (`fingerprint`: `data_fingerprint(x)`, when the caller has it already).
        Never for a stream, whose frequencies f are recomputed at every fit."""
        if isinstance(x, tf.data.Dataset) or not self._frequency.numpy().any():
            return False
        # The target was computed on the scaled inputs.
        return self.refresh_assignments.holds(self.prepare_inputs(x), fingerprint)

    def target_distribution(self):
        """The target P of the rows of the array of the last refresh, `(n_samples, K)`
        (empty before the first refresh and after a stream's)."""
        return np.asarray(losses.target_distribution(self.refresh_assignments.values,
                                                     self._frequency))

    def update_target_distribution(self, x, batch_size=256, fingerprint=None):
        """Refreshes the target P (Eq. 8) from all of `x`: freezes each row's soft
        assignment q and the cluster frequencies f, from which the steps until the next
        refresh take P = target_distribution(q, f).

        `fingerprint` is `data_fingerprint(x)` when the caller has it already (the
        refresh callback computes it once per fit, not at every refresh).

        Args:
            x: the data, `(n_samples, ...)`, or a `tf.data.Dataset` of batches (then
                q is recomputed per batch from a frozen copy of the encoder instead of
                stored: see `FrozenRowState`).
            batch_size: batch size of the prediction (of arrays).
            fingerprint: `data_fingerprint(x)`, or None.

        Returns:
            The fraction of hard labels that changed since the previous refresh (or
            since the centroids' initialisation), or None when there is nothing to
            compare with.
        """
        x = self.prepare_inputs(x)
        chunks = self.refresh_assignments.chunks(x, batch_size=batch_size, fingerprint=fingerprint)
        frequency, rows, changed, compared = np.zeros(self.n_clusters), 0, 0, False
        for codes, previous in chunks:
            q = self.clustering(codes)
            frequency += tf.reduce_sum(q, axis=0).numpy()
            rows += int(tf.shape(q)[0])
            if previous is not None:
                compared = True
                changed += int(tf.math.count_nonzero(
                    tf.argmax(q, axis=1) != tf.argmax(previous, axis=1)))
        self.refresh_assignments.take(x, chunks, fingerprint)
        self._frequency.assign(frequency.astype(np.float32))
        return changed / rows if compared else None

    # ------------------------------------------------------- fit skeleton hooks
    def _initialize_for_fit(self, x, batch_size, verbose, shuffle):
        if not self.centroids_initialized:
            self.initialize_centroids(x, batch_size=batch_size)

    def _default_epochs(self, x, batch_size, initial_epoch):
        """Until `tol` stops training, at most `MAX_ITERATIONS` steps (a stream is
        counted in one more pass to know its steps per epoch)."""
        return initial_epoch + math.ceil(MAX_ITERATIONS / steps_per_epoch(x, batch_size))

    def _fit_callbacks(self, x, batch_size, user_callbacks):
        """The target refresh; kept as `self.target_updater` (its `updates` and
        `stopped_step`; `history.history["delta_label"]` has the label change at the
        last refresh of each epoch). A stream's P is recomputed per batch."""
        backup = single_backup(user_callbacks)
        self.target_updater = TargetDistributionUpdater(
            x, update_interval=self.update_interval, tol=self.tol, batch_size=batch_size,
            last_delta=backup.last_logged("delta_label") if backup is not None else None)
        return [self.target_updater]

    def _epoch_arrays(self, x):
        return (x, np.arange(len(x), dtype=np.int32))  # the row index into the stored P

    # ------------------------------------------------------------ train steps
    def _compute_losses(self, x, target, training):
        z = self.encoder(x, training=training)
        q = self.clustering(z)
        clustering_loss = losses.kl_divergence(target(q), q)
        if not self.reconstruction:
            return clustering_loss, clustering_loss, None
        reconstruction_loss = losses.reconstruction_error(x, self.decoder(z, training=training))
        return reconstruction_loss + self.gamma * clustering_loss, clustering_loss, reconstruction_loss

    def train_step(self, data):
        # Arrays come with the row index into the stored state; a stream recomputes it.
        x, index = data[:2] if isinstance(data, tuple) else (data, None)
        target = tf.stop_gradient(losses.target_distribution(
            self.refresh_assignments(x, index), self._frequency))
        if self.augmentation is not None and self.augment_clustering:
            # After the target: P is the clean batch's.
            x = self.augmentation(x, training=True)
        variables = self.encoder.trainable_variables + self.clustering.trainable_variables
        if self.reconstruction:
            variables += self.decoder.trainable_variables
        with tf.GradientTape() as tape:
            per_example, clustering_loss, reconstruction_loss = self._compute_losses(
                x, lambda q: target, training=True
            )
            loss = tf.reduce_mean(per_example)
            if self.losses:
                loss += tf.add_n(self.losses)
        self._descend(tape, loss, variables)
        return self._track(loss=loss, clustering_loss=clustering_loss,
                           reconstruction_loss=reconstruction_loss)

    def test_step(self, data):
        x = keras.utils.unpack_x_y_sample_weight(data)[0]
        per_example, clustering_loss, reconstruction_loss = self._compute_losses(
            x, lambda q: tf.stop_gradient(losses.target_distribution(q)), training=False
        )
        return self._track(loss=tf.reduce_mean(per_example), clustering_loss=clustering_loss,
                           reconstruction_loss=reconstruction_loss)

    # ------------------------------------------------------------ saving
    def get_config(self):
        config = super().get_config()
        config.update(
            {
                "reconstruction": self.reconstruction,
                "gamma": self.gamma,
                "alpha": self.alpha,
                "update_interval": self.update_interval,
                "tol": self.tol,
                "n_init": self.n_init,
                "init": self.init,
                "augment_clustering": self.augment_clustering,
            }
        )
        return config


DEC = method_variant(
    DeepEmbeddedClustering, "DEC", "dec", "DEC (Xie et al., 2016): dense SAE, clustering loss only.",
    paper="Xie, Girshick and Farhadi, Unsupervised Deep Embedding for Clustering Analysis, "
          "ICML 2016",
    network="dense", reconstruction=False)
IDEC = method_variant(
    DeepEmbeddedClustering, "IDEC", "idec",
    "IDEC (Guo et al., 2017): dense SAE, reconstruction + gamma * clustering loss.",
    paper="Guo, Gao, Liu and Yin, Improved Deep Embedded Clustering with Local Structure "
          "Preservation, IJCAI 2017",
    network="dense", reconstruction=True)
DECConv = method_variant(
    DeepEmbeddedClustering, "DECConv", "dec-conv",
    "DEC-conv: convolutional CAE, clustering loss only.", paper=_DCEC_PAPER,
    network="conv", reconstruction=False)
DCEC = method_variant(
    DeepEmbeddedClustering, "DCEC", "dcec",
    "DCEC (Guo et al., 2017): convolutional CAE, reconstruction + gamma * clustering loss.",
    paper=_DCEC_PAPER, network="conv", reconstruction=True)
