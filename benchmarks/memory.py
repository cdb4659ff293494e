"""Peak memory as N grows: synthetic 784-d uint8 rows in an .npy file, streamed with
`datasets.stream` through one pretraining epoch, the method's fit and one full
assignment pass, each N in its own process.

    python benchmarks/memory.py --rows 10000 100000 1000000
    python benchmarks/memory.py --method idec --rows 10000 100000 1000000
    python benchmarks/memory.py --method aec --rows 10000 100000 1000000
"""

import argparse
import json
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
from results_io import write_results

FEATURES = 784


def make_file(path, rows, chunk=100_000):
    """Writes `rows` random uint8 rows to an .npy without holding them in memory."""
    array = np.lib.format.open_memmap(path, mode="w+", dtype=np.uint8, shape=(rows, FEATURES))
    rng = np.random.default_rng(0)
    for start in range(0, rows, chunk):
        stop = min(rows, start + chunk)
        array[start:stop] = rng.integers(0, 256, size=(stop - start, FEATURES), dtype=np.uint8)
    array.flush()
    del array


# Per method: the model, and what its `fit` does on the stream.
FITS = {
    "ae-kmeans": "`fit` embeds every row and runs k-means on at most 100,000 codes",
    "idec": "IDEC `fit`: k-means on the codes, then one clustering epoch with the target "
            "refreshed every ceil(steps / 2) steps from the snapshot (no N x K target)",
    "aec": "AEC `fit`: one epoch from the hashed random start, then the centroid update and "
           "re-assignment passes (no per-row assignment)",
}


def make_model(method, hidden, steps):
    from keras_deepclust.models import AEC, IDEC, AEKMeans

    options = {"hidden_units": tuple(hidden), "random_state": 0}
    if method == "idec":
        return IDEC(10, update_interval=-(-steps // 2), n_init=3, **options)
    if method == "aec":
        return AEC(10, **options)
    return AEKMeans(10, **options)


def child(path, hidden, method):
    from keras_deepclust import datasets, models  # noqa: F401 (imported before the baseline)

    baseline = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    dataset, rows = datasets.stream(path, batch_size=256)
    model = make_model(method, hidden, -(-rows // 256))
    start = time.perf_counter()
    model.pretrain(dataset, epochs=1, verbose=0)
    train_seconds = time.perf_counter() - start
    start = time.perf_counter()
    model.fit(dataset, epochs=1, verbose=0)
    labels = model.predict_labels(dataset)  # the full assignment pass
    assign_seconds = time.perf_counter() - start
    assert len(labels) == rows
    return {"rows": rows, "file_mb": round(Path(path).stat().st_size / 1e6),
            "peak_rss_mb": round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024),
            "rss_after_imports_mb": round(baseline), "epoch_s": round(train_seconds, 1),
            "fit_and_assign_s": round(assign_seconds, 1)}


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--rows", type=int, nargs="+", default=[10_000, 100_000, 1_000_000])
    parser.add_argument("--hidden", type=int, nargs="+", default=[256, 64],
                        help="encoder widths (memory is about the data, not the network)")
    parser.add_argument("--method", choices=sorted(FITS), default="ae-kmeans")
    parser.add_argument("--out", type=Path, default=Path(__file__).parent / "results")
    parser.add_argument("--child", default=None, help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.child:
        print(json.dumps(child(args.child, args.hidden, args.method)))
        return
    results = []
    with tempfile.TemporaryDirectory() as scratch:
        for rows in args.rows:
            path = Path(scratch) / f"x{rows}.npy"
            make_file(path, rows)
            output = subprocess.run(
                [sys.executable, __file__, "--child", str(path), "--method", args.method,
                 "--hidden", *map(str, args.hidden)], check=True, capture_output=True, text=True).stdout
            results.append(json.loads(output.strip().splitlines()[-1]))
            path.unlink()
            print(results[-1], flush=True)
    command = "python benchmarks/memory.py " + " ".join(argv if argv is not None else sys.argv[1:])
    keys = ["rows", "file_mb", "rss_after_imports_mb", "peak_rss_mb", "epoch_s", "fit_and_assign_s"]
    lines = ["| " + " | ".join(keys) + " |", "|" + "---|" * len(keys)]
    lines += ["| " + " | ".join(str(r[k]) for k in keys) + " |" for r in results]
    text = (f"Command: `{command}`\n\n{args.method}, AE {FEATURES}-"
            f"{'-'.join(map(str, args.hidden))}-10, data streamed from a uint8 .npy by "
            f"`datasets.stream` (batch 256): one pretraining epoch, then {FITS[args.method]}, "
            "and `predict_labels` over every row; peak RSS of the whole process.\n\n"
            + "\n".join(lines) + "\n")
    name = "memory" if args.method == "ae-kmeans" else f"memory_{args.method}"
    write_results(args.out, name, text, results)
    print(text)


if __name__ == "__main__":
    main()
