import os

# Before anything imports keras: the suite runs on the TensorFlow backend, quietly.
os.environ.setdefault("KERAS_BACKEND", "tensorflow")
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

import numpy as np  # noqa: E402
import pytest  # noqa: E402
import tensorflow as tf  # noqa: E402

# Two logical CPU devices, so MirroredStrategy can be tested on one CPU. This must
# happen before TensorFlow initialises its devices, hence at conftest import time.
tf.config.set_logical_device_configuration(
    tf.config.list_physical_devices("CPU")[0], [tf.config.LogicalDeviceConfiguration()] * 2
)


@pytest.fixture
def blobs():
    """Three well separated Gaussian blobs in 6-D, 90 samples, labels 0..2."""
    rng = np.random.default_rng(0)
    centers = np.array([[0.1] * 6, [0.5] * 6, [0.9] * 6], dtype=np.float32)
    y = np.repeat(np.arange(3), 30)
    x = centers[y] + rng.normal(0, 0.03, size=(90, 6)).astype(np.float32)
    return x.astype(np.float32), y


@pytest.fixture
def tiny_images():
    """60 random 8x8x1 images in [0, 1] with 3 labels (structure: bright quadrant)."""
    rng = np.random.default_rng(1)
    y = np.repeat(np.arange(3), 20)
    x = rng.uniform(0, 0.2, size=(60, 8, 8, 1)).astype(np.float32)
    for i, label in enumerate(y):
        x[i, 4 * (label // 2):4 * (label // 2) + 4, 4 * (label % 2):4 * (label % 2) + 4] += 0.7
    return x, y
