"""The one factory of the package's k-means and Gaussian-mixture fits, and the helpers
that go with them. numpy and scikit-learn only."""

import itertools

import numpy as np
from sklearn.cluster import KMeans
from sklearn.metrics import adjusted_rand_score
from sklearn.mixture import GaussianMixture


def sample_rows(points, max_samples, random_state=None):
    """`points` itself when it has at most `max_samples` rows, else a seeded random sample
    of that many rows (in their order)."""
    if len(points) <= max_samples:
        return points
    return points[np.sort(np.random.default_rng(random_state).choice(
        len(points), max_samples, replace=False))]


def fit_on_sample(estimator, codes, max_samples, random_state=None):
    """Fits a scikit-learn clusterer on at most `max_samples` rows of `codes` (a seeded
    random sample when there are more) and labels every row.

    k-means with many restarts on millions of codes costs minutes for centroids that a
    sample of 100,000 places as well; the codes of all rows (N x code size, 40 MB for
    a million 10-d codes) are still labelled, by `predict`.

    Returns:
        `(estimator, labels)`, the labels `(n_samples,)` int32.
    """
    if len(codes) <= max_samples:
        return estimator, estimator.fit_predict(codes).astype(np.int32)
    estimator.fit(sample_rows(codes, max_samples, random_state))
    return estimator, estimator.predict(codes).astype(np.int32)


CLUSTERERS = ("kmeans", "gmm")


# The restarts of every k-means or mixture fit (the lowest inertia or the most likely is
# kept), the same for every method and baseline: DEC's k-means setting. 10 and 20 starts
# gave the same partitions of `auto`'s manifold and of the UMAP baseline on the digits and
# Fashion-MNIST (benchmarks/results/mixture_restarts.md); one start split or merged classes.
N_INIT = 20


def check_clusterer(kind, name, allowed=CLUSTERERS):
    """`kind` if it is one of `allowed`, else a ValueError naming `name`."""
    if kind not in allowed:
        raise ValueError(f"{name} must be one of {allowed}, got {kind!r}.")
    return kind


def make_clusterer(kind, n_clusters, n_init=N_INIT, random_state=None, covariance_type="full",
                   max_iter=None):
    """The unfitted scikit-learn clusterer of every k-means or Gaussian-mixture fit in
    the package: k-means ("kmeans") or a Gaussian mixture fitted by EM ("gmm", full
    covariance unless asked), best of `n_init` restarts; `max_iter` None keeps
    scikit-learn's default (300 for k-means, 100 for EM)."""
    check_clusterer(kind, "clusterer")
    iterations = {} if max_iter is None else {"max_iter": max_iter}
    if kind == "kmeans":
        return KMeans(n_clusters, n_init=n_init, random_state=random_state, **iterations)
    return GaussianMixture(n_clusters, covariance_type=covariance_type, n_init=n_init,
                           random_state=random_state, **iterations)


def fit_restarts(kind, n_clusters, points, n_init=N_INIT, random_state=None,
                 covariance_type="full", max_iter=None):
    """Fits `n_init` single-start k-means or mixtures (as `make_clusterer` makes them) on
    `points` and keeps the best, as scikit-learn's `n_init` does: the lowest inertia for
    k-means, the highest likelihood bound for a mixture. Each start is kept apart so that
    their partitions can be compared.

    Returns:
        `(best, agreement)`: the best fitted estimator, and the mean adjusted Rand index
        between the partitions of `points` that the starts found (1.0: every start found
        the same clusters; None for a single start). A low agreement says the clusters
        depend on the start, which a user without labels can see.
    """
    seeds = np.random.default_rng(random_state).integers(0, 2**31 - 1, n_init)
    fits, partitions = [], []
    for seed in seeds:
        estimator = make_clusterer(kind, n_clusters, 1, int(seed), covariance_type, max_iter)
        partitions.append(estimator.fit_predict(points))
        fits.append(estimator)
    quality = [-fit.inertia_ if kind == "kmeans" else fit.lower_bound_ for fit in fits]
    return fits[int(np.argmax(quality))], mean_pairwise_ari(partitions)


def mean_pairwise_ari(partitions):
    """Mean adjusted Rand index over every pair of `partitions` (None for fewer than two)."""
    pairs = list(itertools.combinations(partitions, 2))
    if not pairs:
        return None
    return float(np.mean([adjusted_rand_score(a, b) for a, b in pairs]))


def centroids_of(clusterer):
    """The k-means centres or the mixture's means of a fitted clusterer, `(K, d)`."""
    if hasattr(clusterer, "cluster_centers_"):
        return clusterer.cluster_centers_
    return clusterer.means_


def nearest_centroid(codes, centroids):
    """Index of the nearest of `centroids` (K x d) for each of `codes` (N x d), as an
    `(N,)` int32 array; computed in float64 through N x K distances, never N x K x d."""
    codes, centroids = np.asarray(codes, np.float64), np.asarray(centroids, np.float64)
    squared = (np.sum(codes**2, axis=1, keepdims=True) - 2 * codes @ centroids.T
               + np.sum(centroids**2, axis=1))
    return np.argmin(squared, axis=1).astype(np.int32)


def umap_class():
    """umap-learn's `UMAP`, with an error that says how to install it."""
    try:
        from umap import UMAP
    except ImportError:
        raise ImportError(
            "N2D, auto and the UMAP + GMM baseline fit UMAP with umap-learn, which is not "
            'installed: pip install "keras-deepclust[n2d]" (or umap-learn itself). '
            "Assigning clusters with a fitted or exported N2D model does not need it."
        ) from None
    return UMAP


def umap_mixture_labels(x, n_clusters, random_state=None, n_neighbors=10, min_dist=0.0,
                        n_components=10, n_init=N_INIT):
    """Labels of a full-covariance Gaussian mixture (the most likely of `n_init` starts,
    as N2D's) on a UMAP embedding of the rows of `x` (flattened): the strongest
    training-free baseline on image data (0.88 ACC on the digits), which deep clustering
    should beat. Needs umap-learn."""
    rows = np.asarray(x, np.float32).reshape(len(x), -1)
    embedding = umap_class()(n_components=n_components, n_neighbors=n_neighbors,
                             min_dist=min_dist, random_state=random_state).fit_transform(rows)
    mixture, _ = fit_restarts("gmm", n_clusters, embedding, n_init, random_state)
    return mixture.predict(embedding)
