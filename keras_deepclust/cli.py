"""Command line: `keras-deepclust fit|evaluate|export|assign|convert|serve|demo|methods`.

The heavy imports (Keras, TensorFlow) happen inside the commands, so `--help`
answers at once.
"""

import argparse
import difflib
import json
import os
import sys

from keras_deepclust import options
from keras_deepclust._console import import_tensorflow_quietly, quiet_libraries

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
    "image_size": None,
    "color_mode": "auto",
}
# The flags of `fit`'s arguments, as the library's errors name them.
FIT_SPELLING = options.Spelling({
    "n_clusters": "--clusters", "pretrain_epochs": "--pretrain-epochs", "epochs": "--epochs",
    "noise": "--noise", "resume": "--resume", "out": "--out", "overwrite": "--overwrite",
    "stream": "--stream", "k_range": "--k-range", "umap_baseline": "--umap-baseline",
    **{option.name: option.flag for option in options.TABLE}})


VERBOSE_HELP = ("also show the libraries' start-up lines, logs and warnings (TensorFlow, absl, "
                "oneDNN, umap); Keras progress bars show either way")


class _Parser(argparse.ArgumentParser):
    """Reports a mistake in one line, pointing at --help instead of printing the usage."""

    def error(self, message):
        self.exit(2, f"{self.prog}: error: {message} (see {self.prog} --help)\n")


def _build_parser():
    parser = _Parser(
        prog="keras-deepclust", description="Autoencoder-based deep clustering with Keras."
    )
    parser.add_argument("--verbose", action="store_true", help=VERBOSE_HELP)
    # Accepted after the command too; SUPPRESS keeps a subcommand from resetting it to False.
    common = _Parser(add_help=False)
    common.add_argument("--verbose", action="store_true", default=argparse.SUPPRESS,
                        help=VERBOSE_HELP)
    commands = parser.commands = parser.add_subparsers(dest="command", required=True)

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
    demo.add_argument("--seed", type=_seed, default=0)
    demo.add_argument("--quick", action="store_true", help=_QUICK_HELP)
    demo.add_argument("--overwrite", action="store_true", help=_OVERWRITE_HELP)

    evaluate = add_command("evaluate", help="score a saved model on labelled data")
    evaluate.add_argument("model", help="a .keras file written by `fit`")
    evaluate.add_argument("--dataset", required=True, help=_DATASET_HELP)
    evaluate.add_argument("--batch-size", type=_positive_int, default=256)

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
                        "`serve OUT --name NAME` watches (next version number), and add NAME "
                        "to OUT/models.config (kept as you wrote it otherwise)")
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
    assign.add_argument("--chunk-rows", type=_positive_int, default=65536,
                        help="rows read at a time")
    assign.add_argument("--threads", type=_positive_int, default=None,
                        help="ONNX Runtime threads")

    convert = add_command(
        "convert", help="write a data set as TFRecord shards, for --stream and datasets.stream"
    )
    convert.add_argument("source", help=".npy, IDX or a folder of images (read in batches; "
                         "class sub-folders as labels), .npz/.csv/usps.h5 or a named data "
                         "set (labels kept)")
    _add_image_arguments(convert)
    convert.add_argument("--out", required=True, help="folder to write the shards to")
    convert.add_argument("--rows-per-shard", type=_positive_int, default=100_000)

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
    serve.add_argument("--port", type=_port, default=8501)
    serve.add_argument("--poll-seconds", type=_positive_float, default=1.0,
                       help="how often to look for a new version")
    serve.add_argument("--threads", type=_positive_int, default=None,
                       help="ONNX Runtime threads")
    serve.add_argument("--max-body-bytes", type=_positive_int, default=None,
                       help="larger request bodies get a 400 error (default 64 MiB)")
    serve.add_argument("--max-rows", type=_positive_int, default=None,
                       help="requests with more rows get a 400 error (default 65536)")
    serve.add_argument("--max-concurrent", type=_positive_int, default=None,
                       help="predict requests in progress at once; more get a 503 error "
                       "(default 32)")

    add_command("methods", help="list the method names")
    return parser


