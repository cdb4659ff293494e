import numpy as np
import pytest
from sklearn.cluster import KMeans
from sklearn.metrics import calinski_harabasz_score, silhouette_score

from keras_deepclust import metrics
from keras_deepclust.clusterers import N_INIT
from keras_deepclust.model_selection import (
    best_n_clusters,
    internal_scores,
    sweep_n_clusters,
)
from keras_deepclust.models import (
    AEGMM,
    CAEGMM,
    AEKMeans,
    CAEKMeans,
    TwoStageClustering,
    get_method,
)

TINY = {"hidden_units": (16,), "embedding_dim": 3}


def fitted(x, cls=AEKMeans, epochs=30, **kwargs):
    model = cls(n_clusters=3, random_state=0, **{**TINY, **kwargs})
    model.pretrain(x, epochs=epochs, batch_size=32, verbose=0)
    model.fit(x, verbose=0)
    return model


def test_registry_names():
    assert {name: get_method(name) for name in ("ae-kmeans", "cae-kmeans", "ae-gmm", "cae-gmm")} \
        == {"ae-kmeans": AEKMeans, "cae-kmeans": CAEKMeans, "ae-gmm": AEGMM, "cae-gmm": CAEGMM}
    assert CAEGMM(3).network == "conv" and CAEGMM(3).clusterer == "gmm"


def test_kmeans_head_is_kmeans_on_the_codes(blobs):
    x, y = blobs
    model = fitted(x)
    codes = model.embed(x)
    kmeans = model.clusterer_
    np.testing.assert_array_equal(model.predict_labels(x), kmeans.predict(codes.astype(np.float64)))
    probabilities = model.predict(x)
    assert probabilities.shape == (90, 3) and probabilities.dtype == np.float32
    np.testing.assert_allclose(probabilities.sum(1), 1, atol=1e-5)
    distances = ((codes[:, None] - kmeans.cluster_centers_[None]) ** 2).sum(-1)
    np.testing.assert_allclose(model.fit(x, verbose=0).history["loss"][0],
                               distances.min(1).mean(), rtol=1e-4)
    assert metrics.clustering_scores(y, model.predict_labels(x))["acc"] > 0.95


@pytest.mark.parametrize("covariance_type", ["full", "tied", "diag", "spherical"])
def test_gmm_head_is_the_mixture_posterior(blobs, covariance_type):
    x, _ = blobs
    model = fitted(x, AEGMM, covariance_type=covariance_type, epochs=10)
    codes = model.embed(x).astype(np.float64)
    np.testing.assert_allclose(model.predict(x), model.clusterer_.predict_proba(codes), atol=1e-4)
    np.testing.assert_array_equal(model.predict_labels(x), model.clusterer_.predict(codes))
    assert model.fit(x, verbose=0).history["bic"][0] == pytest.approx(model.clusterer_.bic(codes))


def test_save_load_round_trip(tiny_images, round_trip):
    # Export parity of every two-stage method: tests/test_contract.py.
    x, _ = tiny_images
    for cls in (CAEGMM, AEKMeans):
        model = fitted(x, cls, epochs=5)
        loaded = round_trip(model, x)
        assert loaded.head_fitted and loaded.is_pretrained


def test_with_n_clusters_keeps_the_pretrained_autoencoder(blobs):
    x, _ = blobs
    model = AEGMM(n_clusters=2, random_state=0, **TINY)
    model.pretrain(x, epochs=2, verbose=0)
    other = model.with_n_clusters(5)
    assert other.n_clusters == 5 and other.is_pretrained
    np.testing.assert_array_equal(other.embed(x), model.embed(x))


def test_bad_inputs(blobs):
    x, _ = blobs
    model = AEKMeans(n_clusters=3, random_state=0, **TINY)
    bad = x.copy()
    bad[4, 2] = np.nan
    with pytest.raises(ValueError, match="NaN or infinite"):
        model.fit(bad)
    with pytest.raises(ValueError, match="does not use labels"):
        model.fit(x, np.zeros(90))
    with pytest.raises(ValueError, match=r"n_clusters=91 is larger than the number of samples"):
        AEKMeans(n_clusters=91, **TINY).fit(x)
    with pytest.raises(ValueError, match="n_clusters must be an integer >= 2, got 1"):
        AEKMeans(n_clusters=1)
    model.pretrain(x, epochs=1, verbose=0)
    with pytest.raises(ValueError, match="The kmeans head is not fitted yet: call fit"):
        model.predict(x)
    with pytest.raises(ValueError, match=r"clusterer must be one of \('kmeans', 'gmm'\), got 'dbscan'"):
        TwoStageClustering(3, clusterer="dbscan")
    with pytest.raises(ValueError, match="covariance_type must be one of"):
        AEGMM(3, covariance_type="banded")


