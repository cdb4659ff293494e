"""N2D: clustering the local manifold of an autoencoded embedding.

McConville, Santos-Rodriguez, Piechocki and Craddock, "N2D: (Not Too) Deep Clustering
via Clustering the Local Manifold of an Autoencoded Embedding" (ICPR 2020): pretrain
an autoencoder, embed the data, learn the codes' local manifold with UMAP (as many
components as clusters, 20 neighbours, min_dist 0), and fit a Gaussian mixture on
the manifold.

UMAP's `transform` is Python and numba, which nothing exports. Here a Keras *manifold
head* maps the codes to the fitted UMAP embedding, and the mixture sits on its output;
encoder, manifold head and mixture head export as one assigner. Two heads:
`manifold_head="neighbors"` (the default) trains nothing: a `NeighborInterpolation`
layer keeps the UMAP rows' codes and coordinates and places a point among its nearest
rows, where UMAP's own `transform` starts. `manifold_head="regression"` trains an MLP
on the UMAP coordinates of the fitted rows. The neighbours head is the default because
it follows UMAP + mixture more closely on rows UMAP never saw (held-out agreement 0.96
against 0.89 on the digits and 0.94 against 0.83 on Fashion-MNIST, `benchmarks/README.md`)
and fits in seconds. Both keep the non-parametric UMAP fit of the paper, rather than
umap-learn's ParametricUMAP, which optimises UMAP's own loss through a network tied to
umap-learn's TensorFlow code paths; keeping UMAP's fit makes the head's faithfulness
directly measurable (`manifold_agreement`).
"""

import keras
import numpy as np

from keras_deepclust import options
from keras_deepclust._validation import check_n_clusters, check_positive_int
from keras_deepclust.clusterers import N_INIT, check_clusterer, umap_class
from keras_deepclust.layers import (
    GaussianMixturePosterior,
    NearestCentroidSoftmax,
    NeighborInterpolation,
)
from keras_deepclust.models.autoencoder import AutoencoderClusteringModel
from keras_deepclust.models.base import register_method
from keras_deepclust.models.heads import FittedClustererHead
from keras_deepclust.models.one_shot import OneShotClusteringModel
from keras_deepclust.models.two_stage import COVARIANCE_TYPES
from keras_deepclust.networks import SeededInitializers

MANIFOLD_HEADS = options.BY_NAME["manifold_head"].allowed()


