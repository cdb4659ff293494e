import keras
import numpy as np
import pytest
from sklearn.cluster import KMeans
from sklearn.mixture import GaussianMixture

import keras_deepclust as kdc
from keras_deepclust import losses
from keras_deepclust.models import DCEC, DEC, IDEC, DECConv, DeepEmbeddedClustering, get_method

SMALL_DENSE = {"hidden_units": (16, 16), "embedding_dim": 3}
SMALL_CONV = {"filters": (4, 8), "kernel_sizes": (3, 3), "embedding_dim": 3}


def ready_model(x, cls=IDEC, pretrain_epochs=20, **kwargs):
    options = dict(SMALL_CONV if cls in (DCEC, DECConv) else SMALL_DENSE)
    options.update(kwargs)
    model = cls(n_clusters=3, random_state=0, **options)
    model.pretrain(x, epochs=pretrain_epochs, batch_size=16, optimizer="adam", verbose=0)
    model.initialize_centroids(x)
    return model


def test_variants_and_registry():
    assert {"dcec", "dec", "dec-conv", "idec"} <= set(kdc.list_methods())
    expected = {"dec": ("dense", False), "idec": ("dense", True),
                "dec-conv": ("conv", False), "dcec": ("conv", True)}
    for name, (network, reconstruction) in expected.items():
        model = get_method(name)(n_clusters=4)
        assert (model.network, model.reconstruction) == (network, reconstruction)
    with pytest.raises(ValueError,
                       match="Unknown method 'kmeans'. Known methods: ae-gmm, ae-kmeans"):
        get_method("kmeans")


def objective(model, x, p):
    """L = L_r + gamma * KL(P || Q) (L_c alone without reconstruction), by numpy."""
    q = model.predict(x)
    kl = (p * np.log(p / q)).sum(1)
    if not model.reconstruction:
        return kl.mean(), kl.mean(), None
    reconstruction = ((model.reconstruct(x) - x) ** 2).mean(1)
    return np.mean(reconstruction + model.gamma * kl), kl.mean(), reconstruction.mean()


def test_first_train_step_reports_the_hand_computed_loss(blobs):
    x, _ = blobs
    # scaling="none": train_on_batch feeds x to the networks as is, as the equation does.
    model = ready_model(x, gamma=0.5, scaling="none")
    model.update_target_distribution(x)
    p = np.asarray(losses.target_distribution(model.predict(x)))
    expected, kl, reconstruction = objective(model, x, p)
    model.compile(optimizer=keras.optimizers.SGD(1e-3))
    logs = model.train_on_batch(x, np.arange(90, dtype=np.int32), return_dict=True)
    assert logs["loss"] == pytest.approx(expected, rel=1e-4)
    assert logs["clustering_loss"] == pytest.approx(kl, rel=1e-4)
    assert logs["reconstruction_loss"] == pytest.approx(reconstruction, rel=1e-4)


@pytest.mark.parametrize("cls", [DEC, IDEC])
def test_one_train_step_lowers_the_loss(blobs, cls):
    x, _ = blobs
    model = ready_model(x, cls=cls, scaling="none")  # train_on_batch takes x unscaled
    model.update_target_distribution(x)
    p = model.target_distribution()
    model.compile(optimizer=keras.optimizers.SGD(0.05))
    before = objective(model, x, p)[0]
    model.train_on_batch(x, np.arange(90, dtype=np.int32))
    assert objective(model, x, p)[0] < before


def test_target_refreshes_every_interval_without_tol(blobs):
    x, _ = blobs
    model = ready_model(x, update_interval=4, tol=0.0)
    history = model.fit(x, epochs=5, batch_size=32, verbose=0)
    steps = 5 * 3  # ceil(90 / 32) = 3 steps an epoch
    assert int(model.optimizer.iterations.numpy()) == steps
    updater = model.target_updater
    assert [step for step, _ in updater.updates] == [0, 4, 8, 12]
    assert updater.stopped_step is None
    assert len(history.history["delta_label"]) == 5


