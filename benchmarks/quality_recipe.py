"""The suite's quality-test recipe on the digits, per seed: a denoising CAE (noise 0.2)
pretrained P epochs, CAE+GMM and CAE+k-means on its codes, then DCEC from it, with ACC
(and NMI) after 25/50/75/100 clustering epochs. One JSON line per seed on stdout.

    python benchmarks/quality_recipe.py 150 0 1 2 3 4 > benchmarks/results/quality_recipe_digits_p150.jsonl
    python benchmarks/quality_recipe.py 150 0 1 2 --precision mixed_bfloat16

`--precision` trains under that Keras dtype policy (the line records it and the seconds).
"""

import argparse
import json
import time

from keras_deepclust import datasets, metrics
from keras_deepclust.callbacks import ClusteringMetrics
from keras_deepclust.layers.precision import POLICIES, dtype_policy
from keras_deepclust.models import CAEGMM, DCEC, CAEKMeans


def run(pretrain_epochs, seed, x, y):
    started = time.time()
    model = DCEC(n_clusters=10, random_state=seed)
    model.pretrain(x, epochs=pretrain_epochs, noise_stddev=0.2, verbose=0)
    result = {"P": pretrain_epochs, "seed": seed, "pretrain_s": round(time.time() - started, 1)}
    for name, cls in (("cae_gmm", CAEGMM), ("cae_kmeans", CAEKMeans)):
        head = cls(n_clusters=10, random_state=seed).copy_autoencoder_from(model)
        head.fit(x, verbose=0)
        scores = metrics.clustering_scores(y, head.predict_labels(x))
        result[name], result[f"{name}_nmi"] = scores["acc"], scores["nmi"]
    started = time.time()
    history = model.fit(x, epochs=100, verbose=0, callbacks=[ClusteringMetrics(x, y)])
    result["fit_s"] = round(time.time() - started, 1)
    accuracies, nmis = history.history["acc"], history.history["nmi"]
    for e in (25, 50, 75, 100):
        if e <= len(accuracies):
            result[f"dcec_{e}"], result[f"dcec_{e}_nmi"] = accuracies[e - 1], nmis[e - 1]
    result["epochs_run"] = len(accuracies)
    return result


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("pretrain_epochs", type=int)
    parser.add_argument("seeds", type=int, nargs="+")
    parser.add_argument("--precision", default="float32", choices=POLICIES)
    args = parser.parse_args(argv)
    x, y = datasets.load_digits()
    for seed in args.seeds:
        with dtype_policy(args.precision):
            result = run(args.pretrain_epochs, seed, x, y)
        print(json.dumps({**result, "precision": args.precision}), flush=True)


if __name__ == "__main__":
    main()
