"""UMAP restarts on `auto`'s codes, one kept by a label-free criterion (issue 30, lever 1b).

Per seed: `auto`'s pretrained autoencoder (cached, `pretrained.py`), then U UMAP fits of
its codes with other seeds, each followed by the most likely of 10 mixtures (what `auto`
fits). The partitions are compared in one shared space, the codes, and one is kept by:

- `first`: UMAP's first seed (what `auto` does now);
- `medoid`: the partition with the highest mean ARI to the others (the most typical);
- `silhouette`: the highest silhouette of the labels on the codes (at most 5,000 rows);
- `stable`: the highest agreement of its own mixture starts (`restart_agreement`).

and the runs' consensus, a partition of its own: each run's clusters matched to the
medoid run's (Hungarian, on their overlap), then each row's majority label.

    python benchmarks/umap_restarts.py digits 0,1,2,3,4 --out benchmarks/results/umap_restarts_digits.jsonl
    python benchmarks/umap_restarts.py --summarise benchmarks/results/umap_restarts_digits.jsonl

One JSON line per seed is appended to --out as it ends.
"""

import itertools
import json
import time

import numpy as np

from pretrained import load_data, parser_for, pretrained_auto
from results_io import cpu_info, read_json_lines

CRITERIA = ("first", "medoid", "silhouette", "stable")


def umap_runs(codes, n_clusters, seed, count, n_neighbors=20):
    """`count` (UMAP, most likely of 10 mixtures) runs on `codes`, as `auto` fits them."""
    from umap import UMAP

    from keras_deepclust.clusterers import fit_restarts

    runs = []
    for u in range(count):
        start = time.perf_counter()
        embedding = UMAP(n_components=10, n_neighbors=n_neighbors, min_dist=0.0,
                         random_state=seed * 100 + u).fit_transform(codes).astype(np.float64)
        mixture, agreement = fit_restarts("gmm", n_clusters, embedding, 10, seed * 100 + u)
        runs.append({"labels": mixture.predict(embedding), "restart_agreement": agreement,
                     "seconds": time.perf_counter() - start})
    return runs


def choose(runs, codes, criterion, seed):
    """Index of the run `criterion` keeps."""
    from sklearn.metrics import adjusted_rand_score, silhouette_score

    if criterion == "first":
        return 0
    if criterion == "stable":
        return int(np.argmax([run["restart_agreement"] for run in runs]))
    if criterion == "medoid":
        return int(np.argmax([np.mean([adjusted_rand_score(a["labels"], b["labels"])
                                       for b in runs if b is not a]) for a in runs]))
    sample = min(len(codes), 5000)
    return int(np.argmax([silhouette_score(codes, run["labels"], sample_size=sample,
                                           random_state=seed) for run in runs]))


def consensus(runs):
    """Each row's majority label once every run's clusters are matched to the medoid's."""
    from scipy.optimize import linear_sum_assignment

    reference = runs[choose(runs, None, "medoid", 0)]["labels"]
    k = int(max(run["labels"].max() for run in runs)) + 1
    votes = np.zeros((len(reference), k))
    for run in runs:
        overlap = np.zeros((k, k))
        np.add.at(overlap, (run["labels"], reference), 1)
        own, matched = linear_sum_assignment(-overlap)
        mapping = np.empty(k, dtype=int)
        mapping[own] = matched
        votes[np.arange(len(reference)), mapping[run["labels"]]] += 1
    return votes.argmax(axis=1)


def measure(dataset, seeds, out, pretrain_epochs, count, cache, max_rows, precision):
    from keras_deepclust.clusterers import mean_pairwise_ari
    from keras_deepclust.metrics import clustering_scores

    x, y, n_clusters = load_data(dataset, max_rows)
    for seed in seeds:
        model, pretrain_seconds = pretrained_auto(dataset, x, n_clusters, seed,
                                                  pretrain_epochs, cache, precision=precision)
        codes = model.finite_codes(x)
        runs = umap_runs(codes, n_clusters, seed, count)
        scores = [clustering_scores(y, run["labels"]) for run in runs]
        line = {"dataset": dataset, "seed": seed, "pretrain_epochs": pretrain_epochs,
                "machine": cpu_info()[0], "pretrain_seconds": pretrain_seconds,
                "umap_gmm_seconds": [run["seconds"] for run in runs],
                "runs": [{**s, "restart_agreement": run["restart_agreement"],
                          "sizes": np.bincount(run["labels"], minlength=n_clusters).tolist()}
                         for s, run in zip(scores, runs)],
                "umap_agreement": mean_pairwise_ari([run["labels"] for run in runs]),
                "precision": precision,
                "consensus": clustering_scores(y, consensus(runs)),
                "chosen": {c: choose(runs, codes, c, seed) for c in CRITERIA}}
        with open(out, "a") as f:
            f.write(json.dumps(line) + "\n")
        print(dataset, seed, [round(s["acc"], 3) for s in scores],
              "consensus", round(line["consensus"]["acc"], 3),
              {c: round(scores[i]["acc"], 3) for c, i in line["chosen"].items()}, flush=True)


def summarise(paths):
    rows = read_json_lines(paths)
    lines = ["| data | kept by | ACC | worst | NMI | ARI | UMAP runs' agreement | seeds |",
             "|---|---|---|---|---|---|---|---|"]
    for dataset, group in itertools.groupby(sorted(rows, key=lambda r: (r["dataset"], r["seed"])),
                                            key=lambda r: r["dataset"]):
        group = list(group)
        for criterion in (*CRITERIA, "consensus", "best (labels, not a choice)"):
            rows = [r for r in group if criterion != "consensus" or "consensus" in r]
            if not rows:
                continue
            picked = [max(r["runs"], key=lambda s: s["acc"]) if criterion.startswith("best")
                      else r["consensus"] if criterion == "consensus"
                      else r["runs"][r["chosen"][criterion]] for r in rows]
            acc = np.array([p["acc"] for p in picked])
            lines.append(
                f"| {dataset} | {criterion} | {acc.mean():.3f} ± {acc.std():.3f} | "
                f"{acc.min():.3f} | {np.mean([p['nmi'] for p in picked]):.3f} | "
                f"{np.mean([p['ari'] for p in picked]):.3f} | "
                f"{np.mean([r['umap_agreement'] for r in rows]):.3f} | "
                f"{','.join(str(r['seed']) for r in rows)} |")
    seconds = np.mean([s for r in rows for s in r["umap_gmm_seconds"]])
    lines += ["", f"Seconds per UMAP + 10 mixtures: {seconds:.1f} (on {rows[0]['machine']})."]
    return "\n".join(lines)


def main(argv=None):
    parser = parser_for(__doc__)
    parser.add_argument("--umap-runs", type=int, default=5)
    args = parser.parse_args(argv)
    if args.summarise:
        print(summarise(args.summarise))
        return
    measure(args.dataset, [int(s) for s in args.seeds.split(",")], args.out,
            args.pretrain_epochs, args.umap_runs, args.cache, args.max_rows, args.precision)


if __name__ == "__main__":
    main()
