"""`keras-deepclust export` as a user runs it, in a fresh process from a temporary folder:
a user's models.config survives a versioned export and the exported folder serves after it
is moved; options that would be ignored, a file given as the output folder and a file in
the way are refused before any work, leaving every file as it was; the quiet CLI prints
nothing of LiteRT's."""

import json
import shutil
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from pathlib import Path

import numpy as np
import pytest

from keras_deepclust.export import export_onnx_version
from keras_deepclust.models import AEKMeans


@pytest.fixture(scope="module")
def tiny_model(tmp_path_factory):
    """`(model, x, path)`: an AE + k-means on 60 rows of 5 features, saved as .keras."""
    x = np.random.default_rng(0).uniform(0, 1, (60, 5)).astype("float32")
    model = AEKMeans(n_clusters=2, hidden_units=(8,), embedding_dim=2, random_state=0)
    model.pretrain(x, epochs=1, verbose=0)
    model.fit(x, verbose=0)
    path = tmp_path_factory.mktemp("model") / "tiny.keras"
    model.save(path)
    return model, x, path


def users_config(elsewhere):
    """A model config a user wrote: a comment, a relative model with a version policy and
    labels, and one served from an absolute path outside the folder."""
    return (
        "# our production models\n"
        "model_config_list {\n"
        "  config {\n"
        '    name: "digits"  # v1 is the one we trust\n'
        '    base_path: "digits"\n'
        '    model_platform: "onnx"\n'
        "    model_version_policy { specific { versions: 1 versions: 2 } }\n"
        '    version_labels { key: "stable" value: 1 }\n'
        '    version_labels { key: "canary" value: 2 }\n'
        "  }\n"
        f'  config {{ name: "fashion" base_path: "{elsewhere}" }}\n'
        "}\n"
    )


@pytest.fixture
def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def get(url, body=None):
    data = None if body is None else json.dumps(body).encode()
    try:
        with urllib.request.urlopen(urllib.request.Request(url, data=data), timeout=10) as answer:
            return answer.status, json.loads(answer.read())
    except urllib.error.HTTPError as error:
        return error.code, json.loads(error.read())


def served(config, cwd, port):
    """Starts the installed `keras-deepclust serve --model-config-file CONFIG` from `cwd`;
    returns the process once /v1/models/clusterer answers."""
    script = Path(sys.executable).with_name("keras-deepclust")
    process = subprocess.Popen([str(script), "serve", "--model-config-file", str(config),
                                "--port", str(port)], cwd=cwd, stdout=subprocess.DEVNULL,
                               stderr=subprocess.PIPE, text=True)
    deadline = time.time() + 60
    while time.time() < deadline and process.poll() is None:
        try:
            if get(f"http://127.0.0.1:{port}/v1/models/clusterer")[0] == 200:
                return process
        except OSError:
            time.sleep(0.2)
    process.kill()
    raise AssertionError(f"the server did not start: {process.communicate()[1]}")


def test_a_versioned_export_keeps_the_users_config_and_the_moved_folder_serves(
        tiny_model, installed, free_port):
    model, x, model_path = tiny_model
    base, elsewhere = installed.cwd / "base", installed.cwd / "elsewhere"
    for _ in range(2):  # digits versions 1 and 2
        export_onnx_version(model, base, name="digits")
    export_onnx_version(model, elsewhere, name="fashion")
    user_text = users_config(elsewhere / "fashion")
    (base / "models.config").write_text(user_text)

    result = installed("export", model_path, "--format", "onnx", "--versioned",
                       "--name", "clusterer", "--out", "base")
    assert result.returncode == 0, result.stderr
    assert result.stderr == ""
    # Every byte the user wrote is kept; this model's entry comes before the list's '}'.
    assert (base / "models.config").read_text() == user_text[:-2] + (
        '  config {\n    name: "clusterer"\n    base_path: "clusterer"\n'
        '    model_platform: "onnx"\n  }\n}\n')

    moved = installed.cwd / "moved"
    shutil.move(base, moved)  # the relative base paths travel with the folder
    server = served("moved/models.config", installed.cwd, free_port)
    try:
        root = f"http://127.0.0.1:{free_port}/v1/models"

        def clusters(path):
            status, answer = get(f"{root}/{path}:predict", {"inputs": x[:10].tolist()})
            return answer["outputs"]["cluster"] if status == 200 else status

        expected = model.predict_labels(x[:10]).tolist()
        assert clusters("clusterer") == expected
        assert clusters("digits/labels/stable") == expected
        assert get(f"{root}/digits/labels/canary")[1]["model_version_status"][0]["version"] == "2"
        assert clusters("digits/versions/3") == 404  # the user's policy still holds
        assert clusters("fashion") == expected  # the absolute path still serves
    finally:
        server.terminate()
        server.wait(timeout=10)


