"""What the three writers share: the checks of where they write, the sample for the parity
check, the comparison, and the metadata record."""

import datetime
import importlib.metadata
import json
import os
import re
import shutil
from contextlib import nullcontext
from pathlib import Path

import numpy as np

from keras_deepclust._console import without_stderr_lines
from keras_deepclust._io import atomic_path, check_can_write_in
from keras_deepclust.serving.metadata import FORMAT_VERSION, metadata_path, sha256_of

PROBABILITY_TOLERANCE = 1e-5
_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]*$")
# What LiteRT's C++ runtime prints on file descriptor 2 when it first runs a model, an
# INFO line whatever TF_CPP_MIN_LOG_LEVEL says. Only lines known to be informational.
LITERT_INFO_LINES = re.compile(rb"INFO: Created TensorFlow Lite XNNPACK delegate for CPU\.")


class ExportParityError(RuntimeError):
    """The exported artifact does not reproduce the Keras model's assignments."""


def check_name(name):
    """Refuses a model name that is not one file or folder name (a path such as `../x`
    would write outside the output folder)."""
    if not isinstance(name, str) or not _NAME.match(name):
        raise ValueError(f"name must be letters, digits, '_', '.' or '-' (not starting with "
                         f"'.', '_' or '-'), got {name!r}.")
    return name


def check_output_folder(folder):
    """Refuses, before any work, an output folder that is a file, lies under one or
    cannot be written by this process."""
    folder = Path(folder)
    if folder.exists() and not folder.is_dir():
        raise ValueError(f"The output folder {folder} is a file: choose a folder.")
    check_can_write_in(folder, f"the output folder {folder}")
    return folder


def check_replaceable(artifact):
    """Refuses, before any work, to write the file `artifact` (and its metadata beside it)
    over anything but an earlier export left unchanged: a file whose metadata records its
    checksum. An earlier export is replaced, as running `export` again is expected to do;
    a file the user wrote or changed since is never overwritten."""
    artifact = Path(artifact)
    if artifact.is_dir():
        raise ValueError(f"{artifact} is a folder: export under another name or folder.")
    metadata = metadata_path(artifact)
    if not artifact.exists() and not metadata.exists():
        return artifact
    reason = _why_not_an_unchanged_export(artifact, metadata)
    if reason:
        raise ValueError(f"{artifact} already exists and is not an earlier export left "
                         f"unchanged ({reason}); it is kept: remove it, or export under another "
                         "name or folder.")
    return artifact


def _why_not_an_unchanged_export(artifact, metadata):
    if not artifact.is_file():
        return f"{metadata} has no {artifact.name} beside it"
    if not metadata.is_file():
        return f"it has no metadata {metadata.name}"
    try:
        recorded = json.loads(metadata.read_text())["checksum"]["sha256"]
    except (OSError, ValueError, KeyError, TypeError):
        return f"{metadata.name} does not record its checksum"
    if recorded != sha256_of(artifact):
        return f"it changed since {metadata.name} was written"
    return None


def quiet_litert():
    """Hides LiteRT's INFO lines (`LITERT_INFO_LINES`) when TF_CPP_MIN_LOG_LEVEL asks
    TensorFlow's C++ code to hide INFO (1 or more; the CLI sets 2 unless --verbose):
    LiteRT prints them whatever that variable says."""
    try:
        hides_info = int(os.environ.get("TF_CPP_MIN_LOG_LEVEL", "0")) >= 1
    except ValueError:
        hides_info = False
    return without_stderr_lines(LITERT_INFO_LINES) if hides_info else nullcontext()


def float32_assigner(model, include_embedding=False):
    """`model.assigner()` computed in float32. A model trained under a mixed-precision
    policy ("mixed_bfloat16", "mixed_float16") is copied with float32 layers first: its
    weights are float32 already, and ONNX Runtime and LiteRT run no bfloat16 kernels."""
    if all(layer.compute_dtype == "float32" for layer in _layers(model)):
        return model.assigner(include_embedding=include_embedding)
    from keras_deepclust.layers.precision import dtype_policy

    with dtype_policy("float32"):
        copy = type(model).from_config(model.get_config())
        copy.set_weights(model.get_weights())
    return copy.assigner(include_embedding=include_embedding)


def _layers(layer):
    yield layer
    for child in getattr(layer, "layers", ()):
        yield from _layers(child)


def parity_sample(model, sample=None, n=64, random_state=0):
    """The raw rows the artifact is checked on: `sample` (checked), or `n` rows that
    the model's input scaling maps to uniform noise in [0, 1]."""
    if sample is not None:
        model.prepare_inputs(sample, name="sample")  # the checks, with a clear error
        return np.asarray(sample, np.float32)
    rng = np.random.default_rng(random_state)
    unit = rng.uniform(0, 1, size=(n, *model.sample_shape)).astype(np.float32)
    return unit * model.input_scaling.scale.numpy() + model.input_scaling.offset.numpy()


