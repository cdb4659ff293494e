"""The server under mixed good and bad requests on kept-alive connections: every answer
checked, throughput and latency reported.

    python benchmarks/server_load.py --clients 8 --requests 500 --bad-fraction 0.5

A model of the digits (AE + k-means, 5 pretraining epochs: the weights do not matter for
the check) is exported as version 1 and served by `keras-deepclust serve`. Each client
thread holds one HTTP/1.1 connection and sends, in a seeded random order, good requests
(1 to 32 digit rows, whose clusters must equal Keras') and bad ones drawn from a list of
client mistakes (broken JSON, wrong shapes, NaN, huge literals, deep nesting, bytes that are
not UTF-8, too many rows), which must get a 4xx with an error message. A dropped connection
or a 5xx counts as a failure.
"""

import argparse
import http.client
import json
import os
import tempfile
import time
import urllib.parse
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import numpy as np
from inference_speed import start_server
from results_io import cpu_info, write_results

from keras_deepclust import datasets
from keras_deepclust.export import export_onnx_version
from keras_deepclust.models import AEKMeans

BAD_BODIES = [
    b"{not json", b"", b"\xff\xfe\x00", b"[]", b"null", b'{"rows": []}', b'{"instances": 1}',
    b'{"instances": []}', b'{"instances": [[0.5]]}', b'{"instances": [[NaN' + b", 0" * 63 + b"]]}",
    b'{"instances": [[' + b"9" * 5000 + b"]]}", b'{"instances": ' + b"[" * 20000 + b"]" * 20000 + b"}",
    b'{"instances": [[-7.7e30' + b", 0" * 63 + b"]]}", b'{"signature_name": "x", "instances": [[0]]}',
    json.dumps({"instances": [[0.0] * 64] * 300}).encode(),  # over --max-rows 256
    json.dumps({"instances": [{"inputs": [0.0] * 64}, [0.0] * 64]}).encode(),
]


def parse_args(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--clients", type=int, default=8)
    parser.add_argument("--requests", type=int, default=500, help="per client")
    parser.add_argument("--bad-fraction", type=float, default=0.5)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--out", default=str(Path(__file__).parent / "results"))
    parser.add_argument("--name", default="server_load")
    return parser.parse_args(argv)


def client(url, x, labels, args, worker):
    """One connection's requests: counts of each outcome and the latencies."""
    parsed = urllib.parse.urlsplit(url)
    rng = np.random.default_rng([args.seed, worker])
    connection = http.client.HTTPConnection(parsed.hostname, parsed.port, timeout=30)
    counts = {"good": 0, "bad": 0, "wrong_labels": 0, "5xx": 0, "bad_not_4xx": 0,
              "dropped_connections": 0}
    latencies = []
    for _ in range(args.requests):
        bad = rng.random() < args.bad_fraction
        if bad:
            body = BAD_BODIES[rng.integers(len(BAD_BODIES))]
        else:
            rows = rng.integers(len(x), size=rng.integers(1, 33))
            body = json.dumps({"instances": x[rows].tolist()}).encode()
        start = time.perf_counter()
        try:
            connection.request("POST", parsed.path, body=body,
                               headers={"Content-Type": "application/json"})
            response = connection.getresponse()
            answer = json.loads(response.read())
        except (OSError, http.client.HTTPException):
            counts["dropped_connections"] += 1
            connection = http.client.HTTPConnection(parsed.hostname, parsed.port, timeout=30)
            continue
        latencies.append(time.perf_counter() - start)
        counts["bad" if bad else "good"] += 1
        counts["5xx"] += response.status >= 500
        if bad:
            counts["bad_not_4xx"] += not (400 <= response.status < 500 and "error" in answer)
        else:
            clusters = [p["cluster"] for p in answer.get("predictions", [])]
            counts["wrong_labels"] += clusters != labels[rows].tolist()
    connection.close()
    return counts, latencies


def machine():
    """The CPU's model name and core count, for the timings."""
    return f"{cpu_info()[0]} with {os.cpu_count()} cores"


def main(argv=None):
    args = parse_args(argv)
    x, _ = datasets.load_digits()
    x = x.reshape(len(x), -1)
    model = AEKMeans(n_clusters=10, random_state=args.seed)
    model.pretrain(x, epochs=5, verbose=0)
    model.fit(x, verbose=0)
    labels = model.predict_labels(x)
    with tempfile.TemporaryDirectory() as base:
        export_onnx_version(model, base, name="digits")
        process, url = start_server(base, "digits", "--max-rows", "256")
        try:
            start = time.perf_counter()
            with ThreadPoolExecutor(args.clients) as pool:
                results = list(pool.map(lambda w: client(url, x, labels, args, w),
                                        range(args.clients)))
            elapsed = time.perf_counter() - start
        finally:
            process.terminate()
            process.wait(timeout=10)
    totals = {key: sum(counts[key] for counts, _ in results) for key in results[0][0]}
    latencies = np.concatenate([lat for _, lat in results])
    summary = {**totals, "requests": int(len(latencies)), "seconds": round(elapsed, 2),
               "requests_per_s": round(len(latencies) / elapsed, 1),
               "p50_ms": round(1e3 * float(np.percentile(latencies, 50)), 2),
               "p99_ms": round(1e3 * float(np.percentile(latencies, 99)), 2),
               "clients": args.clients, "bad_fraction": args.bad_fraction}
    command = ("python benchmarks/server_load.py --clients {clients} --requests {r} "
               "--bad-fraction {bad_fraction}").format(r=args.requests, **summary)
    rows = "\n".join(f"| {key} | {value} |" for key, value in summary.items())
    markdown = (f"Command: `{command}`\n\n{machine()}, {time.strftime('%Y-%m-%d')}; the server "
                "and the clients share the cores.\n\n| | |\n|---|---|\n" + rows + "\n")
    print(markdown)
    write_results(args.out, args.name, markdown, summary)


if __name__ == "__main__":
    main()