def test_a_config_that_cannot_be_read_stops_the_export_before_any_work(
        tiny_model, installed):
    model, _, model_path = tiny_model
    broken = installed.cwd / "broken"
    broken.mkdir()
    (broken / "models.config").write_text("model_config_list {\n  config {\n"
                                          '    name: "digits"\n    base_path "digits"\n')
    before = installed.snapshot()
    result = installed("export", model_path, "--format", "onnx", "--versioned",
                       "--name", "digits", "--out", "broken")
    assert result.returncode == 2
    assert result.stderr == ("keras-deepclust export: error: broken/models.config, line 2: "
                             "this '{' is never closed\n")
    assert installed.snapshot() == before  # no version folder, the file untouched


def test_options_that_would_be_ignored_and_a_file_as_the_output_folder_are_refused(
        tiny_model, installed):
    _, _, model_path = tiny_model
    (installed.cwd / "notes.txt").write_text("mine\n")
    before = installed.snapshot()
    result = installed("export", model_path, "--format", "onnx", "--quantize", "dynamic",
                       "--out", "out")
    assert result.returncode == 2
    assert result.stderr == ("keras-deepclust export: error: quantization 'dynamic' applies to "
                             "TFLite files only and would be ignored by an export of "
                             "['onnx'].\n")
    result = installed("export", model_path, "--format", "onnx", "--out", "notes.txt")
    assert result.returncode == 2
    assert result.stderr == ("keras-deepclust export: error: The output folder notes.txt is a "
                             "file: choose a folder.\n")
    assert installed.snapshot() == before


def test_a_versioned_export_refuses_quantize(tiny_model, installed):
    _, _, model_path = tiny_model
    result = installed("export", model_path, "--format", "onnx", "--versioned",
                       "--quantize", "float16", "--out", "served")
    assert result.returncode == 2
    assert result.stderr == ("keras-deepclust export: error: quantization 'float16' applies to "
                             "TFLite files only and would be ignored by a versioned export of "
                             "['onnx'].\n")
    assert installed.snapshot() == {}


def test_the_quiet_tflite_export_prints_nothing_and_never_overwrites_a_changed_file(
        tiny_model, installed):
    _, _, model_path = tiny_model
    result = installed("export", model_path, "--format", "tflite", "--out", "out")
    assert result.returncode == 0
    assert result.stderr == ""  # LiteRT's "INFO: Created TensorFlow Lite XNNPACK delegate"
    assert result.stdout.startswith("tflite     max |dp|")
    with open(installed.cwd / "out" / "clusterer.tflite", "ab") as f:
        f.write(b"the user's change")
    before = installed.snapshot()
    result = installed("export", model_path, "--format", "tflite", "--out", "out")
    assert result.returncode == 2
    assert result.stderr == (
        "keras-deepclust export: error: out/clusterer.tflite already exists and is not an "
        "earlier export left unchanged (it changed since clusterer.tflite.metadata.json was "
        "written); it is kept: remove it, or export under another name or folder.\n")
    assert installed.snapshot() == before
