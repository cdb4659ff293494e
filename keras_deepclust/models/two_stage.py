"""AE + k-means and AE + GMM, dense and convolutional: the two-stage baselines.

Bhattarai, "Unsupervised clustering using deep learning": pretrain an autoencoder
(dense x-500-500-2000-d or convolutional, 50 epochs), then cluster its codes with
k-means or a Gaussian mixture fitted by EM (100 iterations). Here the fitted
clusterer becomes an exportable Keras head (`NearestCentroidSoftmax` for k-means,
`GaussianMixturePosterior` for the mixture), so encoder and head export as one
assigner.
"""

import keras
import numpy as np

from keras_deepclust._validation import check_n_clusters, check_positive_int
from keras_deepclust.clusterers import check_clusterer, fit_restarts, sample_rows
from keras_deepclust.layers import GaussianMixturePosterior, NearestCentroidSoftmax
from keras_deepclust.models.autoencoder import AutoencoderClusteringModel
from keras_deepclust.models.base import method_variant, refuse_epoch_arguments

COVARIANCE_TYPES = ("full", "tied", "diag", "spherical")


class FittedClustererHead:
    """What the models whose head copies a scikit-learn k-means or Gaussian mixture
    share. The model sets `clusterer`, `covariance_type`, `n_init`, `max_iter` and builds
    `assignment` (the head layer) and a `_head_fitted` weight."""

    def soft_assignment_head(self):
        return self.assignment

    def code_centroids(self):
        """The k-means centroids or the mixture's means, in the space the head reads."""
        head = self.assignment
        centroids = head.centroids if self.clusterer == "kmeans" else head.means
        return centroids.numpy()

    @property
    def head_fitted(self):
        """True once `fit` has set the head (saved with the model)."""
        return self.built and bool(self._head_fitted.numpy())

    def _check_ready_to_assign(self):
        if not self.head_fitted:
            raise ValueError(f"The {self.clusterer} head is not fitted yet: call fit(x) after "
                             "pretrain(x).")

    def fit_clusterer(self, points):
        """Fits k-means or the mixture on (at most `CLUSTERER_MAX_SAMPLES` rows of)
        `points`, the best of `n_init` starts, and copies it into the head (see
        `_set_head`). How much the starts' partitions agree (mean adjusted Rand index,
        None for one start) is kept as `restart_agreement_`.

        Returns:
            The logs of `_set_head`, with `restart_agreement` when there were restarts.
        """
        clusterer, self.restart_agreement_ = fit_restarts(
            self.clusterer, self.n_clusters,
            sample_rows(points, self.CLUSTERER_MAX_SAMPLES, self.random_state),
            self.n_init, self.random_state, self.covariance_type, self.max_iter)
        logs = self._set_head(clusterer, points)
        if self.restart_agreement_ is not None:
            logs["restart_agreement"] = self.restart_agreement_
        return logs

    def _set_head(self, clusterer, points):
        """Copies the fitted `clusterer` into the head and keeps it as `clusterer_`.

        Returns:
            The logs: `loss` (k-means: mean squared distance to the centroid; mixture:
            negative mean log-likelihood) and, for the mixture, `bic`, on `points`.
        """
        if self.clusterer == "kmeans":
            self.assignment.set_centroids(clusterer.cluster_centers_.astype(np.float32))
            logs = {"loss": float(-clusterer.score(points) / len(points))}
        else:
            self.assignment.set_from_sklearn(clusterer)
            logs = {"loss": float(-clusterer.score(points)), "bic": float(clusterer.bic(points))}
        self._head_fitted.assign(1)
        self.clusterer_ = clusterer
        return logs


