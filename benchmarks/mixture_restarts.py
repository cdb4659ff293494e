"""Mixture restarts on the UMAP manifold (issue 30, lever 1): for each seed, the `auto`
recipe's manifold (its autoencoder pretrained, UMAP fitted on its codes) and the UMAP of
the inputs (the UMAP + GMM baseline), then R single-start full-covariance Gaussian
mixtures on each, with their likelihood, scores and time. "Best of n" keeps the most
likely of the first n restarts (label-free: likelihoods on one embedding compare), which
is what `GaussianMixture(n_init=n)` does; the agreement of the restarts (mean pairwise
ARI) is what a user without labels can see.

    python benchmarks/mixture_restarts.py digits 0,1,2,3,4 \
        --out benchmarks/results/mixture_restarts_digits.jsonl
    python benchmarks/mixture_restarts.py --summarise benchmarks/results/mixture_restarts_digits.jsonl

Appends one JSON line per (seed, manifold) to --out as each ends, so a stopped run keeps
what it measured.
"""

import argparse
import itertools
import json
import time
from pathlib import Path

import numpy as np
from sklearn.mixture import GaussianMixture

from keras_deepclust.clusterers import mean_pairwise_ari
from results_io import cpu_info, read_json_lines

RESTARTS = 20
BEST_OF = (1, 5, 10, 20)


def restarts(points, n_clusters, seed, count=RESTARTS):
    """`count` single-start mixtures on `points`: a dict per restart (its seed, mean
    log-likelihood, labels, seconds)."""
    runs = []
    for r in range(count):
        start = time.perf_counter()
        mixture = GaussianMixture(n_clusters, covariance_type="full", n_init=1,
                                  random_state=seed * 1000 + r).fit(points)
        runs.append({"seed": seed * 1000 + r, "log_likelihood": float(mixture.score(points)),
                     "labels": mixture.predict(points),
                     "seconds": time.perf_counter() - start})
    return runs


def best_of(runs, n):
    """The most likely of the first `n` restarts."""
    return max(runs[:n], key=lambda run: run["log_likelihood"])


def kept_partition(points, n_clusters, seed):
    """`(labels, agreement)`: the partition of the most likely of `RESTARTS` restarts, and
    the restarts' mean pairwise ARI."""
    runs = restarts(points, n_clusters, seed)
    return best_of(runs, RESTARTS)["labels"], mean_pairwise_ari([run["labels"] for run in runs])


def record(dataset, seed, manifold, runs, y, seconds):
    from keras_deepclust.metrics import clustering_scores

    top5 = sorted(runs, key=lambda run: -run["log_likelihood"])[:5]
    return {
        "dataset": dataset, "seed": seed, "manifold": manifold, "n_rows": len(y),
        "seconds": seconds, "machine": cpu_info()[0],
        "restart_seconds": float(np.mean([run["seconds"] for run in runs])),
        "restarts": [{"seed": run["seed"], "log_likelihood": run["log_likelihood"],
                      **clustering_scores(y, run["labels"])} for run in runs],
        "best_of": {str(n): clustering_scores(y, best_of(runs, n)["labels"]) for n in BEST_OF},
        "agreement_all": mean_pairwise_ari([run["labels"] for run in runs]),
        "agreement_top5": mean_pairwise_ari([run["labels"] for run in top5]),
    }


