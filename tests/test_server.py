"""The real HTTP server on 127.0.0.1, driven by real HTTP requests (bounded in count and time)."""

import json
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from concurrent.futures import ThreadPoolExecutor

import numpy as np
import pytest

from keras_deepclust.export import export_onnx_version
from keras_deepclust.models import IDEC


def trained(seed):
    rng = np.random.default_rng(seed)
    x = rng.uniform(0, 1, (200, 6)).astype("float32")
    model = IDEC(n_clusters=3, hidden_units=(16,), embedding_dim=3, random_state=seed)
    model.pretrain(x, epochs=2, verbose=0)
    model.initialize_centroids(x)
    return model, x


def request(url, body=None, raw=None):
    data = raw if raw is not None else (None if body is None else json.dumps(body).encode())
    req = urllib.request.Request(url, data=data, method="POST" if data is not None else "GET")
    try:
        with urllib.request.urlopen(req, timeout=10) as response:
            return response.status, json.loads(response.read())
    except urllib.error.HTTPError as error:
        return error.code, json.loads(error.read())


@pytest.fixture(scope="module")
def server(tmp_path_factory):
    base = tmp_path_factory.mktemp("models")
    model, x = trained(0)
    export_onnx_version(model, base, name="digits")
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    process = subprocess.Popen(
        [sys.executable, "-m", "keras_deepclust.cli", "serve", str(base), "--name", "digits",
         "--port", str(port), "--poll-seconds", "0.2", "--max-body-bytes", "100000"],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, cwd=base,  # outside the repository
    )
    url = f"http://127.0.0.1:{port}/v1/models/digits"
    deadline = time.time() + 60
    while True:
        try:
            if request(url)[0] == 200:
                break
        except OSError:
            pass
        if process.poll() is not None or time.time() > deadline:
            process.kill()
            raise RuntimeError(f"server did not start: {process.stderr.read().decode()}")
        time.sleep(0.2)
    yield {"url": url, "model": model, "x": x, "base": base, "process": process}
    process.terminate()
    process.wait(timeout=10)


def test_both_request_formats_match_keras(server):
    model, x = server["model"], server["x"][:20]
    status, answer = request(server["url"] + ":predict", {"instances": x.tolist()})
    assert status == 200
    assert [p["cluster"] for p in answer["predictions"]] == model.predict_labels(x).tolist()
    np.testing.assert_allclose([p["probabilities"] for p in answer["predictions"]],
                               model.predict(x), atol=1e-5)
    status, answer = request(server["url"] + ":predict",
                             {"signature_name": "serving_default", "inputs": x.tolist()})
    assert status == 200
    assert answer["outputs"]["cluster"] == model.predict_labels(x).tolist()
    status, answer = request(server["url"] + "/versions/1:predict",
                             {"instances": [{"inputs": row} for row in x[:2].tolist()]})
    assert status == 200 and len(answer["predictions"]) == 2


def test_status_and_metadata(server):
    status, answer = request(server["url"])
    assert status == 200
    assert answer["model_version_status"][0]["state"] == "AVAILABLE"
    status, answer = request(server["url"] + "/metadata")
    signature = answer["metadata"]["signature_def"]["signature_def"]["serving_default"]
    assert signature["inputs"]["inputs"]["tensor_shape"]["dim"][1]["size"] == "6"
    assert set(signature["outputs"]) == {"probabilities", "cluster"}
    assert answer["model_spec"]["name"] == "digits"


@pytest.mark.parametrize("raw, message", [
    (b"{not json", "JSON Parse error"),
    (json.dumps({"instances": [[0.1] * 5]}).encode(), "samples of shape (5,)"),
    (b'{"instances": [[NaN, 0, 0, 0, 0, 0]]}', "NaN or infinite"),
    (json.dumps({"instances": [[0.1] * 6, [0.2] * 5]}).encode(), "rectangular array"),
    (json.dumps({"rows": []}).encode(), "Missing 'inputs' or 'instances' key"),
    (json.dumps({"signature_name": "other", "inputs": [[0] * 6]}).encode(), "signature name"),
    (json.dumps({"instances": [[0.5] * 6] * 5000}).encode(), "exceeds the limit of 100000 bytes"),
])
def test_bad_requests_get_400_and_the_server_keeps_serving(server, raw, message):
    status, answer = request(server["url"] + ":predict", raw=raw)
    assert status == 400 and message in answer["error"]
    assert request(server["url"] + ":predict", {"instances": [[0.5] * 6]})[0] == 200


def test_unknown_model_or_version_is_404(server):
    status, answer = request(server["url"].replace("digits", "cats") + ":predict",
                             {"instances": [[0.5] * 6]})
    assert status == 404 and "Servable not found" in answer["error"]
    assert request(server["url"] + "/versions/9")[0] == 404


def test_bounded_concurrent_load_has_no_failures_or_wrong_answers(server):
    x = server["x"]
    expected = server["model"].predict_labels(x).tolist()

    def client(worker):
        wrong = 0
        for i in range(200):
            row = (worker * 200 + i) % len(x)
            status, answer = request(server["url"] + ":predict", {"instances": [x[row].tolist()]})
            wrong += status != 200 or answer["predictions"][0]["cluster"] != expected[row]
        return wrong

    start = time.perf_counter()
    with ThreadPoolExecutor(8) as pool:
        failures = sum(pool.map(client, range(8)))
    assert failures == 0
    assert time.perf_counter() - start < 120


def test_new_version_is_picked_up(server):
    newer, _ = trained(1)
    export_onnx_version(newer, server["base"], name="digits")
    deadline = time.time() + 20
    while request(server["url"])[1]["model_version_status"][0]["version"] != "2":
        assert time.time() < deadline, "version 2 was not picked up"
        time.sleep(0.2)
    x = server["x"][:30]
    status, answer = request(server["url"] + ":predict", {"inputs": x.tolist()})
    assert answer["outputs"]["cluster"] == newer.predict_labels(x).tolist()
    assert request(server["url"] + "/versions/1:predict", {"inputs": x.tolist()})[0] == 404


def test_a_broken_newer_version_is_not_served(server):
    served = request(server["url"])[1]["model_version_status"][0]["version"]
    broken = server["base"] / "digits" / "99"
    broken.mkdir()
    (broken / "model.onnx").write_bytes(b"half a model")  # no metadata, wrong checksum
    time.sleep(1.0)  # five polls
    assert request(server["url"])[1]["model_version_status"][0]["version"] == served
    assert request(server["url"] + ":predict", {"instances": [[0.5] * 6]})[0] == 200


def test_server_module_is_free_of_tensorflow(tmp_path):
    result = subprocess.run(
        [sys.executable, "-c", "import sys, keras_deepclust.serving.server\n"
         "print(sorted(m for m in sys.modules if m.split('.')[0] in ('tensorflow', 'keras')))"],
        capture_output=True, text=True, check=True, cwd=tmp_path)
    assert result.stdout.strip() == "[]"
