"""Command line: `keras-deepclust fit|evaluate|export|assign|convert|serve|demo|methods`.

The heavy imports (Keras, TensorFlow) happen inside the commands, so `--help`
answers at once.
"""

import argparse
import importlib.util
import json
import logging
import os
import re
import shutil
import sys
import tempfile
import time
import warnings
from pathlib import Path

# The demo: the recommended recipe (method auto, its own schedule) on the bundled
# digits, next to k-means and UMAP + GMM on the pixels.
DEMO_SETTINGS = {
    "method": "auto",
    "dataset": "digits",
    "pretrain_epochs": None,
    "noise": 0.0,
    "epochs": None,
    "batch_size": 256,
    "umap_baseline": True,
}
QUICK_EPOCHS = {"pretrain_epochs": 20, "epochs": 20}


VERBOSE_HELP = ("also show the libraries' start-up lines, logs and warnings (TensorFlow, absl, "
                "oneDNN, umap); Keras progress bars show either way")


def _build_parser():
    parser = argparse.ArgumentParser(
        prog="keras-deepclust", description="Autoencoder-based deep clustering with Keras."
    )
    parser.add_argument("--verbose", action="store_true", help=VERBOSE_HELP)
    # Accepted after the command too; SUPPRESS keeps a subcommand from resetting it to False.
    common = argparse.ArgumentParser(add_help=False)
    common.add_argument("--verbose", action="store_true", default=argparse.SUPPRESS,
                        help=VERBOSE_HELP)
    commands = parser.add_subparsers(dest="command", required=True)

    def add_command(name, **kwargs):
        return commands.add_parser(name, parents=[common], **kwargs)

    fit = add_command("fit", help="pretrain and cluster, write model, metrics and plots")
    fit.add_argument("method", help="method name; `keras-deepclust methods` lists them")
    _add_training_arguments(fit, dataset_default=None)

    demo = add_command(
        "demo", help="the recommended method (auto) on the bundled digits, scored next to "
        "k-means and UMAP + GMM on the pixels"
    )
    demo.add_argument("--out", default="keras-deepclust-demo", help="output folder")
    demo.add_argument("--seed", type=int, default=0)
    demo.add_argument("--quick", action="store_true", help=_QUICK_HELP)

    evaluate = add_command("evaluate", help="score a saved model on labelled data")
    evaluate.add_argument("model", help="a .keras file written by `fit`")
    evaluate.add_argument("--dataset", required=True, help=_DATASET_HELP)
    evaluate.add_argument("--batch-size", type=int, default=256)

    export = add_command(
        "export", help="write the model's assigner as SavedModel, ONNX and/or TFLite"
    )
    export.add_argument("model", help="a .keras file written by `fit`")
    export.add_argument("--format", default="all",
                        choices=["savedmodel", "onnx", "tflite", "all"])
    export.add_argument("--out", required=True, help="output folder")
    export.add_argument("--name", default="clusterer", help="model name (file and folder names)")
    export.add_argument("--embedding", action="store_true", help="add the `embedding` output")
    export.add_argument("--versioned", action="store_true",
                        help="write the ONNX file as OUT/NAME/VERSION/model.onnx, the layout "
                        "`serve OUT --name NAME` watches (next version number)")
    export.add_argument("--quantize", choices=["dynamic", "float16"], default=None,
                        help="quantise the TFLite file (agreement with Keras is reported)")
    export.add_argument("--dataset", default=None, help="check parity on this data (and "
                        "record its metrics when it has labels) instead of random inputs; "
                        + _DATASET_HELP)

    assign = add_command(
        "assign", help="assign clusters to a data file with an ONNX assigner (no TensorFlow)"
    )
    assign.add_argument("model", help="an .onnx file written by `export`")
    assign.add_argument("data", help="the raw rows, as fit read them: .npy (read in chunks, "
                        "any size and memory order), .npz, .csv, .parquet or IDX")
    assign.add_argument("--out", required=True, help="CSV to write: row,cluster[,p_k...]")
    assign.add_argument("--probabilities", action="store_true", help="add p_0..p_K-1 columns")
    assign.add_argument("--chunk-rows", type=int, default=65536, help="rows read at a time")
    assign.add_argument("--threads", type=int, default=None, help="ONNX Runtime threads")

    convert = add_command(
        "convert", help="write a data set as TFRecord shards, for --stream and datasets.stream"
    )
    convert.add_argument("source", help=".npy or IDX (read in batches), .npz/.csv/usps.h5 or a "
                         "named data set (labels kept), or a folder of same-size images")
    convert.add_argument("--out", required=True, help="folder to write the shards to")
    convert.add_argument("--rows-per-shard", type=int, default=100_000)

    serve = add_command(
        "serve", help="serve ONNX assigners over TF Serving's REST API (no TensorFlow)"
    )
    serve.add_argument("base", nargs="?", default=None,
                       help="model base folder holding NAME/VERSION/model.onnx")
    serve.add_argument("--name", default=None, help="model name (its folder under BASE)")
    serve.add_argument("--model-config-file", default=None,
                       help="instead of BASE and --name: a TF Serving model config file "
                       "(models.config, as export writes it), each model served at "
                       "/v1/models/NAME with its version policy and labels")
    serve.add_argument("--host", default="127.0.0.1")
    serve.add_argument("--port", type=int, default=8501)
    serve.add_argument("--poll-seconds", type=float, default=1.0,
                       help="how often to look for a new version")
    serve.add_argument("--threads", type=int, default=None, help="ONNX Runtime threads")
    serve.add_argument("--max-body-bytes", type=int, default=None,
                       help="larger request bodies get a 400 error (default 64 MiB)")
    serve.add_argument("--max-rows", type=int, default=None,
                       help="requests with more rows get a 400 error (default 65536)")
    serve.add_argument("--max-concurrent", type=int, default=None,
                       help="predict requests in progress at once; more get a 503 error "
                       "(default 32)")

    add_command("methods", help="list the method names")
    return parser


