"""Which classes `auto` splits or merges, per seed: its partition (the recipe's pretraining,
cached by `pretrained.py`, then `fit`) against the labels.

    python benchmarks/auto_failures.py digits 0,1,2,3,4 > benchmarks/results/auto_failures_digits.md

A cluster is "merged" when two classes each give it more than `--min-rows` rows; a class is
"split" when two clusters each take more than `--min-rows` of its rows.
"""

import time

import numpy as np

from pretrained import load_data, parser_for, pretrained_auto


def failures(labels, y, n_clusters, min_rows):
    """`(merged, split)`: per merged cluster its classes' row counts; per split class its
    clusters' row counts."""
    counts = np.zeros((n_clusters, n_clusters), int)
    np.add.at(counts, (labels, y), 1)
    merged = {j: {int(c): int(counts[j, c]) for c in np.flatnonzero(counts[j] > min_rows)}
              for j in range(n_clusters) if np.sum(counts[j] > min_rows) > 1}
    split = {int(c): sorted((int(v) for v in counts[:, c] if v > min_rows), reverse=True)
             for c in range(n_clusters) if np.sum(counts[:, c] > min_rows) > 1}
    return merged, split


def main(argv=None):
    from keras_deepclust.metrics import clustering_scores
    from results_io import cpu_info

    parser = parser_for(__doc__)
    parser.add_argument("--min-rows", type=int, default=30)
    args = parser.parse_args(argv)
    x, y, n_clusters = load_data(args.dataset, args.max_rows)
    print(f"# Where `auto` splits and merges on {args.dataset}\n\n"
          f"`python benchmarks/auto_failures.py {args.dataset} {args.seeds} --recipe "
          f"{args.recipe} --precision {args.precision}` ({cpu_info()[0]}); "
          f"{args.pretrain_epochs} pretraining epochs, recipe {args.recipe}.\n\n"
          "| seed | ACC | partition ACC | merged clusters: {class: rows} "
          "| split classes: class: [rows per cluster] | pretraining s | fit s |\n"
          "|---|---|---|---|---|---|---|")
    for seed in (int(s) for s in args.seeds.split(",")):
        model, pretrain_seconds = pretrained_auto(args.dataset, x, n_clusters, seed,
                                                  args.pretrain_epochs, args.cache, args.recipe,
                                                  args.precision)
        start = time.perf_counter()
        model.fit(x, verbose=0)
        fit_seconds = time.perf_counter() - start
        merged, split = failures(model.labels_, y, n_clusters, args.min_rows)
        acc = clustering_scores(y, model.labels_)["acc"]
        # The mixture's partition, which a refined model's labels start from.
        partition = model.clusterer_.predict(model.umap_embedding_.astype(np.float64))
        partition_acc = clustering_scores(y, partition)["acc"] if model.refined else acc
        print(f"| {seed} | {acc:.3f} | {partition_acc:.3f} | "
              f"{'; '.join(map(str, merged.values())) or '-'} | "
              f"{'; '.join(f'{c}: {v}' for c, v in split.items()) or '-'} | "
              f"{'cached' if pretrain_seconds is None else f'{pretrain_seconds:.0f}'} | "
              f"{fit_seconds:.0f} |", flush=True)


if __name__ == "__main__":
    main()
