import keras
import numpy as np
import pytest

from keras_deepclust import losses
from keras_deepclust.layers import ClusteringLayer


def student_t(z, mu, alpha):
    d2 = ((z[:, None, :] - mu[None, :, :]) ** 2).sum(-1)
    kernel = (1 + d2 / alpha) ** (-(alpha + 1) / 2)
    return kernel / kernel.sum(1, keepdims=True)


@pytest.mark.parametrize("alpha", [1.0, 2.5])
def test_clustering_layer_matches_numpy(alpha):
    rng = np.random.default_rng(0)
    z = rng.normal(size=(7, 3)).astype("float32")
    mu = rng.normal(size=(4, 3)).astype("float32")
    layer = ClusteringLayer(4, alpha=alpha)
    layer.build((None, 3))
    layer.set_centroids(mu)
    q = np.asarray(layer(z))
    np.testing.assert_allclose(q, student_t(z, mu, alpha), rtol=1e-5)
    np.testing.assert_allclose(q.sum(1), 1.0, rtol=1e-6)


def test_clustering_layer_hand_computed_value():
    # z = (0, 0); centroids (0, 0) and (1, 1): kernels 1 and 1/3 -> q = (0.75, 0.25).
    layer = ClusteringLayer(2)
    layer.build((None, 2))
    layer.set_centroids(np.array([[0, 0], [1, 1]], "float32"))
    np.testing.assert_allclose(np.asarray(layer(np.zeros((1, 2), "float32"))), [[0.75, 0.25]])


def test_clustering_layer_serialization_round_trip(tmp_path):
    inputs = keras.Input((3,))
    model = keras.Model(inputs, ClusteringLayer(4, alpha=2.0, name="clu")(inputs))
    path = tmp_path / "m.keras"
    model.save(path)
    restored = keras.saving.load_model(path)
    z = np.random.default_rng(0).normal(size=(5, 3)).astype("float32")
    np.testing.assert_array_equal(model.predict(z, verbose=0), restored.predict(z, verbose=0))
    layer = restored.get_layer("clu")
    assert (layer.n_clusters, layer.alpha) == (4, 2.0)
    assert ClusteringLayer.from_config(layer.get_config()).get_config() == layer.get_config()


def test_clustering_layer_bad_arguments():
    with pytest.raises(ValueError, match="n_clusters must be an integer >= 2, got 1"):
        ClusteringLayer(1)
    with pytest.raises(ValueError, match="alpha must be > 0"):
        ClusteringLayer(3, alpha=0)
    with pytest.raises(ValueError, match="expected ndim=2"):
        ClusteringLayer(3)(np.zeros((2, 3, 4), "float32"))
    layer = ClusteringLayer(3)
    layer.build((None, 2))
    with pytest.raises(ValueError, match=r"centroids must have shape \(3, 2\), got \(3, 5\)"):
        layer.set_centroids(np.zeros((3, 5), "float32"))


def test_target_distribution_hand_computed():
    q = np.array([[0.6, 0.4], [0.5, 0.5]], "float32")
    # f = (1.1, 0.9); row 1: (0.36/1.1, 0.16/0.9) normalised; row 2: (0.25/1.1, 0.25/0.9).
    expected = np.array(
        [[0.36 / 1.1, 0.16 / 0.9], [0.25 / 1.1, 0.25 / 0.9]], "float64"
    )
    expected /= expected.sum(1, keepdims=True)
    np.testing.assert_allclose(np.asarray(losses.target_distribution(q)), expected, rtol=1e-5)


def test_target_distribution_properties():
    rng = np.random.default_rng(0)
    q = rng.dirichlet(np.ones(5), size=200).astype("float32")
    p = np.asarray(losses.target_distribution(q))
    np.testing.assert_allclose(p.sum(1), 1.0, rtol=1e-5)
    assert (p > 0).all()
    # Sharpening: the most confident assignment of balanced data gets more confident.
    q_balanced = np.array([[0.7, 0.3], [0.3, 0.7]], "float32")
    p_balanced = np.asarray(losses.target_distribution(q_balanced))
    assert p_balanced[0, 0] > 0.7 and p_balanced[1, 1] > 0.7
    # Frequency normalisation: a large cluster's pull is divided down.
    q_skewed = np.array([[0.5, 0.5]] + [[0.9, 0.1]] * 9, "float32")
    assert np.asarray(losses.target_distribution(q_skewed))[0, 1] > 0.5


def test_kl_divergence_and_reconstruction_error_match_numpy():
    p = np.array([[0.7, 0.3], [0.2, 0.8]], "float32")
    q = np.array([[0.5, 0.5], [0.4, 0.6]], "float32")
    expected = (p * np.log(p / q)).sum(1)
    np.testing.assert_allclose(np.asarray(losses.kl_divergence(p, q)), expected, rtol=1e-5)
    np.testing.assert_allclose(np.asarray(losses.kl_divergence(p, p)), 0.0, atol=1e-7)
    x = np.arange(8, dtype="float32").reshape(2, 2, 2, 1)
    np.testing.assert_allclose(
        np.asarray(losses.reconstruction_error(x, x + np.array([1, 2], "float32").reshape(2, 1, 1, 1))),
        [1.0, 4.0],
    )