_DATASET_HELP = (
    "a name (digits, fashion_mnist, fashion_mnist_all, mnist, ...) or a path: a folder of "
    "IDX files, .npy, .npz, .csv, .parquet, usps .h5 (values as stored: the model learns "
    "their scaling, see --scale)"
)
_QUICK_HELP = (
    f"scale the run down ({QUICK_EPOCHS['pretrain_epochs']} pretraining and at most "
    f"{QUICK_EPOCHS['epochs']} clustering epochs) to check a set-up, not to judge quality"
)


def _add_training_arguments(parser, dataset_default):
    parser.add_argument("--dataset", required=dataset_default is None, default=dataset_default,
                        help=_DATASET_HELP)
    parser.add_argument("--clusters", type=_clusters_value, default=None,
                        help="number of clusters K (default: number of classes in the labels), "
                        "or 'auto': pretrain once, sweep K over --k-range and keep the best "
                        "by --criterion (methods with a pretrained autoencoder)")
    parser.add_argument("--k-range", type=int, nargs=2, default=(2, 20), metavar=("MIN", "MAX"),
                        help="K values tried by --clusters auto (inclusive)")
    parser.add_argument("--criterion", default=None,
                        choices=["silhouette", "calinski_harabasz", "bic", "v_measure"],
                        help="what --clusters auto maximises (bic: minimises); default bic "
                        "for GMM methods, silhouette otherwise")
    parser.add_argument("--pretrain-epochs", type=int, default=None,
                        help="autoencoder epochs (default: the method's paper, e.g. 400 dense "
                        "/ 200 conv for the DEC family, 50 for the two-stage methods; "
                        "`keras-deepclust methods` names the papers)")
    parser.add_argument("--epochs", type=int, default=None,
                        help="clustering epochs (default: the method's own schedule, e.g. "
                        "until tol stops for the DEC family, 100 for aec, 200 for dac; "
                        "refused by methods whose fit has no epochs)")
    parser.add_argument("--batch-size", type=int, default=256,
                        help="global batch, split among the replicas of --strategy")
    parser.add_argument("--strategy", default="default",
                        choices=["default", "mirrored", "multiworker"],
                        help="tf.distribute strategy: default (one device, the GPU when there "
                        "is one), mirrored (every local GPU) or multiworker (every worker "
                        "of TF_CONFIG runs the same command; the chief writes the outputs)")
    parser.add_argument("--scale", default="auto", choices=["auto", "standard", "minmax", "none"],
                        help="input scaling the model learns in fit and carries into every "
                        "export: auto (images to [0, 1], tables standardised per feature, or "
                        "min-max for aec and dac, whose output is a sigmoid), standard, "
                        "minmax (per feature for tables) or none")
    parser.add_argument("--precision", default="float32",
                        choices=["float32", "mixed_bfloat16", "mixed_float16"],
                        help="Keras dtype policy of training: the autoencoders compute in 16 "
                        "bits under a mixed policy (faster on GPUs and on CPUs with bfloat16 "
                        "instructions), the clustering heads and losses in float32; the "
                        "saved model and its exports compute in float32")
    parser.add_argument("--noise", type=float, default=0.0,
                        help="Gaussian input noise during pretraining (denoising autoencoder)")
    # The flags below set a model option; each method declares the options it takes
    # (`OPTIONS`, `FIT_OPTIONS`), and `keras-deepclust methods` lists them.
    parser.add_argument("--augment", type=float, nargs=2, default=None, metavar=("SHIFT", "DEGREES"),
                        help="option augmentation: train on randomly shifted (fraction of the "
                        "size) and rotated images, as DEC-DA does (its setting: 0.1 10)")
    parser.add_argument("--augment-phases", default=None, choices=["both", "pretrain"],
                        help="option augment_clustering, with --augment: augment pretraining "
                        "and clustering (both, DEC-DA; the default) or pretraining only")
    parser.add_argument("--init", default=None, choices=["random", "kmeans", "gmm"],
                        help="option init: how the clustering starts from the codes: k-means "
                        "(the papers' default), the means or components of a full-covariance "
                        "Gaussian mixture, or (aec) a random assignment")
    parser.add_argument("--weight-labels", action="store_true",
                        help="fit option weight_labels: the data set's labels compute DAC's "
                        "feature weights (semi-supervised) instead of k-means pseudo-labels")
    parser.add_argument("--manifold-head", default=None, choices=["regression", "neighbors"],
                        help="option manifold_head: how the exported model maps codes to the "
                        "UMAP manifold (default neighbors: interpolation among the nearest "
                        "fitted codes; regression: a trained MLP, less faithful on new rows)")
    parser.add_argument("--stream", action="store_true",
                        help="read --dataset (.npy, IDX or a `convert` folder) batch by batch "
                        "instead of loading "
                        "it: data larger than memory (needs --clusters K)")
    parser.add_argument("--resume", default=None, metavar="DIR",
                        help="back pretraining and the clustering fit up in DIR at every "
                        "epoch end; run the same command again after a kill to resume from "
                        "it (same labels as an uninterrupted run with --resume; DIR is "
                        "removed when the run ends)")
    parser.add_argument("--umap-baseline", action="store_true",
                        help="with labels, also score UMAP + GMM on the inputs (the strongest "
                        "baseline without training; needs umap-learn)")
    parser.add_argument("--seed", type=int, default=0, help="random seed; runs are repeatable")
    parser.add_argument("--quick", action="store_true", help=_QUICK_HELP)
    parser.add_argument("--out", required=True, help="output folder")


