"""ONNX writer: the assigner through Keras' tf2onnx path, checked with ONNX Runtime."""

from keras_deepclust.export._common import build_metadata, write_checked_file
from keras_deepclust.export._versions import new_version_folder
from keras_deepclust.serving.metadata import ONNX_VERSION_FILE, metadata_path, write_metadata

DEFAULT_OPSET = 17


def run_onnx(path, x):
    """Runs an ONNX assigner with ONNX Runtime; returns its outputs dict."""
    import onnxruntime

    session = onnxruntime.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    names = [o.name for o in session.get_outputs()]
    return dict(zip(names, session.run(None, {"inputs": x})))


def export_onnx(model, path, sample=None, include_embedding=False, opset=DEFAULT_OPSET,
                metrics=None):
    """Writes `model.assigner()` to `path` as ONNX and checks it with ONNX Runtime.

    The file is written under a temporary name and renamed only after the check passed,
    so `path` never holds half a model or one that disagrees with Keras.

    Args:
        model: a trained clustering model of this package.
        path: the `.onnx` file to write.
        sample: rows to check parity on (default: 64 rows of uniform noise).
        include_embedding: add the `embedding` output.
        opset: ONNX opset (>= 17).
        metrics: scores to record in the metadata (e.g. ACC at export time).

    Returns:
        The metadata dict (also written to `path + ".metadata.json"`).

    Raises:
        ExportParityError: probabilities or cluster ids differ beyond the tolerance
            of `keras_deepclust.export._common.compare`.
    """
    if opset < 17:
        raise ValueError(f"opset must be >= 17, got {opset}.")

    def write(assigner, tmp):
        assigner.export(tmp, format="onnx", opset_version=opset, verbose=False)

    parity = write_checked_file(model, path, ".onnx", write, run_onnx, sample, include_embedding)
    metadata = build_metadata(model, path, "onnx", parity, include_embedding, metrics,
                              packages=("tf2onnx", "onnx", "onnxruntime"))
    metadata["opset"] = opset
    write_metadata(metadata_path(path), metadata)
    return metadata


def export_onnx_version(model, base_dir, name="clusterer", version=None, **kwargs):
    """Writes an ONNX assigner as BASE/NAME/VERSION/model.onnx for the HTTP server, and
    adds NAME to BASE/models.config (base path `NAME`, relative to BASE), keeping the
    file's other entries and settings.

    The layout is TF Serving's; the version folder appears complete or not at all. The
    name, the folders, the version and an existing BASE/models.config are checked before
    any work. Other arguments as in `export_onnx`.

    Returns:
        The metadata dict, with `model_name` and `version`.
    """
    with new_version_folder(base_dir, name, version, platform="onnx") as (folder, version):
        path = folder / ONNX_VERSION_FILE
        metadata = export_onnx(model, path, **kwargs)
        metadata.update({"model_name": name, "version": version})
        write_metadata(metadata_path(path), metadata)
    return metadata
