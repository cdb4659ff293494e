"""Seconds per epoch under each Keras dtype policy, on this machine's CPU.

    python benchmarks/precision_speed.py --rows 10000 --epochs 5

Each (network, policy) runs in a fresh process of its own, so that the global policy and
TensorFlow's kernel caches of one run never reach the next. Timed per network, batch 256,
on `--rows` random rows of 28x28 (speed does not depend on the values):

- dense: one pretraining epoch of the 784-500-500-2000-10 SAE (DEC, IDEC);
- conv: one pretraining epoch of the 32-64-128 CAE (DCEC);
- dcec: one clustering epoch of DCEC (the CAE, the Student-t head and the KL + reconstruction
  loss), after its k-means initialisation.

The median of epochs 2 .. `--epochs` is reported (the first one traces the graphs). Writes
`results/precision_speed.jsonl` and `results/precision_speed.md` (`--name`).
"""

import argparse
import json
import os
import statistics
import subprocess
import sys
import time
from pathlib import Path

from results_io import cpu_info

HERE = Path(__file__).resolve().parent
POLICIES = ("float32", "mixed_bfloat16", "mixed_float16")
NETWORKS = ("dense", "conv", "dcec")


class EpochTimer:
    def __init__(self):
        import keras

        class _Timer(keras.callbacks.Callback):
            def on_epoch_begin(inner, epoch, logs=None):
                inner.start = time.perf_counter()

            def on_epoch_end(inner, epoch, logs=None):
                self.seconds.append(time.perf_counter() - inner.start)

        self.seconds = []
        self.callback = _Timer()


def run_one(network, policy, rows, epochs):
    """In the child process: the seconds of each epoch."""
    import keras
    import numpy as np

    keras.mixed_precision.set_global_policy(policy)
    from keras_deepclust.models import DCEC, IDEC

    rng = np.random.default_rng(0)
    x = rng.integers(0, 256, (rows, 28, 28, 1)).astype(np.uint8)
    timer = EpochTimer()
    if network == "dense":
        model = IDEC(10, random_state=0)
        model.pretrain(x.reshape(rows, -1), epochs=epochs, verbose=0, callbacks=[timer.callback])
    elif network == "conv":
        model = DCEC(10, random_state=0)
        model.pretrain(x, epochs=epochs, verbose=0, callbacks=[timer.callback])
    else:
        model = DCEC(10, random_state=0, tol=0.0, n_init=1)
        model.pretrain(x, epochs=1, verbose=0)
        model.fit(x, epochs=epochs, verbose=0, callbacks=[timer.callback])
    return timer.seconds


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--rows", type=int, default=10000)
    parser.add_argument("--epochs", type=int, default=5)
    parser.add_argument("--networks", nargs="+", default=list(NETWORKS), choices=NETWORKS)
    parser.add_argument("--policies", nargs="+", default=list(POLICIES), choices=POLICIES)
    parser.add_argument("--name", default="precision_speed")
    parser.add_argument("--child", nargs=2, metavar=("NETWORK", "POLICY"), help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.epochs < 2:
        parser.error("--epochs must be >= 2: the first epoch traces the graphs and is not timed")
    if args.child:
        print(json.dumps(run_one(*args.child, args.rows, args.epochs)))
        return

    cpu = _cpu_model()
    records = []
    for network in args.networks:
        for policy in args.policies:
            output = subprocess.run(
                [sys.executable, __file__, "--child", network, policy, "--rows", str(args.rows),
                 "--epochs", str(args.epochs)],
                check=True, capture_output=True, text=True, env={**os.environ, "TF_CPP_MIN_LOG_LEVEL": "2"},
            ).stdout.strip().splitlines()[-1]
            seconds = json.loads(output)
            record = {"network": network, "policy": policy, "rows": args.rows,
                      "seconds_per_epoch": statistics.median(seconds[1:]),
                      "epoch_seconds": seconds, "cpu": cpu}
            records.append(record)
            print(json.dumps(record), flush=True)
    out = HERE / "results"
    out.mkdir(exist_ok=True)
    with open(out / f"{args.name}.jsonl", "w") as f:
        f.writelines(json.dumps(r) + "\n" for r in records)
    (out / f"{args.name}.md").write_text(_table(records, args, cpu))


def _table(records, args, cpu):
    command = "python benchmarks/precision_speed.py " + " ".join(sys.argv[1:])
    lines = [f"Command: `{command}`", "", f"CPU: {cpu}; {args.rows} rows of 28x28, batch 256; "
             f"seconds per epoch, median of epochs 2-{args.epochs}.", "",
             "| network | " + " | ".join(args.policies) + " |",
             "|---|" + "---|" * len(args.policies)]
    for network in args.networks:
        row = {r["policy"]: r for r in records if r["network"] == network}
        base = row.get("float32", {}).get("seconds_per_epoch")
        cells = []
        for policy in args.policies:
            seconds = row[policy]["seconds_per_epoch"]
            speedup = f" ({base / seconds:.2f}x)" if base and policy != "float32" else ""
            cells.append(f"{seconds:.2f} s{speedup}")
        lines.append(f"| {network} | " + " | ".join(cells) + " |")
    return "\n".join(lines) + "\n"


def _cpu_model():
    from keras_deepclust.layers.precision import BFLOAT16_CPU_FLAGS

    model, flags = cpu_info()
    bf16 = [f for f in BFLOAT16_CPU_FLAGS if f in flags]
    return f"{model}, {os.cpu_count()} cores, bfloat16 instructions: {', '.join(bf16) or 'none'}"


if __name__ == "__main__":
    main()
