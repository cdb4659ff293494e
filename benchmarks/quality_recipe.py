"""The suite's quality-test recipe on the digits, per seed: a denoising CAE (noise 0.2)
pretrained P epochs, CAE+GMM and CAE+k-means on its codes, then DCEC from it, with ACC
after 25/50/75/100 clustering epochs. One JSON line per seed on stdout.

    python benchmarks/quality_recipe.py 150 0 1 2 3 4 > benchmarks/results/quality_recipe_digits_p150.jsonl
"""

import json
import sys
import time

from keras_deepclust import datasets, metrics
from keras_deepclust.callbacks import ClusteringMetrics
from keras_deepclust.models import CAEGMM, DCEC, CAEKMeans


def run(pretrain_epochs, seed, x, y):
    started = time.time()
    model = DCEC(n_clusters=10, random_state=seed)
    model.pretrain(x, epochs=pretrain_epochs, noise_stddev=0.2, verbose=0)
    result = {"P": pretrain_epochs, "seed": seed, "pretrain_s": round(time.time() - started, 1)}
    for name, cls in (("cae_gmm", CAEGMM), ("cae_kmeans", CAEKMeans)):
        head = cls(n_clusters=10, random_state=seed).copy_autoencoder_from(model)
        head.fit(x, verbose=0)
        result[name] = metrics.cluster_accuracy(y, head.predict_labels(x))
    started = time.time()
    history = model.fit(x, epochs=100, verbose=0, callbacks=[ClusteringMetrics(x, y)])
    result["fit_s"] = round(time.time() - started, 1)
    accuracies = history.history["acc"]
    result.update({f"dcec_{e}": accuracies[e - 1] for e in (25, 50, 75, 100)
                   if e <= len(accuracies)})
    result["epochs_run"] = len(accuracies)
    return result


def main(argv):
    pretrain_epochs, seeds = int(argv[0]), [int(s) for s in argv[1:]]
    x, y = datasets.load_digits()
    for seed in seeds:
        print(json.dumps(run(pretrain_epochs, seed, x, y)), flush=True)


if __name__ == "__main__":
    main(sys.argv[1:])
