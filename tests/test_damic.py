from types import SimpleNamespace

import keras
import numpy as np
import pytest
from sklearn.cluster import KMeans
from sklearn.mixture import GaussianMixture

from keras_deepclust.callbacks import ClusteringMetrics
from keras_deepclust.layers import MixtureOfAutoencoders
from keras_deepclust.metrics import clustering_scores
from keras_deepclust.models import DAMIC, get_method
from keras_deepclust.models.damic import mixture_loss

SMALL = {"hidden_units": (16,), "embedding_dim": 3, "clustering_units": (8,)}


def damic(**kwargs):
    options = {"n_clusters": 3, "random_state": 0, "init_epochs": 10,
               "init_learning_rate": 0.03, "learning_rate": 1e-3, "n_init": 3, **SMALL}
    options.update(kwargs)
    return DAMIC(**options)


@pytest.fixture(scope="module")
def start(tmp_path_factory):
    """A pretrained and initialised model on the blobs (saved, for fresh copies), with
    what the initialisation tests check: the K copies right after copying, the
    pretrained reconstructions and the k-means labels."""
    rng = np.random.default_rng(0)  # the `blobs` fixture's data, built once per module
    centers = np.array([[0.1] * 6, [0.5] * 6, [0.9] * 6], dtype=np.float32)
    y = np.repeat(np.arange(3), 30)
    x = (centers[y] + rng.normal(0, 0.03, size=(90, 6))).astype(np.float32)
    model = damic()
    model.pretrain(x, epochs=8, batch_size=8, verbose=0)
    # The networks work on the inputs as the model scales them (standardised table).
    scaled = model.preprocess(x)
    np.testing.assert_allclose(scaled, (x - x.mean(0)) / x.std(0), rtol=1e-4, atol=1e-5)
    model.mixture.set_from_autoencoder(model.encoder, model.decoder)
    copies = keras.ops.convert_to_numpy(model.mixture(scaled))
    pretrained = model.decoder.predict(model.encoder.predict(scaled, verbose=0), verbose=0)
    labels = model.initialize(x, batch_size=8)
    path = tmp_path_factory.mktemp("damic") / "initialized.keras"
    model.save(path)
    return SimpleNamespace(model=model, x=x, scaled=scaled, y=y, copies=copies,
                           pretrained=pretrained, labels=labels, path=path)


def fresh(start):
    """A copy of the initialised model, to train."""
    return keras.saving.load_model(start.path)


def numpy_mixture_loss(probabilities, squared_errors):
    return -np.log(np.sum(probabilities * np.exp(-0.5 * squared_errors), axis=1))


def test_mixture_loss_matches_numpy_and_survives_underflow():
    rng = np.random.default_rng(0)
    probabilities = rng.dirichlet(np.ones(4), size=5)
    squared_errors = rng.uniform(0, 6, size=(5, 4))
    np.testing.assert_allclose(
        mixture_loss(np.log(probabilities), squared_errors).numpy(),
        numpy_mixture_loss(probabilities, squared_errors), rtol=1e-5,
    )
    # exp(-1000) is 0 in float64: the naive formula gives inf, log-sum-exp does not.
    far = np.array([[2000.0, 2004.0, 2010.0]])
    log_p = np.log(np.array([[0.2, 0.3, 0.5]]))
    with np.errstate(divide="ignore"):
        assert np.isinf(numpy_mixture_loss(np.exp(log_p), far)).all()
    shifted = numpy_mixture_loss(np.exp(log_p), far - 2000.0) + 1000.0  # by hand
    loss = mixture_loss(log_p, far).numpy()
    assert np.isfinite(loss).all()
    np.testing.assert_allclose(loss, shifted, rtol=1e-6)


