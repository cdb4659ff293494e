"""Every method under `tf.distribute.MirroredStrategy` (two logical CPU devices, set up
in conftest.py) follows the single-device trajectory for evenly dividing batches."""

import keras
import numpy as np
import pytest
import tensorflow as tf

from keras_deepclust import distribute
from keras_deepclust.models import AEC, DAC, DAMIC, DCEC, DEC, AEGMM

DENSE = {"hidden_units": (16, 16), "embedding_dim": 3}

# One recipe per model class (IDEC is DEC with a decoder, AE+k-means the GMMs class):
# constructor options, pretraining epochs, fit keyword arguments.
RECIPES = {
    DEC: ({"update_interval": 2, "tol": 0.0}, 2, {"epochs": 3}),
    DCEC: ({"update_interval": 2, "tol": 0.0, "network": "conv", "filters": (4, 8),
            "kernel_sizes": (3, 3), "embedding_dim": 3}, 2, {"epochs": 2}),
    AEGMM: ({}, 3, {}),
    AEC: ({}, 0, {"epochs": 3}),
    DAC: ({"n_init": 3}, 0, {"epochs": 3}),
    DAMIC: ({"init_epochs": 2, "n_init": 3, "clustering_units": (8,)}, 2, {"epochs": 2}),
}


def train(cls, strategy, x, streamed=False):
    options, pretrain_epochs, fit_kwargs = RECIPES[cls]
    options = {**DENSE, **options}
    with strategy.scope():
        model = cls(n_clusters=3, random_state=0, **options)
        model.build((None, *x.shape[1:]))
    if pretrain_epochs:
        model.pretrain(x, epochs=pretrain_epochs, batch_size=32, optimizer="sgd", verbose=0)
    data = tf.data.Dataset.from_tensor_slices(x).batch(32) if streamed else x
    history = model.fit(data, batch_size=32, verbose=0, shuffle=False, **fit_kwargs)
    return history.history["loss"], model.predict(x), [w.numpy() for w in model.weights]


@pytest.fixture
def images(tiny_images):
    return np.concatenate([tiny_images[0], tiny_images[0][:4]])  # 64 rows: 2 batches of 32


@pytest.mark.parametrize("cls", list(RECIPES), ids=lambda cls: cls.__name__)
def test_mirrored_training_matches_single_device(blobs, images, cls, mirrored):
    """Two replicas with half batches each must follow the single-device trajectory: this
    fails if a loss is not divided by the number of replicas (double learning rate) or a
    whole-data pass (targets, centroids, feature weights, initialisation) sees one replica."""
    x = images if RECIPES[cls][0].get("network") == "conv" else np.concatenate(
        [blobs[0], blobs[0][:6]])  # 96 rows: 3 full batches of 32
    assert len(tf.config.list_logical_devices("CPU")) == 2
    single = train(cls, tf.distribute.get_strategy(), x)
    distributed = train(cls, mirrored, x)
    np.testing.assert_allclose(distributed[0], single[0], rtol=1e-5)
    np.testing.assert_allclose(distributed[1], single[1], atol=1e-5)
    for got, expected in zip(distributed[2], single[2], strict=True):
        np.testing.assert_allclose(got, expected, rtol=1e-5, atol=1e-5)  # GMM precisions ~ 1e2


@pytest.mark.parametrize("cls", [DEC, AEC, DAC, DAMIC], ids=lambda cls: cls.__name__)
def test_mirrored_training_on_a_stream_matches_single_device(blobs, cls, mirrored):
    """The same with the data streamed: the per-batch state recomputed from snapshots
    (DEC's target, AEC's assignment) and DAMIC's per-batch k-means labels must be
    mirrored too."""
    x = np.concatenate([blobs[0], blobs[0][:6]])
    single = train(cls, tf.distribute.get_strategy(), x, streamed=True)
    distributed = train(cls, mirrored, x, streamed=True)
    np.testing.assert_allclose(distributed[0], single[0], rtol=1e-5)
    np.testing.assert_allclose(distributed[1], single[1], atol=1e-5)
    for got, expected in zip(distributed[2], single[2], strict=True):
        np.testing.assert_allclose(got, expected, rtol=1e-5, atol=1e-5)


def test_target_refresh_schedule_is_the_same(blobs, mirrored):
    x = np.concatenate([blobs[0], blobs[0][:6]])
    updates = []
    for strategy in (tf.distribute.get_strategy(), mirrored):
        with strategy.scope():
            model = DEC(3, random_state=0, update_interval=2, tol=0.0, **DENSE)
        model.pretrain(x, epochs=1, batch_size=32, verbose=0)
        model.fit(x, epochs=3, batch_size=32, verbose=0, shuffle=False)
        updates.append([step for step, _ in model.target_updater.updates])
    assert updates[0] == updates[1] == [0, 2, 4, 6, 8]


def test_batch_that_does_not_divide_among_replicas(blobs, mirrored):
    x = blobs[0]
    with mirrored.scope():
        model = AEC(3, random_state=0, **DENSE)
    with pytest.raises(ValueError, match=r"batch_size=33 does not divide among the 2 replicas"):
        model.fit(x, epochs=1, batch_size=33, verbose=0)
    with pytest.raises(ValueError, match=r"batch_size=33 does not divide among the 2 replicas"):
        model.pretrain(x, epochs=1, batch_size=33, verbose=0)


def test_strategy_names_and_bad_input(monkeypatch):
    assert distribute.get_strategy("default") is tf.distribute.get_strategy()
    with pytest.raises(ValueError, match="devices is only used by the 'mirrored' strategy"):
        distribute.get_strategy("default", devices=["/cpu:0"])
    with pytest.raises(ValueError, match=r"strategy must be one of \['default', 'mirrored', "
                                         r"'multiworker'\], got 'tpu'"):
        distribute.get_strategy("tpu")
    monkeypatch.setenv("TF_CONFIG", "{not json")
    with pytest.raises(ValueError, match="TF_CONFIG is not valid JSON"):
        distribute.check_tf_config()
    monkeypatch.setenv("TF_CONFIG", '{"cluster": {"worker": ["127.0.0.1:1"]}}')
    with pytest.raises(ValueError, match=r"TF_CONFIG has no \"task\""):
        distribute.check_tf_config()
    monkeypatch.setenv("TF_CONFIG", '{"cluster": {"worker": ["127.0.0.1:1"]}, '
                                    '"task": {"type": "worker", "index": 3}}')
    with pytest.raises(ValueError, match=r"task index 3 is out of range for the 1 worker\(s\)"):
        distribute.check_tf_config()
    monkeypatch.delenv("TF_CONFIG")
    with pytest.raises(ValueError, match="multiworker strategy needs TF_CONFIG"):
        distribute.check_tf_config()
    assert keras.config.backend() == "tensorflow"
