import keras
import numpy as np
import pytest
import tensorflow as tf

from keras_deepclust.models import DEC, IDEC


def train(cls, strategy, x):
    with strategy.scope():
        model = cls(n_clusters=3, hidden_units=(16, 16), embedding_dim=3, random_state=0,
                    update_interval=2, tol=0.0)
        model.build((None, x.shape[1]))
        model.compile(optimizer=keras.optimizers.SGD(0.1))
    model.pretrain(x, epochs=2, batch_size=32, optimizer="sgd", verbose=0)
    history = model.fit(x, epochs=3, batch_size=32, verbose=0, shuffle=False)
    return history.history["loss"], model.predict(x), model.target_updater.updates


@pytest.fixture(scope="module")
def mirrored():
    # One strategy per process, as in real use: separate MirroredStrategy objects in one
    # process can collide on collective-op keys.
    return tf.distribute.MirroredStrategy(["/cpu:0", "/cpu:1"])


@pytest.mark.parametrize("cls", [DEC, IDEC])
def test_mirrored_training_matches_single_device(blobs, cls, mirrored):
    """Two replicas with half batches each must follow the single-device trajectory: this
    fails if the loss is not divided by the number of replicas (double learning rate)."""
    x = np.concatenate([blobs[0], blobs[0][:6]])  # 96 rows: 3 full batches of 32
    assert len(tf.config.list_logical_devices("CPU")) == 2
    single = train(cls, tf.distribute.get_strategy(), x)
    distributed = train(cls, mirrored, x)
    np.testing.assert_allclose(distributed[0], single[0], rtol=1e-5)
    np.testing.assert_allclose(distributed[1], single[1], atol=1e-5)
    assert [s for s, _ in distributed[2]] == [s for s, _ in single[2]] == [0, 2, 4, 6, 8]
