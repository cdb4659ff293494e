import itertools
import logging

import keras
import numpy as np
import pytest
from sklearn.cluster import KMeans

from keras_deepclust import metrics, plots
from keras_deepclust.callbacks import ClusteringMetrics
from keras_deepclust.models import DAC, get_method, list_methods
from keras_deepclust.models.dac import feature_weights

# The paper's raw Eq. 5 weights, so the tests compare them with `feature_weights`.
SMALL = {"hidden_units": (16, 8), "embedding_dim": 3, "n_init": 3, "normalize_weights": False}


def eq5_by_loops(x, labels):
    """Eq. 5 written out pair by pair (p != q), feature by feature."""
    weights = []
    for i in range(x.shape[1]):
        same, different = [], []
        for p, q in itertools.permutations(range(len(x)), 2):
            kernel = np.exp(-((x[p, i] - x[q, i]) ** 2))
            (same if labels[p] == labels[q] else different).append(kernel)
        weights.append(np.mean(same) * np.mean([1 - k for k in different]))
    return np.array(weights)


def objective(model, x):
    """Eq. 6 by numpy: clustering-weighted MSE + beta * squares of every parameter."""
    squared = ((model.reconstruct(x) - x) ** 2).reshape(len(x), -1)
    weighted_mse = np.mean((squared * model.feature_weights).sum(1) / squared.shape[1])
    parameters = model.encoder.get_weights() + model.decoder.get_weights()
    l2 = sum(float(np.square(w.astype(np.float64)).sum()) for w in parameters)
    return weighted_mse + model.beta * l2, weighted_mse, l2


def make_blobs(seed=0):
    rng = np.random.default_rng(seed)
    centers = np.array([[0.1] * 6, [0.5] * 6, [0.9] * 6], dtype=np.float32)
    y = np.repeat(np.arange(3), 30)
    return (centers[y] + rng.normal(0, 0.03, size=(90, 6))).astype(np.float32), y


@pytest.fixture(scope="module")
def fitted():
    x, y = make_blobs()
    model = DAC(n_clusters=3, random_state=0, **SMALL)
    history = model.fit(x, epochs=4, batch_size=16, verbose=0, validation_data=x[:30],
                        callbacks=[ClusteringMetrics(x, y)])
    return model, x, y, history


def test_feature_weights_match_equation_5():
    rng = np.random.default_rng(0)
    x = rng.uniform(0, 1, (7, 3))
    labels = np.array([0, 0, 1, 1, 1, 2, 0])  # label 2 has a single row: it only differs
    expected = eq5_by_loops(x, labels)
    np.testing.assert_allclose(feature_weights(x, labels), expected, rtol=1e-5)
    # Blocks of one row and one feature give the same sums.
    np.testing.assert_allclose(feature_weights(x, labels, max_elements=1), expected, rtol=1e-5)
    images = x[:, :2].reshape(7, 2, 1)  # any sample rank is flattened
    np.testing.assert_allclose(feature_weights(images, labels), expected[:2], rtol=1e-5)


def test_feature_weights_on_mnist_sized_samples():
    rng = np.random.default_rng(0)
    x = rng.uniform(0, 1, (1000, 784)).astype(np.float32)
    weights = feature_weights(x, rng.integers(0, 10, 1000))
    assert weights.shape == (784,) and weights.dtype == np.float32
    # Labels unrelated to the features: every feature gets about the same weight.
    assert np.all(np.isfinite(weights)) and np.ptp(weights) < 0.02


def test_feature_weights_errors():
    x = np.zeros((4, 2))
    with pytest.raises(ValueError, match=r"at least two distinct values, got only \[1\]"):
        feature_weights(x, [1, 1, 1, 1])
    with pytest.raises(ValueError, match="Every label has a single row"):
        feature_weights(x, [0, 1, 2, 3])
    with pytest.raises(ValueError, match="labels has 3 entries but the data has 4 samples"):
        feature_weights(x, [0, 0, 1])
    with pytest.raises(ValueError, match="max_elements must be a positive integer, got 0"):
        feature_weights(x, [0, 0, 1, 1], max_elements=0)


def test_batch_loss_is_weighted_mse_plus_l2_of_all_parameters(blobs):
    x, _ = blobs
    # scaling="none": train_on_batch feeds x to the networks as is, as the equation does.
    model = DAC(n_clusters=3, random_state=0, beta=1e-3, scaling="none", **SMALL)
    model.compute_feature_weights(x)
    expected, weighted_mse, l2 = objective(model, x)
    assert model.beta * l2 > 0.1 * weighted_mse  # both terms matter in this check
    model.compile(optimizer=keras.optimizers.SGD(1e-3))
    for logs in (model.test_on_batch(x, return_dict=True),
                 model.train_on_batch(x, return_dict=True)):  # the loss before the update
        assert logs["loss"] == pytest.approx(expected, rel=1e-4)
        assert logs["weighted_mse"] == pytest.approx(weighted_mse, rel=1e-4)
        assert logs["l2"] == pytest.approx(l2, rel=1e-4)


