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

from keras_deepclust.export._common import ExportParityError
from keras_deepclust.export.onnx import export_onnx, export_onnx_version
from keras_deepclust.export.savedmodel import export_savedmodel
from keras_deepclust.export.tflite import export_tflite

FORMATS = ("savedmodel", "onnx", "tflite")

__all__ = ["ExportParityError", "FORMATS", "export", "export_onnx", "export_onnx_version",
           "export_savedmodel", "export_tflite"]


def export(model, out_dir, formats=FORMATS, name="clusterer", sample=None,
           include_embedding=False, quantization=None, metrics=None):
    """Writes the assigner in each of `formats` under `out_dir`.

    SavedModel goes to `OUT/savedmodel/NAME/VERSION`, ONNX to `OUT/NAME.onnx`, TFLite to
    `OUT/NAME.tflite`.

    Returns:
        `{format: metadata}`.
    """
    unknown = [f for f in formats if f not in FORMATS]
    if unknown:
        raise ValueError(f"Unknown export formats {unknown}; choose from {list(FORMATS)}.")
    out_dir = Path(out_dir)
    common = {"sample": sample, "include_embedding": include_embedding, "metrics": metrics}
    writers = {
        "savedmodel": lambda: export_savedmodel(model, out_dir / "savedmodel", name, **common),
        "onnx": lambda: export_onnx(model, out_dir / f"{name}.onnx", **common),
        "tflite": lambda: export_tflite(model, out_dir / f"{name}.tflite",
                                        quantization=quantization, **common),
    }
    return {f: writers[f]() for f in formats}
