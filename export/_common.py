"""What the three writers share: the sample for the parity check, the comparison, and
the metadata record."""

import datetime
import importlib.metadata
import os
import shutil
from pathlib import Path

import numpy as np

from keras_deepclust._io import atomic_path
from keras_deepclust.models.base import method_name
from keras_deepclust.serving.metadata import FORMAT_VERSION, sha256_of

PROBABILITY_TOLERANCE = 1e-5


class ExportParityError(RuntimeError):
    """The exported artifact does not reproduce the Keras model's assignments."""


def parity_sample(model, sample=None, n=64, random_state=0):
    """The rows the artifact is checked on: `sample` (checked), or uniform noise in [0, 1]."""
    if sample is not None:
        return model._prepare_data(sample, name="sample")
    rng = np.random.default_rng(random_state)
    return rng.uniform(0, 1, size=(n, *model.sample_shape)).astype(np.float32)


def compare(reference, outputs, quantized=False):
    """Max |probability| difference and cluster agreement; raises unless within tolerance.

    Quantised artifacts are not held to the tolerance: their agreement is reported.
    """
    difference = float(np.max(np.abs(reference["probabilities"] - outputs["probabilities"])))
    agreement = float(np.mean(reference["cluster"] == outputs["cluster"]))
    if not quantized and (difference > PROBABILITY_TOLERANCE or agreement < 1.0):
        raise ExportParityError(
            f"exported probabilities differ from Keras by up to {difference:.3g} (tolerance "
            f"{PROBABILITY_TOLERANCE}) and {1 - agreement:.2%} of cluster ids differ."
        )
    return {"max_abs_probability_difference": difference, "cluster_agreement": agreement,
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
                   preprocessing=None, packages=()):
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
        # x_model = x * scale + offset; the package's loaders already give [0, 1] data.
        "preprocessing": preprocessing or {"scale": 1.0, "offset": 0.0},
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

    Returns:
        The parity record (see `compare`).
    """
    path = Path(path)
    if path.suffix != suffix:
        raise ValueError(f"The file name must end with {suffix}, got {path}.")
    assigner = model.assigner(include_embedding=include_embedding)
    x = parity_sample(model, sample)
    reference = assigner.predict(x, verbose=0)
    with atomic_path(path) as tmp:
        write(assigner, tmp)
        parity = compare(reference, run(tmp, x), quantized)
    return parity