def _clusters_value(text):
    if text == "auto":
        return text
    try:
        return int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected an integer or 'auto', got {text!r}") from None


def main(argv=None):
    args = _build_parser().parse_args(argv)
    if not args.verbose:
        _quiet_libraries()
        if args.command not in _TENSORFLOW_FREE:
            _import_tensorflow_quietly()
    try:
        return _COMMANDS[args.command](args)
    except (ValueError, FileNotFoundError) as error:
        print(f"keras-deepclust {args.command}: error: {error}", file=sys.stderr)
        return 2


def _quiet_libraries():
    """Hide what the libraries print for their developers: TensorFlow's C++ start-up and
    oneDNN lines, TensorFlow's and absl's Python log below ERROR (retracing notices) and
    other packages' warnings (umap's n_jobs notice). The package's own warnings stay."""
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")  # before TensorFlow is imported
    for name in ("tensorflow", "absl", "numba", "py4j"):
        logging.getLogger(name).setLevel(logging.ERROR)
    warnings.filterwarnings("ignore")
    warnings.filterwarnings("default", module=r"keras_deepclust(\.|$)")


# Commands that run on ONNX Runtime alone and must not pay for (or need) TensorFlow.
_TENSORFLOW_FREE = ("assign", "serve")

# TensorFlow's C++ start-up lines (oneDNN's notice, CPU features). On some CPUs they come
# from absl before its log is initialised, which ignores TF_CPP_MIN_LOG_LEVEL.
_STARTUP_LINE = re.compile(r"WARNING: All log messages before absl::InitializeLog\(\)"
                           r"|[IW]\d{4} [\d:.]+ +\d+ [\w.]+:\d+\] ")


