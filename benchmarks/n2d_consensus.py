"""Ensemble lever for N2D on the digits (issue 20): on one CAE's codes per seed (200
pretraining epochs, all 1797 rows), R UMAP + GMM runs with different seeds, then
(a) their mean ACC, (b) a consensus: average-linkage clustering of the co-association
matrix (share of runs that put two rows together), (c) the mixture on run 0's embedding
started from the consensus clusters' means (what an exported head could carry).

    python benchmarks/n2d_consensus.py digits 0,1,2 5 > benchmarks/results/n2d_consensus_digits.jsonl

Prints one JSON line per seed.
"""
import sys, json, numpy as np
from keras_deepclust.datasets import load
from keras_deepclust.models import N2D
from keras_deepclust.metrics import clustering_scores
from sklearn.cluster import AgglomerativeClustering
from umap import UMAP
from sklearn.mixture import GaussianMixture
dataset, seeds, runs = sys.argv[1], [int(s) for s in sys.argv[2].split(",")], int(sys.argv[3])
x, y = load(dataset)
for seed in seeds:
    m = N2D(10, network="conv", random_state=seed)
    m.pretrain(x, epochs=200, verbose=0)
    codes = m.finite_codes(m.prepare_inputs(x))
    parts, embs = [], []
    for r in range(runs):
        emb = UMAP(n_components=10, n_neighbors=20, min_dist=0.0, random_state=seed * 100 + r).fit_transform(codes)
        parts.append(GaussianMixture(10, covariance_type="full", random_state=seed * 100 + r).fit_predict(emb))
        embs.append(emb)
    accs = [clustering_scores(y, p)["acc"] for p in parts]
    onehot = np.concatenate([np.eye(10)[p] for p in parts], axis=1)
    co = onehot @ onehot.T / runs
    cons = AgglomerativeClustering(10, metric="precomputed", linkage="average").fit_predict(1 - co)
    # the mixture on run 0's embedding started from the consensus clusters
    e = embs[0]
    means = np.stack([e[cons == k].mean(0) for k in range(10)])
    g = GaussianMixture(10, covariance_type="full", means_init=means, random_state=seed).fit(e)
    refit = g.predict(e)
    print(json.dumps({"seed": seed, "accs": [round(a, 4) for a in accs], "mean": round(float(np.mean(accs)), 4),
                      "consensus": round(clustering_scores(y, cons)["acc"], 4),
                      "consensus_nmi": round(clustering_scores(y, cons)["nmi"], 4),
                      "refit_on_run0": round(clustering_scores(y, refit)["acc"], 4)}), flush=True)
