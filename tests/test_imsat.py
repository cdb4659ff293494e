"""IMSAT: the method with no decoder, trained from its random initialisation."""

import numpy as np
import pytest

from keras_deepclust import cli, losses, metrics
from keras_deepclust.models import IMSAT, get_method

TINY = {"hidden_units": (16,), "embedding_dim": 3}


def test_registry_and_paper_defaults():
    assert get_method("imsat") is IMSAT
    model = IMSAT(3)
    assert (model.mutual_information_weight, model.marginal_entropy_weight) == (0.1, 4.0)
    assert (model.radius_fraction, model.radius_neighbors, model.network) == (0.25, 10, "auto")
    model.build((None, 8, 8, 1))
    assert model.network == "conv"
    # The parts: an encoder and a head; nothing to reconstruct or pretrain.
    assert not hasattr(model, "decoder") and not hasattr(model, "pretrain")
    assert model.soft_assignment_head() is model.head


def test_entropies_match_a_hand_computation():
    p = np.array([[0.5, 0.5, 0.0], [0.2, 0.3, 0.5]], np.float32)
    by_hand = [np.log(2), -(0.2 * np.log(0.2) + 0.3 * np.log(0.3) + 0.5 * np.log(0.5))]
    np.testing.assert_allclose(losses.entropy(p), by_hand, rtol=1e-5)
    np.testing.assert_allclose(losses.entropy(p.mean(0, keepdims=True)),
                               [-sum(v * np.log(v) for v in (0.35, 0.4, 0.25))], rtol=1e-5)


def test_radii_are_a_fraction_of_the_distance_to_the_kth_neighbour():
    x = np.array([[0.0], [1.0], [3.0], [7.0]], np.float32)
    model = IMSAT(2, radius_neighbors=2, radius_fraction=0.5, **TINY)
    # The second nearest other row: 0 -> 3.0, 1 -> 3.0, 3.0 -> 0, 7.0 -> 1.0.
    expected = 0.5 * np.array([3.0, 2.0, 3.0, 6.0])
    np.testing.assert_allclose(model.perturbation_radii(x), expected)
    with pytest.raises(ValueError, match="more than radius_neighbors=2 rows, got 2"):
        model.perturbation_radii(x[:2])


def test_the_adversarial_perturbation_has_each_rows_radius(blobs):
    import tensorflow as tf

    x, _ = blobs
    model = IMSAT(3, random_state=0, sample_shape=(6,), **TINY)
    radii = np.linspace(0.1, 1.0, len(x)).astype(np.float32)
    p = model(x)
    r = model._adversarial_perturbation(tf.constant(x), p, tf.constant(radii)).numpy()
    np.testing.assert_allclose(np.linalg.norm(r, axis=1), radii, rtol=1e-4)


def test_fit_separates_blobs_and_round_trips(blobs, round_trip):
    x, y = blobs
    model = IMSAT(3, random_state=0, **TINY)
    history = model.fit(x, epochs=60, batch_size=30, verbose=0)
    assert set(history.history) >= {"loss", "sat_loss", "conditional_entropy", "marginal_entropy"}
    # Balanced, confident clusters: H(Y) near log 3, H(Y|X) near 0.
    assert history.history["marginal_entropy"][-1] > 0.95 * np.log(3)
    assert history.history["conditional_entropy"][-1] < 0.2
    assert metrics.clustering_scores(y, model.labels_)["acc"] == 1.0
    restored = round_trip(model, x)
    np.testing.assert_array_equal(restored.predict_labels(x), model.labels_)


def test_the_cli_refuses_pretraining_a_method_without_a_decoder(tmp_path, blobs, capsys):
    x, y = blobs
    np.savez(tmp_path / "blobs.npz", x=x, y=y)
    assert cli.main(["fit", "imsat", "--dataset", str(tmp_path / "blobs.npz"),
                     "--pretrain-epochs", "5", "--out", str(tmp_path / "run")]) == 2
    assert "imsat has no autoencoder to pretrain" in capsys.readouterr().err
    assert not (tmp_path / "run").exists()