def test_mixture_layer_equals_separate_autoencoders():
    layer = MixtureOfAutoencoders(3, hidden_units=(5, 4), embedding_dim=2, seed=1)
    x = np.random.default_rng(0).uniform(0, 1, (7, 3, 2)).astype("float32")
    reconstructions = keras.ops.convert_to_numpy(layer(x))
    assert reconstructions.shape == (7, 3, 6)
    kernels = [k.numpy() for k in layer.kernels]
    biases = [b.numpy() for b in layer.biases]
    relu_after = [True, True, False, True, True, False]  # linear code and output
    flat = x.reshape(7, 6)
    for k in range(3):
        h = flat
        for kernel, bias, relu in zip(kernels, biases, relu_after):
            h = h @ kernel[k] + bias[k]
            h = np.maximum(h, 0) if relu else h
        np.testing.assert_allclose(reconstructions[:, k], h, rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(
        keras.ops.convert_to_numpy(layer.squared_errors(x)),
        ((flat[:, None] - reconstructions) ** 2).sum(-1), rtol=1e-5,
    )
    clone = MixtureOfAutoencoders.from_config(layer.get_config())
    assert clone.get_config() == layer.get_config()


def test_copies_of_the_pretrained_autoencoder_and_initialisation(start):
    model, x, labels = start.model, start.x, start.labels
    for k in range(3):
        np.testing.assert_allclose(start.copies[:, k], start.pretrained, rtol=1e-5, atol=1e-6)
    assert model.initialized and labels.dtype == np.int32 and labels.shape == (90,)
    assert np.mean(model.predict_labels(x) == labels) >= 0.9
    # Each autoencoder was fine-tuned on its own k-means cluster only.
    errors = keras.ops.convert_to_numpy(model.mixture.squared_errors(start.scaled))
    before = ((start.pretrained - start.scaled) ** 2).sum(1)
    for k in range(3):
        own = labels == k
        assert errors[own, k].mean() < before[own].mean()


def test_gmm_initialisation_labels_by_the_mixture_in_memory_and_on_a_stream(start):
    model = damic(init="gmm").copy_autoencoder_from(start.model)
    codes = model.finite_codes(start.x)
    expected = GaussianMixture(3, covariance_type="full", n_init=3,
                               random_state=0).fit_predict(codes)
    labels = model.initialize(start.x, batch_size=8)
    np.testing.assert_array_equal(labels, expected)
    assert np.mean(model.predict_labels(start.x) == labels) >= 0.9
    # A stream's batches are labelled in TensorFlow; it must agree with scikit-learn, also
    # on points between and beyond the clusters, where the mixture's most probable
    # component is not always the nearest mean.
    probes = np.random.default_rng(1).normal(codes.mean(0), 3 * codes.std(0), (500, 3))
    probes = np.concatenate([codes, probes.astype(np.float32)])
    for name, clusterer in (("kmeans", KMeans(3, n_init=3, random_state=0)),
                            ("gmm", GaussianMixture(3, covariance_type="full", n_init=3,
                                                     random_state=0))):
        model.init = name
        clusterer.fit(codes)
        label_codes = model._label_codes_like(clusterer)
        np.testing.assert_array_equal(label_codes(probes).numpy(), clusterer.predict(probes))
    nearest_mean = np.argmin(((probes[:, None] - clusterer.means_[None]) ** 2).sum(-1), 1)
    assert np.any(nearest_mean != label_codes(probes).numpy())  # the last: the mixture


def test_loss_is_the_hand_computed_mixture_loss(start):
    # predict takes raw x; the networks, the loss and train_on_batch take it scaled.
    model, x, scaled = start.model, start.x, start.scaled
    probabilities = model.predict(x)
    reconstructions = keras.ops.convert_to_numpy(model.mixture(scaled))
    squared_errors = ((scaled[:, None, :] - reconstructions) ** 2).sum(-1)
    expected = numpy_mixture_loss(probabilities.astype(np.float64), squared_errors)
    np.testing.assert_allclose(model.per_example_loss(scaled).numpy(), expected, rtol=1e-4)
    np.testing.assert_allclose(
        np.exp(model.log_probabilities(scaled).numpy()), probabilities, rtol=1e-5, atol=1e-7
    )
    trained = fresh(start)
    np.testing.assert_array_equal(trained.preprocess(x), scaled)  # the scaling was saved
    trained.compile(optimizer=keras.optimizers.SGD(1e-3))
    logs = trained.train_on_batch(scaled, return_dict=True)  # the loss before the update
    assert logs["loss"] == pytest.approx(expected.mean(), rel=1e-4)


def test_assignments_shapes_and_assigner_holds_only_the_clustering_network(start, tmp_path):
    model, x = start.model, start.x
    probabilities = model.predict(x)
    labels = model.predict_labels(x)
    assert probabilities.shape == (90, 3) and probabilities.dtype == np.float32
    np.testing.assert_allclose(probabilities.sum(1), 1.0, rtol=1e-5)
    assert labels.shape == (90,) and labels.dtype == np.int32
    reconstructions = model.reconstruct(x)  # raw x in, reconstruction of the scaled x out
    by_own_cluster = keras.ops.convert_to_numpy(model.mixture(start.scaled))[np.arange(90),
                                                                            labels]
    np.testing.assert_allclose(reconstructions, by_own_cluster, rtol=1e-5, atol=1e-6)
    assigner = model.assigner()
    expected = model.clustering_trunk.count_params() + model.clustering_head.count_params()
    trainable = sum(int(np.prod(w.shape)) for w in assigner.trainable_weights)
    assert trainable == expected == 6 * 8 + 8 + 8 * 3 + 3
    # Besides: the input scaling (offset and scale per feature, and its "adapted" flag).
    assert model.input_scaling.count_params() == 6 + 6 + 1
    assert assigner.count_params() == expected + model.input_scaling.count_params()
    assert [layer.name for layer in assigner.layers][:2] == ["inputs", "input_scaling"]


def test_fit_lowers_the_loss_and_learns_the_blobs(start):
    model, x, y = fresh(start), start.x, start.y
    before = model.per_example_loss(start.scaled).numpy().mean()  # the loss on what it trains on
    history = model.fit(x, epochs=3, batch_size=32, verbose=0,
                        callbacks=[ClusteringMetrics(x, y)])
    assert model.per_example_loss(start.scaled).numpy().mean() < before
    assert history.history["acc"][-1] >= 0.9
    assert min(history.history["min_cluster_size"]) > 0
    assert history.empty_clusters == [] and sum(history.cluster_sizes) == 90
    assert history.cluster_sizes == np.bincount(model.predict_labels(x), minlength=3).tolist()
    assert clustering_scores(y, model.predict_labels(x))["acc"] >= 0.9


def test_an_emptied_cluster_warns_and_sizes_are_logged(start):
    model, x = fresh(start), start.x
    kernel, bias = model.clustering_head.get_weights()
    model.clustering_head.set_weights([kernel, bias - 100.0 * np.eye(3, dtype="float32")[1]])
    with pytest.warns(UserWarning, match="Cluster 1 is empty after epoch 1") as record:
        history = model.fit(x, epochs=2, batch_size=32, verbose=0)
    assert sum("is empty" in str(w.message) for w in record) == 1  # once per cluster
    assert history.history["min_cluster_size"] == [0, 0]
    # The fit's end reports the empty cluster too, on the History and in one warning.
    assert history.empty_clusters == [1]
    assert history.cluster_sizes[1] == 0 and sum(history.cluster_sizes) == 90
    ended = [str(w.message) for w in record if "fit ended with" in str(w.message)]
    assert ended == [f"DAMIC.fit ended with 1 empty cluster(s) of 3: [1] (cluster sizes "
                     f"{history.cluster_sizes}). Fewer clusters may describe the data better."]
    sizes = model.cluster_monitor.sizes
    assert len(sizes) == 2 and sizes[-1][1] == 0 and sizes[-1].sum() == 90


def test_save_load_round_trip_and_resume(start, round_trip, resumes_alike):
    model, x = fresh(start), start.x
    model.fit(x, epochs=1, batch_size=32, verbose=0)
    restored = round_trip(model, x)
    np.testing.assert_array_equal(restored.reconstruct(x), model.reconstruct(x))
    assert restored.is_pretrained and restored.initialized
    resumes_alike(model, restored, x, epochs=1, batch_size=32)


def test_bad_inputs(blobs):
    x, y = blobs
    model = damic()
    bad = x.copy()
    bad[5, 2] = np.nan
    with pytest.raises(ValueError, match=r"x contains NaN or infinite values \(1 of them"):
        model.fit(bad, epochs=1, verbose=0)
    with pytest.raises(ValueError, match=r"n_clusters=3 is larger than the number of samples \(2\)"):
        model.fit(x[:2], epochs=1, verbose=0)
    with pytest.raises(ValueError, match="fit\\(\\) does not use labels.*ClusteringMetrics"):
        model.fit(x, y, verbose=0)
    with pytest.raises(ValueError, match="n_clusters must be an integer >= 2, got 1"):
        damic(n_clusters=1)
    with pytest.raises(ValueError, match="DAMIC supports network='dense' only.*got 'conv'"):
        damic(network="conv")
    with pytest.raises(ValueError, match="init_epochs must be a positive integer, got 0"):
        damic(init_epochs=0)
    with pytest.raises(ValueError, match="init_learning_rate must be > 0, got 0"):
        damic(init_learning_rate=0)
    with pytest.raises(ValueError, match=r"init must be one of \('kmeans', 'gmm'\), "
                       "got 'spectral'"):
        damic(init="spectral")


def test_registry_and_config_round_trip():
    assert get_method("damic") is DAMIC
    model = damic(sample_shape=(6,), init="gmm")
    clone = DAMIC.from_config(model.get_config())
    assert clone.get_config() == model.get_config()
    assert clone.init == "gmm"


def test_predict_before_the_mixture_is_initialised_is_refused(blobs):
    x, _ = blobs
    model = damic()
    model.pretrain(x, epochs=1, verbose=0)
    with pytest.raises(ValueError, match=r"^DAMIC's mixture is not initialised yet: call "
                                         r"fit\(x\) \(after pretrain\(x\)\) before assigning"):
        model.predict(x)
    with pytest.raises(ValueError, match="not initialised yet"):
        model.assigner()
