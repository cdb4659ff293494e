"""Does `steps_per_execution` pay? Seconds per epoch of pretraining and of DEC's
clustering fit on digits for several batch sizes and steps per execution, each
configuration in a fresh process, median over the epochs after the first (which
traces the step).

    python benchmarks/steps_per_execution.py --batch-sizes 256 32 --steps 1 4 16 --seeds 0 1 2
"""

import argparse
import json
import statistics
import subprocess
import sys
import time
from pathlib import Path

from results_io import write_results


def epoch_timer():
    """A Keras callback that appends each epoch's wall time to its `seconds`."""
    import keras

    class EpochTimer(keras.callbacks.Callback):
        seconds = []

        def on_epoch_begin(self, epoch, logs=None):
            self.start = time.perf_counter()

        def on_epoch_end(self, epoch, logs=None):
            self.seconds.append(time.perf_counter() - self.start)

    timer = EpochTimer()
    timer.seconds = []
    return timer


def child(batch_size, steps, seed, epochs):
    import keras

    from keras_deepclust import datasets
    from keras_deepclust.models import DEC

    x, _ = datasets.load_digits()
    model = DEC(10, random_state=seed, update_interval=10**6, tol=0.0)
    pretrain_timer, fit_timer = epoch_timer(), epoch_timer()
    model.pretrain(x, epochs=epochs, batch_size=batch_size, optimizer="adam", verbose=0,
                   steps_per_execution=steps, callbacks=[pretrain_timer])
    model.compile(optimizer=keras.optimizers.Adam(1e-4), steps_per_execution=steps)
    model.fit(x, epochs=epochs, batch_size=batch_size, verbose=0, callbacks=[fit_timer])
    return {"batch_size": batch_size, "steps_per_execution": steps, "seed": seed,
            "steps_per_epoch": -(-len(x) // batch_size),
            "pretrain_s_per_epoch": statistics.median(pretrain_timer.seconds[1:]),
            "fit_s_per_epoch": statistics.median(fit_timer.seconds[1:])}


def summarise(results, command):
    rows = ["| batch | steps/epoch | steps_per_execution | pretrain s/epoch | fit s/epoch |",
            "|---|---|---|---|---|"]
    keys = sorted({(r["batch_size"], r["steps_per_execution"]) for r in results},
                  key=lambda k: (-k[0], k[1]))
    for batch, steps in keys:
        runs = [r for r in results if (r["batch_size"], r["steps_per_execution"]) == (batch, steps)]
        cells = []
        for key in ("pretrain_s_per_epoch", "fit_s_per_epoch"):
            values = [r[key] for r in runs]
            spread = statistics.stdev(values) if len(values) > 1 else 0.0
            cells.append(f"{statistics.mean(values):.3f} ± {spread:.3f}")
        rows.append(f"| {batch} | {runs[0]['steps_per_epoch']} | {steps} | " + " | ".join(cells) + " |")
    return (f"Command: `{command}`\n\nDEC (64-500-500-2000-10) on digits (1797 rows), CPU: "
            "seconds per epoch, the median of the epochs after the first in each run, "
            "mean ± std over seeds (a fresh process per run).\n\n" + "\n".join(rows) + "\n")


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--batch-sizes", type=int, nargs="+", default=[256, 32])
    parser.add_argument("--steps", type=int, nargs="+", default=[1, 4, 16])
    parser.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2])
    parser.add_argument("--epochs", type=int, default=6)
    parser.add_argument("--out", type=Path, default=Path(__file__).parent / "results")
    parser.add_argument("--child", type=int, nargs=3, default=None, help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.child:
        print(json.dumps(child(*args.child, args.epochs)))
        return
    results = []
    for seed in args.seeds:
        for batch_size in args.batch_sizes:
            for steps in args.steps:
                output = subprocess.run(
                    [sys.executable, __file__, "--epochs", str(args.epochs), "--child",
                     str(batch_size), str(steps), str(seed)],
                    check=True, capture_output=True, text=True).stdout
                results.append(json.loads(output.strip().splitlines()[-1]))
                print(results[-1], flush=True)
    command = ("python benchmarks/steps_per_execution.py "
               + " ".join(argv if argv is not None else sys.argv[1:]))
    text = summarise(results, command)
    write_results(args.out, "steps_per_execution", text, results)
    print(text)


if __name__ == "__main__":
    main()
