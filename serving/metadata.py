"""The artifact contract: the metadata JSON written next to every exported assigner.

It lives with its reader (the TensorFlow-free serving side); the exporters write it.
numpy and the standard library only.
"""

import hashlib
import json
from pathlib import Path

from keras_deepclust._io import write_json

# 2: the input scaling is inside the model (`preprocessing` only describes it).
FORMAT_VERSION = 2
METADATA_SUFFIX = ".metadata.json"
SAVEDMODEL_METADATA = Path("assets.extra") / "keras_deepclust.json"
ONNX_VERSION_FILE = "model.onnx"  # BASE/NAME/VERSION/model.onnx, read by the HTTP server
REQUIRED_KEYS = (
    "format_version", "format", "method", "n_clusters", "input_name", "input_shape",
    "input_dtype", "outputs", "preprocessing", "versions", "checksum",
)


def metadata_path(artifact):
    """Where the metadata of `artifact` lives: `model.onnx` -> `model.onnx.metadata.json`;
    a SavedModel folder -> `FOLDER/assets.extra/keras_deepclust.json`."""
    artifact = Path(artifact)
    if artifact.is_dir():
        return artifact / SAVEDMODEL_METADATA
    return artifact.with_name(artifact.name + METADATA_SUFFIX)


def sha256_of(path):
    """SHA-256 of a file, or of a folder's files (relative names and contents, sorted),
    leaving out the folder's metadata file itself."""
    path = Path(path)
    digest = hashlib.sha256()
    files = [path] if path.is_file() else sorted(
        p for p in path.rglob("*") if p.is_file() and p.relative_to(path) != SAVEDMODEL_METADATA
    )
    for file in files:
        if path.is_dir():
            digest.update(str(file.relative_to(path)).encode())
        with open(file, "rb") as f:
            for block in iter(lambda: f.read(1 << 20), b""):
                digest.update(block)
    return digest.hexdigest()


def write_metadata(path, metadata):
    """Writes `metadata` as JSON atomically (temporary file, then rename)."""
    missing = [key for key in REQUIRED_KEYS if key not in metadata]
    if missing:
        raise ValueError(f"metadata lacks required keys: {missing}")
    write_json(path, metadata)


def read_metadata(artifact, verify_checksum=True):
    """Reads and checks the metadata of `artifact` (a file or SavedModel folder).

    Raises:
        FileNotFoundError: no metadata next to the artifact.
        ValueError: the file is not a JSON object, a required key is missing, the
            format version is unknown, or the artifact's checksum does not match (it
            changed after export).
    """
    path = metadata_path(artifact)
    if not path.is_file():
        raise FileNotFoundError(f"No metadata for {artifact}: expected {path}")
    try:
        with open(path, encoding="utf-8") as f:
            metadata = json.load(f)
    except (ValueError, UnicodeDecodeError) as error:  # not JSON; cut short
        raise ValueError(f"{path} is not valid JSON metadata ({error}).") from None
    if not isinstance(metadata, dict):
        raise ValueError(f"{path} must hold a JSON object, got {type(metadata).__name__}.")
    missing = [key for key in REQUIRED_KEYS if key not in metadata]
    if missing:
        raise ValueError(f"{path} lacks required keys: {missing}")
    if metadata["format_version"] != FORMAT_VERSION:
        raise ValueError(
            f"{path} has format_version {metadata['format_version']}; this version reads "
            f"{FORMAT_VERSION}."
        )
    if verify_checksum and sha256_of(artifact) != metadata["checksum"]["sha256"]:
        raise ValueError(f"{artifact} does not match the checksum in {path}: it changed after export.")
    return metadata