_DATASET_HELP = (
    "a name (digits, fashion_mnist, fashion_mnist_all, mnist, ...) or a path: a folder of "
    "IDX files or of images (PNG, JPEG, ...; one sub-folder per class gives the labels), "
    ".npy, .npz, .csv, .parquet, usps .h5 (values as stored: the model learns their "
    "scaling, see --scale)"
)


def _add_image_arguments(parser):
    parser.add_argument("--image-size", type=_positive_int, nargs=2, default=None,
                        metavar=("HEIGHT", "WIDTH"),
                        help="resize every image of a folder of images to this size "
                        "(bilinear); default: every image must have the first one's size")
    parser.add_argument("--color-mode", choices=["auto", "grayscale", "rgb", "rgba"],
                        default="auto", help="channels of a folder of images; auto: the "
                        "first image's (grayscale, rgb, or rgba with transparency)")


_QUICK = options.QUICK_EPOCHS
_QUICK_HELP = (
    f"scale the run down (at most {_QUICK['epochs']} clustering epochs; "
    f"{_QUICK['pretrain_epochs']} pretraining epochs, or on small data as many as make "
    f"{_QUICK['pretrain_steps']} steps, within the method's own schedule) to check a "
    "set-up, not to judge quality"
)


def _add_training_arguments(parser, dataset_default):
    parser.add_argument("--dataset", required=dataset_default is None, default=dataset_default,
                        help=_DATASET_HELP)
    _add_image_arguments(parser)
    parser.add_argument("--clusters", type=_clusters_value, default=None,
                        help="number of clusters K (default: number of classes in the labels), "
                        "or 'auto': pretrain once, sweep K over --k-range and keep the best "
                        "by --criterion (methods with a pretrained autoencoder)")
    parser.add_argument("--k-range", type=_n_clusters, nargs=2, default=(2, 20),
                        metavar=("MIN", "MAX"),
                        help="K values tried by --clusters auto (inclusive)")
    parser.add_argument("--criterion", default=None,
                        choices=["silhouette", "calinski_harabasz", "bic", "v_measure"],
                        help="what --clusters auto maximises (bic: minimises); default bic "
                        "for GMM methods, silhouette otherwise")
    parser.add_argument("--pretrain-epochs", type=_non_negative_int, default=None,
                        help="autoencoder epochs (default: the method's paper, e.g. 400 dense "
                        "/ 200 conv for the DEC family, 50 for the two-stage methods; "
                        "`keras-deepclust methods` names the papers)")
    parser.add_argument("--epochs", type=_positive_int, default=None,
                        help="clustering epochs (default: the method's own schedule, e.g. "
                        "until tol stops for the DEC family, 100 for aec, 200 for dac; "
                        "refused by methods whose fit has no epochs)")
    parser.add_argument("--batch-size", type=_positive_int, default=256,
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
    parser.add_argument("--precision", default="auto",
                        choices=["auto", "float32", "mixed_bfloat16", "mixed_float16"],
                        help="Keras dtype policy of training: the autoencoders compute in 16 "
                        "bits under a mixed policy (faster on GPUs and on CPUs with bfloat16 "
                        "instructions), the clustering heads and losses in float32; the "
                        "saved model and its exports compute in float32. auto (default): "
                        "mixed_bfloat16 on a CPU with AVX512-BF16 or AMX and no GPU, float32 "
                        "elsewhere; the output says which ran")
    parser.add_argument("--noise", type=_non_negative_float, default=0.0,
                        help="Gaussian input noise during pretraining (denoising autoencoder)")
    # The flags of the method options (`keras_deepclust.options`); each method declares
    # the options it takes (`OPTIONS`, `FIT_OPTIONS`), and `keras-deepclust methods` lists them.
    for option in options.TABLE:
        if option.switch:
            parser.add_argument(option.flag, action="store_true", help=option.help)
        elif option.numbers is not None:
            parser.add_argument(option.flag, default=None, action=_NumbersAction, option=option,
                                nargs=option.nargs, metavar=option.metavar, help=option.help)
        else:
            parser.add_argument(option.flag, default=None, choices=option.choices,
                                help=option.help)
    parser.add_argument("--stream", action="store_true",
                        help="read --dataset (.npy, IDX or a `convert` folder) batch by batch "
                        "instead of loading "
                        "it: data larger than memory (needs --clusters K)")
    parser.add_argument("--resume", default=None, metavar="DIR",
                        help="back pretraining and the clustering fit up in DIR at every "
                        "epoch end; run the same command again after a kill to resume from "
                        "it (same labels as an uninterrupted run with --resume); the backup "
                        "is removed when the run ends; DIR must be new or hold a backup only")
    parser.add_argument("--umap-baseline", action="store_true",
                        help="with labels, also score UMAP + GMM on the inputs (the strongest "
                        "baseline without training; needs umap-learn)")
    parser.add_argument("--seed", type=_seed, default=0, help="random seed; runs are repeatable")
    parser.add_argument("--quick", action="store_true", help=_QUICK_HELP)
    parser.add_argument("--out", required=True, help="output folder")
    parser.add_argument("--overwrite", action="store_true", help=_OVERWRITE_HELP)


_OVERWRITE_HELP = ("replace the run already in --out (its model, labels, metrics, report and "
                   "figures; other files there stay); without it such a folder is refused")


def _clusters_value(text):
    if text == "auto":
        return text
    try:
        return _n_clusters(text)
    except argparse.ArgumentTypeError:
        raise argparse.ArgumentTypeError(f"expected an integer >= 2 or 'auto', got {text!r}"
                                         ) from None


def _argument_type(number):
    """An argparse type that parses `number` (an `options.Number`) and names its range."""

    def parse(text):
        try:
            return number.parse(text)
        except ValueError as error:
            raise argparse.ArgumentTypeError(str(error)) from None

    return parse


class _NumbersAction(argparse.Action):
    """Parses a numeric option of `options.TABLE` by its row, each value in its range."""

    def __init__(self, option_strings, dest, option, **kwargs):
        super().__init__(option_strings, dest, **kwargs)
        self.option = option

    def __call__(self, parser, namespace, values, option_string=None):
        try:
            setattr(namespace, self.dest, self.option.parse_numbers(values))
        except ValueError as error:
            raise argparse.ArgumentError(self, str(error)) from None


_positive_int = _argument_type(options.POSITIVE_INT)
_non_negative_int = _argument_type(options.Number(int, 0))
_n_clusters = _argument_type(options.Number(int, 2))
_seed = _argument_type(options.Number(int, 0, 2**32 - 1))  # what numpy's generators accept
_port = _argument_type(options.Number(int, 1, 65535))
_positive_float = _argument_type(options.Number(float, 0, low_open=True))
_non_negative_float = _argument_type(options.NON_NEGATIVE_FLOAT)


def main(argv=None):
    parser = _build_parser()
    args, unknown = parser.parse_known_args(argv)
    if unknown:  # named by the command's own parser, with the nearest flag it takes
        command = parser.commands.choices[args.command]
        flags = [flag for action in command._actions for flag in action.option_strings]
        flag = next((word.split("=")[0] for word in unknown if word.startswith("-")), "")
        near = difflib.get_close_matches(flag, flags, n=1) if flag else []
        command.error(f"unrecognized arguments: {' '.join(unknown)}"
                      + (f"; did you mean {near[0]}?" if near else ""))
    if not args.verbose:
        quiet_libraries()
    try:
        if args.command not in _TENSORFLOW_FREE + _TENSORFLOW_AFTER_CHECKS:
            _import_tensorflow(args)
        return _COMMANDS[args.command](args)
    except (ValueError, FileNotFoundError) as error:
        print(f"keras-deepclust {args.command}: error: {error}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:  # a run with --resume goes on from its backup when run again
        print(f"\nkeras-deepclust {args.command}: interrupted", file=sys.stderr)
        return 130
    except BrokenPipeError:  # the output's reader has gone (`| head`): stop without a trace
        # Python flushes stdout again at exit, which would fail again: point it at nothing.
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        return 1


# Commands that run on ONNX Runtime alone and must not pay for (or need) TensorFlow.
_TENSORFLOW_FREE = ("assign", "serve")
# Commands that check their data and outputs first and import TensorFlow only then
# (`_import_tensorflow`), so that a mistake is reported in a second, not after its start-up.
_TENSORFLOW_AFTER_CHECKS = ("fit", "demo", "evaluate", "export", "convert")


def _import_tensorflow(args):
    """Imports TensorFlow before anything else does: quietly unless --verbose."""
    if not args.verbose:
        import_tensorflow_quietly()


def _methods(args):
    from keras_deepclust.models import get_method, list_methods

    for name in list_methods():
        cls = get_method(name)
        summary = " ".join((cls.__doc__ or "").strip().split("\n\n")[0].split()).replace("`", "")
        flags = [option.flag if option.switch else
                 f"{option.flag} (default {options.flag_default(cls, option)})"
                 for option in options.options_of(cls)]
        print(f"{name:12s}{summary}" + (f"\n{'':12s}paper: {cls.PAPER}" if cls.PAPER else "")
              + (f"\n{'':12s}flags: {', '.join(flags)}" if flags else ""))
    return 0


def _demo(args):
    settings = dict(DEMO_SETTINGS, seed=args.seed, out=args.out, clusters=None, quick=args.quick,
                    k_range=None, criterion=None, weight_labels=False, strategy="default",
                    resume=None, stream=False, scale="auto", precision="auto",
                    overwrite=args.overwrite, verbose=args.verbose)
    return _fit(argparse.Namespace(**settings))


def _fit(args):
    from keras_deepclust import commands

    commands.fit(
        args.method, args.dataset, args.out, args.clusters, options=_model_options(args),
        random_state=args.seed, pretrain_epochs=args.pretrain_epochs, epochs=args.epochs,
        batch_size=args.batch_size, noise=args.noise, scaling=args.scale,
        strategy=args.strategy, precision=args.precision, resume=args.resume,
        k_range=getattr(args, "k_range", None) or (2, 15),
        criterion=getattr(args, "criterion", None),
        umap_baseline=getattr(args, "umap_baseline", False),
        weight_labels=getattr(args, "weight_labels", False), quick=args.quick,
        stream=getattr(args, "stream", False), overwrite=args.overwrite,
        report_entries={name: getattr(args, name, None)
                        for name in ("augment", "augment_phases", "init")},
        when_checked=lambda: _import_tensorflow(args), spelling=FIT_SPELLING,
        **_image_options(args))
    return 0


def _image_options(args):
    """How `fit` and `convert` read a folder of images (refused for other data)."""
    return {"image_size": args.image_size, "color_mode": args.color_mode}


def _flag_value(args, flag):
    return getattr(args, flag[2:].replace("-", "_"), None)


def _given(args, flag):
    return _flag_value(args, flag) not in (None, False)


def _model_options(args):
    """The constructor arguments the flags of `options.TABLE` give (`commands.fit`
    refuses those the method does not take)."""
    if _given(args, "--augment-phases") and not _given(args, "--augment"):
        raise ValueError("--augment-phases needs --augment SHIFT DEGREES.")
    return {option.name: option.argument(_flag_value(args, option.flag))
            for option in options.TABLE if not option.fit and _given(args, option.flag)}


def _evaluate(args):
    from keras_deepclust import commands

    scores = commands.evaluate(args.model, args.dataset, batch_size=args.batch_size,
                               when_checked=lambda: _import_tensorflow(args))
    print(json.dumps(scores, indent=2))
    return 0


def _export(args):
    from keras_deepclust import commands, export

    results = commands.export_model(
        args.model, args.out, export.FORMATS if args.format == "all" else (args.format,),
        name=args.name, dataset=args.dataset, include_embedding=args.embedding,
        quantization=args.quantize, versioned=args.versioned,
        when_checked=lambda: _import_tensorflow(args))
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


def _convert(args):
    from keras_deepclust import tfrecords

    meta = tfrecords.convert(args.source, args.out, rows_per_shard=args.rows_per_shard,
                             when_checked=lambda: _import_tensorflow(args),
                             **_image_options(args))
    print(f"wrote {meta['n_samples']} samples of shape {tuple(meta['sample_shape'])} "
          f"({'with' if meta['has_labels'] else 'without'} labels) in {len(meta['shards'])} "
          f"shard(s) to {args.out}")
    return 0


_COMMANDS = {"fit": _fit, "demo": _demo, "evaluate": _evaluate, "export": _export,
             "assign": _assign, "convert": _convert, "serve": _serve, "methods": _methods}

if __name__ == "__main__":
    sys.exit(main())