@keras.saving.register_keras_serializable(package="keras_deepclust")
class TwoStageClustering(FittedClustererHead, AutoencoderClusteringModel):
    """An autoencoder, then k-means or a Gaussian mixture on its codes.

    `pretrain(x)` trains the autoencoder (`keras.Model.fit` on reconstruction);
    `fit(x)` fits the clusterer on the codes of `x` and copies it into the head.
    Use `keras_deepclust.model_selection.sweep_n_clusters` on `embed(x)` to choose K
    (the CLI's `--clusters auto`).

    Args:
        n_clusters: number of clusters K (>= 2).
        network: "dense" or "conv" (see `AutoencoderClusteringModel`).
        clusterer: "kmeans" or "gmm" (a Gaussian mixture fitted by EM).
        covariance_type: of the Gaussian mixture: "full", "tied", "diag" or
            "spherical".
        n_init: restarts of k-means or EM.
        max_iter: iterations of k-means or EM (paper: 100 EM iterations).
        temperature: of the k-means head's softmax over negative squared distances.
        **kwargs: `AutoencoderClusteringModel` arguments (embedding_dim,
            hidden_units, filters, kernel_sizes, activations, sample_shape,
            random_state, name).

    Example:

    ```python
    model = AEGMM(n_clusters=10, random_state=0)
    model.pretrain(x, epochs=50)
    model.fit(x)
    labels = model.predict_labels(x)
    ```
    """

    PRETRAIN_EPOCHS = {"dense": 50, "conv": 50}  # the paper's
    PAPER = "Bhattarai, Unsupervised clustering using deep learning"
    STREAMING_FIT = True  # fit embeds a stream and clusters a bounded sample of codes
    ITERATIVE_FIT = False

    def __init__(
        self,
        n_clusters=10,
        network="dense",
        clusterer="kmeans",
        covariance_type="full",
        n_init=10,
        max_iter=100,
        temperature=1.0,
        **kwargs,
    ):
        super().__init__(n_clusters=n_clusters, network=network, **kwargs)
        if covariance_type not in COVARIANCE_TYPES:
            raise ValueError(
                f"covariance_type must be one of {COVARIANCE_TYPES}, got {covariance_type!r}."
            )
        if not temperature > 0:
            raise ValueError(f"temperature must be > 0, got {temperature!r}.")
        self.clusterer = check_clusterer(clusterer, "clusterer")
        self.covariance_type = covariance_type
        self.n_init = check_positive_int(n_init, "n_init")
        self.max_iter = check_positive_int(max_iter, "max_iter")
        self.temperature = float(temperature)
        self._build_if_shape_known()

    def _build_head(self):
        if self.clusterer == "kmeans":
            self.assignment = NearestCentroidSoftmax(
                self.n_clusters, temperature=self.temperature, name="kmeans_head"
            )
        else:
            self.assignment = GaussianMixturePosterior(self.n_clusters, name="gmm_head")
        self.assignment.build((None, self.embedding_dim))
        self._head_fitted = self.add_weight(
            shape=(), dtype="int32", initializer="zeros", trainable=False, name="head_fitted"
        )

    def call(self, inputs, training=None):
        return self.assignment(self.encoder(inputs, training=training))

    def _after_pretraining(self):
        self._head_fitted.assign(0)

    def fit(self, x=None, y=None, batch_size=256, verbose="auto", **kwargs):
        """Fits k-means or the mixture on the codes of `x` and sets the head.

        Args:
            x: the data to cluster, `(n_samples, ...)`, or a `tf.data.Dataset` of
                batches (data larger than memory: the codes, N x code size, are held;
                the clusterer is fitted on at most `CLUSTERER_MAX_SAMPLES` of them).
            y: must be None (labels are not used).
            batch_size: batch size of the encoding.
            verbose: prints the fit's summary unless 0.
            **kwargs: `keras.Model.fit` arguments about epochs (`epochs`,
                `callbacks`, `validation_data`, ...) are refused with a ValueError:
                the clustering stage is not iterative (train the autoencoder with
                `pretrain`).

        Returns:
            A `keras.callbacks.History` with one entry: `loss` (k-means: mean
            squared distance to the centroid; GMM: negative mean log-likelihood),
            for the GMM `bic`, and `restart_agreement` (see `fit_clusterer`).
        """
        refuse_epoch_arguments(self, kwargs)
        x, _ = self._check_fit_arguments(x, y)
        codes = self.finite_codes(x, batch_size=batch_size).astype(np.float64)
        check_n_clusters(self.n_clusters, len(codes))
        logs = self.fit_clusterer(codes)
        if verbose != 0:
            print(f"{self.clusterer} on {len(codes)} codes of size {codes.shape[1]}: "
                  + ", ".join(f"{k} {v:.4g}" for k, v in logs.items()))
        history = keras.callbacks.History()
        history.history = {k: [v] for k, v in logs.items()}
        return history

    def get_config(self):
        config = super().get_config()
        config.update({"clusterer": self.clusterer, "covariance_type": self.covariance_type,
                       "n_init": self.n_init, "max_iter": self.max_iter,
                       "temperature": self.temperature})
        return config


AEKMeans = method_variant(TwoStageClustering, "AEKMeans", "ae-kmeans", "Dense AE + k-means.",
                          network="dense", clusterer="kmeans")
CAEKMeans = method_variant(TwoStageClustering, "CAEKMeans", "cae-kmeans",
                           "Convolutional AE + k-means.", network="conv", clusterer="kmeans")
AEGMM = method_variant(TwoStageClustering, "AEGMM", "ae-gmm", "Dense AE + Gaussian mixture.",
                       network="dense", clusterer="gmm")
CAEGMM = method_variant(TwoStageClustering, "CAEGMM", "cae-gmm",
                        "Convolutional AE + Gaussian mixture.", network="conv", clusterer="gmm")
