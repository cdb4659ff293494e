"""Benchmark of the DEC family against k-means on the inputs, over several seeds.

For each seed it pretrains one dense SAE and one CAE, then, as in Table 1 of the DCEC
paper, starts SAE+k-means, DEC and IDEC from the same pretrained SAE and CAE+k-means,
DEC-conv and DCEC from the same pretrained CAE. Writes one JSON line per run and a
Markdown table of mean +- std over the seeds.

    python benchmarks/dec_family.py --dataset digits --seeds 0 1 2
"""

import argparse
import json
import sys
import time
from pathlib import Path

import numpy as np
from sklearn.cluster import KMeans

from keras_deepclust import callbacks, datasets, metrics
from keras_deepclust.layers import ImageAugmentation
from keras_deepclust.models import DCEC, DEC, IDEC, DECConv

FAMILIES = {"dense": (IDEC, DEC, "SAE+k-means"), "conv": (DCEC, DECConv, "CAE+k-means")}
NAMES = {IDEC: "IDEC", DEC: "DEC", DCEC: "DCEC", DECConv: "DEC-conv"}


def parse_args(argv):
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--dataset", default="digits")
    parser.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2])
    parser.add_argument("--networks", nargs="+", default=["dense", "conv"])
    parser.add_argument("--pretrain-epochs-dense", type=int, default=400, help="paper: 400")
    parser.add_argument("--pretrain-epochs-conv", type=int, default=200, help="paper: 200")
    parser.add_argument("--dense-optimizer", default="paper", choices=["paper", "adam"],
                        help="paper: SGD lr 0.01 momentum 0.9")
    parser.add_argument("--noise", type=float, default=0.0, help="denoising pretraining")
    parser.add_argument("--augment", type=float, nargs=2, default=None,
                        metavar=("SHIFT", "DEGREES"),
                        help="DEC-DA: random shifts (fraction) and rotations (degrees) of the images")
    parser.add_argument("--augment-phases", default="both", choices=["both", "pretrain"],
                        help="augment in pretraining and clustering (DEC-DA) or in pretraining only")
    parser.add_argument("--max-clustering-epochs", type=int, default=None,
                        help="default: until tol, at most 20000 steps (paper code)")
    parser.add_argument("--centroid-init", nargs="+", default=["kmeans"], choices=["kmeans", "gmm"],
                        help="clustering runs from each of these centroid initialisations, "
                        "all on the same pretrained autoencoder (paper: kmeans)")
    parser.add_argument("--batch-size", type=int, default=256)
    parser.add_argument("--joint-only", action="store_true",
                        help="train only IDEC/DCEC after the two-stage baseline, not DEC/DEC-conv")
    parser.add_argument("--verbose", type=int, default=0, choices=[0, 2],
                        help="2: one line per epoch with ACC/NMI/ARI, to follow a long run")
    parser.add_argument("--out", default=str(Path(__file__).parent / "results"))
    parser.add_argument("--name", default=None,
                        help="file stem of the results (default: dec_family_DATASET)")
    return parser.parse_args(argv)


def scores_of(y, labels):
    return {k: round(v, 4) for k, v in metrics.clustering_scores(y, labels).items()}


def augmentation_of(args, seed, phase):
    if args.augment is None or (phase == "clustering" and args.augment_phases == "pretrain"):
        return None
    return ImageAugmentation(*args.augment, seed=seed)


def run_family(network, x, y, seed, args, emit):
    joint_cls, plain_cls, two_stage_name = FAMILIES[network]
    epochs = getattr(args, f"pretrain_epochs_{network}")
    optimizer = "adam" if network == "conv" or args.dense_optimizer == "adam" else None
    pretrained = joint_cls(n_clusters=len(set(y.tolist())), random_state=seed,
                           augmentation=augmentation_of(args, seed, "pretrain"))
    start = time.perf_counter()
    pretrained.pretrain(x, epochs=epochs, batch_size=args.batch_size, optimizer=optimizer,
                        noise_stddev=args.noise, verbose=args.verbose)
    pretrain_seconds = time.perf_counter() - start
    common = {"seed": seed, "network": network, "pretrain_epochs": epochs,
              "pretrain_s_per_epoch": round(pretrain_seconds / epochs, 4)}
    start = time.perf_counter()
    kmeans_labels = pretrained.initialize_centroids(x)
    emit(dict(common, method=two_stage_name, **scores_of(y, kmeans_labels),
              seconds=round(time.perf_counter() - start, 2)))
    for cls in (joint_cls,) if args.joint_only else (plain_cls, joint_cls):
        for init in args.centroid_init:
            run_clustering(cls, init, pretrained, x, y, seed, args, common, emit)


