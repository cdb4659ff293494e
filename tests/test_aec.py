import numpy as np
import pytest
from scipy.spatial.distance import pdist

from keras_deepclust import export as kdc_export
from keras_deepclust import metrics
from keras_deepclust.models import AEC, get_method

TINY = {"hidden_units": (16,), "embedding_dim": 3}


def test_registry_and_paper_defaults():
    assert get_method("aec") is AEC
    model = AEC(3)
    assert (model.activation, model.embedding_activation, model.output_activation) == (
        "sigmoid", "sigmoid", "sigmoid")
    assert model.init == "random"


def test_losses_match_a_hand_computation(blobs):
    x, _ = blobs
    model = AEC(3, random_state=0, sample_shape=(6,), **TINY)
    centroids = np.array([[0.1, 0.2, 0.3], [0.5, 0.5, 0.5], [0.9, 0.1, 0.4]], np.float32)
    model.centroid_head.set_centroids(centroids)
    batch = x[:7]
    codes = model.encoder.predict(batch, verbose=0)
    reconstruction = model.decoder.predict(codes, verbose=0)
    expected_reconstruction = ((batch - reconstruction) ** 2).sum(1)
    expected_compactness = ((codes[:, None] - centroids[None]) ** 2).sum(-1).min(1)
    got_reconstruction, got_compactness = model.compute_losses(batch)
    np.testing.assert_allclose(got_reconstruction, expected_reconstruction, rtol=1e-5)
    np.testing.assert_allclose(got_compactness, expected_compactness, rtol=1e-5, atol=1e-7)


def test_centroid_update_reassignment_and_empty_cluster(blobs):
    x, _ = blobs
    model = AEC(3, random_state=0, sample_shape=(6,), **TINY)
    codes = model.embed(x).astype(np.float64)
    previous = np.r_[np.zeros(45), np.ones(45)].astype(np.int32)  # cluster 2 empty
    model.assignment.store(model.prepare_inputs(x), previous)
    logs = model.update_centroids_and_assignments(x)
    expected = np.stack([codes[:45].mean(0), codes[45:].mean(0), np.zeros(3)])
    farthest = np.argmax(((codes - expected[previous]) ** 2).sum(1))
    expected[2] = codes[farthest]
    np.testing.assert_allclose(model.code_centroids(), expected, rtol=1e-5)
    # The decoded-centroids figure draws the centroids themselves.
    np.testing.assert_array_equal(model.prototype_codes(x, labels=None), model.code_centroids())
    labels = model.assignment.values.numpy()
    nearest = ((codes[:, None] - expected[None]) ** 2).sum(-1).argmin(1)
    nearest[farthest] = 2
    np.testing.assert_array_equal(labels, nearest)
    assert logs["empty_clusters"] == 1
    assert logs["centroid_distance"] == pytest.approx(pdist(expected).sum(), rel=1e-5)
    assert logs["label_change"] == pytest.approx(np.mean(nearest != previous))


def test_random_initial_assignment_is_a_seeded_hash_of_each_row(blobs):
    x, _ = blobs
    model = AEC(4, random_state=3, **TINY)
    first = model.initialize_assignments(x)
    np.testing.assert_array_equal(first, AEC(4, random_state=3, **TINY).initialize_assignments(x))
    # By hand: the scaled row's float32 bits, a seeded universal hash modulo the prime
    # 2^31 - 1, then modulo K (Python integers: no overflow).
    prime = 2**31 - 1
    bits = np.asarray(model.prepare_inputs(x), np.float32).view(np.int32)
    multipliers = np.random.default_rng(3).integers(1, prime, 6)
    expected = [sum(int(b) * int(a) for b, a in zip(row, multipliers)) % prime % 4
                for row in bits]
    np.testing.assert_array_equal(first, expected)
    assert set(np.bincount(first, minlength=4)) <= set(range(12, 35))  # 22.5 expected
    other = AEC(4, random_state=4, **TINY).initialize_assignments(x)
    assert np.mean(other != first) > 0.5


