"""The suite's quality claims: DCEC and AE+GMM on the digits beat k-means on the pixels.

The recipe (denoising CAE pretrained 150 epochs, at most 100 clustering epochs) gave
ACC 0.820, 0.815, 0.817, 0.822 and 0.768 on seeds 0-4 while it was chosen, against
0.792 for k-means (benchmarks/README.md). One seed in five falls below k-means, so the
claim is about the mean over three seeds, which clears k-means even when one of them
is that bad seed.

AE+GMM (dense AE, the paper's 50 epochs of Adam, full-covariance GMM) gave ACC 0.818,
0.830 and 0.823 on seeds 0-2 in benchmarks/results/seed_methods_digits.md; the test
asserts the same three-seed mean as for DCEC.
"""

import numpy as np
from sklearn.cluster import KMeans

from keras_deepclust import datasets, metrics
from keras_deepclust.models import AEGMM, DCEC

SEEDS = (0, 1, 2)


def kmeans_accuracies(x, y):
    pixels = x.reshape(len(x), -1)
    return [metrics.cluster_accuracy(y, KMeans(10, n_init=10, random_state=seed).fit_predict(pixels))
            for seed in SEEDS]


def test_dcec_beats_kmeans_on_digits_on_average_over_seeds():
    x, y = datasets.load_digits()
    kmeans, dcec = kmeans_accuracies(x, y), []
    for seed in SEEDS:
        model = DCEC(n_clusters=10, random_state=seed)
        model.pretrain(x, epochs=150, noise_stddev=0.2, verbose=0)
        model.fit(x, epochs=100, verbose=0)
        dcec.append(metrics.cluster_accuracy(y, model.predict_labels(x)))
    assert min(dcec) > 0.6, dcec  # every run learned far more than chance (0.1)
    assert np.mean(dcec) > np.mean(kmeans), (dcec, kmeans)


def test_ae_gmm_beats_kmeans_on_digits_on_average_over_seeds():
    x, y = datasets.load_digits()
    accuracies = []
    for seed in SEEDS:
        model = AEGMM(n_clusters=10, random_state=seed)
        model.pretrain(x, verbose=0)
        model.fit(x, verbose=0)
        accuracies.append(metrics.cluster_accuracy(y, model.predict_labels(x)))
    assert min(accuracies) > 0.6, accuracies
    assert np.mean(accuracies) > np.mean(kmeans_accuracies(x, y)), accuracies
