"""The suite's quality claim: DCEC and CAE+GMM on the digits cluster better than k-means on
the pixels, in NMI averaged over seeds 0-2.

Both start from one denoising CAE per seed (noise 0.2, 150 epochs, the demo's
pretraining): CAE+GMM fits a full-covariance mixture on its codes, and DCEC clusters
from it for 25 epochs. `benchmarks/quality_recipe.py 150 SEEDS` measured, over seeds 0-2:

- AMD EPYC (quality_recipe_digits_p150.jsonl): ACC DCEC 0.807, CAE+GMM 0.818, k-means 0.792;
- Intel Xeon with AMX (quality_recipe_digits_p150_xeon_amx.md): ACC DCEC 0.813, CAE+GMM
  0.790 (seed 0 merges two digits: 0.741), k-means 0.792; NMI DCEC 0.773, CAE+GMM 0.792,
  k-means 0.741.

One merged pair of digits costs about 0.1 of ACC, so one seed in three moves the mean ACC
by more than its margin over k-means, and that margin did not hold on the Xeon. NMI
degrades smoothly with a merge. On the Xeon, the NMI of both methods was above k-means' on
every one of seeds 0-4: the claim is made in NMI, with every run's ACC far above chance.
"""

import numpy as np
from sklearn.cluster import KMeans

from keras_deepclust import datasets, metrics
from keras_deepclust.models import CAEGMM, DCEC

SEEDS = (0, 1, 2)


def test_dcec_and_cae_gmm_beat_kmeans_on_digits_on_average_over_seeds():
    x, y = datasets.load_digits()
    pixels = x.reshape(len(x), -1)
    kmeans = [metrics.clustering_scores(y, KMeans(10, n_init=10, random_state=seed)
                                        .fit_predict(pixels)) for seed in SEEDS]
    dcec, cae_gmm = [], []
    for seed in SEEDS:
        model = DCEC(n_clusters=10, random_state=seed)
        model.pretrain(x, epochs=150, noise_stddev=0.2, verbose=0)
        mixture = CAEGMM(n_clusters=10, random_state=seed).copy_autoencoder_from(model)
        mixture.fit(x, verbose=0)
        cae_gmm.append(metrics.clustering_scores(y, mixture.predict_labels(x)))
        model.fit(x, epochs=25, verbose=0)
        dcec.append(metrics.clustering_scores(y, model.predict_labels(x)))
    runs = {"dcec": dcec, "cae_gmm": cae_gmm, "kmeans": kmeans}
    summary = {name: [(round(s["acc"], 3), round(s["nmi"], 3)) for s in scores]
               for name, scores in runs.items()}
    assert min(s["acc"] for s in dcec + cae_gmm) > 0.6, summary  # far above chance (0.1)

    def mean_nmi(scores):
        return np.mean([s["nmi"] for s in scores])

    assert mean_nmi(dcec) > mean_nmi(kmeans), summary
    assert mean_nmi(cae_gmm) > mean_nmi(kmeans), summary
