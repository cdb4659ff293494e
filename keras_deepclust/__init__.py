"""keras-deepclust: autoencoder-based deep clustering for Keras 3.

Importing this package is cheap: it imports neither Keras nor TensorFlow. The
heavy names (``DEC``, ``DCEC``, ``ClusteringLayer``, ...) are resolved lazily on
first access (PEP 562), so ``keras_deepclust.serving`` stays TensorFlow-free. Yet
``keras.saving.load_model("model.keras")`` finds every class of the package after a
bare ``import keras_deepclust``, in whichever order Keras, TensorFlow and this package
are imported: the classes register with Keras as soon as Keras has been imported (now,
if it already was; see `_RegisterWhenKerasLoads`).

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
import os
import sys
import threading
import warnings

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
    "IMSAT": "keras_deepclust.models",
    "run": "keras_deepclust.experiment",
    "RunResult": "keras_deepclust.experiment",
}
_LAZY_SUBMODULES = (
    "callbacks",
    "cli",
    "datasets",
    "distribute",
    "experiment",
    "layers",
    "losses",
    "metrics",
    "model_selection",
    "models",
    "networks",
    "plots",
    "readers",
    "tfrecords",
)

__all__ = sorted(list(_LAZY_ATTRIBUTES) + list(_LAZY_SUBMODULES) + ["__version__"])


def __getattr__(name):
    if name in _LAZY_ATTRIBUTES:
        return getattr(importlib.import_module(_LAZY_ATTRIBUTES[name]), name)
    if name in _LAZY_SUBMODULES:
        return importlib.import_module(f"{__name__}.{name}")
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


def __dir__():
    return __all__


# --- Registering the classes with Keras, whatever the import order -------------------------
#
# Keras resolves a saved "keras_deepclust>DCEC" only if the module defining the class has
# run (`register_keras_serializable` fills its registry), and it never imports a third-party
# module itself. So once Keras is loaded, `keras_deepclust.models` (which imports every module
# that registers a class) must be imported too, without this package importing Keras itself.


def _register_with_keras():
    """Imports `keras_deepclust.models`, whose import registers every class of the package
    with Keras. A training dependency that is missing (a serving-only install beside Keras)
    leaves nothing to register; any other failure becomes a warning, since this runs inside
    the user's own `import keras` or `import tensorflow`, which an exception would break."""
    try:
        importlib.import_module("keras_deepclust.models")
    except ModuleNotFoundError as error:
        if error.name and error.name.partition(".")[0] != __name__:
            return
        _warn_not_registered(error)
    except Exception as error:  # reported, not raised: see the docstring
        _warn_not_registered(error)


def _warn_not_registered(error):
    """A RuntimeWarning naming `error`, which kept the classes from registering."""
    warnings.warn(f"keras_deepclust could not register its classes with Keras, so "
                  f"keras.saving.load_model will not find them: {type(error).__name__}: "
                  f"{error}", RuntimeWarning)


def _watched(name):
    """True for the modules during whose import this package's classes cannot be imported
    yet: Keras, TensorFlow (its `__init__` imports Keras before it ends) and this package's
    own submodules (`keras_deepclust.layers` imports Keras before defining its names)."""
    return name in ("keras", "tensorflow") or name.startswith(f"{__name__}.")


class _RegisterWhenKerasLoads:
    """A `sys.meta_path` finder that calls `_register_with_keras` once Keras has been
    imported, then removes itself.

    It learns when Keras actually *runs*, not when somebody looks for it: it hands out the
    specs of the watched modules (see `_watched`) with a loader that reports their
    execution, so an `importlib.util.find_spec("keras")` probe (TensorFlow makes one while
    importing) changes nothing. It registers when the outermost watched import ends with
    `keras` loaded, so that no module `keras_deepclust.models` needs is half-imported then.
    """

    def __init__(self):
        self._lock = threading.Lock()
        self._executing = 0  # watched modules whose code is running, all threads together
        self._done = False

    def find_spec(self, fullname, path, target=None):
        if not _watched(fullname):
            return None
        spec = self._find_spec_elsewhere(fullname, path, target)
        if spec is not None and hasattr(spec.loader, "exec_module"):
            spec.loader = _ReportingLoader(spec.loader, self)
        return spec

    def _find_spec_elsewhere(self, fullname, path, target):
        """The spec the other finders on `sys.meta_path` give, as the import system asks them."""
        for finder in list(sys.meta_path):
            find_spec = getattr(finder, "find_spec", None)
            if finder is self or find_spec is None:
                continue
            spec = find_spec(fullname, path, target)
            if spec is not None:
                return spec
        return None

    def execute(self, exec_module, module):
        """Runs a watched module's code; registers if it was the outermost watched import
        in progress and Keras is loaded."""
        with self._lock:
            self._executing += 1
        try:
            exec_module(module)
        finally:
            with self._lock:
                self._executing -= 1
        with self._lock:
            register = (not self._done and self._executing == 0
                        and sys.modules.get("keras") is not None)
            self._done = self._done or register
        if register:
            self.uninstall()
            _register_with_keras()

    def uninstall(self):
        """Takes the finder off `sys.meta_path` (imports then run without it)."""
        if self in sys.meta_path:
            sys.meta_path.remove(self)


class _ReportingLoader:
    """Stands in for a watched module's loader until the module runs: it has the module
    keep its own loader, then runs the module's code through `finder.execute`. Anything
    else (`create_module`, `get_code`, ...) is the loader's own."""

    def __init__(self, loader, finder):
        self._loader = loader
        self._finder = finder

    def __getattr__(self, name):
        if name == "_loader":  # not set yet (an instance made by copy or pickle)
            raise AttributeError(name)
        return getattr(self._loader, name)

    def exec_module(self, module):
        if getattr(module, "__loader__", None) is self:
            module.__loader__ = self._loader
        spec = getattr(module, "__spec__", None)
        if spec is not None and spec.loader is self:
            spec.loader = self._loader
        self._finder.execute(self._loader.exec_module, module)


if sys.modules.get("keras") is not None:
    _register_with_keras()
elif not any(type(finder).__name__ == _RegisterWhenKerasLoads.__name__ for finder in sys.meta_path):
    sys.meta_path.insert(0, _RegisterWhenKerasLoads())
