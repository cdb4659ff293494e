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
from keras_deepclust.clusterers import N_INIT, check_clusterer
from keras_deepclust.layers import GaussianMixturePosterior, NearestCentroidSoftmax
from keras_deepclust.models.autoencoder import AutoencoderClusteringModel
from keras_deepclust.models.base import method_variant
from keras_deepclust.models.heads import FittedClustererHead
from keras_deepclust.models.one_shot import OneShotClusteringModel

COVARIANCE_TYPES = ("full", "tied", "diag", "spherical")


@keras.saving.register_keras_serializable(package="keras_deepclust")
class TwoStageClustering(FittedClustererHead, AutoencoderClusteringModel, OneShotClusteringModel):
    """An autoencoder, then k-means or a Gaussian mixture on its codes.

    `pretrain(x)` trains the autoencoder (`keras.Model.fit` on reconstruction);
    `fit(x)` fits the clusterer once on the codes of `x` and copies it into the head
    (`OneShotClusteringModel.fit`: no epochs).
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

    def __init__(
        self,
        n_clusters=10,
        network="dense",
        clusterer="kmeans",
        covariance_type="full",
        n_init=N_INIT,
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

    def _fit_once(self, x, batch_size, verbose, shuffle):
        """Fits k-means or the mixture on the codes of `x` (of a stream, at most
        `CLUSTERER_MAX_SAMPLES` of them; the codes, N x code size, are held) and sets
        the head.

        Logs: `loss` (k-means: mean squared distance to the centroid; GMM: negative
        mean log-likelihood), for the GMM `bic`, and `restart_agreement` (see
        `fit_clusterer`).
        """
        codes = self.finite_codes(x, batch_size=batch_size).astype(np.float64)
        check_n_clusters(self.n_clusters, len(codes))
        logs = self.fit_clusterer(codes)
        if verbose != 0:
            print(f"{self.clusterer} on {len(codes)} codes of size {codes.shape[1]}: "
                  + ", ".join(f"{k} {v:.4g}" for k, v in logs.items()))
        return logs

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