def test_sweep_finds_the_three_blobs_by_every_criterion(blobs):
    x, y = blobs
    sweep = sweep_n_clusters(x, range(2, 7), clusterer="gmm", y=y, covariance_type="diag",
                             random_state=0)
    assert sweep["n_clusters"] == [2, 3, 4, 5, 6]
    for criterion in ("silhouette", "calinski_harabasz", "bic", "v_measure"):
        assert best_n_clusters(sweep, criterion) == 3, criterion
    kmeans_sweep = sweep_n_clusters(x, [3], random_state=0)
    labels = KMeans(3, n_init=N_INIT, random_state=0).fit_predict(x.astype(np.float64))
    assert kmeans_sweep["silhouette"][0] == pytest.approx(silhouette_score(x, labels))
    assert kmeans_sweep["calinski_harabasz"][0] == pytest.approx(
        calinski_harabasz_score(x, labels))
    assert "bic" not in kmeans_sweep and "v_measure" not in kmeans_sweep


def test_internal_scores_by_hand():
    # Clusters {0, 1} and {10, 11}: every point's own-cluster distance is 1, its mean
    # distance to the other cluster 10.5 (outer points) or 9.5 (inner): silhouettes 9.5/10.5
    # and 8.5/9.5. Calinski-Harabasz: between 4 * 5^2 = 100 over K - 1 = 1, within
    # 4 * 0.5^2 = 1 over n - K = 2: 200.
    codes, labels = np.array([[0.0], [1.0], [10.0], [11.0]]), np.array([0, 0, 1, 1])
    scores = internal_scores(codes, labels)
    assert scores["silhouette"] == pytest.approx((9.5 / 10.5 + 8.5 / 9.5) / 2)
    assert scores["calinski_harabasz"] == pytest.approx(200.0)
    sampled = internal_scores(codes, labels, silhouette_sample_size=2, random_state=0)
    assert sampled["calinski_harabasz"] == pytest.approx(200.0)  # on every row
    one = internal_scores(codes, np.zeros(4, dtype=int))
    assert one["silhouette"] is None and one["calinski_harabasz"] is None  # JSON's null
    assert one["undefined"].startswith("the 4 rows fall in 1 cluster(s)")
    with pytest.raises(ValueError, match="labels has 3 entries but the data has 4 samples"):
        internal_scores(codes, labels[:3])


def test_sweep_errors(blobs):
    x, y = blobs
    with pytest.raises(ValueError, match="n_clusters=100 is larger than the number of samples"):
        sweep_n_clusters(x, [2, 100])
    with pytest.raises(ValueError, match="y has 3 entries but the data has 90 samples"):
        sweep_n_clusters(x, [2], y=y[:3])
    sweep = sweep_n_clusters(x, [2, 3], random_state=0)
    with pytest.raises(ValueError, match="no 'bic' values"):
        best_n_clusters(sweep, "bic")
    with pytest.raises(ValueError, match="criterion must be one of"):
        best_n_clusters(sweep, "elbow")


REFUSED = [("epochs", 3), ("callbacks", []), ("validation_split", 0.2), ("initial_epoch", 1),
           ("steps_per_epoch", 2)]


def test_fit_refuses_the_arguments_of_epoch_training(blobs):
    x, _ = blobs
    assert not any(cls.ITERATIVE_FIT for cls in (AEKMeans, CAEKMeans, AEGMM, CAEGMM,
                                                 TwoStageClustering))
    model = AEGMM(n_clusters=3, random_state=0, **TINY)
    model.pretrain(x, epochs=1, verbose=0)
    for name, value in [*REFUSED, ("validation_data", (x[:10],))]:
        with pytest.raises(ValueError, match=rf"AEGMM.fit fits its clusterer once, with no "
                           rf"epochs, so it cannot honour {name}: train the autoencoder with "
                           r"pretrain\(x, epochs=\.\.\., callbacks=\.\.\.\) instead"):
            model.fit(x, verbose=0, **{name: value})
        assert not model.head_fitted  # refused before anything was fitted
    with pytest.raises(ValueError, match="cannot honour callbacks, epochs: "):
        model.fit(x, epochs=2, callbacks=[], verbose=0)  # all of them named
    with pytest.raises(TypeError, match=r"AEGMM.fit got unexpected arguments \['bach_size'\]"):
        model.fit(x, bach_size=32, verbose=0)  # a misspelt argument is not ignored
    assert not model.head_fitted
    history = model.fit(x, verbose=0)  # without them it fits
    assert model.head_fitted and sum(history.cluster_sizes) == 90


def test_fit_refuses_validation_data_given_as_an_array(blobs):
    x, _ = blobs
    model = AEKMeans(n_clusters=3, random_state=0, **TINY)
    model.pretrain(x, epochs=1, verbose=0)
    try:
        model.fit(x, validation_data=x[:10], verbose=0)
    except ValueError as error:
        assert "cannot honour validation_data" in str(error), str(error)
    else:
        raise AssertionError("fit accepted validation_data")


def test_fit_reports_the_cluster_sizes(blobs):
    x, _ = blobs
    model = AEKMeans(n_clusters=3, random_state=0, **TINY)
    model.pretrain(x, epochs=2, verbose=0)
    history = model.fit(x, verbose=0)
    assert history.cluster_sizes == np.bincount(model.predict_labels(x), minlength=3).tolist()
    assert sum(history.cluster_sizes) == 90 and history.empty_clusters == []
