"""`network="auto"` and `augmentation="auto"`, and the recommended method `auto` built on
them: what each resolves to per kind of data, kept through saving."""

import json
import re

import keras
import numpy as np
import pytest

from keras_deepclust import cli, clusterers, metrics
from keras_deepclust.layers import ImageAugmentation
from keras_deepclust.models import AEKMeans, AutoClustering, DAMIC, N2D

SMALL = {"hidden_units": (8,), "filters": (4, 8), "kernel_sizes": (3, 3), "embedding_dim": 3,
         "n_components": 2, "n_neighbors": 5}


def test_auto_resolves_to_a_conv_network_with_dec_da_augmentation_on_images(tmp_path):
    model = AutoClustering(n_clusters=3, random_state=4, sample_shape=(8, 8, 1), **SMALL)
    assert model.network == "conv"
    assert isinstance(model.augmentation, ImageAugmentation)
    assert (model.augmentation.shift, model.augmentation.rotation, model.augmentation.seed) == (
        0.1, 10.0, 4)
    config = model.get_config()
    assert config["network"] == "conv" and config["augmentation"]["config"]["seed"] == 4
    model.save(tmp_path / "auto.keras")
    restored = keras.saving.load_model(tmp_path / "auto.keras")
    assert type(restored) is AutoClustering and restored.network == "conv"
    assert restored.augmentation.get_config() == model.augmentation.get_config()


def test_auto_resolves_to_a_dense_network_without_augmentation_on_tables():
    model = AutoClustering(n_clusters=3, random_state=0, sample_shape=(5,), **SMALL)
    assert (model.network, model.augmentation) == ("dense", None)
    assert model.get_config()["augmentation"] is None
    # Unbuilt, the choice is still open and says so.
    unbuilt = AutoClustering(n_clusters=3).get_config()
    assert (unbuilt["network"], unbuilt["augmentation"]) == ("auto", "auto")


def test_the_auto_options_serve_every_autoencoder_method():
    assert AEKMeans(n_clusters=3, network="auto", sample_shape=(8, 8, 1)).network == "conv"
    assert N2D(n_clusters=3, network="auto", sample_shape=(6,)).network == "dense"
    # A method without a conv network stays dense on images.
    assert DAMIC(n_clusters=3, network="auto", sample_shape=(8, 8, 1)).network == "dense"
    with pytest.raises(ValueError, match=r"network must be one of \['conv', 'dense', 'auto'\], "
                                         "got 'cnn'"):
        N2D(n_clusters=3, network="cnn")
    with pytest.raises(TypeError, match="augmentation must be a Keras layer, 'auto' or None, "
                                        "got 'AUTO'"):
        N2D(n_clusters=3, augmentation="AUTO")


def test_auto_pretrains_on_augmented_images(tiny_images):
    """The resolved augmentation is what pretraining sees: with it the reconstruction
    loss differs from the same model's without augmentation."""
    x = tiny_images[0]
    losses = []
    for augmentation in ("auto", None):
        model = AutoClustering(n_clusters=3, random_state=0, augmentation=augmentation, **SMALL)
        losses.append(model.pretrain(x, epochs=2, batch_size=16, verbose=0).history["loss"])
    assert not np.allclose(losses[0], losses[1])


def test_umap_baseline_is_scored_next_to_k_means(tmp_path, tiny_images, capsys):
    x, y = tiny_images
    np.savez(tmp_path / "images.npz", x=x, y=y)
    out = tmp_path / "run"
    assert cli.main(["fit", "ae-kmeans", "--dataset", str(tmp_path / "images.npz"), "--quick",
                     "--pretrain-epochs", "1", "--umap-baseline", "--out", str(out)]) == 0
    report = json.loads((out / "metrics.json").read_text())
    model = keras.saving.load_model(out / "model.keras")
    expected = metrics.clustering_scores(
        y, clusterers.umap_mixture_labels(model.preprocess(x), 3, random_state=0))
    assert report["umap_gmm_on_inputs"] == pytest.approx(expected)
    printed = capsys.readouterr().out
    assert "UMAP + GMM on inputs" in printed
    assert re.search(r"clustering [0-9.]+ s; precision ", printed), printed  # no epochs
    np.save(tmp_path / "unlabelled.npy", x)
    assert cli.main(["fit", "ae-kmeans", "--dataset", str(tmp_path / "unlabelled.npy"),
                     "--clusters", "3", "--umap-baseline", "--out", str(tmp_path / "refused")]) == 2
    assert "--umap-baseline scores against labels, and " in capsys.readouterr().err


def test_fit_auto_is_pretrain_then_fit(tiny_images):
    import keras_deepclust as kdc

    x = tiny_images[0]
    model = kdc.fit_auto(x, n_clusters=3, random_state=1, pretrain_epochs=2, batch_size=16,
                         verbose=0, **SMALL)
    by_hand = AutoClustering(n_clusters=3, random_state=1, **SMALL)
    by_hand.pretrain(x, epochs=2, batch_size=16, verbose=0)
    by_hand.fit(x, batch_size=16, verbose=0)
    assert model.head_fitted and model.labels_.shape == (60,)
    np.testing.assert_array_equal(model.labels_, by_hand.labels_)
