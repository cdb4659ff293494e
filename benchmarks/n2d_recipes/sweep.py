"""UMAP (10 components, min_dist 0) + full-covariance GMM on saved codes, for the given
neighbourhood sizes and 1 or 10 mixture restarts; prints the ACC of each seed and the mean.

    python benchmarks/n2d_recipes/sweep.py "CACHE_DIR/codes_digits_dense_200_0.0_*.npz" 20,10
"""

import glob
import sys

import numpy as np
import umap
from sklearn.mixture import GaussianMixture

from keras_deepclust import metrics

pattern = sys.argv[1]
for n_neighbors in (int(v) for v in sys.argv[2].split(",")):
    for n_init in (1, 10):
        accuracies = []
        for path in sorted(glob.glob(pattern)):
            saved = np.load(path)
            seed = int(path.split("_")[-1].split(".")[0])
            manifold = umap.UMAP(n_components=10, n_neighbors=n_neighbors, min_dist=0.0,
                                 random_state=seed).fit_transform(saved["z"])
            labels = GaussianMixture(10, covariance_type="full", n_init=n_init,
                                     random_state=seed).fit(manifold).predict(manifold)
            accuracies.append(metrics.clustering_scores(saved["y"], labels)["acc"])
        print(pattern, "nn", n_neighbors, "n_init", n_init, np.round(accuracies, 3),
              round(np.mean(accuracies), 3), flush=True)
