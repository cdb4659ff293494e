"""N2D: autoencoder codes, UMAP, then a Gaussian mixture, with a Keras manifold head that
reproduces UMAP so that the whole pipeline is one exportable assigner."""

import json
import sys

import keras
import numpy as np
import pytest
import tensorflow as tf

from keras_deepclust import cli
from keras_deepclust import export as kdc_export
from keras_deepclust.metrics import clustering_scores
from keras_deepclust.models import N2D
from keras_deepclust.models.n2d import MANIFOLD_HEADS

TINY = {"hidden_units": (16,), "embedding_dim": 3, "n_components": 2, "n_neighbors": 10,
        "manifold_units": (32,), "manifold_steps": 500, "manifold_batch_size": 16}


def three_blobs():
    rng = np.random.default_rng(0)
    centers = np.array([[0.1] * 6, [0.5] * 6, [0.9] * 6], dtype=np.float32)
    y = np.repeat(np.arange(3), 30)
    return (centers[y] + rng.normal(0, 0.03, size=(90, 6))).astype(np.float32), y


@pytest.fixture(scope="module", params=["regression", "neighbors"])
def fitted(request):
    x, y = three_blobs()
    model = N2D(3, random_state=0, manifold_head=request.param, **TINY)
    model.pretrain(x, epochs=5, verbose=0)
    history = model.fit(x, verbose=0)
    return model, x, y, history.history


def test_fit_clusters_the_manifold_and_the_head_reproduces_umap(fitted):
    model, x, y, history = fitted
    labels = model.predict_labels(x)
    assert clustering_scores(y, labels)["acc"] == 1.0
    np.testing.assert_array_equal(labels, model.umap_predict_labels(x))
    assert history["manifold_agreement"] == [1.0] and model.manifold_agreement(x) == 1.0
    assert model.umap_embedding_.shape == (90, 2)
    assert model.embed(x).shape == (90, 2)  # the manifold coordinates the mixture reads
    # The head outputs UMAP's coordinates, not standardised ones.
    np.testing.assert_allclose(model.embed(x).mean(0), model.umap_embedding_.mean(0), atol=0.5)


def test_prototype_codes_are_each_clusters_mean_code_not_the_manifold_means(fitted):
    model, x, _, _ = fitted
    labels = model.predict_labels(x)
    codes = model.encoder.predict(model.prepare_inputs(x), verbose=0)  # the scaled rows' codes
    expected = [codes[labels == k].mean(axis=0) for k in range(3)]
    np.testing.assert_allclose(model.prototype_codes(x, labels), expected, rtol=1e-5)
    # What the decoder reads is a code (3 numbers here), not a mixture mean on the
    # 2-D manifold.
    assert model.code_centroids().shape == (3, 2)
    # A cluster without rows in `x` has no mean code: it is left out.
    assert model.prototype_codes(x[labels != 1], labels[labels != 1]).shape == (2, 3)


def test_save_load_and_export_parity(fitted, tmp_path, round_trip):
    model, x, _, _ = fitted
    restored = round_trip(model, x)
    assert restored.manifold_fitted and restored.head_fitted
    with pytest.raises(ValueError, match="not saved"):
        restored.umap_predict_labels(x)
    results = kdc_export.export(model, tmp_path, formats=("onnx", "tflite"), sample=x[:40])
    for result in results.values():
        assert result["method"] == "n2d" and result["parity"]["cluster_agreement"] == 1.0


def test_k_sweep_keeps_the_fitted_manifold(fitted):
    model, x, _, _ = fitted
    features = model.selection_features(x)
    np.testing.assert_allclose(features, model.embed(x))
    clone = model.with_n_clusters(2)
    assert clone.umap_ is model.umap_ and clone.manifold_fitted
    for a, b in zip(clone.manifold.get_weights(), model.manifold.get_weights(), strict=True):
        np.testing.assert_array_equal(a, b)
    history = clone.fit(x, verbose=0).history
    assert "manifold_mse" not in history  # only the mixture was fitted again
    assert clone.predict(x).shape == (90, 2)


