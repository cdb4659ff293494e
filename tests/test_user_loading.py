"""A saved model loads in a fresh process whatever the order in which the user imports
keras_deepclust, Keras and TensorFlow: Keras finds "keras_deepclust>AEKMeans" only once the
module defining it has run, and TensorFlow's own import probes for `keras` with
`importlib.util.find_spec` before importing it (issue 29, point 5)."""

import importlib
import json
import pkgutil
import subprocess
import sys
import tempfile
from types import SimpleNamespace

import numpy as np
import pytest

import keras_deepclust

# Each value is the start of a script run in its own fresh interpreter: the user's imports
# in one order, ending with `load` bound to the loader the user calls.
IMPORT_ORDERS = {
    "keras_deepclust and its TensorFlow-free server, then keras": (
        "import keras_deepclust, keras_deepclust.serving\n"
        "heavy = [m for m in sys.modules if m.split('.')[0] in ('keras', 'tensorflow')]\n"
        "assert not heavy, heavy\n"
        "import keras\n"
        "load = keras.saving.load_model\n"),
    "keras_deepclust, then tensorflow's tf.keras": (
        "import keras_deepclust\n"
        "import tensorflow as tf\n"
        "load = tf.keras.models.load_model\n"),
    # Keras already loaded when keras_deepclust is imported (`from keras import saving`
    # first takes the same path).
    "tensorflow, then keras_deepclust": (
        "import tensorflow\n"
        "import keras_deepclust\n"
        "import keras\n"
        "load = keras.saving.load_model\n"),
    "a keras_deepclust submodule that imports keras itself": (
        "import keras_deepclust.networks\n"
        "import keras\n"
        "load = keras.saving.load_model\n"),
}

# What every order then does: load the model, assign the rows, and look up every name the
# package registers with Keras. argv: model path, data path, JSON list of names.
LOAD_AND_REPORT = """
model = load(sys.argv[1])
labels = model.predict_labels(np.load(sys.argv[2])["x"])
import keras
unresolved = [n for n in json.loads(sys.argv[3]) if keras.saving.get_registered_object(n) is None]
print(json.dumps({"class": type(model).__name__, "labels": labels.tolist(),
                  "unresolved": unresolved}))
"""


@pytest.fixture(scope="module")
def saved(tmp_path_factory):
    """A tiny fitted AE + k-means saved with `model.save`, its 60 rows and labels in an .npz,
    and the labels it assigns in this process."""
    from keras_deepclust.models import AEKMeans

    folder = tmp_path_factory.mktemp("saved")
    x = np.random.default_rng(0).random((60, 8)).astype(np.float32)
    y = np.arange(60) % 3
    model = AEKMeans(n_clusters=3, hidden_units=(8,), embedding_dim=2, n_init=1, random_state=0)
    model.pretrain(x, epochs=1, verbose=0)
    model.fit(x, verbose=0)
    model.save(folder / "model.keras")
    np.savez(folder / "data.npz", x=x, y=y)
    return SimpleNamespace(model=folder / "model.keras", data=folder / "data.npz", y=y,
                           labels=model.predict_labels(x).tolist())


def names_the_package_registers():
    """Every "keras_deepclust>..." name in Keras's registry once each module of the package
    has been imported (export/ and serving/ install elsewhere and define no Keras class)."""
    import keras

    for module in pkgutil.walk_packages(keras_deepclust.__path__, "keras_deepclust."):
        importlib.import_module(module.name)
    return sorted(name for name in keras.saving.get_custom_objects()
                  if name.startswith("keras_deepclust>"))


def test_a_saved_model_loads_in_every_import_order(saved):
    names = names_the_package_registers()
    assert {"keras_deepclust>AEKMeans", "keras_deepclust>DEC", "keras_deepclust>DAC",
            "keras_deepclust>DAMIC", "keras_deepclust>AEC", "keras_deepclust>N2D",
            "keras_deepclust>ClusteringLayer"} <= set(names)
    with tempfile.TemporaryDirectory() as outside_the_repository:
        processes = {
            order: subprocess.Popen(
                [sys.executable, "-c", "import json, sys\nimport numpy as np\n" + imports
                 + LOAD_AND_REPORT, str(saved.model), str(saved.data), json.dumps(names)],
                cwd=outside_the_repository, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                text=True)
            for order, imports in IMPORT_ORDERS.items()}
        outputs = {order: process.communicate(timeout=600) for order, process in processes.items()}
    for order, (stdout, stderr) in outputs.items():
        assert processes[order].returncode == 0, f"{order}:\n{stderr[-3000:]}"
        assert json.loads(stdout.splitlines()[-1]) == {
            "class": "AEKMeans", "labels": saved.labels, "unresolved": []}, order


def test_installed_evaluate_loads_the_model_in_a_fresh_process(saved, installed):
    from keras_deepclust.metrics import clustering_scores

    (installed.cwd / "model.keras").write_bytes(saved.model.read_bytes())
    (installed.cwd / "data.npz").write_bytes(saved.data.read_bytes())
    before = installed.snapshot()

    result = installed("evaluate", "model.keras", "--dataset", "data.npz")

    assert result.returncode == 0, result.stderr
    assert "Traceback" not in result.stderr
    assert json.loads(result.stdout) == clustering_scores(saved.y, np.array(saved.labels))
    assert installed.snapshot() == before
