import subprocess
import sys
import tempfile
from pathlib import Path

import keras_deepclust


def run_fresh(code):
    """Runs `code` in a new interpreter started outside the repository, so it imports the
    installed package (with export/ and serving/ mapped in), not the source folder."""
    with tempfile.TemporaryDirectory() as cwd:
        return subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                              check=True, cwd=cwd)


def test_top_level_and_serving_imports_stay_free_of_tensorflow():
    # keras_deepclust.export too: its writers import Keras when they run, so `export`
    # checks its options and folders before TensorFlow's start-up.
    result = run_fresh(
        "import sys, keras_deepclust, keras_deepclust.serving, keras_deepclust.serving.server, "
        "keras_deepclust.serving.batch, keras_deepclust.datasets, keras_deepclust.metrics, "
        "keras_deepclust.export\n"
        "print(sorted(m for m in sys.modules if m.split('.')[0] in ('tensorflow', 'keras')))"
    )
    assert result.stdout.strip() == "[]"


def test_export_and_serving_install_under_the_package_name():
    result = run_fresh(
        "import keras_deepclust.export as e, keras_deepclust.serving as s; "
        "print(e.__file__); print(s.__file__)"
    )
    export_file, serving_file = result.stdout.split()
    assert Path(export_file).parent.name == "export"
    assert Path(serving_file).parent.name == "serving"


def test_lazy_names_and_backend():
    assert keras_deepclust.DCEC.__name__ == "DCEC"
    import keras

    assert keras.backend.backend() == "tensorflow"


def test_another_backend_gets_a_clear_error(monkeypatch):
    import keras
    import pytest

    monkeypatch.setattr(keras.backend, "backend", lambda: "jax")
    with pytest.raises(RuntimeError, match="train with the TensorFlow backend, but Keras is using 'jax'"):
        keras_deepclust.DCEC(n_clusters=3)