def _import_tensorflow_quietly():
    """Imports TensorFlow with file descriptor 2 captured, then writes back what it
    printed there except its start-up lines (errors and anything else stay)."""
    if "tensorflow" in sys.modules or importlib.util.find_spec("tensorflow") is None:
        return
    sys.stderr.flush()
    saved = os.dup(2)
    with tempfile.TemporaryFile() as captured:
        os.dup2(captured.fileno(), 2)
        try:
            import tensorflow  # noqa: F401
        finally:
            os.dup2(saved, 2)
            os.close(saved)
            captured.seek(0)
            lines = captured.read().decode(errors="replace").splitlines(keepends=True)
            sys.stderr.write("".join(line for line in lines if not _STARTUP_LINE.match(line)))


def _methods(args):
    from keras_deepclust.models import get_method, list_methods

    for name in list_methods():
        cls = get_method(name)
        summary = " ".join((cls.__doc__ or "").strip().split("\n\n")[0].split()).replace("`", "")
        flags = [flag for flag, option in {**_OPTION_FLAGS, **_FIT_OPTION_FLAGS}.items()
                 if option in cls.OPTIONS + cls.FIT_OPTIONS]
        print(f"{name:12s}{summary}" + (f"\n{'':12s}paper: {cls.PAPER}" if cls.PAPER else "")
              + (f"\n{'':12s}flags: {' '.join(flags)}" if flags else ""))
    return 0


def _demo(args):
    settings = dict(DEMO_SETTINGS, seed=args.seed, out=args.out, clusters=None, quick=args.quick,
                    k_range=None, criterion=None, weight_labels=False, strategy="default",
                    resume=None, stream=False, scale="auto", precision="float32")
    return _fit(argparse.Namespace(**settings))


def _fit(args):
    from keras_deepclust import datasets
    from keras_deepclust.models import get_method

    model_class = get_method(args.method)  # unknown names fail before data loading
    _model_options(args)  # and so do flags of another method
    if args.epochs is not None and not model_class.ITERATIVE_FIT:
        raise ValueError(f"--epochs is for methods whose fit trains in epochs; {args.method} "
                         "fits its clusterer once (use --pretrain-epochs for its autoencoder).")
    if args.resume:
        _check_no_overlap(args.out, args.resume)
    if getattr(args, "stream", False):
        if args.resume:
            raise ValueError("--resume needs the data loaded, not --stream: a backup is "
                             "checked against the data's fingerprint.")
        if not isinstance(args.clusters, int):
            raise ValueError("--stream needs --clusters K (a stream has no labels to count).")
        x, _ = datasets.stream(args.dataset, batch_size=args.batch_size)
        y = None
    else:
        x, y = datasets.load(args.dataset)
    if getattr(args, "umap_baseline", False) and y is None:
        raise ValueError(f"--umap-baseline scores against labels, and {args.dataset} has none.")
    n_clusters = args.clusters
    if n_clusters is None:
        if y is None:
            raise ValueError(f"{args.dataset} has no labels: pass --clusters K or --clusters auto.")
        n_clusters = len(set(y.tolist()))
    pretrain_epochs, epochs = args.pretrain_epochs, args.epochs
    if args.quick:
        pretrain_epochs = min(pretrain_epochs or QUICK_EPOCHS["pretrain_epochs"],
                              QUICK_EPOCHS["pretrain_epochs"])
        if model_class.ITERATIVE_FIT:
            epochs = min(epochs or QUICK_EPOCHS["epochs"], QUICK_EPOCHS["epochs"])
    from keras_deepclust.layers.precision import dtype_policy

    with dtype_policy(args.precision):
        return _train_and_report(model_class, args, x, y, n_clusters, pretrain_epochs, epochs)


