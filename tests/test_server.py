"""The real HTTP server on 127.0.0.1, driven by real HTTP requests (bounded in count and time)."""

import contextlib
import http.client
import json
import socket
import subprocess
import sys
import threading
import time
import urllib.error
import urllib.request
from concurrent.futures import ThreadPoolExecutor

import numpy as np
import pytest
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st

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


@contextlib.contextmanager
def running_server(base, *options, config=None):
    """`keras-deepclust serve` on BASE/digits (or the models of `config`) in its own
    process, on a free port."""
    model, x = trained(0)
    export_onnx_version(model, base, name="digits")
    log = base / "server.log"
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    process = subprocess.Popen(
        [sys.executable, "-m", "keras_deepclust.cli", "serve",
         *(["--model-config-file", str(config)] if config else [str(base), "--name", "digits"]),
         "--port", str(port), "--poll-seconds", "0.2", "--max-body-bytes", "100000", *options],
        stdout=subprocess.DEVNULL, stderr=log.open("wb"), cwd=base,  # outside the repository
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
            raise RuntimeError(f"server did not start: {log.read_text()}")
        time.sleep(0.2)
    try:
        yield {"url": url, "port": port, "model": model, "x": x, "base": base,
               "process": process, "log": log}
    finally:
        process.terminate()
        process.wait(timeout=10)


@pytest.fixture(scope="module")
def server(tmp_path_factory):
    """A server the tests only send requests to (no new versions: those tests start
    their own), so that they pass in any order."""
    with running_server(tmp_path_factory.mktemp("models")) as running:
        yield running


def versions(url):
    """`{version: state}` of GET /v1/models/NAME."""
    return {entry["version"]: entry["state"]
            for entry in request(url)[1]["model_version_status"]}


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
    (b'{"instances": [[-7.7e27, 0, 0, 0, 0, 0]]}', "too large for the model"),  # overflows
    (b'{"instances": [[' + b"9" * 5000 + b', 0, 0, 0, 0, 0]]}', "JSON Parse error"),
    (b'{"instances": ' + b"[" * 30000 + b"]" * 30000 + b"}", "nests too deeply"),
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


def test_new_version_is_picked_up_while_clients_request(tmp_path):
    with running_server(tmp_path) as server:
        x = server["x"][:30]
        stop, answers = threading.Event(), []

        def client():
            while not stop.is_set():
                answers.append(request(server["url"] + ":predict", {"inputs": x.tolist()}))

        with ThreadPoolExecutor(4) as pool:
            clients = [pool.submit(client) for _ in range(4)]
            time.sleep(0.5)
            newer, _ = trained(1)
            export_onnx_version(newer, server["base"], name="digits")
            deadline = time.time() + 20
            while versions(server["url"]) != {"2": "AVAILABLE"}:
                assert time.time() < deadline, "version 2 was not picked up"
                time.sleep(0.2)
            time.sleep(0.5)
            stop.set()
            for future in clients:
                future.result()
        labels = {1: server["model"].predict_labels(x).tolist(), 2: newer.predict_labels(x).tolist()}
        assert [status for status, _ in answers if status != 200] == []  # none failed in the swap
        assert all(answer["outputs"]["cluster"] in labels.values() for _, answer in answers)
        assert answers[-1][1]["outputs"]["cluster"] == labels[2]
        assert request(server["url"] + "/versions/1:predict", {"inputs": x.tolist()})[0] == 404


def test_a_broken_newer_version_is_logged_once_and_the_old_one_keeps_serving(tmp_path):
    with running_server(tmp_path) as server:
        broken = server["base"] / "digits" / "99"
        broken.mkdir()
        (broken / "model.onnx").write_bytes(b"half a model")  # no metadata, wrong checksum
        deadline = time.time() + 20
        while versions(server["url"]) != {"99": "END", "1": "AVAILABLE"}:  # the poller runs
            assert time.time() < deadline, versions(server["url"])
            time.sleep(0.2)
        time.sleep(1.0)  # five more polls
        assert request(server["url"] + ":predict", {"instances": [[0.5] * 6]})[0] == 200
        status = request(server["url"])[1]["model_version_status"]
        assert status[0]["status"]["error_code"] == "UNKNOWN" and status[0]["status"]["error_message"]
        assert server["log"].read_text().count("could not load digits version 99") == 1


def test_rows_and_concurrent_requests_are_bounded(tmp_path):
    with running_server(tmp_path, "--max-rows", "3", "--max-concurrent", "1") as server:
        predict = server["url"] + ":predict"
        status, answer = request(predict, {"instances": [[0.5] * 6] * 4})
        assert status == 400 and "4 rows exceed the limit of 3 rows" in answer["error"]
        # A request whose body is still arriving holds the one slot ...
        slow = socket.create_connection(("127.0.0.1", server["port"]))
        slow.sendall(b"POST /v1/models/digits:predict HTTP/1.1\r\nHost: x\r\n"
                     b"Content-Type: application/json\r\nContent-Length: 40\r\n\r\n{")
        time.sleep(0.5)
        try:
            status, answer = request(predict, {"instances": [[0.5] * 6]})
            assert status == 503 and "in progress" in answer["error"]  # ... so this waits
        finally:
            slow.sendall(b" " * 39)
            assert slow.recv(4096).startswith(b"HTTP/1.1 400")  # "{" and spaces: not JSON
            slow.close()
        assert request(predict, {"instances": [[0.5] * 6] * 3})[0] == 200


def test_a_model_config_file_serves_each_model_with_its_policy_and_labels(tmp_path):
    models = {seed: trained(seed)[0] for seed in (1, 2, 3)}
    for seed in (1, 2):  # digits versions 1 and 2; running_server adds 3 (seed 0)
        export_onnx_version(models[seed], tmp_path, name="digits")
    export_onnx_version(models[3], tmp_path, name="other")
    config = tmp_path / "serving.config"  # export_onnx_version rewrites models.config
    config.write_text("""model_config_list {
      config { name: "digits" base_path: "digits"
               model_version_policy { specific { versions: 1 versions: 2 } }
               version_labels { key: "stable" value: 1 } }
      config { name: "other" base_path: "other" }
    }""")
    with running_server(tmp_path, config=config) as server:
        x = server["x"][:20]
        root = server["url"].rsplit("/", 1)[0]

        def clusters(path):
            status, answer = request(f"{root}/{path}:predict", {"inputs": x.tolist()})
            return answer["outputs"]["cluster"] if status == 200 else status

        assert versions(f"{root}/digits") == {"1": "AVAILABLE", "2": "AVAILABLE"}
        assert clusters("digits") == models[2].predict_labels(x).tolist()  # the newest: 2
        assert clusters("digits/versions/1") == models[1].predict_labels(x).tolist()
        assert clusters("digits/labels/stable") == clusters("digits/versions/1")
        assert clusters("digits/versions/3") == 404  # not in the policy
        assert clusters("digits/labels/beta") == 404
        assert clusters("other") == models[3].predict_labels(x).tolist()
        assert request(f"{root}/other/metadata")[1]["model_spec"] == {
            "name": "other", "signature_name": "", "version": "1"}
        assert request(f"{root}/digits/labels/stable")[1]["model_version_status"][0][
            "version"] == "1"


def test_server_module_is_free_of_tensorflow(tmp_path):
    result = subprocess.run(
        [sys.executable, "-c", "import sys, keras_deepclust.serving.server\n"
         "print(sorted(m for m in sys.modules if m.split('.')[0] in ('tensorflow', 'keras')))"],
        capture_output=True, text=True, check=True, cwd=tmp_path)
    assert result.stdout.strip() == "[]"


# Request bodies of every kind: any bytes, any JSON value (NaN and Infinity literals
# included), TF Serving's keys holding anything, rows of any length and value, number
# literals of any size, nesting of any depth; all within the body limit (100,000 bytes).
JSON_VALUES = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats() | st.text(max_size=20),
    lambda inner: st.lists(inner, max_size=6) | st.dictionaries(st.text(max_size=10), inner,
                                                                  max_size=4),
    max_leaves=30)