def test_one_epoch_lowers_the_loss_and_keeps_the_weights(blobs):
    x, _ = blobs
    model = DAC(n_clusters=3, random_state=0, scaling="none", **SMALL)  # Eq. 6 on x as is
    weights = model.compute_feature_weights(x)
    before = objective(model, x)[0]
    model.fit(x, epochs=1, batch_size=16, verbose=0)
    assert objective(model, x)[0] < before
    np.testing.assert_array_equal(model.feature_weights, weights)  # same data: not recomputed
    assert model.weight_source == "kmeans-pseudo-labels"


def test_fit_history_lr_decay_and_assignments(fitted):
    model, x, _, history = fitted
    losses = history.history["loss"]
    assert len(losses) == 4 and losses[-1] < losses[0]
    assert set(history.history) == {"loss", "weighted_mse", "l2", "val_loss", "val_weighted_mse",
                                    "val_l2", "acc", "nmi", "ari", "v_measure"}
    assert int(model.optimizer.iterations.numpy()) == 4 * 6  # ceil(90 / 16) steps an epoch
    learning_rate = float(keras.ops.convert_to_numpy(model.optimizer.learning_rate))
    assert learning_rate == pytest.approx(0.003 * 0.99**4, rel=1e-5)
    probabilities = model.predict(x)
    assert probabilities.shape == (90, 3) and probabilities.dtype == np.float32
    np.testing.assert_allclose(probabilities.sum(1), 1.0, atol=1e-5)
    labels = model.predict_labels(x)
    assert labels.shape == (90,) and labels.dtype == np.int32
    kmeans = KMeans(3, n_init=model.n_init, random_state=0)
    np.testing.assert_array_equal(labels, kmeans.fit_predict(model.embed(x).astype(np.float64)))
    np.testing.assert_array_equal(model.fit_centroids(x), labels)


def test_fit_learns_well_separated_clusters(fitted):
    model, x, y, history = fitted
    scores = metrics.clustering_scores(y, model.predict_labels(x))
    assert scores["acc"] >= 0.95
    # ClusteringMetrics scored centroids refitted on each epoch's codes.
    assert history.history["acc"][-1] == scores["acc"]


def test_weight_labels_are_used_for_the_weights(blobs, caplog):
    x, y = blobs
    stripes = np.arange(90) % 3  # a labelling unrelated to the blobs
    model = DAC(n_clusters=3, random_state=0, scaling="none", **SMALL)  # Eq. 5 on x as is
    pseudo = model.compute_feature_weights(x)
    kmeans_labels = KMeans(3, n_init=3, random_state=0).fit_predict(x)
    np.testing.assert_allclose(pseudo, feature_weights(x, kmeans_labels), rtol=1e-6)
    with caplog.at_level(logging.INFO, logger="keras_deepclust.models.dac"):
        model.fit(x, weight_labels=stripes, epochs=1, batch_size=32, verbose=0)
    assert "from labels of 90 sampled rows" in caplog.text
    assert model.weight_source == "labels"
    np.testing.assert_allclose(model.feature_weights, feature_weights(x, stripes), rtol=1e-6)
    assert np.all(model.feature_weights < pseudo)  # labels that cut across the blobs
    # Sampling: m < N rows, seeded by random_state.
    sampled = DAC(n_clusters=3, random_state=0, n_weight_samples=40, scaling="none",
                  **SMALL)
    first = sampled.compute_feature_weights(x, weight_labels=y)
    np.testing.assert_array_equal(sampled.compute_feature_weights(x, weight_labels=y), first)
    assert not np.allclose(first, feature_weights(x, y))
    normalized = DAC(n_clusters=3, random_state=0, scaling="none",
                     **{**SMALL, "normalize_weights": True})
    np.testing.assert_allclose(normalized.compute_feature_weights(x), pseudo / pseudo.mean(),
                               rtol=1e-5)


def test_feature_weights_are_computed_on_the_scaled_inputs(blobs):
    """By default the table is min-max scaled per feature at the first fit (DAC's
    output is a sigmoid), and Eq. 5 is computed on the scaled rows the loss compares."""
    x, _ = blobs
    stripes = np.arange(90) % 3
    model = DAC(n_clusters=3, random_state=0, **SMALL)
    model.fit(x, weight_labels=stripes, epochs=1, batch_size=32, verbose=0)
    scaled = model.preprocess(x)
    low, high = x.min(0), x.max(0)
    np.testing.assert_allclose(scaled, (x - low) / (high - low), rtol=1e-4, atol=1e-5)
    np.testing.assert_allclose(model.feature_weights, feature_weights(scaled, stripes), rtol=1e-6)
    assert not np.allclose(model.feature_weights, feature_weights(x, stripes), rtol=1e-2)