def run_clustering(cls, init, pretrained, x, y, seed, args, common, emit):
    model = cls(n_clusters=pretrained.n_clusters, random_state=seed, init=init,
                augmentation=augmentation_of(args, seed, "clustering"))
    model.copy_autoencoder_from(pretrained)
    start_labels = model.initialize_centroids(x)
    start = time.perf_counter()
    progress = [callbacks.ClusteringMetrics(x, y)] if args.verbose else []
    history = model.fit(x, epochs=args.max_clustering_epochs, batch_size=args.batch_size,
                        verbose=args.verbose, callbacks=progress)
    seconds = time.perf_counter() - start
    n_epochs = len(history.history["loss"])
    emit(dict(common, method=method_name(cls, init), **scores_of(y, model.predict_labels(x)),
              start_acc=round(metrics.cluster_accuracy(y, start_labels), 4),
              clustering_epochs=n_epochs, clustering_s_per_epoch=round(seconds / n_epochs, 4),
              stopped_by_tol=model.target_updater.stopped_step is not None))


def method_name(cls, centroid_init):
    return NAMES[cls] + ("" if centroid_init == "kmeans" else f", {centroid_init.upper()} init")


ORDER = ["k-means (inputs)", "SAE+k-means", "DEC", "DEC, GMM init", "IDEC", "IDEC, GMM init",
         "CAE+k-means", "DEC-conv", "DEC-conv, GMM init", "DCEC", "DCEC, GMM init"]


def summarise(rows, dataset, order=ORDER):
    lines = [f"| {dataset} | ACC | NMI | ARI | v-measure | s/epoch pretrain | s/epoch clustering | runs |",
             "|---|---|---|---|---|---|---|---|"]
    for method in order:
        group = [r for r in rows if r["method"] == method]
        if not group:
            continue
        cells = []
        for key in ("acc", "nmi", "ari", "v_measure"):
            values = np.array([r[key] for r in group])
            cells.append(f"{values.mean():.3f} ± {values.std():.3f}")
        for key in ("pretrain_s_per_epoch", "clustering_s_per_epoch"):
            values = [r[key] for r in group if key in r]
            cells.append(f"{np.mean(values):.3f}" if values else "—")
        lines.append(f"| {method} | " + " | ".join(cells) + f" | {len(group)} |")
    return "\n".join(lines)


def run_benchmark(script, argv, args, default_stem, run_seed, order, rows=None, note=None):
    """Runs k-means on the inputs and `run_seed(x, y, seed, args, emit)` for every seed,
    writing one JSON line per run as it comes and, at the end, the Markdown table
    headed by the command that made it (and `note`). With `rows`, every seed runs on the
    same seeded sample of that many rows."""
    x, y = datasets.load(args.dataset)
    x = datasets.scale_to_unit(x)  # pixels in [0, 1], as the committed runs had them
    if rows is not None and rows < len(x):
        keep = np.sort(np.random.default_rng(0).choice(len(x), rows, replace=False))
        x, y = x[keep], y[keep]
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    stem = args.name or default_stem
    rows = []
    with (out / f"{stem}.jsonl").open("w") as jsonl:

        def emit(row):
            row = dict(row, dataset=args.dataset)
            rows.append(row)
            jsonl.write(json.dumps(row) + "\n")
            jsonl.flush()
            print(json.dumps(row), flush=True)

        for seed in args.seeds:
            start = time.perf_counter()
            labels = KMeans(len(set(y.tolist())), n_init=10, random_state=seed).fit_predict(
                x.reshape(len(x), -1))
            emit({"seed": seed, "method": "k-means (inputs)", **scores_of(y, labels),
                  "seconds": round(time.perf_counter() - start, 2)})
            run_seed(x, y, seed, args, emit)
    command = f"python benchmarks/{script} " + " ".join(argv if argv is not None else sys.argv[1:])
    table = summarise(rows, args.dataset, order=order)
    (out / f"{stem}.md").write_text(
        f"Command: `{command}`\n\nMean ± std over seeds {args.seeds} "
        f"({len(x)} samples{'; ' + note if note else ''}).\n\n{table}\n")
    print(table)


def run_seed(x, y, seed, args, emit):
    for network in args.networks:
        run_family(network, x, y, seed, args, emit)


def main(argv=None):
    args = parse_args(argv)
    run_benchmark("dec_family.py", argv, args, f"dec_family_{args.dataset}", run_seed, ORDER)


if __name__ == "__main__":
    main()