def _check_no_overlap(out, resume):
    """Refuses a --resume folder that is --out, inside it or around it: the backup is
    removed when the run ends, and nothing the user asked to keep may go with it."""
    out, resume = Path(out).resolve(), Path(resume).resolve()
    if out == resume or out in resume.parents or resume in out.parents:
        raise ValueError(f"--resume {resume} and --out {out} overlap: the backup folder is "
                         "removed when the run ends, so it must lie outside the output "
                         "folder and not contain it.")


def _train_and_report(model_class, args, x, y, n_clusters, pretrain_epochs, epochs):
    import numpy as np

    from keras_deepclust import backup, callbacks, distribute, metrics, model_selection

    out = Path(args.out)
    resume = pretrain_backup = None
    if args.resume:
        # Both kept until the outputs are written, so a kill at any point loses at most
        # the epoch under way.
        resume = backup.ClusteringBackup(Path(args.resume) / "clustering", delete_on_success=False)
        pretrain_backup = backup.ClusteringBackup(Path(args.resume) / "pretraining",
                                                  delete_on_success=False)
    if resume is not None and n_clusters == "auto":
        raise ValueError("--resume needs a fixed K: pass --clusters with the K the first run chose.")
    strategy = distribute.get_strategy(args.strategy)
    distribute.check_distributed_fit(args.batch_size, strategy)
    fit_options = _weight_labels(args, y)
    streamed = not isinstance(x, np.ndarray)
    shape = tuple(x.element_spec.shape[1:]) if streamed else x.shape[1:]
    print(f"{args.method} on {args.dataset}: {'a stream of' if streamed else len(x)} samples "
          f"of shape {shape}, "
          f"K={n_clusters}, seed={args.seed}")
    start = time.perf_counter()
    selection = None
    if n_clusters == "auto":
        with strategy.scope():  # the models it makes are created under the strategy
            model, pretrain_history, selection = _choose_n_clusters(
                model_class, args, x, y, pretrain_epochs)
        n_clusters = model.n_clusters
    else:
        with strategy.scope():
            model = model_class(n_clusters=n_clusters, random_state=args.seed,
                                scaling=args.scale, **_model_options(args))
        pretrain_history = None
        if resume is not None and resume.exists():
            print(f"Resuming the clustering fit from the backup in {args.resume}.")
        elif getattr(model, "NEEDS_PRETRAINING", False) or args.pretrain_epochs is not None:
            if pretrain_backup is not None and pretrain_backup.exists():
                print(f"Resuming pretraining from the backup in {args.resume}.")
            pretrain_history = model.pretrain(
                x, epochs=pretrain_epochs, batch_size=args.batch_size, noise_stddev=args.noise,
                verbose=2, callbacks=[pretrain_backup] if pretrain_backup else None)
    pretrain_seconds = time.perf_counter() - start
    start = time.perf_counter()
    fit_arguments = dict(fit_options, batch_size=args.batch_size, verbose=2)
    if model.ITERATIVE_FIT:
        fit_callbacks = [callbacks.ClusteringMetrics(x, y)] if y is not None else []
        if resume is not None:
            fit_callbacks.append(resume)  # last: it backs up what the others updated
        fit_arguments.update(epochs=epochs, callbacks=fit_callbacks)
    history = model.fit(x, **fit_arguments)
    cluster_seconds = time.perf_counter() - start
    labels = model.labels_

    pretrain_log = pretrain_history.history if pretrain_history is not None else {}
    report = {
        "method": args.method,
        "dataset": args.dataset,
        "n_samples": len(labels),
        "n_clusters": n_clusters,
        "seed": args.seed,
        "pretrain_epochs": len(pretrain_log.get("loss", [])),
        "clustering_epochs": len(history.history.get("loss", [])),
        "noise": args.noise,
        "augment": getattr(args, "augment", None),
        "augment_phases": getattr(args, "augment_phases", None),
        "init": getattr(args, "init", None),
        "batch_size": args.batch_size,
        "strategy": args.strategy,
        "replicas": strategy.num_replicas_in_sync,
        "precision": args.precision,
        "seconds": {"pretrain": pretrain_seconds, "clustering": cluster_seconds},
        "cluster_sizes": history.cluster_sizes,
        "empty_clusters": history.empty_clusters,
        "scaling": model.input_scaling.description(),
        "history": {"pretrain": pretrain_log, "clustering": history.history},
    }
    if selection is not None:
        report["n_clusters_selection"] = selection
    if y is not None:
        report["scores"] = metrics.clustering_scores(y, labels)
        inputs = model.preprocess(x)
        report["kmeans_on_inputs"] = _kmeans_scores(inputs, y, n_clusters, args.seed)
        if getattr(args, "umap_baseline", False):
            report["umap_gmm_on_inputs"] = _umap_gmm_scores(inputs, y, n_clusters, args.seed)
    # The outputs' predict passes are collective: every worker runs them, only the chief
    # keeps the files (TensorFlow's pattern for multi-worker saving).
    if not streamed:
        sample = x
    else:  # the embedding, the gallery and the internal scores use a stream's first rows
        sample = np.concatenate(list(x.take(8).as_numpy_iterator()))
    codes = model.embed(sample)
    report["internal_scores"] = {
        **model_selection.internal_scores(codes, labels[: len(sample)], random_state=args.seed),
        "n_rows": len(sample)}
    if distribute.is_chief(strategy):
        _write_outputs(model, sample, codes, labels, report, out)
        _print_report(report, out)
    else:
        with tempfile.TemporaryDirectory() as scratch:
            _write_outputs(model, sample, codes, labels, report, Path(scratch))
        print(f"worker {strategy.cluster_resolver.task_id}: done; the chief writes the outputs")
    if distribute.is_multi_worker(strategy):
        # Equal on every worker when training kept them in sync.
        print(f"weights digest: {sum(float(np.abs(w).sum()) for w in model.get_weights()):.6f}")
    if args.resume and distribute.is_chief(strategy):
        shutil.rmtree(args.resume, ignore_errors=True)
    return 0


