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
    with pytest.raises(TypeError, match=r"augmentation must be a Keras layer, a pair "
                                        r"\(shift, degrees\), 'auto' or None, got 'AUTO'"):
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


def quadrant_images(side=16, n=90, seed=0):
    """`n` float images `side` x `side`, a bright quadrant per class (3 classes)."""
    rng = np.random.default_rng(seed)
    y = np.repeat(np.arange(3), n // 3)
    x = rng.uniform(0, 0.2, (n, side, side, 1)).astype(np.float32)
    half = side // 2
    for i, label in enumerate(y):
        x[i, half * (label // 2):half * (label // 2 + 1), half * (label % 2):half * (label % 2 + 1)] += 0.7
    return x, y


def test_refinement_starts_at_the_partitions_mean_codes_and_assigns_with_them(round_trip):
    from sklearn.metrics import adjusted_rand_score

    x, _ = quadrant_images()
    model = AutoClustering(n_clusters=3, random_state=0, refine=False, refine_epochs=1,
                           refine_learning_rate=1e-12, refine_batch_size=32, **SMALL)
    model.pretrain(x, epochs=2, batch_size=16, verbose=0)
    history = model.fit(x, verbose=0)
    assert not model.refined and history.history["refined"] == [0]
    partition, codes = model.labels_, model.finite_codes(x)
    # A step this small leaves the head where it starts: at each cluster's mean code, so
    # the refined model labels each row by its nearest mean code.
    logs = model.refine_partition(x, partition, verbose=0)
    means = np.stack([codes[partition == k].mean(axis=0) for k in range(3)])
    np.testing.assert_allclose(model.code_centroids(), means, atol=1e-5)
    nearest = ((codes[:, None] - means[None]) ** 2).sum(-1).argmin(axis=1)
    np.testing.assert_array_equal(model.predict_labels(x), nearest)
    assert logs["refine_agreement"] == pytest.approx(adjusted_rand_score(partition, nearest))
    assert model.refined and model.soft_assignment_head() is model.clustering
    np.testing.assert_allclose(model.embed(x), codes, atol=1e-6)  # codes, not the manifold
    np.testing.assert_allclose(model.assigner()(x)["probabilities"].numpy(), model.predict(x),
                               atol=1e-6)
    restored = round_trip(model, x)
    assert restored.refined and restored.get_config()["refined"] is True
    with pytest.raises(ValueError, match="The partition has 2 non-empty clusters of 3"):
        model.refine_partition(x, np.minimum(partition, 1), verbose=0)
    with pytest.raises(ValueError, match=r"labels must be cluster ids in \[0, 3\), got 0 to 3"):
        model.refine_partition(x, partition + (partition == 2), verbose=0)
    with pytest.raises(ValueError, match="labels has 89 entries but the data has 90 samples"):
        model.refine_partition(x, partition[1:], verbose=0)


def test_auto_refines_images_of_16_pixels_a_side_only(capsys, mirrored):
    x, _ = quadrant_images()
    model = AutoClustering(n_clusters=3, random_state=0, refine_epochs=2, **SMALL)
    model.pretrain(x, epochs=2, batch_size=16, verbose=0)
    history = model.fit(x, verbose=1)
    assert model.refined and history.history["refined"] == [1]
    assert {"refine_loss", "refine_agreement", "refine_changed",
            "refine_seconds"} <= history.history.keys()
    assert history.history["refine_seconds"][0] > 0
    assert "auto: refined as DEC-DA for 2 epochs: refine_loss" in capsys.readouterr().out
    small = AutoClustering(n_clusters=3, random_state=0, refine_epochs=2, **SMALL)
    small.pretrain(x[:, :8, :8], epochs=1, batch_size=16, verbose=0)
    assert small.fit(x[:, :8, :8], verbose=1).history["refined"] == [0] and not small.refined
    assert ("auto: not refined (images of 8 x 8 pixels are smaller than 16 a side)."
            in capsys.readouterr().out)
    # Refitted after new pretraining, the model forgets the refinement until it refines.
    model.pretrain(x, epochs=1, batch_size=16, verbose=0)
    assert not model.refined
    with mirrored.scope():
        forced = AutoClustering(n_clusters=3, random_state=0, refine=True, **SMALL)
    with pytest.raises(ValueError, match="refine=True, but the refinement runs under the "
                                         "default strategy only"):
        forced.fit(x, verbose=0)
    with pytest.raises(ValueError, match=r"refine must be one of \('auto', True, False\), "
                                         "got 'yes'"):
        AutoClustering(n_clusters=3, refine="yes")


def test_refine_flags_reach_auto_and_are_refused_elsewhere():
    from types import SimpleNamespace

    options = cli._model_options(SimpleNamespace(method="auto", refine="off", refine_epochs=5))
    assert options == {"refine": False, "refine_epochs": 5}
    from keras_deepclust import commands
    from keras_deepclust.models import get_method

    quick = commands.quick_schedule(get_method("auto"), np.zeros((60, 4)), 256, None, None,
                                    options, pretrains=False)[2]
    assert quick == {"refine": False, "refine_epochs": 5}  # within the quick cap of 20
    assert commands.quick_schedule(get_method("auto"), np.zeros((60, 4)), 256, None, None, {},
                                   pretrains=False)[2] == {"refine_epochs": 20}
    with pytest.raises(ValueError, match="--refine is for auto only, not n2d"):
        commands.check_option_taken("n2d", "refine", cli.FIT_SPELLING)


def without_refinement_head(path, out):
    """A copy of the `.keras` file at `path` whose weights lack the Student-t head's
    centroids, as `auto` files saved before it had one."""
    import io
    import zipfile

    import h5py

    with zipfile.ZipFile(path) as source, zipfile.ZipFile(out, "w") as target:
        for name in source.namelist():
            data = source.read(name)
            if name == "model.weights.h5":
                buffer = io.BytesIO(data)
                with h5py.File(buffer, "a") as weights:
                    del weights["clustering"]
                data = buffer.getvalue()
            target.writestr(name, data)
    return out


def test_files_saved_before_the_refinement_load_and_refined_ones_need_their_head(tmp_path):
    model = AutoClustering(n_clusters=3, sample_shape=(16, 16, 1), **SMALL)
    model.save(tmp_path / "new.keras")
    old = keras.saving.load_model(without_refinement_head(tmp_path / "new.keras",
                                                          tmp_path / "old.keras"))
    assert type(old) is AutoClustering and not old.refined
    for a, b in zip(old.encoder.weights, model.encoder.weights, strict=True):
        np.testing.assert_array_equal(a.numpy(), b.numpy())
    refined = AutoClustering.from_config({**model.get_config(), "refined": True})
    refined.save(tmp_path / "refined.keras")
    with pytest.raises(ValueError, match="Layer 'clustering' expected 1 variables"):
        keras.saving.load_model(without_refinement_head(tmp_path / "refined.keras",
                                                        tmp_path / "broken.keras"))