def test_random_start_uses_every_cluster_on_values_that_end_in_zero_bits():
    """Pixels k/16 (the digits) have float32 bits that are multiples of a power of two;
    a hash that only multiplies and wraps would leave the odd clusters empty."""
    rng = np.random.default_rng(0)
    x = (rng.integers(0, 17, (500, 6)) / 16).astype(np.float32)
    labels = AEC(10, random_state=0, scaling="none", **TINY).initialize_assignments(x)
    assert np.bincount(labels, minlength=10).min() >= 25  # 50 expected per cluster


@pytest.mark.parametrize("init, n_init", [("kmeans", 10), ("gmm", 10), ("kmeans", 1)])
def test_clusterer_start_assigns_each_code_to_the_nearest_centroid(blobs, init, n_init):
    """init="kmeans"/"gmm": the start is each code's nearest k-means centre or mixture
    mean (`n_init` restarts, seeded), fitted on the codes of the scaled inputs."""
    from sklearn.cluster import KMeans
    from sklearn.mixture import GaussianMixture

    x, _ = blobs
    model = AEC(3, init=init, n_init=n_init, random_state=0, **TINY)
    labels = model.initialize_assignments(x)
    codes = model.embed(x)
    fitted = (KMeans(3, n_init=n_init, random_state=0) if init == "kmeans"
              else GaussianMixture(3, n_init=n_init, random_state=0)).fit(codes)
    centroids = fitted.cluster_centers_ if init == "kmeans" else fitted.means_
    distances = ((codes.astype(np.float64)[:, None] - centroids[None]) ** 2).sum(-1)
    nearest = np.argmin(distances, axis=1)
    np.testing.assert_array_equal(labels, nearest)


def test_fit_alternates_logs_the_paper_columns_and_learns(blobs):
    x, y = blobs
    model = AEC(3, random_state=0, learning_rate=0.01, **TINY)
    history = model.fit(x, epochs=40, batch_size=16, verbose=0).history
    assert len(history["centroid_distance"]) == 40 and len(history["empty_clusters"]) == 40
    assert history["loss"][-1] < history["loss"][0]
    assert history["centroid_distance"][-1] == pytest.approx(pdist(model.code_centroids()).sum(),
                                                           rel=1e-5)
    labels = model.predict_labels(x)
    assert labels.dtype == np.int32 and labels.shape == (90,)
    np.testing.assert_array_equal(labels, model.assignment.values.numpy())
    assert metrics.clustering_scores(y, labels)["acc"] > 0.9


def test_save_load_resume_and_export(tmp_path, tiny_images, round_trip):
    x, _ = tiny_images
    model = AEC(3, random_state=0, network="conv", filters=(4, 8), kernel_sizes=(3, 3),
                embedding_dim=3)
    model.fit(x, epochs=2, batch_size=16, verbose=0)
    loaded = round_trip(model, x)
    assert loaded.has_assignments_for(x)
    np.testing.assert_array_equal(loaded.assignment.values.numpy(), model.assignment.values.numpy())
    loaded.fit(x, epochs=3, initial_epoch=2, batch_size=16, verbose=0)  # resumes
    kdc_export.export(loaded, tmp_path / "export", formats=("onnx",), sample=x[:20])


def test_bad_inputs(blobs):
    x, _ = blobs
    bad = x.copy()
    bad[0, 0] = np.inf
    with pytest.raises(ValueError, match="NaN or infinite"):
        AEC(3, **TINY).fit(bad)
    with pytest.raises(ValueError, match="does not use labels"):
        AEC(3, **TINY).fit(x, np.zeros(90))
    with pytest.raises(ValueError, match=r"n_clusters=100 is larger than the number of samples"):
        AEC(100, **TINY).fit(x)
    with pytest.raises(ValueError, match="init must be one of"):
        AEC(3, init="kmeans++")
    with pytest.raises(ValueError, match="compactness_weight must be >= 0, got -1"):
        AEC(3, compactness_weight=-1)
    with pytest.raises(ValueError, match="optimizer must be one of"):
        AEC(3, optimizer="rmsprop")
