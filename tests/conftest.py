import os

# Before anything imports keras: the suite runs on the TensorFlow backend, quietly.
os.environ.setdefault("KERAS_BACKEND", "tensorflow")
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
# One thread per library in each of the suite's two worker processes: two OpenMP pools
# spinning on two cores made scikit-learn's k-means and mixture fits many times slower.
os.environ.setdefault("OMP_NUM_THREADS", "1")
# TensorFlow's own pool too (and in the processes tests start): one thread per op in each
# worker cut tests/test_contract.py from 250 to 226 s on an AMD EPYC with 2 cores.
os.environ.setdefault("TF_NUM_INTRAOP_THREADS", "1")

import numpy as np  # noqa: E402
import pytest  # noqa: E402
import tensorflow as tf  # noqa: E402

# Two logical CPU devices, so MirroredStrategy can be tested on one CPU. This must
# happen before TensorFlow initialises its devices, hence at conftest import time.
tf.config.set_logical_device_configuration(
    tf.config.list_physical_devices("CPU")[0], [tf.config.LogicalDeviceConfiguration()] * 2
)


# The longest tests first: pytest-xdist's worksteal gives each worker half of the list, in
# order, so a long test near the end of a half became the run's tail, one core idle.
LONGEST_FIRST = ("tests/test_quality.py::", "tests/test_cli.py::test_every_method",
                 "tests/test_backup.py::test_sigkill", "tests/test_multiworker.py::")


def pytest_collection_modifyitems(items):
    def rank(item):
        return next((i for i, prefix in enumerate(LONGEST_FIRST)
                     if item.nodeid.startswith(prefix)), len(LONGEST_FIRST))

    items.sort(key=rank)  # stable: the rest keep their order


@pytest.fixture(scope="session")
def mirrored():
    """The suite's one `MirroredStrategy` over the two logical CPUs. One per process, as
    in real use: separate MirroredStrategy objects in one process can collide on
    collective-op keys."""
    from keras_deepclust import distribute

    return distribute.get_strategy("mirrored", devices=["/cpu:0", "/cpu:1"])


@pytest.fixture(scope="session")
def dcec_artifacts(tmp_path_factory):
    """A small DCEC on 300 random 8x8x1 images, exported once for the session:
    `(model, x, folder)` with `m.onnx` (embedding included) and `m.tflite`."""
    from keras_deepclust.export import export_onnx, export_tflite
    from keras_deepclust.models import DCEC

    x = np.random.default_rng(0).uniform(0, 1, (300, 8, 8, 1)).astype("float32")
    model = DCEC(n_clusters=4, filters=(4, 8), kernel_sizes=(3, 3), embedding_dim=3,
                 random_state=0)
    model.pretrain(x, epochs=2, verbose=0)
    model.initialize_centroids(x)
    folder = tmp_path_factory.mktemp("artifacts")
    export_onnx(model, folder / "m.onnx", include_embedding=True)
    export_tflite(model, folder / "m.tflite")
    return model, x, folder


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



@pytest.fixture
def round_trip(tmp_path):
    """`round_trip(model, x)` saves `model`, loads it back, checks the class, the config,
    the soft assignments of `x` and the optimizer's step count agree, and returns the
    loaded model. (A fixture: the suite's importlib mode cannot import conftest.)"""
    import keras

    def check(model, x):
        path = tmp_path / f"{model.name}.keras"
        model.save(path)
        restored = keras.saving.load_model(path)
        assert type(restored) is type(model)
        assert restored.get_config() == model.get_config()
        np.testing.assert_array_equal(restored.predict(x), model.predict(x))
        if model.compiled:
            assert int(restored.optimizer.iterations.numpy()) == int(
                model.optimizer.iterations.numpy())
        return restored

    return check


@pytest.fixture
def resumes_alike():
    """`resumes_alike(model, restored, x, **fit_kwargs)`: one more `fit` of each gives
    the same model."""

    def check(model, restored, x, **fit_kwargs):
        model.fit(x, verbose=0, **fit_kwargs)
        restored.fit(x, verbose=0, **fit_kwargs)
        np.testing.assert_allclose(restored.predict(x), model.predict(x), atol=1e-5)

    return check


@pytest.fixture
def installed(tmp_path):
    """`installed(*args, timeout=...)` runs the installed `keras-deepclust` console script in
    a fresh process whose working folder is `tmp_path` (outside the repository), as a user
    types it, and returns the `subprocess.CompletedProcess` (text, both streams captured).
    `installed.snapshot()` maps every file under `tmp_path` to its bytes, so a test can
    check that the user's files are all still there, unchanged."""
    import subprocess
    import sys
    from pathlib import Path

    script = Path(sys.executable).with_name("keras-deepclust")
    assert script.is_file(), f"the console script is not installed beside {sys.executable}"

    def run(*args, timeout=600):
        return subprocess.run([str(script), *map(str, args)], cwd=tmp_path, capture_output=True,
                              text=True, timeout=timeout)

    def snapshot(root=tmp_path):
        return {str(p.relative_to(root)): p.read_bytes()
                for p in sorted(Path(root).rglob("*")) if p.is_file()}

    run.snapshot = snapshot
    run.cwd = tmp_path
    run.script = str(script)
    return run