# Flag -> the model option it sets (its argparse name is the flag's).
_OPTION_FLAGS = {"--augment": "augmentation", "--augment-phases": "augment_clustering",
                 "--init": "init", "--manifold-head": "manifold_head"}
_FIT_OPTION_FLAGS = {"--weight-labels": "weight_labels"}


def _flag_value(args, flag):
    return getattr(args, flag[2:].replace("-", "_"), None)


def _given(args, flag):
    return _flag_value(args, flag) not in (None, False)


def _model_options(args):
    """Constructor arguments set by flags, refused for a method whose class does not
    declare them (`OPTIONS`)."""
    from keras_deepclust.models import get_method

    get_method(args.method)  # an unknown name fails first
    for flag, option in _OPTION_FLAGS.items():
        if _given(args, flag):
            _check_option(args.method, flag, option, "OPTIONS")
    if _given(args, "--augment-phases") and not _given(args, "--augment"):
        raise ValueError("--augment-phases needs --augment SHIFT DEGREES.")
    options = {}
    if _given(args, "--augment"):
        from keras_deepclust.layers import ImageAugmentation

        options["augmentation"] = ImageAugmentation(*args.augment, seed=args.seed)
        if "augment_clustering" in get_method(args.method).OPTIONS:
            options["augment_clustering"] = (args.augment_phases or "both") == "both"
    for flag in ("--init", "--manifold-head"):
        if _given(args, flag):
            options[_OPTION_FLAGS[flag]] = _flag_value(args, flag)
    return options


def _check_option(method, flag, option, kind):
    """Refuses `flag` unless `method`'s class declares `option` among its `kind`
    ("OPTIONS" or "FIT_OPTIONS"); the error names the methods that take it."""
    from keras_deepclust.models import get_method, list_methods

    if option not in getattr(get_method(method), kind):
        takers = [name for name in list_methods() if option in getattr(get_method(name), kind)]
        raise ValueError(f"{flag} is for {', '.join(takers)} only, not {method}.")


def _weight_labels(args, y):
    if not getattr(args, "weight_labels", False):
        return {}
    _check_option(args.method, "--weight-labels", "weight_labels", "FIT_OPTIONS")
    if y is None:
        raise ValueError(f"{args.dataset} has no labels for --weight-labels.")
    return {"weight_labels": y}


