"""What every clustering model of the package shares: input checks, hard labels,
the method registry used by the CLI, export and benchmarks."""

import inspect
import numbers
import warnings
import weakref

import keras
import numpy as np
import tensorflow as tf

from keras_deepclust._validation import check_array, check_n_clusters
from keras_deepclust.clusterers import fit_on_sample
from keras_deepclust.distribute import check_distributed_fit, is_multi_worker
from keras_deepclust.layers import HardAssignment
from keras_deepclust.layers.preprocessing import (
    check_scaling,
    stream_scaling_statistics,
)

_METHODS = {}
# Datasets a model has checked and scaled: id -> (weak reference, the model's scaling).
_PREPARED_DATASETS = {}


def _prepared_by(dataset):
    reference, scaling = _PREPARED_DATASETS.get(id(dataset), (None, None))
    return scaling if reference is not None and reference() is dataset else None


class PreparedInputs(np.ndarray):
    """A float32 array already scaled by the `InputScaling` layer `owner` (what
    `ClusteringModel.prepare_inputs` returns); rows and reshapes of it stay prepared."""

    def __array_finalize__(self, obj):
        self.owner = getattr(obj, "owner", None)


def register_method(name):
    """Class decorator that makes a model available under a CLI method `name`."""

    def decorator(cls):
        if name in _METHODS:
            raise ValueError(f"method name {name!r} is already registered to {_METHODS[name]}.")
        _METHODS[name] = cls
        return cls

    return decorator


def method_variant(base, class_name, method_name, description, paper=None, **defaults):
    """A registered, Keras-serialisable method that is `base` with other `defaults`
    (a user may still pass any of them), e.g. DCEC = `DeepEmbeddedClustering` with
    `network="conv"`, `reconstruction=True`.

    Assign the result to `class_name` in the calling module, which Keras finds it by.
    """

    def __init__(self, n_clusters=10, **kwargs):
        base.__init__(self, n_clusters, **{**defaults, **kwargs})

    signature = inspect.signature(base.__init__)
    __init__.__signature__ = signature.replace(parameters=[
        parameter.replace(default=defaults.get(name, parameter.default))
        for name, parameter in signature.parameters.items()])
    settings = ", ".join(f"`{name}={value!r}`" for name, value in defaults.items())
    namespace = {
        "__init__": __init__,
        "__doc__": f"{description}\n\n`{base.__name__}` with {settings}; see it for all arguments.",
        "__module__": base.__module__,
        "__qualname__": class_name,
    }
    if paper is not None:
        namespace["PAPER"] = paper
    cls = type(class_name, (base,), namespace)
    return register_method(method_name)(
        keras.saving.register_keras_serializable(package="keras_deepclust")(cls))


def list_methods():
    """Names of the registered methods, e.g. `['dcec', 'dec', 'dec-conv', 'idec']`."""
    return sorted(_METHODS)


def get_method(name):
    """Model class registered under `name`; a `ValueError` lists the known names."""
    try:
        return _METHODS[name]
    except KeyError:
        raise ValueError(
            f"Unknown method {name!r}. Known methods: {', '.join(list_methods())}."
        ) from None


def method_name(model):
    """The registered method name of `model`'s class, or None."""
    return next((name for name, cls in _METHODS.items() if type(model) is cls), None)


def _check_backend():
    if keras.backend.backend() != "tensorflow":
        raise RuntimeError(
            "keras-deepclust models train with the TensorFlow backend, but Keras is using "
            f"{keras.backend.backend()!r}. Unset KERAS_BACKEND or set it to 'tensorflow' "
            "before importing keras."
        )


