"""Writers that turn a trained clustering model into deployable assigners.

Installed as ``keras_deepclust.export`` (the folder is ``export/`` in the repository).
Each writer exports ``model.assigner()`` (input ``inputs``; outputs ``probabilities``,
``cluster`` and optionally ``embedding``), runs the artifact on a sample with its own
runtime, refuses to keep it unless it matches Keras (probabilities within 1e-5, or within
ten times the model's own float32 sensitivity when larger; same cluster ids except
near-ties), and writes a metadata JSON beside it.

Example:

```python
from keras_deepclust.export import export

export(model, "artifacts/", sample=x[:256])
```
"""

from pathlib import Path

from keras_deepclust.export._common import (
    ExportParityError,
    check_name,
    check_output_folder,
    check_replaceable,
)
from keras_deepclust.export._versions import check_new_version
from keras_deepclust.export.onnx import export_onnx, export_onnx_version
from keras_deepclust.export.savedmodel import export_savedmodel
from keras_deepclust.export.tflite import check_quantization, export_tflite

FORMATS = ("savedmodel", "onnx", "tflite")

__all__ = ["ExportParityError", "FORMATS", "check_export", "export", "export_onnx",
           "export_onnx_version", "export_savedmodel", "export_tflite"]


def check_export(out_dir, formats=FORMATS, name="clusterer", quantization=None,
                 versioned=False):
    """Every check of `export` that needs no model, run before any work; nothing is written.

    Refuses unknown or no formats, an option that would be ignored (`quantization` without
    TFLite; `versioned` with another format than ONNX), a name that is not a plain file
    name, an output folder that is a file, a file in the way that is not an earlier export
    left unchanged, and a BASE/models.config that cannot be read or serves NAME elsewhere.

    Returns:
        The formats, as a tuple without repeats.
    """
    formats = _check_formats(formats)
    check_quantization(quantization)
    if versioned and formats != ("onnx",):
        raise ValueError("A versioned export writes the server's ONNX layout "
                         f"(OUT/NAME/VERSION/model.onnx): the format must be onnx, got "
                         f"{list(formats)}.")
    if quantization is not None and "tflite" not in formats:
        raise ValueError(f"quantization {quantization!r} applies to TFLite files only and "
                         f"would be ignored by {'a versioned' if versioned else 'an'} export "
                         f"of {list(formats)}.")
    check_name(name)
    out_dir = check_output_folder(out_dir)
    if versioned:
        check_new_version(out_dir, name, platform="onnx")
        return formats
    if "savedmodel" in formats:
        check_new_version(out_dir / "savedmodel", name)
    for export_format in ("onnx", "tflite"):
        if export_format in formats:
            check_replaceable(out_dir / f"{name}.{export_format}")
    return formats


def _check_formats(formats):
    formats = (formats,) if isinstance(formats, str) else tuple(dict.fromkeys(formats))
    unknown = [f for f in formats if f not in FORMATS]
    if unknown:
        raise ValueError(f"Unknown export formats {unknown}; choose from {list(FORMATS)}.")
    if not formats:
        raise ValueError(f"No export format given; choose from {list(FORMATS)}.")
    return formats


def export(model, out_dir, formats=FORMATS, name="clusterer", sample=None,
           include_embedding=False, quantization=None, metrics=None, versioned=False):
    """Writes the assigner in each of `formats` under `out_dir`.

    SavedModel goes to `OUT/savedmodel/NAME/VERSION` (and `OUT/savedmodel/models.config`),
    ONNX to `OUT/NAME.onnx`, TFLite to `OUT/NAME.tflite`. With `versioned`, the one format
    must be ONNX, written as `OUT/NAME/VERSION/model.onnx` (the server's layout; see
    `export_onnx_version`). `quantization` ("dynamic" or "float16") is TFLite's.

    Everything `check_export` checks is checked before any work. An `OUT/NAME.onnx` or
    `OUT/NAME.tflite` of an earlier export, unchanged since, is replaced; any other file
    in the way is refused. Versioned layouts add a version instead.

    Returns:
        `{format: metadata}`.
    """
    formats = check_export(out_dir, formats, name, quantization, versioned)
    out_dir = Path(out_dir)
    common = {"sample": sample, "include_embedding": include_embedding, "metrics": metrics}
    if versioned:
        return {"onnx": export_onnx_version(model, out_dir, name, **common)}
    writers = {
        "savedmodel": lambda: export_savedmodel(model, out_dir / "savedmodel", name, **common),
        "onnx": lambda: export_onnx(model, out_dir / f"{name}.onnx", **common),
        "tflite": lambda: export_tflite(model, out_dir / f"{name}.tflite",
                                        quantization=quantization, **common),
    }
    return {f: writers[f]() for f in formats}
