"""Benchmark of AE+k-means, AE+GMM (dense and conv), AEC, DAC and DAMIC against
k-means on the inputs, over several seeds.

For each seed one dense AE and one CAE are pretrained (50 epochs, Adam, as in
Bhattarai's paper); AE+k-means and AE+GMM start from the dense AE, CAE+k-means and
CAE+GMM from the CAE, and DAMIC from the dense AE (its pretraining and k-means, as
in the DAMIC paper). AEC and DAC train their own networks from scratch (their
papers have no pretraining). Writes one JSON line per run and a Markdown table of
mean +- std over the seeds.

    python benchmarks/seed_methods.py --dataset digits --seeds 0 1 2

`--dac-train-dataset` follows the DAC paper's protocol instead: DAC is trained on
another data set (the paper: Fashion-MNIST's 60k training images) and the codes of
`--dataset` (its test images) are clustered by k-means.
"""

import argparse
import time
from pathlib import Path


from dec_family import run_benchmark, scores_of

from keras_deepclust import datasets
from keras_deepclust.models import AEC, AEGMM, CAEGMM, DAC, DAMIC, AEKMeans, CAEKMeans

ORDER = ["k-means (inputs)", "AE+k-means", "AE+GMM", "CAE+k-means", "CAE+GMM", "AEC", "DAC",
         "DAC, assigner", "DAC, k-means on test codes", "DAMIC", "DAMIC, GMM init"]
METHODS = ("two-stage", "aec", "dac", "damic")


def parse_args(argv):
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--dataset", default="digits")
    parser.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2])
    parser.add_argument("--methods", nargs="+", default=list(METHODS), choices=METHODS)
    parser.add_argument("--pretrain-epochs", type=int, default=50, help="paper: 50")
    parser.add_argument("--aec-epochs", type=int, default=100)
    parser.add_argument("--dac-epochs", type=int, default=200, help="paper: 200")
    parser.add_argument("--dac-weight-labels", action="store_true",
                        help="DAC's feature weights from the true labels (the paper's setting)")
    parser.add_argument("--dac-train-dataset", default=None,
                        help="train DAC on this data set, then cluster the codes of --dataset "
                        "with k-means (the DAC paper's protocol: fashion_mnist_train)")
    parser.add_argument("--damic-epochs", type=int, default=50)
    parser.add_argument("--damic-init", nargs="+", default=["kmeans"], choices=["kmeans", "gmm"],
                        help="DAMIC's init_clusterer; each runs from the same pretrained AE "
                        "(paper: kmeans)")
    parser.add_argument("--damic-hidden-units", type=int, nargs="+", default=[500, 500, 2000],
                        help="per-cluster AE widths (the pretrained dense AE has the same)")
    parser.add_argument("--batch-size", type=int, default=256)
    parser.add_argument("--out", default=str(Path(__file__).parent / "results"))
    parser.add_argument("--name", default=None,
                        help="file stem of the results (default: seed_methods_DATASET)")
    return parser.parse_args(argv)


def timed(function):
    start = time.perf_counter()
    result = function()
    return result, time.perf_counter() - start