def measure(dataset, seeds, out, pretrain_epochs, max_rows, manifolds=("auto", "umap_inputs")):
    from umap import UMAP

    from keras_deepclust.datasets import load
    from keras_deepclust.models import AutoClustering

    x, y = load(dataset)
    if max_rows and len(x) > max_rows:
        rows = np.random.default_rng(0).choice(len(x), max_rows, replace=False)
        x, y = x[rows], y[rows]
    n_clusters = len(np.unique(y))
    for seed in seeds:
        model = AutoClustering(n_clusters, random_state=seed)
        embeddings = {}
        if "auto" in manifolds:
            start = time.perf_counter()
            model.pretrain(x, epochs=pretrain_epochs, verbose=0)
            pretrain_seconds = time.perf_counter() - start
            start = time.perf_counter()
            model.fit_manifold(x, verbose=0)
            embeddings["auto"] = (model.umap_embedding_.astype(np.float64),
                                  {"pretrain": pretrain_seconds,
                                   "umap": time.perf_counter() - start})
        if "umap_inputs" in manifolds:
            start = time.perf_counter()
            inputs = np.asarray(model.prepare_inputs(x, adapt=True)).reshape(len(x), -1)
            # The baseline as the CLI scores it (clusterers.umap_mixture_labels).
            embedding = UMAP(n_components=10, n_neighbors=10, min_dist=0.0,
                             random_state=seed).fit_transform(inputs)
            embeddings["umap_inputs"] = (embedding.astype(np.float64),
                                         {"umap": time.perf_counter() - start})
        for manifold, (points, seconds) in embeddings.items():
            line = record(dataset, seed, manifold, restarts(points, n_clusters, seed), y, seconds)
            line["pretrain_epochs"] = pretrain_epochs
            with open(out, "a") as f:
                f.write(json.dumps(line) + "\n")
            print(manifold, seed, {n: round(s["acc"], 3) for n, s in line["best_of"].items()},
                  f"agreement {line['agreement_all']:.3f}", flush=True)


def summarise(paths):
    """A Markdown table: per manifold and n, ACC / NMI mean ± std and the worst seed."""
    rows = read_json_lines(paths)
    lines = ["| data | manifold | restarts kept from | ACC | worst ACC | NMI | ARI "
             "| restarts' agreement (ARI) | seeds |", "|---|---|---|---|---|---|---|---|---|"]
    for (dataset, manifold), group in itertools.groupby(
            sorted(rows, key=lambda r: (r["dataset"], r["manifold"], r["seed"])),
            key=lambda r: (r["dataset"], r["manifold"])):
        group = list(group)
        for n in BEST_OF:
            scores = {m: np.array([r["best_of"][str(n)][m] for r in group])
                      for m in ("acc", "nmi", "ari")}
            agreement = np.array([r["agreement_all"] for r in group])
            lines.append(
                f"| {dataset} | {manifold} | {n} | {scores['acc'].mean():.3f} ± "
                f"{scores['acc'].std():.3f} | {scores['acc'].min():.3f} | "
                f"{scores['nmi'].mean():.3f} ± {scores['nmi'].std():.3f} | "
                f"{scores['ari'].mean():.3f} | {agreement.mean():.3f} | "
                f"{','.join(str(r['seed']) for r in group)} |")
    seconds = {m: np.mean([r["restart_seconds"] for r in rows if r["manifold"] == m])
               for m in sorted({r["manifold"] for r in rows})}
    lines.append("")
    lines.append("Seconds per restart: " + ", ".join(f"{m} {s:.2f}" for m, s in seconds.items())
                 + f" (on {rows[0]['machine']}).")
    return "\n".join(lines)


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("dataset", nargs="?")
    parser.add_argument("seeds", nargs="?", default="0")
    parser.add_argument("--out", type=Path)
    parser.add_argument("--pretrain-epochs", type=int, default=None,
                        help="default: the recipe's")
    parser.add_argument("--max-rows", type=int, default=None,
                        help="a seeded sample of this many rows (a screen, not the target)")
    parser.add_argument("--manifolds", default="auto,umap_inputs",
                        help="comma-separated: auto, umap_inputs")
    parser.add_argument("--summarise", nargs="+", type=Path)
    args = parser.parse_args()
    if args.summarise:
        print(summarise(args.summarise))
        return
    measure(args.dataset, [int(s) for s in args.seeds.split(",")], args.out,
            args.pretrain_epochs, args.max_rows, tuple(args.manifolds.split(",")))


if __name__ == "__main__":
    main()
