import keras
import numpy as np
import pytest
import tensorflow as tf
from sklearn.cluster import KMeans
from sklearn.mixture import GaussianMixture

from keras_deepclust.layers import (
    GaussianMixturePosterior,
    HardAssignment,
    NearestCentroidSoftmax,
    NeighborInterpolation,
    NormalizedSoftmax,
)


@pytest.fixture(scope="module")
def codes():
    rng = np.random.default_rng(0)
    centers = rng.normal(0, 3, (4, 5))
    return (centers[rng.integers(0, 4, 400)] + rng.normal(0, 1, (400, 5))).astype("float32")


@pytest.mark.parametrize("covariance_type", ["full", "diag", "spherical", "tied"])
def test_gaussian_mixture_posterior_matches_scikit_learn(codes, covariance_type):
    mixture = GaussianMixture(4, covariance_type=covariance_type, random_state=0).fit(codes)
    head = GaussianMixturePosterior(4)
    head.build((None, 5))
    head.set_from_sklearn(mixture)
    posterior = np.asarray(head(codes))
    np.testing.assert_allclose(posterior, mixture.predict_proba(codes), atol=1e-4)
    np.testing.assert_array_equal(posterior.argmax(1), mixture.predict(codes))


def test_nearest_centroid_softmax_agrees_with_kmeans(codes):
    kmeans = KMeans(4, n_init=5, random_state=0).fit(codes)
    head = NearestCentroidSoftmax(4, temperature=2.0)
    head.build((None, 5))
    head.set_centroids(kmeans.cluster_centers_)
    q = np.asarray(head(codes))
    np.testing.assert_array_equal(q.argmax(1), kmeans.predict(codes))
    d2 = ((codes[:, None] - kmeans.cluster_centers_[None]) ** 2).sum(-1)
    expected = np.exp(-(d2 - d2.min(1, keepdims=True)) / 2.0)
    np.testing.assert_allclose(q, expected / expected.sum(1, keepdims=True), atol=1e-5)
    with pytest.raises(ValueError, match=r"centroids must have shape \(4, 5\), got \(3, 5\)"):
        head.set_centroids(np.zeros((3, 5)))
    with pytest.raises(ValueError, match="temperature must be > 0"):
        NearestCentroidSoftmax(4, temperature=0)


def test_neighbor_interpolation_is_umaps_weighted_mean_of_the_nearest_targets(codes):
    references, targets = codes[:300], codes[:300, :2] * 2.0 + 1.0
    layer = NeighborInterpolation(3, capacity=320, output_dim=2)  # 20 rows left empty
    layer.build((None, 5))
    layer.set_references(references, targets)
    queries = codes[300:] + 50.0 * (np.arange(100) == 0)[:, None]  # one far from all
    queries[1] = 0.0  # where the empty (zero) rows are: they must not count
    distances = np.sqrt(((queries[:, None] - references[None]) ** 2).sum(-1))
    nearest = np.argsort(distances, axis=1)[:, :3]
    d = np.take_along_axis(distances, nearest, axis=1)
    weights = np.exp(-(d - d[:, :1]) / (d.mean(1, keepdims=True) - d[:, :1]))
    expected = (weights[..., None] * targets[nearest]).sum(1) / weights.sum(1, keepdims=True)
    np.testing.assert_allclose(np.asarray(layer(queries)), expected, rtol=1e-4, atol=1e-4)
    # A reference itself (up to float32 rounding of its code) maps to its own target, and
    # a point on two coinciding references to the mean of theirs.
    layer.set_references(np.concatenate([references[:299], references[:1]]),
                         np.concatenate([targets[:299], [[7.0, -7.0]]]))
    itself = references[:200] * np.float32(1 + 1e-7)
    expected = np.concatenate([[(targets[0] + [7.0, -7.0]) / 2], targets[1:200]])
    np.testing.assert_allclose(np.asarray(layer(itself)), expected, rtol=1e-6)
    with pytest.raises(ValueError, match=r"between n_neighbors=3 and capacity=320 rows, got 2"):
        layer.set_references(references[:2], targets[:2])
    with pytest.raises(ValueError, match="300 references but 299 targets"):
        layer.set_references(references, targets[:299])
    with pytest.raises(ValueError, match="n_neighbors=5 exceeds capacity=4"):
        NeighborInterpolation(5, capacity=4, output_dim=2)
    for bad, name in (((0, 4, 2), "n_neighbors"), ((1, 0, 2), "capacity"),
                      ((1, 4, 0), "output_dim")):
        with pytest.raises(ValueError, match=f"{name} must be a positive integer, got 0"):
            NeighborInterpolation(*bad)
    clone = NeighborInterpolation.from_config(layer.get_config())
    assert (clone.n_neighbors, clone.capacity, clone.output_dim) == (3, 320, 2)


