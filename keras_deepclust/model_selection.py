"""Choosing the number of clusters K when it is unknown.

`sweep_n_clusters` fits k-means or a Gaussian mixture for each K of a range on a
set of codes (or any features) and scores every fit with label-free criteria
(silhouette, Calinski-Harabasz, and BIC for mixtures) and, when labels are given,
the v-measure. `best_n_clusters` picks K by one criterion. `internal_scores` gives the
label-free criteria of any one clustering.
"""

import numpy as np
from sklearn.metrics import calinski_harabasz_score, silhouette_score, v_measure_score

from keras_deepclust._validation import check_array, check_labels, check_n_clusters
from keras_deepclust.clusterers import N_INIT, check_clusterer, make_clusterer

# Whether a larger value of each criterion is better.
CRITERIA = {"silhouette": True, "calinski_harabasz": True, "bic": False, "v_measure": True}


def sweep_n_clusters(
    codes,
    n_clusters_range=range(2, 21),
    clusterer="kmeans",
    y=None,
    covariance_type="full",
    n_init=N_INIT,
    max_iter=100,
    silhouette_sample_size=5000,
    random_state=None,
):
    """Fits a clusterer for each K and scores it.

    Args:
        codes: `(n_samples, n_features)` features to cluster (e.g. `model.embed(x)`).
        n_clusters_range: the values of K to try (each >= 2 and <= n_samples).
        clusterer: "kmeans" or "gmm".
        y: true labels, or None; when given, the v-measure is reported too.
        covariance_type: of the Gaussian mixture.
        n_init, max_iter: restarts and iterations of k-means or EM.
        silhouette_sample_size: rows the silhouette is computed on (it is quadratic
            in the number of rows); all rows when there are fewer.
        random_state: int seed, or None.

    Returns:
        A dict of lists, one entry per K: `n_clusters`, `silhouette`,
        `calinski_harabasz`, `bic` (GMM only) and `v_measure` (with `y` only).

    Example:

    >>> import numpy as np
    >>> codes = np.concatenate([np.zeros((20, 2)), np.ones((20, 2))])
    >>> codes += np.random.default_rng(0).normal(0, 0.05, codes.shape)
    >>> sweep = sweep_n_clusters(codes, range(2, 5), random_state=0)
    >>> best_n_clusters(sweep, "silhouette")
    2
    """
    codes = check_array(codes, name="codes", min_samples=2, dtype=np.float64)
    if codes.ndim != 2:
        raise ValueError(f"codes must be 2-D (n_samples, n_features), got shape {codes.shape}.")
    check_clusterer(clusterer, "clusterer")
    ks = [check_n_clusters(k, len(codes)) for k in n_clusters_range]
    if not ks:
        raise ValueError("n_clusters_range is empty.")
    if y is not None:
        y = check_labels(y, len(codes), name="y")
    # One silhouette sample for every K, so that their silhouettes compare.
    sample = _silhouette_sample(len(codes), silhouette_sample_size, random_state)
    sweep = {"n_clusters": ks, "silhouette": [], "calinski_harabasz": []}
    if clusterer == "gmm":
        sweep["bic"] = []
    if y is not None:
        sweep["v_measure"] = []
    for k in ks:
        model = make_clusterer(clusterer, k, n_init, random_state,
                               covariance_type=covariance_type, max_iter=max_iter)
        labels = model.fit_predict(codes)
        scores = _internal_scores(codes, labels, sample)
        for name in ("silhouette", "calinski_harabasz"):
            sweep[name].append(scores[name])
        if clusterer == "gmm":
            sweep["bic"].append(float(model.bic(codes)))
        if y is not None:
            sweep["v_measure"].append(float(v_measure_score(y, labels)))
    return sweep


def internal_scores(codes, labels, silhouette_sample_size=5000, random_state=None):
    """The label-free quality of one clustering of `codes`: the silhouette (-1 to 1) on
    `silhouette_sample_size` random rows (it is quadratic in the rows; all rows when
    there are fewer) and the Calinski-Harabasz index on all rows. Higher is better for
    both. Both are undefined (None, with the reason under "undefined") unless the rows
    fall in at least two clusters and fewer clusters than rows."""
    codes = check_array(codes, name="codes", min_samples=2, dtype=np.float64)
    codes = codes.reshape(len(codes), -1)
    labels = check_labels(labels, len(codes), name="labels")
    used = len(np.unique(labels))
    if not 2 <= used < len(codes):
        return {"silhouette": None, "calinski_harabasz": None,
                "undefined": f"the {len(codes)} rows fall in {used} cluster(s); the scores "
                             "compare clusters, so they need from 2 to one fewer than the rows"}
    return _internal_scores(codes, labels,
                            _silhouette_sample(len(codes), silhouette_sample_size, random_state))


def _silhouette_sample(n_rows, size, random_state):
    if n_rows <= size:
        return np.arange(n_rows)
    return np.random.default_rng(random_state).choice(n_rows, size, replace=False)


def _internal_scores(codes, labels, sample):
    return {"silhouette": _label_score(silhouette_score, codes[sample], labels[sample]),
            "calinski_harabasz": _label_score(calinski_harabasz_score, codes, labels)}


def _label_score(score, codes, labels):
    # Both scores need 2 to n - 1 distinct labels; a mixture can leave components empty.
    return (float(score(codes, labels)) if 2 <= len(np.unique(labels)) < len(labels)
            else float("nan"))


def best_n_clusters(sweep, criterion):
    """K with the best value of `criterion` ("silhouette", "calinski_harabasz", "bic"
    or "v_measure") in a `sweep_n_clusters` result."""
    if criterion not in CRITERIA:
        raise ValueError(f"criterion must be one of {sorted(CRITERIA)}, got {criterion!r}.")
    if criterion not in sweep:
        raise ValueError(
            f"the sweep has no {criterion!r} values (bic needs clusterer='gmm', v_measure "
            "needs labels)."
        )
    values = np.asarray(sweep[criterion], dtype=np.float64)
    if np.isnan(values).all():
        raise ValueError(f"every {criterion} value of the sweep is undefined.")
    index = np.nanargmax(values) if CRITERIA[criterion] else np.nanargmin(values)
    return int(sweep["n_clusters"][index])
