"""The heads a method composes with its encoder when they are not its own: a head of
centroids on the code (DEC, AEC, DAC) and the head that copies a fitted scikit-learn k-means
or Gaussian mixture (the two-stage methods, N2D, `auto`). Mixed in before the encoder
part, e.g. `class AEC(NearestCentroidHead, AutoencoderClusteringModel, ...)`."""

import numpy as np

from keras_deepclust.clusterers import fit_restarts, sample_rows
from keras_deepclust.layers import NearestCentroidSoftmax


class CentroidHead:
    """For methods whose head is one layer of centroids on the code (DEC's Student-t
    `clustering`, AEC's and DAC's nearest-centroid `centroid_head`): the model's call and
    the centroids, both through `head`."""

    def call(self, inputs, training=None):
        return self.head(self.encoder(inputs, training=training))

    def code_centroids(self):
        """The cluster centroids in code space, `(K, embedding_dim)`."""
        return self.head.centroids.numpy()


class NearestCentroidHead(CentroidHead):
    """For methods whose head is `centroid_head`, a `NearestCentroidSoftmax` on the code
    (AEC, DAC). The method calls `_build_centroid_head()`."""

    def _build_centroid_head(self):
        self.centroid_head = NearestCentroidSoftmax(self.n_clusters, name="centroid_head")
        self.centroid_head.build((None, self.embedding_dim))

    def soft_assignment_head(self):
        return self.centroid_head


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