KEYS = st.sampled_from(["instances", "inputs", "signature_name", "rows"])
ROWS = st.lists(st.lists(st.floats(width=32) | st.integers(-10**40, 10**40), min_size=1,
                         max_size=8), min_size=1, max_size=4)
LITERALS = st.from_regex(r"-?[0-9]{1,6000}(\.[0-9]{1,50})?([eE][+-]?[0-9]{1,6})?", fullmatch=True)
BODIES = st.one_of(
    st.binary(max_size=300),
    JSON_VALUES.map(json.dumps),
    st.dictionaries(KEYS, JSON_VALUES, max_size=3).map(json.dumps),
    st.dictionaries(st.sampled_from(["instances", "inputs"]), ROWS, min_size=1).map(json.dumps),
    ROWS.map(lambda rows: json.dumps({"instances": [{"inputs": row} for row in rows]})),
    LITERALS.map(lambda number: '{"instances": [[%s, 0, 0, 0, 0, 0]]}' % number),
    st.integers(1, 40_000).map(lambda depth: '{"instances": ' + "[" * depth + "]" * depth + "}"),
).map(lambda body: body if isinstance(body, bytes) else body.encode())


@pytest.fixture(scope="module")
def connection(server):
    """One kept-alive HTTP/1.1 connection: every answer must leave it usable."""
    connection = http.client.HTTPConnection("127.0.0.1", server["port"], timeout=30)
    yield connection
    connection.close()


def post(connection, path, raw):
    connection.request("POST", path, body=raw, headers={"Content-Type": "application/json"})
    response = connection.getresponse()
    return response.status, json.loads(response.read())


def test_any_body_gets_an_answer_below_500_on_a_connection_that_stays_usable(
        server, connection):
    """800 generated bodies (seeded), after the three kinds that once gave a 500, on one
    kept-alive connection: each gets a 200 or a 4xx with an error message, and none leaves
    a traceback in the server's log."""
    logged_before = len(server["log"].read_bytes())

    @settings(max_examples=800, deadline=None, derandomize=True, database=None,
              suppress_health_check=list(HealthCheck))
    @given(raw=BODIES)
    @example(raw=b'{"instances": [[' + b"9" * 5000 + b', 0, 0, 0, 0, 0]]}')  # > 4,300 digits
    @example(raw=b'{"instances": ' + b"[" * 40_000 + b"]" * 40_000 + b"}")  # nesting
    @example(raw=b'{"instances": [[1e308, 0, 0, 0, 0, 0]]}')  # beyond float32
    def answered(raw):
        status, answer = post(connection, "/v1/models/digits:predict", raw)
        assert status == 200 or (400 <= status < 500 and isinstance(answer["error"], str)), (
            status, answer, raw[:200])
        if status == 200:
            assert len(answer.get("predictions") or answer["outputs"]["cluster"]) >= 1

    answered()
    assert post(connection, "/v1/models/digits:predict",
                json.dumps({"instances": [[0.5] * 6]}).encode())[0] == 200
    logged = server["log"].read_bytes()[logged_before:].decode()
    assert "Traceback" not in logged and "predict failed" not in logged, logged[-3000:]