def test_tol_stops_training(blobs):
    x, _ = blobs
    model = ready_model(x, update_interval=3, tol=0.5)
    history = model.fit(x, epochs=10, batch_size=32, verbose=0)
    updater = model.target_updater
    # Well separated blobs: labels barely change, so the first refresh after step 0 stops.
    assert updater.stopped_step == 3
    assert int(model.optimizer.iterations.numpy()) == 3
    assert len(history.history["loss"]) == 1
    assert history.history["delta_label"][-1] < 0.5


def test_fit_learns_well_separated_clusters(blobs):
    x, y = blobs
    model = ready_model(x)
    history = model.fit(x, epochs=3, batch_size=32, verbose=0,
                        callbacks=[kdc.callbacks.ClusteringMetrics(x, y)])
    assert history.history["acc"][-1] == 1.0
    labels = model.predict_labels(x)
    assert labels.dtype == np.int32 and labels.shape == (90,)


@pytest.mark.parametrize("cls", [DEC, IDEC, DECConv, DCEC])
def test_save_load_round_trip_and_resume(blobs, tiny_images, cls, round_trip, resumes_alike):
    x = tiny_images[0] if cls in (DCEC, DECConv) else blobs[0]
    model = ready_model(x, cls=cls, pretrain_epochs=5, update_interval=2, tol=0.0)
    model.fit(x, epochs=1, batch_size=32, verbose=0)
    restored = round_trip(model, x)
    np.testing.assert_array_equal(restored.target_distribution(), model.target_distribution())
    assert restored.is_pretrained and restored.centroids_initialized
    assert restored.has_target_for(x)
    resumes_alike(model, restored, x, epochs=1, batch_size=32)


def test_config_round_trip_of_each_variant():
    for cls in (DEC, IDEC, DECConv, DCEC, DeepEmbeddedClustering):
        model = cls(n_clusters=5, gamma=0.3, update_interval=7, init="gmm",
                    random_state=1, **SMALL_DENSE)
        clone = cls.from_config(model.get_config())
        assert clone.get_config() == model.get_config()


def test_validation_data_and_history(blobs):
    x, _ = blobs
    model = ready_model(x, update_interval=2, tol=0.0)
    history = model.fit(x, epochs=2, batch_size=32, verbose=0, validation_data=x[:30])
    assert {"loss", "clustering_loss", "reconstruction_loss", "val_loss", "delta_label"} <= set(
        history.history
    )


def test_bad_inputs(blobs, tiny_images):
    x, y = blobs
    model = IDEC(n_clusters=3, **SMALL_DENSE)
    bad = x.copy()
    bad[5, 2] = np.nan
    with pytest.raises(ValueError, match=r"x contains NaN or infinite values \(1 of them, first at index \(5, 2\)\)"):
        model.pretrain(bad, epochs=1, verbose=0)
    bad[5, 2] = np.inf
    with pytest.raises(ValueError, match="NaN or infinite"):
        model.fit(bad, epochs=1, verbose=0)
    with pytest.raises(ValueError, match=r"n_clusters=3 is larger than the number of samples \(2\)"):
        model.fit(x[:2], epochs=1, verbose=0)
    with pytest.raises(ValueError, match="fit\\(\\) does not use labels"):
        model.fit(x, y, verbose=0)
    with pytest.raises(ValueError, match="sample_weight is not supported by clustering models"):
        model.fit(x, sample_weight=np.ones(90), verbose=0)
    with pytest.raises(ValueError, match="validation_data contains NaN or infinite values"):
        model.fit(x, epochs=1, verbose=0, validation_data=bad)
    model.pretrain(x, epochs=1, verbose=0)
    # As scikit-learn's predict before fit: no numbers from centroids that were never set.
    with pytest.raises(ValueError, match=r"^IDEC has no cluster centroids yet: call fit\(x\) "
                                         r"\(after pretrain\(x\)\) before assigning clusters\.$"):
        model.predict(x)
    model.fit(x, epochs=1, verbose=0)
    with pytest.raises(ValueError, match=r"samples of shape \(5,\) but the model was built for samples of shape \(6,\)"):
        model.predict(x[:, :5])
    with pytest.raises(ValueError, match="conv network needs images"):
        DCEC(n_clusters=3).pretrain(x, epochs=1, verbose=0)
    with pytest.raises(ValueError, match="n_clusters must be an integer >= 2, got 1"):
        DEC(n_clusters=1)
    with pytest.raises(ValueError, match="network must be one of"):
        DeepEmbeddedClustering(network="rnn")
    with pytest.raises(ValueError, match="y has 89 entries but the data has 90 samples"):
        kdc.callbacks.ClusteringMetrics(x, y[:-1])
    with pytest.raises(ValueError, match="must be numeric, got dtype <U1"):
        model.predict(np.array([["a"] * 6] * 3))


