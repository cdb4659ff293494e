"""N2D (AE codes -> UMAP -> GMM) on digits or Fashion-MNIST, several seeds: the labels of
the exported path (encoder, manifold head, mixture head) and of UMAP's own `transform` +
the same mixture, with the head's agreement on the UMAP rows and on held-out rows.

    python benchmarks/n2d.py --dataset digits --seeds 0 1 2
    python benchmarks/n2d.py --dataset fashion_mnist --seeds 0 1 2

A fraction `--held-out` of the rows (a seeded split) is kept out of the fit and only
used for the held-out agreement; the scores are over all rows.
"""

import argparse
import json
import time
from pathlib import Path

import numpy as np
from dec_family import run_benchmark, scores_of

from keras_deepclust.layers import ImageAugmentation
from keras_deepclust.models import N2D
from keras_deepclust.models.n2d import MANIFOLD_HEADS

ORDER = ["k-means (inputs)", "N2D head (exported)", "N2D UMAP transform"]


def parse_args(argv):
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--dataset", default="digits")
    parser.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2])
    parser.add_argument("--network", default="dense", choices=["dense", "conv"])
    parser.add_argument("--pretrain-epochs", type=int, default=200)
    parser.add_argument("--noise", type=float, default=0.0, help="denoising pretraining")
    parser.add_argument("--augment", type=float, nargs=2, default=None,
                        metavar=("SHIFT", "DEGREES"), help="augmented pretraining (DEC-DA's)")
    parser.add_argument("--n-init", type=int, default=None,
                        help="restarts of the mixture (default: N2D's)")
    parser.add_argument("--manifold-head", default="neighbors", choices=MANIFOLD_HEADS)
    parser.add_argument("--held-out", type=float, default=0.1)
    parser.add_argument("--batch-size", type=int, default=256)
    parser.add_argument("--out", default=str(Path(__file__).parent / "results"))
    parser.add_argument("--name", default=None, help="file stem (default: n2d_DATASET)")
    return parser.parse_args(argv)


def run_seed(x, y, seed, args, emit):
    order = np.random.default_rng(seed).permutation(len(x))
    n_held_out = int(round(args.held_out * len(x)))
    fit_rows, held_out = np.sort(order[n_held_out:]), np.sort(order[:n_held_out])
    options = {"manifold_head": args.manifold_head}
    if args.n_init is not None:
        options["n_init"] = args.n_init
    if args.augment is not None:
        options["augmentation"] = ImageAugmentation(*args.augment, seed=seed)
    model = N2D(len(set(y.tolist())), network=args.network, random_state=seed, **options)
    start = time.perf_counter()
    model.pretrain(x[fit_rows], epochs=args.pretrain_epochs, batch_size=args.batch_size,
                   noise_stddev=args.noise, verbose=0)
    pretrain_seconds = time.perf_counter() - start
    start = time.perf_counter()
    history = model.fit(x[fit_rows], batch_size=args.batch_size, verbose=0).history
    fit_seconds = time.perf_counter() - start
    head_labels, umap_labels = model.predict_labels(x), model.umap_predict_labels(x)
    common = {"seed": seed, "pretrain_s_per_epoch": round(pretrain_seconds / args.pretrain_epochs, 3),
              "fit_s": round(fit_seconds, 1),
              "agreement_fit_rows": round(history["manifold_agreement"][0], 4),
              "agreement_held_out": round(float(np.mean(head_labels[held_out]
                                                        == umap_labels[held_out])), 4),
              "agreement_all": round(float(np.mean(head_labels == umap_labels)), 4)}
    emit({"method": "N2D head (exported)", **scores_of(y, head_labels), **common})
    emit({"method": "N2D UMAP transform", **scores_of(y, umap_labels), **common})


def append_agreement_table(stem):
    """Adds the head's agreement with UMAP + mixture (mean ± std over seeds) to
    `stem.md`, from `stem.jsonl`."""
    stem = Path(stem)
    rows = [json.loads(line) for line in stem.with_suffix(".jsonl").read_text().splitlines()]
    rows = [r for r in rows if r["method"] == "N2D head (exported)"]
    lines = ["| head vs UMAP transform + mixture | agreement |", "|---|---|"]
    for key, label in (("agreement_fit_rows", "rows UMAP was fitted on"),
                       ("agreement_held_out", "held-out rows"), ("agreement_all", "all rows")):
        values = np.array([r[key] for r in rows])
        lines.append(f"| {label} | {values.mean():.3f} ± {values.std():.3f} |")
    with stem.with_suffix(".md").open("a") as md:
        md.write("\n" + "\n".join(lines) + "\n")
    print("\n".join(lines))


def main(argv=None):
    args = parse_args(argv)
    stem = args.name or f"n2d_{args.dataset}"
    run_benchmark("n2d.py", argv, args, stem, run_seed, ORDER)
    append_agreement_table(Path(args.out) / stem)


if __name__ == "__main__":
    main()
