"""TFLite writer: builtin ops only, optional quantisation, checked with LiteRT."""

from keras_deepclust.export._common import build_metadata, quiet_litert, write_checked_file
from keras_deepclust.serving.metadata import metadata_path, write_metadata

QUANTIZATIONS = (None, "dynamic", "float16")


def check_quantization(quantization):
    if quantization not in QUANTIZATIONS:
        raise ValueError(f"quantization must be one of {QUANTIZATIONS}, got {quantization!r}.")
    return quantization


def _converter_options(quantization):
    import tensorflow as tf

    # Builtins only: an op that would need the Flex delegate fails here, at export,
    # rather than on the device.
    target_spec = {"supported_ops": [tf.lite.OpsSet.TFLITE_BUILTINS]}
    options = {"target_spec": target_spec}
    if quantization is not None:
        options["optimizations"] = [tf.lite.Optimize.DEFAULT]
    if quantization == "float16":
        target_spec["supported_types"] = [tf.float16]
    return options


def run_tflite(path, x):
    """Runs a TFLite assigner with the LiteRT interpreter; returns its outputs dict. LiteRT's
    INFO line on its first run is hidden when TF_CPP_MIN_LOG_LEVEL hides INFO."""
    from ai_edge_litert.interpreter import Interpreter

    with quiet_litert():
        runner = Interpreter(model_path=str(path)).get_signature_runner("serving_default")
        return runner(inputs=x)


def export_tflite(model, path, sample=None, include_embedding=False, quantization=None,
                  metrics=None):
    """Writes `model.assigner()` to `path` as TFLite (builtin ops only) and checks it.

    Args:
        model: a trained clustering model of this package.
        path: the `.tflite` file to write.
        sample: rows to check parity on (default: 64 rows of uniform noise).
        include_embedding: add the `embedding` output.
        quantization: None, "dynamic" (int8 weights) or "float16". Quantised files are
            not held to the parity tolerance; their agreement with Keras is reported in
            the metadata's `parity`.
        metrics: scores to record in the metadata.

    Returns:
        The metadata dict (also written to `path + ".metadata.json"`).

    Raises:
        ExportParityError: (unquantised) probabilities or cluster ids differ beyond
            the tolerance of `keras_deepclust.export._common.compare`.
    """
    check_quantization(quantization)

    def write(assigner, tmp):
        assigner.export(tmp, format="litert", verbose=False, **_converter_options(quantization))

    parity = write_checked_file(model, path, ".tflite", write, run_tflite, sample,
                                include_embedding, quantized=quantization is not None)
    metadata = build_metadata(model, path, "tflite", parity, include_embedding, metrics,
                              packages=("ai-edge-litert",))
    metadata["quantization"] = quantization
    write_metadata(metadata_path(path), metadata)
    return metadata