def test_fit_without_pretraining_warns(blobs):
    x, _ = blobs
    model = IDEC(n_clusters=3, **SMALL_DENSE)
    with pytest.warns(UserWarning, match="was not pretrained"):
        model.fit(x, epochs=1, verbose=0)


@pytest.mark.parametrize(
    "kwargs, message",
    [
        ({"update_interval": 0}, "update_interval must be a positive integer, got 0"),
        ({"n_init": 2.5}, "n_init must be a positive integer, got 2.5"),
        ({"tol": 1.0}, r"tol must be in \[0, 1\), got 1.0"),
        ({"alpha": -1}, "alpha must be > 0, got -1"),
        ({"gamma": 0}, "gamma must be > 0, got 0"),
        ({"embedding_dim": 0}, "embedding_dim must be a positive integer, got 0"),
        ({"random_state": "7"}, "random_state must be an int or None, got '7'"),
        ({"init": "spectral"},
         r"init must be one of \('kmeans', 'gmm'\), got 'spectral'"),
    ],
)
def test_bad_hyperparameters_name_the_value(kwargs, message):
    with pytest.raises(ValueError, match=message):
        IDEC(n_clusters=3, **kwargs)


def test_kmeans_initialisation_on_a_bounded_sample(blobs):
    x, y = blobs
    model = ready_model(x, pretrain_epochs=2)
    model.CLUSTERER_MAX_SAMPLES = 40
    labels = model.initialize_centroids(x)
    codes = model.embed(x)
    rows = np.sort(np.random.default_rng(0).choice(90, 40, replace=False))
    expected = KMeans(3, n_init=model.n_init, random_state=0).fit(codes[rows])
    np.testing.assert_allclose(model.clustering.centroids.numpy(), expected.cluster_centers_,
                               rtol=1e-5)
    np.testing.assert_array_equal(labels, expected.predict(codes))
    assert len(labels) == 90 and labels.dtype == np.int32


def test_gmm_initialisation_takes_the_mixture_means_and_labels_by_nearest_mean(blobs):
    x, _ = blobs
    model = ready_model(x, pretrain_epochs=2, init="gmm", n_init=3)
    codes = model.embed(x)
    labels = model.initialize_centroids(x)
    expected = GaussianMixture(3, covariance_type="full", n_init=3, random_state=0).fit(codes)
    np.testing.assert_allclose(model.clustering.centroids.numpy(), expected.means_, rtol=1e-5)
    distances = ((codes[:, None, :] - expected.means_[None]) ** 2).sum(-1)
    np.testing.assert_array_equal(labels, distances.argmin(1))
    np.testing.assert_array_equal(model.refresh_assignments.values.numpy().argmax(1), labels)
    assert labels.dtype == np.int32
    np.testing.assert_array_equal(model.predict_labels(x), labels)  # what the model assigns


def test_initialize_runs_the_first_fits_start_and_head_names_the_clustering_layer(blobs):
    x, _ = blobs
    small = {"hidden_units": (16,), "embedding_dim": 3}
    model = DEC(3, random_state=0, **small)
    model.pretrain(x, epochs=2, verbose=0)
    assert model.initialize(x) is model and model.centroids_initialized
    twin = DEC(3, random_state=0, **small).copy_autoencoder_from(model)
    twin.initialize_centroids(x)
    np.testing.assert_allclose(model.code_centroids(), twin.code_centroids(), rtol=1e-6)
    assert model.head is model.clustering  # one name for the head on every method
    # fit goes on from the model's start, not a new k-means: centroids moved by hand stay
    # where they are under a zero learning rate.
    moved = model.code_centroids() + 1.0
    model.clustering.centroids.assign(moved)
    model.compile(optimizer=keras.optimizers.SGD(learning_rate=0.0))
    model.fit(x, epochs=1, verbose=0)
    np.testing.assert_allclose(model.code_centroids(), moved, rtol=1e-6)
