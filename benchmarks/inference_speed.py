"""Assignment speed of one model through Keras, SavedModel, ONNX Runtime, TFLite and the
HTTP server, in one run: rows/s and p50/p99 latency at batch 1 and batch 256.

    python benchmarks/inference_speed.py

The model is the DEC-family SAE 784-500-500-2000-10 with its Student-t head (speed does
not depend on the weights, so it is not trained).
"""

import http.client
import json
import socket
import subprocess
import sys
import tempfile
import time
import urllib.parse
import urllib.request
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import numpy as np
import tensorflow as tf
from ai_edge_litert.interpreter import Interpreter

from keras_deepclust.export import export_onnx, export_onnx_version, export_savedmodel, export_tflite
from keras_deepclust.models import IDEC
from keras_deepclust.serving import ClusterAssigner

BATCHES = (1, 256)


def timed(function, x, seconds=3.0, min_calls=20):
    function(x)  # warm-up
    latencies = []
    end = time.perf_counter() + seconds
    while time.perf_counter() < end or len(latencies) < min_calls:
        start = time.perf_counter()
        function(x)
        latencies.append(time.perf_counter() - start)
    latencies = np.array(latencies)
    return {"rows_per_s": len(x) / latencies.mean(), "p50_ms": 1e3 * np.percentile(latencies, 50),
            "p99_ms": 1e3 * np.percentile(latencies, 99), "calls": len(latencies)}


def http_load(url, x, clients=8, requests_per_client=250):
    """Batch-1 predict requests from `clients` threads, each on one kept-alive connection
    (as TF Serving clients use it)."""
    parsed = urllib.parse.urlsplit(url)
    body = json.dumps({"instances": x[:1].tolist()})

    def client(_):
        connection = http.client.HTTPConnection(parsed.hostname, parsed.port, timeout=10)
        latencies = []
        for _ in range(requests_per_client):
            start = time.perf_counter()
            connection.request("POST", parsed.path, body=body,
                               headers={"Content-Type": "application/json"})
            response = connection.getresponse()
            response.read()
            if response.status != 200:
                raise RuntimeError(f"HTTP {response.status}")
            latencies.append(time.perf_counter() - start)
        connection.close()
        return latencies

    start = time.perf_counter()
    with ThreadPoolExecutor(clients) as pool:
        latencies = np.concatenate(list(pool.map(client, range(clients))))
    elapsed = time.perf_counter() - start
    return {"requests_per_s": len(latencies) / elapsed, "p50_ms": 1e3 * np.percentile(latencies, 50),
            "p99_ms": 1e3 * np.percentile(latencies, 99), "requests": len(latencies),
            "clients": clients}


def start_server(base, name, *options):
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    process = subprocess.Popen([sys.executable, "-m", "keras_deepclust.cli", "serve", str(base),
                                "--name", name, "--port", str(port), *options],
                               stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    url = f"http://127.0.0.1:{port}/v1/models/{name}"
    for _ in range(300):
        try:
            urllib.request.urlopen(url, timeout=1).read()
            return process, url + ":predict"
        except OSError:
            time.sleep(0.1)
    process.kill()
    raise RuntimeError("server did not start")


def main():
    rng = np.random.default_rng(0)
    model = IDEC(n_clusters=10, sample_shape=(784,), random_state=0)
    x_all = rng.uniform(0, 1, (256, 784)).astype(np.float32)
    model.initialize_centroids(x_all)
    folder = Path(tempfile.mkdtemp())
    export_savedmodel(model, folder / "sm", "m")
    export_onnx(model, folder / "m.onnx")
    export_tflite(model, folder / "m.tflite")
    export_onnx_version(model, folder / "served", "m")
    serving_default = tf.saved_model.load(str(folder / "sm" / "m" / "1")).signatures["serving_default"]
    onnx = ClusterAssigner(folder / "m.onnx")
    tflite = Interpreter(model_path=str(folder / "m.tflite")).get_signature_runner("serving_default")
    paths = {
        "Keras predict": lambda x: model.predict(x, verbose=0),
        "Keras __call__": lambda x: model(x, training=False),
        "SavedModel": lambda x: serving_default(inputs=tf.constant(x)),
        "ONNX Runtime": onnx.assign,
        "TFLite (LiteRT)": lambda x: tflite(inputs=x),
    }

    rows = []
    for batch in BATCHES:
        x = x_all[:batch]
        base = None
        for name, function in paths.items():
            result = timed(function, x)
            base = base or result["rows_per_s"]
            rows.append({"path": name, "batch": batch, **result,
                         "vs_keras_predict": result["rows_per_s"] / base})
            print(json.dumps(rows[-1]), flush=True)
    process, url = start_server(folder / "served", "m")
    try:
        http = http_load(url, x_all)
    finally:
        process.terminate()
    print(json.dumps(http))
    out = Path(__file__).parent / "results"
    lines = ["| path | batch | rows/s | p50 ms | p99 ms | × Keras predict |", "|---|---|---|---|---|---|"]
    lines += [f"| {r['path']} | {r['batch']} | {r['rows_per_s']:.0f} | {r['p50_ms']:.2f} | "
              f"{r['p99_ms']:.2f} | {r['vs_keras_predict']:.1f} |" for r in rows]
    lines += ["", f"HTTP server (batch 1, {http['clients']} concurrent clients, {http['requests']} "
              f"requests): {http['requests_per_s']:.0f} requests/s, p50 {http['p50_ms']:.2f} ms, "
              f"p99 {http['p99_ms']:.2f} ms."]
    (out / "inference_speed.md").write_text(
        "Command: `python benchmarks/inference_speed.py`\n\n" + "\n".join(lines) + "\n")
    (out / "inference_speed.json").write_text(json.dumps({"paths": rows, "http": http}, indent=2))
    print("\n".join(lines))


if __name__ == "__main__":
    main()
