"""Every method at its paper's scale: all 70,000 Fashion-MNIST images (or any IDX folder,
or any data set `keras_deepclust.datasets.load` reads), each method's own paper schedule,
under a mixed precision policy, with XLA wherever a GPU is visible. Meant for a GPU machine;
on a CPU, time a short run first:

    python benchmarks/paper_scale.py --rows 2000 --pretrain-epochs 2 --epochs 2 \
        --name paper_scale_try
    python benchmarks/paper_scale.py                        # fashion_mnist_all, all methods
    python benchmarks/paper_scale.py --dataset DIR --methods dcec n2d --seeds 0 1 2

For each seed: k-means on the inputs, then each method built with its defaults (which are
its paper's settings; N2D pretrains 1,000 epochs as in its paper, where the package's default
is 200), pretrained with its own `PRETRAIN_EPOCHS` when it needs pretraining, fitted with its
default epochs, and scored on all rows. Each method pretrains its own autoencoder: the
papers' schedules differ. Writes one JSON line per run as it comes (a long run can be
followed and survives a crash up to the last method) and the Markdown table of mean ± std
over the seeds, headed by the command, the device and the precision.
"""

import argparse
import time
from pathlib import Path

import numpy as np
import tensorflow as tf
from dec_family import run_benchmark, scores_of

from keras_deepclust.layers.precision import POLICIES, dtype_policy
from keras_deepclust.models import get_method, list_methods

# The papers' pretraining where the package's default departs from it (see docs/methods).
PAPER_PRETRAIN_EPOCHS = {"n2d": 1000}


def parse_args(argv):
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--dataset", default="fashion_mnist_all",
                        help="a name (fashion_mnist_all: 70,000 images) or a path, e.g. an "
                        "IDX folder")
    parser.add_argument("--methods", nargs="+", default=list_methods(), choices=list_methods())
    parser.add_argument("--seeds", type=int, nargs="+", default=[0])
    parser.add_argument("--precision", default="mixed_bfloat16", choices=POLICIES,
                        help="Keras dtype policy (mixed_float16 on GPUs without bfloat16)")
    parser.add_argument("--rows", type=int, default=None,
                        help="a seeded sample of this many rows, the same for every seed "
                        "(to time a short run first)")
    parser.add_argument("--pretrain-epochs", type=int, default=None,
                        help="every method's pretraining epochs (default: its paper's)")
    parser.add_argument("--epochs", type=int, default=None,
                        help="every iterative method's clustering epochs (default: its own, "
                        "until its stopping rule)")
    parser.add_argument("--batch-size", type=int, default=256)
    parser.add_argument("--out", default=str(Path(__file__).parent / "results"))
    parser.add_argument("--name", default=None,
                        help="file stem of the results (default: paper_scale_DATASET)")
    return parser.parse_args(argv)


def device():
    gpus = tf.config.list_logical_devices("GPU")
    return f"{len(gpus)} GPU(s)" if gpus else "CPU only"


def run_method(name, x, y, seed, args, emit):
    cls = get_method(name)
    model = cls(n_clusters=len(np.unique(y)), random_state=seed)
    row = {"seed": seed, "method": name, "network": model.network,
           "precision": args.precision, "device": device()}
    if model.NEEDS_PRETRAINING:
        epochs = (args.pretrain_epochs or PAPER_PRETRAIN_EPOCHS.get(name)
                  or cls.PRETRAIN_EPOCHS[model.network])
        start = time.perf_counter()
        model.pretrain(x, epochs=epochs, batch_size=args.batch_size, verbose=0)
        seconds = time.perf_counter() - start
        row.update(pretrain_epochs=epochs, pretrain_s_per_epoch=round(seconds / epochs, 3))
    fit_arguments = {"batch_size": args.batch_size, "verbose": 0}
    if model.ITERATIVE_FIT and args.epochs is not None:
        fit_arguments["epochs"] = args.epochs
    start = time.perf_counter()
    history = model.fit(x, **fit_arguments)
    seconds = time.perf_counter() - start
    if model.ITERATIVE_FIT:
        n_epochs = len(history.history["loss"])
        row.update(clustering_epochs=n_epochs, clustering_s_per_epoch=round(seconds / n_epochs, 3))
    row.update(fit_s=round(seconds, 1),
               **scores_of(y, model.predict_labels(x, batch_size=args.batch_size)))
    emit(row)


def main(argv=None):
    args = parse_args(argv)
    stem = args.name or f"paper_scale_{args.dataset}"

    def run_seed(x, y, seed, args, emit):
        for name in args.methods:
            with dtype_policy(args.precision):
                run_method(name, x, y, seed, args, emit)

    run_benchmark("paper_scale.py", argv, args, stem, run_seed,
                  order=["k-means (inputs)", *args.methods], rows=args.rows,
                  note=f"{device()}, policy {args.precision}")


if __name__ == "__main__":
    main()