def _choose_n_clusters(model_class, args, x, y, pretrain_epochs):
    """Pretrains once, sweeps K on the codes (N2D: on the manifold), and returns a model
    for the best K that keeps the pretrained autoencoder, its pretraining history and
    the sweep."""
    from keras_deepclust import model_selection

    probe = model_class(n_clusters=2, random_state=args.seed, scaling=args.scale,
                        **_model_options(args))
    if not getattr(probe, "NEEDS_PRETRAINING", False):
        raise ValueError(f"--clusters auto needs a method that starts from a pretrained "
                         f"autoencoder; {args.method} does not. Pass --clusters K.")
    history = probe.pretrain(x, epochs=pretrain_epochs, batch_size=args.batch_size,
                             noise_stddev=args.noise, verbose=2)
    clusterer = "gmm" if getattr(probe, "clusterer", None) == "gmm" else "kmeans"
    k_min, k_max = args.k_range
    sweep = model_selection.sweep_n_clusters(
        probe.selection_features(x), range(k_min, k_max + 1), clusterer=clusterer, y=y,
        random_state=args.seed)
    criterion = args.criterion or ("bic" if clusterer == "gmm" else "silhouette")
    n_clusters = model_selection.best_n_clusters(sweep, criterion)
    print(f"K chosen by {criterion} over {k_min}..{k_max}: {n_clusters}")
    selection = {"criterion": criterion, "chosen": n_clusters, "sweep": sweep}
    return probe.with_n_clusters(n_clusters), history, selection


def _kmeans_scores(x, y, n_clusters, seed):
    from keras_deepclust import metrics
    from keras_deepclust.clusterers import make_clusterer

    labels = make_clusterer("kmeans", n_clusters, 10, seed).fit_predict(x.reshape(len(x), -1))
    return metrics.clustering_scores(y, labels)


def _umap_gmm_scores(x, y, n_clusters, seed):
    from keras_deepclust import metrics
    from keras_deepclust.clusterers import umap_mixture_labels

    return metrics.clustering_scores(y, umap_mixture_labels(x, n_clusters, seed))


def _write_outputs(model, x, codes, labels, report, out):
    """Writes the model, metrics.json, labels.csv, the figures and report.html; `x` is
    the data (a stream's first rows) and `codes` its embedding."""
    import numpy as np

    from keras_deepclust import plots
    from keras_deepclust._io import atomic_path, write_json
    from keras_deepclust.report import write_report

    out.mkdir(parents=True, exist_ok=True)
    with atomic_path(out / "model.keras") as tmp:
        model.save(tmp)
    write_json(out / "metrics.json", report)
    with atomic_path(out / "labels.csv") as tmp:
        np.savetxt(tmp, np.column_stack([np.arange(len(labels)), labels]), fmt="%d",
                   delimiter=",", header="row,cluster", comments="")
    figures = [plots.plot_training_curves(report["history"], out / "training_curves.png")]
    figures.append(plots.plot_embedding(codes, labels[: len(x)], out / "embedding.png"))
    if x.ndim == 4:
        sample = x[:10]
        figures.append(plots.plot_reconstructions(sample, model.reconstruct(sample),
                                                  out / "reconstructions.png"))
        if hasattr(model, "code_centroids"):
            figures.append(plots.plot_decoded_centroids(model, out / "decoded_centroids.png"))
    if hasattr(model, "feature_weights"):
        figures.append(plots.plot_feature_weights(model.feature_weights, model.sample_shape,
                                                  out / "feature_weights.png"))
    if "n_clusters_selection" in report:
        selection = report["n_clusters_selection"]
        figures.append(plots.plot_n_clusters_criteria(selection["sweep"], out / "n_clusters.png",
                                                      chosen=selection["chosen"]))
    write_report(out, report, x, labels[: len(x)], codes, figures)


