"""Two views in one manifold (issue 30, lever 1): UMAP's fuzzy neighbour graphs of `auto`'s
codes and of the inputs, combined by UMAP's own intersection or union of fuzzy sets,
then embedded (10 components) and clustered by the most likely of 20 full-covariance
mixtures, against each view alone. Per seed: the codes' graph has 20 neighbours (auto's),
the inputs' 10 (the UMAP + GMM baseline's) or 20.

    python benchmarks/umap_views.py digits 0,1,2,3,4 \
        --out benchmarks/results/umap_views_digits.jsonl
    python benchmarks/umap_views.py --summarise benchmarks/results/umap_views_digits.jsonl

Appends one JSON line per (seed, view) to --out as each ends.
"""

import itertools
import json

import numpy as np

from mixture_restarts import kept_partition
from pretrained import load_data, parser_for, pretrained_auto
from results_io import final_score_cells, read_json_lines

COMBINATIONS = ("intersection", "union")


def combined_embedding(first, second, how, seed, n_components=10):
    """The embedding of the intersection or union of two fitted UMAPs' graphs, laid out
    as `UMAP.__mul__` / `__add__` lay it out, but seeded by `seed`."""
    import scipy.sparse
    from sklearn.utils import check_random_state
    from umap.umap_ import (general_simplicial_set_intersection, general_simplicial_set_union,
                            reset_local_connectivity, simplicial_set_embedding)

    if how == "intersection":
        graph = general_simplicial_set_intersection(first.graph_, second.graph_, 0.5)
    else:
        graph = general_simplicial_set_union(first.graph_, second.graph_)
    graph = reset_local_connectivity(graph, True)
    connected = scipy.sparse.csgraph.connected_components(graph)[0] == 1
    embedding, _ = simplicial_set_embedding(
        None, graph, n_components, 1.0, first._a, first._b, 1.0, 5, None,
        "spectral" if connected else "random", check_random_state(seed), "euclidean", {},
        False, {}, False)
    return embedding


def measure(dataset, seeds, out, pretrain_epochs, cache, precision):
    from umap import UMAP

    from keras_deepclust.metrics import clustering_scores

    x, y, n_clusters = load_data(dataset)
    for seed in seeds:
        model, _ = pretrained_auto(dataset, x, n_clusters, seed, pretrain_epochs, cache,
                                   precision=precision)
        inputs = model.prepare_inputs(x, adapt=True)
        codes = model.finite_codes(inputs)

        def fitted(points, n_neighbors):
            return UMAP(n_components=10, n_neighbors=n_neighbors, min_dist=0.0,
                        random_state=seed).fit(points)

        of_codes = fitted(codes, 20)
        of_inputs = {k: fitted(np.asarray(inputs).reshape(len(x), -1), k) for k in (10, 20)}
        embeddings = {"codes": of_codes.embedding_,
                      **{f"inputs{k}": umap.embedding_ for k, umap in of_inputs.items()}}
        for (k, umap), how in itertools.product(of_inputs.items(), COMBINATIONS):
            embeddings[f"{how}{k}"] = combined_embedding(of_codes, umap, how, seed)
        for view, points in embeddings.items():
            labels, agreement = kept_partition(points.astype(np.float64), n_clusters, seed)
            line = {"dataset": dataset, "seed": seed, "view": view,
                    "final": clustering_scores(y, labels), "agreement": agreement}
            with open(out, "a") as f:
                f.write(json.dumps(line) + "\n")
            print(dataset, seed, view, round(line["final"]["acc"], 4), flush=True)


def summarise(paths):
    """ACC mean ± std, worst, NMI and ARI per data set and view."""
    rows = sorted(read_json_lines(paths), key=lambda r: (r["dataset"], r["view"], r["seed"]))
    lines = ["| data | view | ACC | worst ACC | NMI | ARI | seeds |",
             "|---|---|---|---|---|---|---|"]
    for (dataset, view), group in itertools.groupby(rows, key=lambda r: (r["dataset"], r["view"])):
        lines.append(f"| {dataset} | {view} | {final_score_cells(list(group))} |")
    return "\n".join(lines)


def main():
    args = parser_for(__doc__).parse_args()
    if args.summarise:
        print(summarise(args.summarise))
        return
    measure(args.dataset, [int(s) for s in args.seeds.split(",")], args.out,
            args.pretrain_epochs, args.cache, args.precision)


if __name__ == "__main__":
    main()