class ClusteringModel(keras.Model):
    """Base class: a `keras.Model` whose `predict` returns soft assignments (N x K).

    Subclasses build their networks in `build()` from the sample shape, which is
    taken from `sample_shape` or inferred from the data at the first
    `pretrain`/`fit`.
    """

    # The k-means / mixture fits on the codes (initialisations, heads) use a random
    # sample of at most this many rows; see `fit_on_sample`.
    CLUSTERER_MAX_SAMPLES = 100_000
    # Whether `fit` accepts a `tf.data.Dataset` (data larger than memory).
    STREAMING_FIT = False
    # What `keras-deepclust methods` prints: the method's paper.
    PAPER = ""
    # The constructor options (and `fit` options) the command line may set; its flags
    # for other options are refused for this method.
    OPTIONS = ("scaling",)
    FIT_OPTIONS = ()
    # The figures of a run the model can draw besides the curves and the embedding
    # (`plots.plot_run`): "reconstructions", "decoded_centroids", "feature_weights".
    DRAWS = ()

    def __init__(self, n_clusters=10, sample_shape=None, scaling="auto", random_state=None,
                 **kwargs):
        _check_backend()
        super().__init__(**kwargs)
        self.n_clusters = check_n_clusters(n_clusters)
        self.scaling = check_scaling(scaling)
        if random_state is not None and (
            isinstance(random_state, bool) or not isinstance(random_state, numbers.Integral)
        ):
            raise ValueError(f"random_state must be an int or None, got {random_state!r}.")
        self.random_state = None if random_state is None else int(random_state)
        self.sample_shape = None if sample_shape is None else tuple(int(s) for s in sample_shape)

    def prepare_inputs(self, x, name="x", adapt=False):
        """Checks `x` (finite, numeric, right sample shape), builds the model on first
        use and returns it scaled by the model's `input_scaling`, as the networks take
        it. With `adapt` (the training entry points), the scaling is first learnt from
        `x` unless it was already.

        A `tf.data.Dataset` of batches is checked by its element spec and, batch by
        batch as it streams, for NaN and infinite values. Inputs this model prepared
        already pass through unchanged, so internal calls never scale twice.
        """
        scaling = self._scaling_layer()
        if isinstance(x, tf.data.Dataset):
            if scaling is not None and _prepared_by(x) is scaling:
                return x
            return self._prepare_dataset(x, name, adapt)
        if scaling is not None and isinstance(x, PreparedInputs) and x.owner is scaling:
            return x
        raw = check_array(x, name=name, dtype=None)
        self._build_for(tuple(raw.shape[1:]), name)
        scaling = self._scaling_layer()
        if adapt and not scaling.adapted:
            scaling.adapt(raw)
        prepared = scaling.transform(raw).view(PreparedInputs)
        prepared.owner = scaling
        return prepared

    def preprocess(self, x):
        """`x` scaled as the networks see it (what `input_scaling` does in the
        exported assigner), as a float32 array."""
        return np.asarray(self.prepare_inputs(x))

    def _scaling_layer(self):
        return self.input_scaling if self.built else None

    def _prepare_dataset(self, dataset, name, adapt):
        spec = dataset.element_spec
        if not isinstance(spec, tf.TensorSpec):
            raise ValueError(f"{name} must yield batches of samples, one tensor per element "
                             f"and no labels, got element_spec {spec}.")
        if spec.shape.rank is None or spec.shape.rank < 2 or None in spec.shape[1:]:
            raise ValueError(f"{name} must yield batches (batch, *sample_shape) with a known "
                             f"sample shape, e.g. dataset.batch(256); got shape {spec.shape}.")
        if not (spec.dtype.is_floating or spec.dtype.is_integer):
            raise ValueError(f"{name} must be numeric, got dtype {spec.dtype.name}.")
        self._build_for(tuple(spec.shape[1:]), name)
        message = f"{name} contains NaN or infinite values"
        checked = dataset.map(lambda batch: tf.debugging.check_numerics(
            tf.cast(batch, tf.float32), message))
        scaling = self._scaling_layer()
        if adapt and not scaling.adapted:
            scaling.set_statistics(*stream_scaling_statistics(checked, scaling.scaling))
        offset = tf.constant(scaling.offset.numpy())
        scale = tf.constant(scaling.scale.numpy())
        prepared = checked.map(lambda batch: (batch - offset) / scale)
        key = id(prepared)
        _PREPARED_DATASETS[key] = (weakref.ref(prepared), scaling)
        weakref.finalize(prepared, _PREPARED_DATASETS.pop, key, None)
        return prepared

    def _build_for(self, sample_shape, name):
        if not self.built:
            # Under the strategy the model was created in, so its variables are mirrored.
            with self.distribute_strategy.scope():
                self.build((None, *sample_shape))
        elif sample_shape != self.sample_shape:
            raise ValueError(
                f"{name} has samples of shape {sample_shape} but the model was built "
                f"for samples of shape {self.sample_shape}."
            )

    def _check_fit_arguments(self, x, y=None, validation_data=None, fit_kwargs=None,
                             batch_size=None, labels_hint=""):
        """The checks every clustering `fit` starts with; seeds the run.

        Returns `x` checked and `validation_data` as `(x_val,)` (or None).
        """
        if y is not None:
            raise ValueError(
                "fit() does not use labels: clustering is unsupervised. To log ACC/NMI/ARI "
                "each epoch, pass callbacks=[keras_deepclust.callbacks.ClusteringMetrics(x, y)]"
                f"{labels_hint}."
            )
        for unsupported in ("sample_weight", "class_weight"):
            if (fit_kwargs or {}).get(unsupported) is not None:
                raise ValueError(f"{unsupported} is not supported by clustering models.")
        if isinstance(x, tf.data.Dataset) and not self.STREAMING_FIT:
            raise ValueError(
                f"{type(self).__name__}.fit needs x as an array, not a tf.data.Dataset."
            )
        if isinstance(x, tf.data.Dataset) and is_multi_worker(self.distribute_strategy):
            raise ValueError("Under MultiWorkerMirroredStrategy, fit takes x as an array, "
                             "not a dataset.")
        x = self.prepare_inputs(x, adapt=True)
        if not isinstance(x, tf.data.Dataset):  # a stream is checked on its codes
            check_n_clusters(self.n_clusters, len(x))
        if batch_size is not None:
            check_distributed_fit(batch_size, self.distribute_strategy)
        if validation_data is not None:
            if isinstance(validation_data, tuple):
                validation_data = validation_data[0]
            validation_data = (self.prepare_inputs(validation_data, name="validation_data"),)
        self._seed()
        return x, validation_data

    def _descend(self, tape, loss, variables):
        """One optimizer step down `loss` (recorded by `tape`) over `variables`. The
        gradients are divided by the replicas in sync: Keras does not scale a custom
        `train_step`'s loss under `tf.distribute`, whose replicas' gradients are summed
        (by two, exactly, on two replicas: the same step as dividing the loss).

        Under "mixed_float16" `compile` wraps the optimizer in a `LossScaleOptimizer`,
        whose `apply` unscales the gradients: the loss is scaled here to match (a no-op
        for any other optimizer)."""
        replicas = tf.distribute.get_strategy().num_replicas_in_sync
        with tape:  # the scaling is part of the recorded computation
            loss = self.optimizer.scale_loss(loss)
        gradients = tape.gradient(loss, variables)
        self.optimizer.apply([None if g is None else g / replicas for g in gradients],
                             variables)

    def _record_fit_labels(self, x, history, batch_size):
        """How every `fit` ends: labels `x` once, keeps the labels as `labels_` (as
        scikit-learn's clusterers do), the cluster sizes as `history.cluster_sizes`
        and the empty clusters as `history.empty_clusters`, and warns naming them."""
        self.labels_ = self.predict_labels(x, batch_size=batch_size)
        sizes = np.bincount(self.labels_, minlength=self.n_clusters)
        history.cluster_sizes = sizes.tolist()
        history.empty_clusters = np.flatnonzero(sizes == 0).tolist()
        if history.empty_clusters:
            warnings.warn(
                f"{type(self).__name__}.fit ended with {len(history.empty_clusters)} empty "
                f"cluster(s) of {self.n_clusters}: {history.empty_clusters} (cluster sizes "
                f"{history.cluster_sizes}). Fewer clusters may describe the data better.",
                stacklevel=3)
        return history

    def _fit_clusterer(self, estimator, codes):
        """`fit_on_sample` with this model's sample bound and seed."""
        return fit_on_sample(estimator, codes, self.CLUSTERER_MAX_SAMPLES, self.random_state)

    def _seed(self):
        if self.random_state is not None:
            keras.utils.set_random_seed(self.random_state)

    def _check_ready_to_assign(self):
        """Raises when the assignment head has not been fitted (subclass hook)."""

    def predict(self, x, batch_size=256, verbose=0, **kwargs):
        """Soft cluster assignments, an `(n_samples, n_clusters)` float32 array."""
        self._check_ready_to_assign()
        return super().predict(self.prepare_inputs(x), batch_size=batch_size, verbose=verbose,
                               **kwargs)

    def predict_proba(self, x, batch_size=256, verbose=0):
        """Cluster probabilities, an `(n_samples, n_clusters)` float32 array (what
        `predict` returns, named as on `ClusterAssigner` and scikit-learn)."""
        return self.predict(x, batch_size=batch_size, verbose=verbose)

    def evaluate(self, x=None, y=None, batch_size=256, **kwargs):
        """`keras.Model.evaluate` on the raw `x` (scaled like `fit`'s); `y` must be None."""
        if y is not None:
            raise ValueError("evaluate() does not use labels; score clusters with keras_deepclust"
                             ".metrics.clustering_scores(y, model.predict_labels(x)).")
        return super().evaluate(self.prepare_inputs(x), batch_size=batch_size, **kwargs)

    def predict_labels(self, x, batch_size=256, verbose=0):
        """Hard cluster labels, an `(n_samples,)` int32 array (argmax of `predict`)."""
        return np.argmax(self.predict(x, batch_size=batch_size, verbose=verbose), axis=1).astype(
            np.int32
        )

    def embed(self, x, batch_size=256, verbose=0):
        """Codes of `x` from the encoder, an `(n_samples, embedding_dim)` array."""
        x = self.prepare_inputs(x)  # builds the model on first use
        return self.assignment_encoder().predict(x, batch_size=batch_size, verbose=verbose)

    def assignment_encoder(self):
        """The network that maps inputs to the codes the assignment head reads
        (the autoencoder's `encoder` unless a method says otherwise)."""
        return self.encoder

    def soft_assignment_head(self):
        """The layer (or callable) that maps codes to `(batch, K)` probabilities."""
        raise NotImplementedError

    @property
    def head(self):
        """The part that maps codes to cluster probabilities, on every method (its own
        attribute keeps the method's name: DEC's `clustering`, AEC's and DAC's
        `centroid_head`, the two-stage methods' `assignment`, ...)."""
        return self.soft_assignment_head()

    def assigner(self, include_embedding=False):
        """The inference model of the export contract.

        A functional `keras.Model` that takes the raw inputs `fit` took (its first
        layer is the learnt `input_scaling`), with one input named `inputs` (dynamic batch) and
        dict outputs `probabilities` (float32, N x K), `cluster` (int32, N) and, with
        `include_embedding`, `embedding` (the code). It shares weights with this model.

        Example:

        ```python
        outputs = model.assigner()(x)  # {"probabilities": ..., "cluster": ...}
        ```
        """
        if not self.built:
            raise ValueError("The model is not built yet: pretrain or fit it first.")
        self._check_ready_to_assign()
        inputs = keras.Input(shape=self.sample_shape, name="inputs")
        embedding = self.assignment_encoder()(self.input_scaling(inputs))
        probabilities = self.soft_assignment_head()(embedding)
        outputs = {"probabilities": probabilities, "cluster": HardAssignment(name="cluster")(probabilities)}
        if include_embedding:
            outputs["embedding"] = embedding
        return keras.Model(inputs, outputs, name=f"{self.name}_assigner")

    # ------------------------------------------------------------ state and saving
    def add_weight(self, *args, **kwargs):
        """`keras.Model.add_weight`, remembering the weight as one of this model's own
        (saved by `save_own_variables`; the sublayers save theirs)."""
        variable = super().add_weight(*args, **kwargs)
        self.__dict__.setdefault("_own_weights", []).append(variable)
        return variable

    def _own_variables(self):
        return self.__dict__.get("_own_weights", [])

    def save_own_variables(self, store):
        for i, variable in enumerate(self._own_variables()):
            store[str(i)] = variable.numpy()

    def load_own_variables(self, store):
        for i, variable in enumerate(self._own_variables()):
            variable.assign(store[str(i)])

    def get_config(self):
        return {
            "name": self.name,
            "n_clusters": self.n_clusters,
            "sample_shape": None if self.sample_shape is None else list(self.sample_shape),
            "scaling": self.scaling,
            "random_state": self.random_state,
        }