def _print_report(report, out):
    from keras_deepclust.models import get_method

    seconds = report["seconds"]
    clustering = f"clustering {seconds['clustering']:.1f} s"
    if get_method(report["method"]).ITERATIVE_FIT:  # a one-shot fit has no epochs to count
        clustering += f" ({report['clustering_epochs']} epochs)"
    print(f"\npretraining {seconds['pretrain']:.1f} s ({report['pretrain_epochs']} epochs), "
          f"{clustering}")
    if "scores" in report:
        print(f"{'':24s}{'ACC':>8s}{'NMI':>8s}{'ARI':>8s}")
        rows = [(report["method"], report["scores"]),
                ("k-means on inputs", report["kmeans_on_inputs"])]
        if "umap_gmm_on_inputs" in report:
            rows.append(("UMAP + GMM on inputs", report["umap_gmm_on_inputs"]))
        for name, scores in rows:
            print(f"{name:24s}{scores['acc']:8.3f}{scores['nmi']:8.3f}{scores['ari']:8.3f}")
    internal = report["internal_scores"]
    print(f"on the codes: silhouette {internal['silhouette']:.3f}, Calinski-Harabasz "
          f"{internal['calinski_harabasz']:.4g}")
    if report["empty_clusters"]:
        print(f"empty clusters: {report['empty_clusters']} (sizes {report['cluster_sizes']})")
    print(f"wrote {out}/model.keras, metrics.json, report.html and plots")


def _evaluate(args):
    from keras_deepclust import datasets, metrics

    model = _load_model(args.model)
    x, y = datasets.load(args.dataset)
    if y is None:
        raise ValueError(f"{args.dataset} has no labels to evaluate against.")
    scores = metrics.clustering_scores(y, model.predict_labels(x, batch_size=args.batch_size))
    print(json.dumps(scores, indent=2))
    return 0


def _export(args):
    from keras_deepclust import datasets, export, metrics

    model = _load_model(args.model)
    sample, scores = None, None
    if args.dataset is not None:
        x, y = datasets.load(args.dataset)
        sample = x[:1024]
        if y is not None:
            scores = metrics.clustering_scores(y, model.predict_labels(x))
    formats = export.FORMATS if args.format == "all" else (args.format,)
    if args.versioned:
        if args.format != "onnx":
            raise ValueError("--versioned writes the server's ONNX layout: pass --format onnx.")
        metadata = export.export_onnx_version(model, args.out, args.name, sample=sample,
                                              include_embedding=args.embedding, metrics=scores)
        results = {"onnx": metadata}
    else:
        results = export.export(model, args.out, formats=formats, name=args.name,
                                sample=sample, include_embedding=args.embedding,
                                quantization=args.quantize, metrics=scores)
    for export_format, metadata in results.items():
        parity = metadata["parity"]
        print(f"{export_format:10s} max |dp| {parity['max_abs_probability_difference']:.2e} "
              f"(tolerance {parity['probability_tolerance']:.1e}), "
              f"cluster agreement {parity['cluster_agreement']:.4f} on {parity['n_samples']} rows")
    print(f"wrote {args.out}")
    return 0


def _assign(args):
    from keras_deepclust.serving import ClusterAssigner
    from keras_deepclust.serving.batch import assign_file

    assigner = ClusterAssigner(args.model, intra_op_threads=args.threads)
    n = assign_file(assigner, args.data, args.out, chunk_rows=args.chunk_rows,
                    probabilities=args.probabilities)
    print(f"wrote {n} assignments to {args.out}")
    return 0


def _serve(args):
    from keras_deepclust.serving.server import serve

    limits = {name: getattr(args, name) for name in
              ("max_body_bytes", "max_rows", "max_concurrent")
              if getattr(args, name) is not None}  # else the server's defaults
    serve(args.base, args.name, host=args.host, port=args.port, poll_seconds=args.poll_seconds,
          model_config_file=args.model_config_file, intra_op_threads=args.threads, **limits)
    return 0


def _load_model(path):
    import keras

    if not Path(path).is_file():
        raise FileNotFoundError(f"No such model file: {path}")
    return keras.saving.load_model(path)


def _convert(args):
    from keras_deepclust import tfrecords

    meta = tfrecords.convert(args.source, args.out, rows_per_shard=args.rows_per_shard)
    print(f"wrote {meta['n_samples']} samples of shape {tuple(meta['sample_shape'])} "
          f"({'with' if meta['has_labels'] else 'without'} labels) in {len(meta['shards'])} "
          f"shard(s) to {args.out}")
    return 0


_COMMANDS = {"fit": _fit, "demo": _demo, "evaluate": _evaluate, "export": _export,
             "assign": _assign, "convert": _convert, "serve": _serve, "methods": _methods}

if __name__ == "__main__":
    sys.exit(main())