def keras_reference(assigner, x, random_state=0):
    """The Keras assigner's outputs on `x`, and its own float32 sensitivity: the largest
    probability change when every input moves by 1e-6 of its scale (about ten float32
    roundings). A sharp mixture posterior can turn float32 rounding of its input into
    differences far above 1e-5 that mean nothing; the tolerance follows this number."""
    reference = assigner.predict(x, verbose=0)
    scale = np.maximum(np.abs(x), np.abs(x).mean() + 1e-12)
    signs = np.random.default_rng(random_state).choice([-1.0, 1.0], size=x.shape)
    nudged = assigner.predict((x + 1e-6 * scale * signs).astype(np.float32), verbose=0)
    reference["sensitivity"] = float(np.max(np.abs(nudged["probabilities"]
                                                   - reference["probabilities"])))
    return reference


def compare(reference, outputs, quantized=False):
    """Max |probability| difference and cluster agreement; raises unless within tolerance.

    Probabilities must agree within `PROBABILITY_TOLERANCE`, or within ten times the
    Keras model's own sensitivity to float32 rounding (`keras_reference`) when that is
    larger. Cluster ids must agree on every row except near-ties, rows whose two most
    probable clusters are closer than that tolerance (rounding may order them either
    way). Quantised artifacts are not held to the tolerance: their agreement is reported.
    """
    probabilities = reference["probabilities"]
    difference = float(np.max(np.abs(probabilities - outputs["probabilities"])))
    tolerance = max(PROBABILITY_TOLERANCE, 10 * reference.get("sensitivity", 0.0))
    top_two = np.sort(probabilities, axis=1)[:, -2:]
    near_tie = top_two[:, 1] - top_two[:, 0] <= tolerance
    agree = reference["cluster"] == outputs["cluster"]
    agreement = float(np.mean(agree))
    if not quantized and (difference > tolerance or not np.all(agree | near_tie)):
        raise ExportParityError(
            f"exported probabilities differ from Keras by up to {difference:.3g} (tolerance "
            f"{tolerance:.3g}) and {np.sum(~agree & ~near_tie)} cluster ids differ outside "
            "near-ties.")
    return {"max_abs_probability_difference": difference, "cluster_agreement": agreement,
            "probability_tolerance": tolerance, "near_ties": int(np.sum(near_tie)),
            "n_samples": int(len(reference["cluster"]))}


def versions(*packages):
    found = {}
    for package in ("keras-deepclust", "keras", "tensorflow-cpu", "tensorflow", "numpy", *packages):
        try:
            found[package] = importlib.metadata.version(package)
        except importlib.metadata.PackageNotFoundError:
            pass
    return found


def build_metadata(model, artifact, export_format, parity, include_embedding, metrics=None,
                   packages=()):
    from keras_deepclust.models.base import method_name  # TensorFlow: not for the checks

    outputs = ["probabilities", "cluster"] + (["embedding"] if include_embedding else [])
    return {
        "format_version": FORMAT_VERSION,
        "format": export_format,
        "method": method_name(model),
        "model_class": type(model).__name__,
        "n_clusters": model.n_clusters,
        "input_name": "inputs",
        "input_shape": [None, *model.sample_shape],
        "input_dtype": "float32",
        "outputs": outputs,
        # The scaling is the assigner's first layer: clients send the raw rows.
        "preprocessing": model.input_scaling.description(),
        "versions": versions(*packages),
        "metrics": metrics or {},
        "parity": parity,
        "checksum": {"sha256": sha256_of(artifact)},
        "created": datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds"),
    }


def remove(path):
    if os.path.isdir(path):
        shutil.rmtree(path, ignore_errors=True)
    elif os.path.exists(path):
        os.unlink(path)


def write_checked_file(model, path, suffix, write, run, sample=None, include_embedding=False,
                       quantized=False):
    """Writes the assigner to a temporary file with `write(assigner, tmp)`, runs the file
    with `run(tmp, x)` on the parity sample, and renames it to `path` only if it matches.
    A `path` that is not free or an earlier export (`check_replaceable`) is refused first.

    Returns:
        The parity record (see `compare`).
    """
    path = Path(path)
    if path.suffix != suffix:
        raise ValueError(f"The file name must end with {suffix}, got {path}.")
    check_output_folder(path.parent)
    check_replaceable(path)
    assigner = float32_assigner(model, include_embedding=include_embedding)
    x = parity_sample(model, sample)
    reference = keras_reference(assigner, x)
    with atomic_path(path) as tmp:
        write(assigner, tmp)
        parity = compare(reference, run(tmp, x), quantized)
    return parity