def test_stream_fits_umap_on_a_bounded_sample(fitted):
    x, _ = three_blobs()
    model = N2D(3, random_state=0, umap_max_samples=60,
                manifold_head=fitted[0].manifold_head, **TINY)
    model.copy_autoencoder_from(fitted[0])
    stream = tf.data.Dataset.from_tensor_slices(x).batch(16)
    model.fit(stream, verbose=0)
    assert model.umap_embedding_.shape == (60, 2)
    labels = model.predict_labels(stream)
    assert labels.shape == (90,)
    np.testing.assert_array_equal(labels, model.predict_labels(x))
    # The head maps the 30 rows UMAP never saw too (2 of them to a wrong blob here), and
    # agrees with UMAP's own transform + the mixture on them. (On digits, held-out
    # agreement is measured by benchmarks/n2d.py: 0.961 +- 0.012 for the neighbours head,
    # 0.889 +- 0.028 for the regression head.)
    assert clustering_scores(three_blobs()[1], labels)["acc"] >= 0.95
    assert model.manifold_agreement(x) >= 0.95


def test_bad_input(monkeypatch):
    x, _ = three_blobs()
    with pytest.raises(ValueError, match=r"n_components=4 asks UMAP for more components than "
                                         r"the code has \(embedding_dim=3\)"):
        N2D(3, **dict(TINY, n_components=4))
    with pytest.raises(ValueError, match="n_neighbors must be >= 2"):
        N2D(3, **dict(TINY, n_neighbors=1))
    for bad, message in [({"min_dist": -0.1}, "min_dist must be >= 0"),
                         ({"clusterer": "dbscan"}, "clusterer must be one of"),
                         ({"manifold_head": "tsne"}, "manifold_head must be one of"),
                         ({"manifold_neighbors": 0}, "manifold_neighbors"),
                         ({"covariance_type": "round"}, "covariance_type must be one of"),
                         ({"manifold_learning_rate": 0}, "manifold_learning_rate must be > 0"),
                         ({"manifold_steps": 0}, "manifold_steps")]:
        with pytest.raises(ValueError, match=message):
            N2D(3, **dict(TINY, **bad))
    model = N2D(3, **TINY)
    with pytest.raises(ValueError, match="gmm head is not fitted yet"):
        model.predict(x)
    with pytest.raises(ValueError, match=r"n_neighbors=10 needs more than 10 samples, got 8"):
        model.fit(x[:8], verbose=0)
    with pytest.raises(ValueError, match=r"n_clusters=100 is larger than the number of samples"):
        N2D(100, **TINY).fit(x, verbose=0)
    bad = x.copy()
    bad[5, 2] = np.nan
    with pytest.raises(ValueError, match="NaN"):
        model.fit(bad, verbose=0)
    assert N2D.ITERATIVE_FIT is False  # UMAP and the mixture are fitted once, no epochs
    for name, value in [("epochs", 3), ("callbacks", []), ("validation_data", (x,)),
                        ("steps_per_epoch", 2)]:
        with pytest.raises(ValueError, match=rf"N2D.fit fits its clusterer once, with no "
                           rf"epochs, so it cannot honour {name}: "):
            model.fit(x, verbose=0, **{name: value})
    monkeypatch.setitem(sys.modules, "umap", None)
    with pytest.raises(ImportError, match=r'pip install "keras-deepclust\[n2d\]"'):
        N2D(3, **TINY).fit(x, verbose=0)


@pytest.fixture(scope="module")
def digits_run(tmp_path_factory):
    """`keras-deepclust fit n2d` on the digits (20 pretraining epochs), run once."""
    out = tmp_path_factory.mktemp("n2d") / "digits"
    assert cli.main(["fit", "n2d", "--dataset", "digits", "--pretrain-epochs", "20",
                     "--out", str(out)]) == 0
    return out


def test_cli_fit_on_digits_beats_kmeans_on_pixels(digits_run):
    report = json.loads((digits_run / "metrics.json").read_text())
    print(f"n2d {report['scores']}, k-means {report['kmeans_on_inputs']}, agreement "
          f"{report['history']['clustering']['manifold_agreement']}")
    assert report["scores"]["acc"] > report["kmeans_on_inputs"]["acc"]
    # The head against UMAP + mixture on the rows UMAP was fitted on (all of them).
    assert report["history"]["clustering"]["manifold_agreement"][0] >= 0.99
    model = keras.saving.load_model(digits_run / "model.keras")
    assert isinstance(model, N2D) and model.head_fitted and model.manifold_head == "neighbors"


def test_cli_passes_the_manifold_head_to_the_model():
    def model_for(*flags):
        args = cli._build_parser().parse_args(["fit", "n2d", "--dataset", "digits",
                                              "--out", "unused", *flags])
        return N2D(3, random_state=0, **cli._model_options(args), **TINY)

    # The CLI spells the heads out (it imports no Keras to build its parser): every one
    # the model knows must pass through.
    for head in MANIFOLD_HEADS:
        assert model_for("--manifold-head", head).manifold_head == head
    assert model_for().manifold_head == "neighbors"
