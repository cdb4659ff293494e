"""UMAP (10 components, min_dist 0) on saved codes, then several clusterers on the same
manifold: does the mixture or the manifold limit N2D's ACC? Prints each seed's ACC and
the mean.

    python benchmarks/n2d_recipes/clusterers.py "CACHE_DIR/codes_digits_dense_200_0.0_*.npz" 20
"""

import glob
import sys

import numpy as np
import umap
from sklearn.cluster import KMeans
from sklearn.mixture import GaussianMixture

from keras_deepclust import metrics


def clusterers(k, seed):
    def mixture(covariance_type, **options):
        return GaussianMixture(k, covariance_type=covariance_type, random_state=seed, **options)

    return {
        "GMM full (N2D)": mixture("full"),
        "GMM diag": mixture("diag"),
        "GMM tied": mixture("tied"),
        "GMM spherical": mixture("spherical"),
        "k-means, 10 restarts": KMeans(k, n_init=10, random_state=seed),
        "GMM full, k-means++ init, 10 restarts": mixture("full", init_params="k-means++",
                                                         n_init=10),
    }


pattern, n_neighbors = sys.argv[1], int(sys.argv[2])
accuracies = {}
for path in sorted(glob.glob(pattern)):
    saved = np.load(path)
    seed = int(path.split("_")[-1].split(".")[0])
    manifold = umap.UMAP(n_components=10, n_neighbors=n_neighbors, min_dist=0.0,
                         random_state=seed).fit_transform(saved["z"])
    for name, clusterer in clusterers(len(set(saved["y"].tolist())), seed).items():
        labels = clusterer.fit_predict(manifold)
        accuracies.setdefault(name, []).append(metrics.clustering_scores(saved["y"], labels)["acc"])
print(f"| clusterer on UMAP({n_neighbors} neighbours) of {pattern} | ACC per seed | mean ± std |")
print("|---|---|---|")
for name, values in accuracies.items():
    print(f"| {name} | {', '.join(f'{v:.3f}' for v in values)} | "
          f"{np.mean(values):.3f} ± {np.std(values):.3f} |")