def run_seed(x, y, seed, args, emit):
    k = len(set(y.tolist()))
    batch = args.batch_size
    dense_units = tuple(args.damic_hidden_units)
    if "two-stage" in args.methods or "damic" in args.methods:
        dense = AEKMeans(k, hidden_units=dense_units, random_state=seed)
        _, seconds = timed(lambda: dense.pretrain(x, epochs=args.pretrain_epochs,
                                                  batch_size=batch, verbose=0))
        dense_pretrain = round(seconds / args.pretrain_epochs, 4)
    if "two-stage" in args.methods:
        conv = CAEKMeans(k, random_state=seed)
        _, seconds = timed(lambda: conv.pretrain(x, epochs=args.pretrain_epochs,
                                                 batch_size=batch, verbose=0))
        conv_pretrain = round(seconds / args.pretrain_epochs, 4)
        for name, model, per_epoch in (
            ("AE+k-means", dense, dense_pretrain),
            ("AE+GMM", AEGMM(k, hidden_units=dense_units, random_state=seed)
             .copy_autoencoder_from(dense), dense_pretrain),
            ("CAE+k-means", conv, conv_pretrain),
            ("CAE+GMM", CAEGMM(k, random_state=seed).copy_autoencoder_from(conv), conv_pretrain),
        ):
            model.fit(x, verbose=0)
            emit(dict(seed=seed, method=name, pretrain_epochs=args.pretrain_epochs,
                      pretrain_s_per_epoch=per_epoch, **scores_of(y, model.predict_labels(x))))
    if "aec" in args.methods:
        model = AEC(k, random_state=seed)
        history, seconds = timed(lambda: model.fit(x, epochs=args.aec_epochs, batch_size=batch,
                                                   verbose=0))
        emit(dict(seed=seed, method="AEC", clustering_epochs=args.aec_epochs,
                  clustering_s_per_epoch=round(seconds / args.aec_epochs, 4),
                  empty_clusters=int(sum(history.history["empty_clusters"])),
                  **scores_of(y, model.predict_labels(x))))
    if "dac" in args.methods and args.dac_train_dataset:
        run_dac_train_test(x, y, seed, args, emit)
    elif "dac" in args.methods:
        model = DAC(k, random_state=seed)
        weight_labels = y if args.dac_weight_labels else None
        _, seconds = timed(lambda: model.fit(x, epochs=args.dac_epochs, batch_size=batch,
                                             weight_labels=weight_labels, verbose=0))
        emit(dict(seed=seed, method="DAC", weight_source=model.weight_source,
                  clustering_epochs=args.dac_epochs,
                  clustering_s_per_epoch=round(seconds / args.dac_epochs, 4),
                  **scores_of(y, model.predict_labels(x))))
    if "damic" in args.methods:
        for init in args.damic_init:
            run_damic(x, y, seed, args, emit, dense, dense_pretrain, init)


def run_damic(x, y, seed, args, emit, pretrained, pretrain_s_per_epoch, init_clusterer):
    model = DAMIC(len(set(y.tolist())), hidden_units=tuple(args.damic_hidden_units),
                  init=init_clusterer, random_state=seed)
    model.copy_autoencoder_from(pretrained)
    start, init_seconds = timed(lambda: model.initialize(x, batch_size=args.batch_size,
                                                         verbose=0))
    history, seconds = timed(lambda: model.fit(x, epochs=args.damic_epochs,
                                               batch_size=args.batch_size, verbose=0))
    emit(dict(seed=seed, method="DAMIC" if init_clusterer == "kmeans" else "DAMIC, GMM init",
              pretrain_epochs=args.pretrain_epochs, pretrain_s_per_epoch=pretrain_s_per_epoch,
              init_seconds=round(init_seconds, 1), start_acc=scores_of(y, start)["acc"],
              min_cluster_size=int(min(history.history["min_cluster_size"])),
              clustering_epochs=args.damic_epochs,
              clustering_s_per_epoch=round(seconds / args.damic_epochs, 4),
              **scores_of(y, model.predict_labels(x))))


def run_dac_train_test(x, y, seed, args, emit):
    """DAC trained on `--dac-train-dataset`, scored on `x`: by k-means on the codes of
    `x` (the paper) and by the model's own assigner (centroids of the training codes)."""
    x_train, y_train = datasets.load(args.dac_train_dataset)
    x_train = datasets.scale_to_unit(x_train)  # as the committed runs had them
    k = len(set(y.tolist()))
    model = DAC(k, random_state=seed)
    _, seconds = timed(lambda: model.fit(
        x_train, epochs=args.dac_epochs, batch_size=args.batch_size,
        weight_labels=y_train if args.dac_weight_labels else None, verbose=0))
    common = dict(seed=seed, weight_source=model.weight_source, clustering_epochs=args.dac_epochs,
                  clustering_s_per_epoch=round(seconds / args.dac_epochs, 4),
                  train_dataset=args.dac_train_dataset)
    emit(dict(common, method="DAC, assigner", **scores_of(y, model.predict_labels(x))))
    emit(dict(common, method="DAC, k-means on test codes", **scores_of(y, model.fit_centroids(x))))


def main(argv=None):
    args = parse_args(argv)
    run_benchmark("seed_methods.py", argv, args, f"seed_methods_{args.dataset}", run_seed, ORDER)


if __name__ == "__main__":
    main()