def test_weights_inspected_before_fit_are_the_weights_fit_uses(blobs):
    x, _ = blobs
    model = DAC(n_clusters=3, random_state=0, **SMALL)
    inspected = model.compute_feature_weights(x)  # "call it yourself to inspect the weights"
    model.fit(x, epochs=1, batch_size=32, verbose=0)
    np.testing.assert_allclose(model.feature_weights, inspected, rtol=1e-6)


def test_save_load_round_trip(fitted, round_trip):
    model, x, _, _ = fitted
    restored = round_trip(model, x)
    np.testing.assert_array_equal(restored.feature_weights, model.feature_weights)
    np.testing.assert_array_equal(restored.code_centroids(), model.code_centroids())
    assert restored.weight_source == "kmeans-pseudo-labels"


def test_default_network_follows_the_paper():
    model = DAC(sample_shape=(64,))
    assert model.hidden_units == (512, 256, 128, 64, 32, 16) and model.embedding_dim == 10
    dense = [layer for layer in model.encoder.layers if isinstance(layer, keras.layers.Dense)]
    assert len(dense) == 7  # six hidden layers, code
    assert [layer.activation.__name__ for layer in dense] == ["relu_tanh"] * 6 + ["linear"]
    dense = [layer for layer in model.decoder.layers if isinstance(layer, keras.layers.Dense)]
    assert [layer.activation.__name__ for layer in dense] == ["tanh"] * 6 + ["sigmoid"]
    assert (model.beta, model.learning_rate, model.n_weight_samples) == (1e-5, 0.003, 1000)
    assert model.normalize_weights is True
    assert DAC.from_config(model.get_config()).get_config() == model.get_config()


def test_config_round_trip():
    model = DAC(n_clusters=5, beta=1e-4, n_weight_samples=50, learning_rate=0.01, lr_decay=0.9,
                decoder_activation="relu", random_state=1, **SMALL)
    config = model.get_config()
    assert DAC.from_config(config).get_config() == config
    assert config["normalize_weights"] is False and config["lr_decay"] == 0.9


def test_registry():
    assert get_method("dac") is DAC
    assert "dac" in list_methods()
    assert DAC.NEEDS_PRETRAINING is False


def test_bad_inputs(blobs):
    x, y = blobs
    model = DAC(n_clusters=3, **SMALL)
    bad = x.copy()
    bad[5, 2] = np.nan
    with pytest.raises(ValueError, match=r"x contains NaN or infinite values \(1 of them"):
        model.fit(bad, epochs=1, verbose=0)
    with pytest.raises(ValueError, match=r"n_clusters=3 is larger than the number of samples \(2\)"):
        model.fit(x[:2], epochs=1, verbose=0)
    with pytest.raises(ValueError, match="weight_labels has 89 entries but the data has 90 samples"):
        model.fit(x, weight_labels=y[:-1], epochs=1, verbose=0)
    with pytest.raises(ValueError, match="fit\\(\\) does not use labels.*ClusteringMetrics"):
        model.fit(x, y, verbose=0)
    with pytest.raises(ValueError, match="need at least n_clusters=3 sampled rows, got 2"):
        DAC(n_clusters=3, n_weight_samples=2, **SMALL).compute_feature_weights(x)
    with pytest.raises(ValueError, match="Every feature weight is 0: the 90 sampled rows"):
        model.compute_feature_weights(np.zeros_like(x), weight_labels=y)
    with pytest.raises(ValueError, match="n_clusters must be an integer >= 2, got 1"):
        DAC(n_clusters=1)
    with pytest.raises(ValueError, match="network must be 'dense', got 'conv'"):
        DAC(network="conv")


@pytest.mark.parametrize(
    "kwargs, message",
    [
        ({"beta": -1.0}, "beta must be >= 0, got -1.0"),
        ({"learning_rate": 0}, "learning_rate must be > 0, got 0"),
        ({"lr_decay": 1.5}, r"lr_decay must be in \(0, 1\], got 1.5"),
        ({"n_weight_samples": 1}, "n_weight_samples must be >= 2, got 1"),
        ({"n_init": 0}, "n_init must be a positive integer, got 0"),
    ],
)
def test_bad_hyperparameters_name_the_value(kwargs, message):
    with pytest.raises(ValueError, match=message):
        DAC(n_clusters=3, **kwargs)


def test_plot_feature_weights(tmp_path):
    weights = np.linspace(0, 1, 64)
    for shape, name in (((8, 8, 1), "image.png"), ((8, 8), "plain.png"), ((64,), "bars.png"),
                        ((4, 4, 4), "channels.png")):
        path = plots.plot_feature_weights(weights, shape, tmp_path / name)
        assert path.stat().st_size > 0