def test_normalized_softmax_is_softmax_of_the_batch_normalised_codes(codes, tmp_path):
    head = NormalizedSoftmax(4, seed=0)
    head.build((None, 5))
    kernel = head.assignment.kernel.numpy()
    bias = np.array([0.1, -0.2, 0.3, 0.0], np.float32)
    head.assignment.bias.assign(bias)

    def softmax(logits):
        e = np.exp(logits - logits.max(1, keepdims=True))
        return e / e.sum(1, keepdims=True)

    epsilon = head.normalization.epsilon
    # Training: the batch's own statistics.
    batch = (codes - codes.mean(0)) / np.sqrt(codes.var(0) + epsilon)
    np.testing.assert_allclose(head(codes, training=True), softmax(batch @ kernel + bias),
                               rtol=1e-4, atol=1e-6)
    # Inference: the moving statistics, whatever the batch.
    mean, variance = np.arange(5, dtype=np.float32), np.linspace(1, 2, 5).astype(np.float32)
    head.normalization.moving_mean.assign(mean)
    head.normalization.moving_variance.assign(variance)
    moving = (codes[:3] - mean) / np.sqrt(variance + epsilon)
    np.testing.assert_allclose(head(codes[:3]), softmax(moving @ kernel + bias), rtol=1e-4,
                               atol=1e-6)
    restored = NormalizedSoftmax.from_config(head.get_config())
    restored.build((None, 5))
    restored.set_weights(head.get_weights())
    np.testing.assert_array_equal(restored(codes), head(codes))


def test_heads_round_trip_and_export(tmp_path, codes):
    mixture = GaussianMixture(4, covariance_type="full", random_state=0).fit(codes)
    inputs = keras.Input((5,), name="inputs")
    gmm = GaussianMixturePosterior(4, name="gmm")
    probabilities = gmm(inputs)
    gmm.set_from_sklearn(mixture)
    model = keras.Model(inputs, {"probabilities": probabilities,
                                 "cluster": HardAssignment(name="cluster")(probabilities)})
    model.save(tmp_path / "m.keras")
    restored = keras.saving.load_model(tmp_path / "m.keras")
    np.testing.assert_array_equal(restored.predict(codes, verbose=0)["probabilities"],
                                  model.predict(codes, verbose=0)["probabilities"])
    import onnxruntime
    from ai_edge_litert.interpreter import Interpreter

    model.export(tmp_path / "m.onnx", format="onnx", opset_version=17, verbose=False)
    session = onnxruntime.InferenceSession(str(tmp_path / "m.onnx"))
    onnx_out = dict(zip([o.name for o in session.get_outputs()],
                        session.run(None, {"inputs": codes})))
    model.export(tmp_path / "m.tflite", format="litert", verbose=False,
                 target_spec={"supported_ops": [tf.lite.OpsSet.TFLITE_BUILTINS]})
    tflite_out = Interpreter(str(tmp_path / "m.tflite")).get_signature_runner(
        "serving_default")(inputs=codes)
    for out in (onnx_out, tflite_out):
        np.testing.assert_allclose(out["probabilities"], mixture.predict_proba(codes), atol=1e-4)
        np.testing.assert_array_equal(out["cluster"], mixture.predict(codes))