@register_method("n2d")
@keras.saving.register_keras_serializable(package="keras_deepclust")
class N2D(FittedClustererHead, AutoencoderClusteringModel, OneShotClusteringModel):
    """Autoencoder, then UMAP on its codes, then a Gaussian mixture on the manifold.

    Workflow: `pretrain(x)` trains the autoencoder; `fit(x)` embeds `x`, fits UMAP on
    the codes (of at most `umap_max_samples` rows, a seeded sample), trains the
    manifold head to map codes to the UMAP coordinates, and fits the mixture (or
    k-means) on the UMAP coordinates. `predict` runs encoder, manifold head and
    mixture head; `umap_predict_labels` runs UMAP's own `transform` and the same
    mixture, while the fitted UMAP is in memory (it is not saved).

    Args:
        n_clusters: number of clusters K (>= 2).
        network: "dense" or "conv" (see `AutoencoderClusteringModel`).
        n_components: dimensions of the UMAP manifold (the paper takes the number
            of clusters, 10 on all its data sets; fixed here so that the manifold does
            not change with K when K is chosen). At most `embedding_dim`.
        n_neighbors: UMAP's neighbourhood size (paper: 20).
        min_dist: UMAP's minimum distance (paper: 0).
        clusterer: "gmm" (paper) or "kmeans", fitted on the manifold.
        covariance_type: of the Gaussian mixture.
        n_init: restarts of the mixture or k-means (the fit of highest likelihood,
            or lowest inertia, is kept: a label-free choice). N2D's code fits once;
            one start can merge two classes and split another where the most likely
            of several does not (`benchmarks/results/mixture_restarts_*.md`), for
            about 0.04 s a restart on 1,797 rows and 1.5 s on 10,000.
        max_iter: iterations of EM or k-means.
        manifold_head: "neighbors" (no training: a `NeighborInterpolation` layer
            holding the UMAP rows' codes and coordinates places each point at the
            weighted mean of its `manifold_neighbors` nearest rows, as UMAP's
            `transform` starts; `umap_max_samples` x (code size + n_components)
            floats in the model) or "regression" (an MLP trained on the UMAP
            coordinates of the fitted rows; less faithful to UMAP on new rows, see
            `benchmarks/README.md`).
        manifold_neighbors: neighbours averaged by the "neighbors" head.
        manifold_units: widths of the regression head's hidden layers (ReLU).
        manifold_steps: optimizer steps of the manifold head's regression (Adam,
            cosine decay of the learning rate, standardised codes and coordinates),
            rounded up to whole epochs. Steps rather than epochs: the regression
            needs about as many whatever the number of rows (see
            `benchmarks/README.md` for the agreement it reaches).
        manifold_batch_size: its batch size.
        manifold_learning_rate: its initial learning rate.
        umap_max_samples: UMAP is fitted on at most this many rows (the head then
            maps every row): UMAP's cost grows faster than linearly and a sample of
            this size already fixes the manifold of 10-class image data.
        **kwargs: `AutoencoderClusteringModel` arguments (embedding_dim,
            hidden_units, filters, kernel_sizes, activations, augmentation (of the
            pretraining images, as DEC-DA's), sample_shape, random_state, name).

    Example:

    ```python
    model = N2D(n_clusters=10, random_state=0)
    model.pretrain(x)
    model.fit(x)
    labels = model.predict_labels(x)
    model.manifold_agreement(x_held_out)  # head vs UMAP transform, same mixture
    ```
    """

    PRETRAIN_EPOCHS = {"dense": 200, "conv": 200}
    PAPER = ("McConville, Santos-Rodriguez, Piechocki and Craddock, N2D: (Not Too) Deep "
             "Clustering via Clustering the Local Manifold of an Autoencoded Embedding, "
             "ICPR 2020")
    STREAMING_FIT = True  # embeds a stream, UMAP on a bounded sample of the codes
    OPTIONS = AutoencoderClusteringModel.OPTIONS + ("manifold_head",)

    def __init__(
        self,
        n_clusters=10,
        network="dense",
        n_components=10,
        n_neighbors=20,
        min_dist=0.0,
        clusterer="gmm",
        covariance_type="full",
        n_init=N_INIT,
        max_iter=100,
        manifold_head="neighbors",
        manifold_neighbors=10,
        manifold_units=(512, 512),
        manifold_steps=8000,
        manifold_batch_size=64,
        manifold_learning_rate=0.001,
        umap_max_samples=20_000,
        **kwargs,
    ):
        super().__init__(n_clusters=n_clusters, network=network, **kwargs)
        self.n_components = check_positive_int(n_components, "n_components")
        if self.n_components > self.embedding_dim:
            raise ValueError(
                f"n_components={self.n_components} asks UMAP for more components than the "
                f"code has (embedding_dim={self.embedding_dim}); lower n_components or "
                "raise embedding_dim.")
        self.n_neighbors = check_positive_int(n_neighbors, "n_neighbors")
        if self.n_neighbors < 2:
            raise ValueError(f"n_neighbors must be >= 2, got {n_neighbors!r}.")
        if not 0 <= min_dist:
            raise ValueError(f"min_dist must be >= 0, got {min_dist!r}.")
        if covariance_type not in COVARIANCE_TYPES:
            raise ValueError(
                f"covariance_type must be one of {COVARIANCE_TYPES}, got {covariance_type!r}.")
        if not manifold_learning_rate > 0:
            raise ValueError(
                f"manifold_learning_rate must be > 0, got {manifold_learning_rate!r}.")
        self.min_dist = float(min_dist)
        self.clusterer = check_clusterer(clusterer, "clusterer")
        self.covariance_type = covariance_type
        self.n_init = check_positive_int(n_init, "n_init")
        self.max_iter = check_positive_int(max_iter, "max_iter")
        self.manifold_head = options.check("manifold_head", manifold_head)
        self.manifold_neighbors = check_positive_int(manifold_neighbors, "manifold_neighbors")
        self.manifold_units = tuple(check_positive_int(u, "manifold_units") for u in manifold_units)
        self.manifold_steps = check_positive_int(manifold_steps, "manifold_steps")
        self.manifold_batch_size = check_positive_int(manifold_batch_size, "manifold_batch_size")
        self.manifold_learning_rate = float(manifold_learning_rate)
        self.umap_max_samples = check_positive_int(umap_max_samples, "umap_max_samples")
        self.umap_ = None  # the fitted UMAP, in memory only
        self._build_if_shape_known()

    # ----------------------------------------------------------------- building
    def _manifold_layers(self):
        if self.manifold_head == "neighbors":
            return [NeighborInterpolation(self.manifold_neighbors, self.umap_max_samples,
                                          self.n_components, name="manifold_neighbors")]
        # Seeds apart from the autoencoder's, which draws from `random_state` itself.
        initializer = SeededInitializers(
            None if self.random_state is None else self.random_state + 7919)
        layers = [keras.layers.Dense(units, activation="relu", name=f"manifold_{i}",
                                     kernel_initializer=initializer())
                  for i, units in enumerate(self.manifold_units)]
        layers.append(keras.layers.Dense(self.n_components, name="manifold_coordinates",
                                         kernel_initializer=initializer()))
        return layers

    def _build_head(self):
        self.manifold = keras.Sequential(self._manifold_layers(), name="manifold_head")
        self.manifold.build((None, self.embedding_dim))
        if self.clusterer == "kmeans":
            self.assignment = NearestCentroidSoftmax(self.n_clusters, name="kmeans_head")
        else:
            self.assignment = GaussianMixturePosterior(self.n_clusters, name="gmm_head")
        self.assignment.build((None, self.n_components))
        self._manifold_fitted = self.add_weight(
            shape=(), dtype="int32", initializer="zeros", trainable=False, name="manifold_fitted")
        self._head_fitted = self.add_weight(
            shape=(), dtype="int32", initializer="zeros", trainable=False, name="head_fitted")

    def call(self, inputs, training=None):
        return self.assignment(self.manifold(self.encoder(inputs, training=training)))

    def assignment_encoder(self):
        """Encoder then manifold head: inputs to UMAP-like coordinates (what `embed`
        returns and the mixture reads)."""
        inputs = keras.Input(shape=self.sample_shape)
        return keras.Model(inputs, self.manifold(self.encoder(inputs)), name="encoder_manifold")

    @property
    def manifold_fitted(self):
        """True once the manifold head reproduces a fitted UMAP (saved with the model)."""
        return self.built and bool(self._manifold_fitted.numpy())

    def _after_pretraining(self):
        self._manifold_fitted.assign(0)
        self._head_fitted.assign(0)
        self.umap_ = None

    # ------------------------------------------------------------------ fitting
    def fit_manifold(self, x, batch_size=256, verbose="auto"):
        """Fits UMAP on the codes of (a sample of) `x` and trains the manifold head on
        its embedding. `fit` calls it when the manifold is not fitted yet.

        Args:
            x: the data, `(n_samples, ...)`, or a `tf.data.Dataset` of batches.
            batch_size: batch size of the encoding.
            verbose: verbosity of the head's training.

        Returns:
            The head's mean squared error against the UMAP coordinates of its
            training rows.
        """
        x = self.prepare_inputs(x, adapt=True)
        codes = self.finite_codes(x, batch_size=batch_size)
        check_n_clusters(self.n_clusters, len(codes))
        if self.n_neighbors >= len(codes):
            raise ValueError(f"n_neighbors={self.n_neighbors} needs more than "
                             f"{self.n_neighbors} samples, got {len(codes)}.")
        rows = np.arange(len(codes))
        if len(codes) > self.umap_max_samples:
            rows = np.sort(np.random.default_rng(self.random_state).choice(
                len(codes), self.umap_max_samples, replace=False))
            check_n_clusters(self.n_clusters, len(rows))
        self._seed()
        umap = umap_class()(n_components=self.n_components, n_neighbors=self.n_neighbors,
                            min_dist=self.min_dist, random_state=self.random_state)
        embedding = umap.fit_transform(codes[rows]).astype(np.float32)
        self.umap_, self.umap_embedding_ = umap, embedding
        if self.manifold_head == "neighbors":
            self.manifold.layers[0].set_references(codes[rows], embedding)
        else:
            self._train_manifold_head(codes[rows], embedding, verbose)
        self._manifold_fitted.assign(1)
        # The head's coordinates of the UMAP rows, kept for fit's agreement check.
        self.manifold_points_ = self.manifold.predict(codes[rows], batch_size=batch_size,
                                                      verbose=0)
        return float(np.mean((self.manifold_points_ - embedding) ** 2))

    def _train_manifold_head(self, codes, embedding, verbose):
        """Regression from standardised codes to standardised UMAP coordinates, then
        both standardisations folded into the first and last layers, so that the head
        maps raw codes to the coordinates (and stays plain Dense layers for export)."""
        for layer in self.manifold.layers:  # a refit starts afresh, as the first fit did
            layer.kernel.assign(layer.kernel_initializer(layer.kernel.shape))
            layer.bias.assign(np.zeros(layer.bias.shape, np.float32))
        code_mean, code_scale = codes.mean(axis=0), codes.std(axis=0) + 1e-6
        mean, scale = embedding.mean(axis=0), embedding.std(axis=0) + 1e-6
        steps_per_epoch = -(-len(codes) // self.manifold_batch_size)
        epochs = -(-self.manifold_steps // steps_per_epoch)
        with self.distribute_strategy.scope():
            regression = keras.Sequential([keras.Input((self.embedding_dim,)), self.manifold])
            regression.compile(loss="mse", optimizer=keras.optimizers.Adam(
                keras.optimizers.schedules.CosineDecay(self.manifold_learning_rate,
                                                       epochs * steps_per_epoch)))
        regression.fit((codes - code_mean) / code_scale, (embedding - mean) / scale,
                       batch_size=self.manifold_batch_size, epochs=epochs,
                       verbose=verbose)
        first, last = self.manifold.layers[0], self.manifold.layers[-1]
        kernel = first.kernel.numpy()
        first.kernel.assign(kernel / code_scale[:, None])
        first.bias.assign(first.bias.numpy() - (code_mean / code_scale) @ kernel)
        last.kernel.assign(last.kernel.numpy() * scale)
        last.bias.assign(last.bias.numpy() * scale + mean)

    def _fit_once(self, x, batch_size, verbose, shuffle):
        """Fits the manifold (once; see `fit_manifold`), then the mixture or k-means on
        the UMAP coordinates, and copies it into the head. Of a stream the codes
        (N x code size) are held, and UMAP sees at most `umap_max_samples` of them.

        Logs: `loss` (negative mean log-likelihood of the mixture, or k-means' mean
        squared distance), `bic` (mixture), `restart_agreement` (how much the
        clusterer's starts agree, see `fit_clusterer`), `manifold_mse` and
        `manifold_agreement` (the share of the UMAP rows that the exported path labels
        as UMAP + clusterer does).
        """
        logs = {}
        if not self.manifold_fitted or self.umap_ is None:
            # A progress bar at most: one line per epoch would be hundreds of lines.
            logs["manifold_mse"] = self.fit_manifold(x, batch_size=batch_size,
                                                     verbose=1 if verbose == 1 else 0)
        points = self.umap_embedding_.astype(np.float64)
        logs.update(self.fit_clusterer(points))
        head_labels = np.argmax(self.assignment(self.manifold_points_), axis=1)
        logs["manifold_agreement"] = float(np.mean(head_labels
                                                   == self.clusterer_.predict(points)))
        if verbose != 0:
            print(f"N2D: UMAP on {len(points)} codes, {self.clusterer} on {self.n_components} "
                  "dimensions: " + ", ".join(f"{k} {v:.4g}" for k, v in logs.items()))
        return logs

    def prototype_codes(self, x, labels):
        """The mean code of each cluster's rows of `x` (clusters without rows left
        out): the mixture's means live on the manifold, which the decoder does not read."""
        codes, labels = self.finite_codes(x), np.asarray(labels)
        return np.stack([codes[labels == k].mean(axis=0) for k in np.unique(labels)])

    # ------------------------------------------------------- UMAP's own labels
    def umap_predict_labels(self, x, batch_size=256):
        """Labels from UMAP's `transform` and the fitted clusterer (the reference the
        head reproduces); needs the UMAP fitted in this process."""
        if self.umap_ is None or not self.head_fitted:
            raise ValueError("umap_predict_labels needs the UMAP and clusterer fitted in this "
                             "process (they are not saved): call fit(x).")
        points = self.umap_.transform(self.finite_codes(x, batch_size=batch_size))
        return self.clusterer_.predict(points.astype(np.float64)).astype(np.int32)

    def manifold_agreement(self, x, batch_size=256):
        """Share of the rows of `x` that the exported path (encoder, manifold head,
        mixture head) labels as UMAP `transform` + the clusterer does."""
        reference = self.umap_predict_labels(x, batch_size=batch_size)
        return float(np.mean(self.predict_labels(x, batch_size=batch_size) == reference))

    # ---------------------------------------------------------- choosing K
    def selection_features(self, x, batch_size=256):
        """What the K sweep clusters: the manifold coordinates of every row (the
        manifold is fitted first when needed)."""
        if not self.manifold_fitted or self.umap_ is None:
            self.fit_manifold(x, batch_size=batch_size, verbose=0)
        return self.assignment_encoder().predict(self.prepare_inputs(x), batch_size=batch_size,
                                                 verbose=0)

    def with_n_clusters(self, n_clusters):
        """A model for another K that keeps this model's autoencoder and, when fitted,
        its manifold (UMAP and head), so that only the clusterer is fitted again."""
        clone = super().with_n_clusters(n_clusters)
        clone.manifold.set_weights(self.manifold.get_weights())
        clone._manifold_fitted.assign(int(self.manifold_fitted))
        for name in ("umap_", "umap_embedding_", "manifold_points_"):
            if hasattr(self, name):
                setattr(clone, name, getattr(self, name))
        return clone

    def get_config(self):
        config = super().get_config()
        config.update({
            "n_components": self.n_components, "n_neighbors": self.n_neighbors,
            "min_dist": self.min_dist, "clusterer": self.clusterer,
            "covariance_type": self.covariance_type, "n_init": self.n_init,
            "max_iter": self.max_iter,
            "manifold_head": self.manifold_head, "manifold_neighbors": self.manifold_neighbors,
            "manifold_units": list(self.manifold_units), "manifold_steps": self.manifold_steps,
            "manifold_batch_size": self.manifold_batch_size,
            "manifold_learning_rate": self.manifold_learning_rate,
            "umap_max_samples": self.umap_max_samples,
        })
        return config
