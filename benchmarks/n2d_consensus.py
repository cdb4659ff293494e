"""Ensemble lever for N2D on the digits (issue 20): on one CAE's codes per seed (200
pretraining epochs, all 1797 rows), R UMAP + GMM runs with different seeds, then
(a) their mean ACC, (b) a consensus: average-linkage clustering of the co-association
matrix (share of runs that put two rows together), (c) the mixture on run 0's embedding
started from the consensus clusters' means (what an exported head could carry).

    python benchmarks/n2d_consensus.py digits 0,1,2 5 > benchmarks/results/n2d_consensus_digits.jsonl

Prints one JSON line per seed.
"""

import json
import sys

import numpy as np
from sklearn.cluster import AgglomerativeClustering
from sklearn.mixture import GaussianMixture
from umap import UMAP

from keras_deepclust.datasets import load
from keras_deepclust.metrics import clustering_scores
from keras_deepclust.models import N2D

K = 10


def umap_gmm_runs(codes, seed, runs):
    """`runs` UMAP + GMM fits of the same codes with different seeds: (labels, embeddings)."""
    parts, embeddings = [], []
    for run in range(runs):
        run_seed = seed * 100 + run
        embedding = UMAP(n_components=K, n_neighbors=20, min_dist=0.0,
                         random_state=run_seed).fit_transform(codes)
        parts.append(GaussianMixture(K, covariance_type="full",
                                     random_state=run_seed).fit_predict(embedding))
        embeddings.append(embedding)
    return parts, embeddings


def consensus(parts):
    """Average-linkage clustering of 1 - the co-association matrix of `parts`."""
    onehot = np.concatenate([np.eye(K)[p] for p in parts], axis=1)
    co_association = onehot @ onehot.T / len(parts)
    return AgglomerativeClustering(K, metric="precomputed",
                                   linkage="average").fit_predict(1 - co_association)


def main():
    dataset, seeds, runs = sys.argv[1], [int(s) for s in sys.argv[2].split(",")], int(sys.argv[3])
    x, y = load(dataset)
    for seed in seeds:
        model = N2D(K, network="conv", random_state=seed)
        model.pretrain(x, epochs=200, verbose=0)
        parts, embeddings = umap_gmm_runs(model.finite_codes(model.prepare_inputs(x)), seed, runs)
        agreed = consensus(parts)
        first = embeddings[0]
        means = np.stack([first[agreed == k].mean(axis=0) for k in range(K)])
        refit = GaussianMixture(K, covariance_type="full", means_init=means,
                                random_state=seed).fit(first).predict(first)
        accs = [clustering_scores(y, p)["acc"] for p in parts]
        print(json.dumps({"seed": seed, "accs": [round(a, 4) for a in accs],
                          "mean": round(float(np.mean(accs)), 4),
                          "consensus": round(clustering_scores(y, agreed)["acc"], 4),
                          "consensus_nmi": round(clustering_scores(y, agreed)["nmi"], 4),
                          "refit_on_run0": round(clustering_scores(y, refit)["acc"], 4)}),
              flush=True)


if __name__ == "__main__":
    main()
