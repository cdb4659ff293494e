"""UMAP's neighbourhood size on `auto`'s codes (issue 30, lever 1): per data set and seed,
`auto`'s pretrained autoencoder (cached, `pretrained.py`), then UMAP on its codes with
each `n_neighbors` and the most likely of 20 full-covariance mixtures on the manifold
(`mixture_restarts.kept_partition`; `auto` keeps as many, seeded by
`clusterers.fit_restarts`), scored on every row. The restarts' agreement
(mean pairwise ARI) is what a user without labels sees.

    python benchmarks/umap_neighbors.py digits 0,1,2,3,4 --neighbors 10,20,40 \
        --out benchmarks/results/umap_neighbors.jsonl
    python benchmarks/umap_neighbors.py --summarise benchmarks/results/umap_neighbors.jsonl

Appends one JSON line per (seed, n_neighbors) to --out as each ends.
"""

import itertools
import json
import time

import numpy as np

from mixture_restarts import kept_partition
from pretrained import load_data, parser_for, pretrained_auto
from results_io import cpu_info, final_score_cells, read_json_lines


def measure(dataset, seeds, neighbors, out, pretrain_epochs, cache, precision, recipe, max_rows):
    from keras_deepclust.metrics import clustering_scores

    x, y, n_clusters = load_data(dataset, max_rows)
    for seed in seeds:
        model, _ = pretrained_auto(dataset, x, n_clusters, seed, pretrain_epochs, cache,
                                   recipe=recipe, precision=precision)
        for n_neighbors in neighbors:
            model.n_neighbors = n_neighbors
            start = time.perf_counter()
            model.fit_manifold(x, verbose=0)
            umap_seconds = time.perf_counter() - start
            kept, agreement = kept_partition(model.umap_embedding_.astype(np.float64),
                                             n_clusters, seed)
            line = {"dataset": dataset, "seed": seed, "n_neighbors": n_neighbors,
                    "precision": precision, "recipe": recipe, "pretrain_epochs": pretrain_epochs,
                    "machine": cpu_info()[0], "umap_seconds": umap_seconds,
                    "final": clustering_scores(y, kept),
                    "sizes": np.bincount(kept, minlength=n_clusters).tolist(),
                    "agreement": agreement}
            with open(out, "a") as f:
                f.write(json.dumps(line) + "\n")
            print(dataset, seed, n_neighbors, round(line["final"]["acc"], 4),
                  f"agreement {line['agreement']:.3f}", flush=True)


def summarise(paths):
    """A Markdown table per data set, pretraining and n_neighbors: ACC mean ± std, worst,
    NMI, ARI, the restarts' agreement, and the seeds."""
    def key(r):
        return r["dataset"], r.get("recipe", "auto"), r["n_neighbors"]

    lines = ["| data | pretraining | n_neighbors | ACC | worst ACC | NMI | ARI | seeds "
             "| restarts' agreement |", "|---|---|---|---|---|---|---|---|---|"]
    rows = sorted(read_json_lines(paths), key=lambda r: (*key(r), r["seed"]))
    for (dataset, recipe, k), group in itertools.groupby(rows, key=key):
        group = list(group)
        agreement = np.mean([r["agreement"] for r in group])
        lines.append(f"| {dataset} | {recipe} | {k} | {final_score_cells(group)} "
                     f"| {agreement:.3f} |")
    return "\n".join(lines)


def main():
    parser = parser_for(__doc__)
    parser.add_argument("--neighbors", default="10,20,40")
    args = parser.parse_args()
    if args.summarise:
        print(summarise(args.summarise))
        return
    measure(args.dataset, [int(s) for s in args.seeds.split(",")],
            [int(k) for k in args.neighbors.split(",")], args.out, args.pretrain_epochs,
            args.cache, args.precision, args.recipe, args.max_rows)


if __name__ == "__main__":
    main()
