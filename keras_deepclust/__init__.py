"""keras-deepclust: autoencoder-based deep clustering for Keras 3.

Importing this package is cheap: it imports neither Keras nor TensorFlow. The
heavy names (``DEC``, ``DCEC``, ``ClusteringLayer``, ...) are resolved lazily on
first access (PEP 562), so ``keras_deepclust.serving`` stays TensorFlow-free. Yet
``keras.saving.load_model("model.keras")`` finds every class of the package after a
bare ``import keras_deepclust``: the classes register with Keras as soon as Keras is
imported (now, if it already was).

Example:

```python
import keras_deepclust as kdc

x, y = kdc.datasets.load_digits()
model = kdc.DCEC(n_clusters=10, random_state=0)
model.pretrain(x, epochs=50)
model.fit(x, epochs=20)
print(kdc.metrics.clustering_scores(y, model.predict_labels(x)))
```
"""

import importlib
import importlib.abc
import importlib.util
import os
import sys

# Keras reads the backend once, at its first import: set ours before that happens,
# without overriding a user's explicit choice (other backends are rejected later with
# a clear error, since the train steps use TensorFlow).
os.environ.setdefault("KERAS_BACKEND", "tensorflow")

__version__ = "0.1.0"

_LAZY_ATTRIBUTES = {
    "ClusteringLayer": "keras_deepclust.layers",
    "DEC": "keras_deepclust.models",
    "IDEC": "keras_deepclust.models",
    "DECConv": "keras_deepclust.models",
    "DCEC": "keras_deepclust.models",
    "DeepEmbeddedClustering": "keras_deepclust.models",
    "AEKMeans": "keras_deepclust.models",
    "CAEKMeans": "keras_deepclust.models",
    "AEGMM": "keras_deepclust.models",
    "CAEGMM": "keras_deepclust.models",
    "AEC": "keras_deepclust.models",
    "DAC": "keras_deepclust.models",
    "DAMIC": "keras_deepclust.models",
    "N2D": "keras_deepclust.models",
    "AutoClustering": "keras_deepclust.models",
    "fit_auto": "keras_deepclust.models",
    "get_method": "keras_deepclust.models",
    "list_methods": "keras_deepclust.models",
}
_LAZY_SUBMODULES = (
    "callbacks",
    "cli",
    "datasets",
    "distribute",
    "layers",
    "losses",
    "metrics",
    "model_selection",
    "models",
    "networks",
    "plots",
    "tfrecords",
)

__all__ = sorted(list(_LAZY_ATTRIBUTES) + list(_LAZY_SUBMODULES) + ["__version__"])


def _register_with_keras():
    """Imports the modules whose classes Keras must find by their registered names."""
    try:
        importlib.import_module("keras_deepclust.models")
    except ImportError:  # a serving-only install beside Keras: nothing to register
        pass


class _RegisterWhenKerasLoads(importlib.abc.MetaPathFinder):
    """A one-shot import hook: once the top-level `keras` module has run, registers the
    package's classes (Keras resolves "keras_deepclust>DCEC" only when the class's
    module has been imported, and does not import third-party modules itself)."""

    def find_spec(self, fullname, path, target=None):
        if fullname != "keras":
            return None
        sys.meta_path.remove(self)
        spec = importlib.util.find_spec("keras")
        if spec is None or spec.loader is None or not hasattr(spec.loader, "exec_module"):
            return spec
        run_keras = spec.loader.exec_module

        def exec_module(module):
            run_keras(module)
            _register_with_keras()

        spec.loader.exec_module = exec_module
        return spec


if "keras" in sys.modules:
    _register_with_keras()
elif not any(isinstance(f, _RegisterWhenKerasLoads) for f in sys.meta_path):
    sys.meta_path.insert(0, _RegisterWhenKerasLoads())


def __getattr__(name):
    if name in _LAZY_ATTRIBUTES:
        return getattr(importlib.import_module(_LAZY_ATTRIBUTES[name]), name)
    if name in _LAZY_SUBMODULES:
        return importlib.import_module(f"{__name__}.{name}")
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


def __dir__():
    return __all__
