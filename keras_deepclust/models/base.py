"""What every clustering model of the package shares: input checks, hard labels,
the method registry used by the CLI, export and benchmarks."""

import numbers

import keras
import numpy as np
import tensorflow as tf
from sklearn.cluster import KMeans
from sklearn.mixture import GaussianMixture

from keras_deepclust._validation import check_array, check_n_clusters
from keras_deepclust.distribute import check_distributed_fit, is_multi_worker
from keras_deepclust.layers import HardAssignment

_METHODS = {}


def register_method(name):
    """Class decorator that makes a model available under a CLI method `name`."""

    def decorator(cls):
        if name in _METHODS:
            raise ValueError(f"method name {name!r} is already registered to {_METHODS[name]}.")
        _METHODS[name] = cls
        return cls

    return decorator


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


def fit_on_sample(estimator, codes, max_samples, random_state=None):
    """Fits a scikit-learn clusterer on at most `max_samples` rows of `codes` (a seeded
    random sample when there are more) and labels every row.

    k-means with many restarts on millions of codes costs minutes for centres that a
    sample of 100,000 places as well; the codes of all rows (N x code size, 40 MB for
    a million 10-d codes) are still labelled, by `predict`.

    Returns:
        `(estimator, labels)`, the labels `(n_samples,)` int32.
    """
    if len(codes) <= max_samples:
        return estimator, estimator.fit_predict(codes).astype(np.int32)
    rows = np.sort(np.random.default_rng(random_state).choice(len(codes), max_samples,
                                                              replace=False))
    estimator.fit(codes[rows])
    return estimator, estimator.predict(codes).astype(np.int32)


CODE_CLUSTERERS = ("kmeans", "gmm")


def check_code_clusterer(kind, name):
    """`kind` if it names one of `CODE_CLUSTERERS`, else a ValueError naming `name`."""
    if kind not in CODE_CLUSTERERS:
        raise ValueError(f"{name} must be one of {CODE_CLUSTERERS}, got {kind!r}.")
    return kind


def code_clusterer(kind, n_clusters, n_init, random_state):
    """The unfitted scikit-learn clusterer that starts a method from pretrained codes:
    k-means ("kmeans") or a full-covariance Gaussian mixture fitted by EM ("gmm"),
    best of `n_init` restarts."""
    if kind == "kmeans":
        return KMeans(n_clusters, n_init=n_init, random_state=random_state)
    return GaussianMixture(n_clusters, covariance_type="full", n_init=n_init,
                           random_state=random_state)


def nearest_centroid(codes, centroids):
    """Index of the nearest of `centroids` (K x d) for each of `codes` (N x d), as an
    `(N,)` int32 array; computed in float64 through N x K distances, never N x K x d."""
    codes, centroids = np.asarray(codes, np.float64), np.asarray(centroids, np.float64)
    squared = (np.sum(codes**2, axis=1, keepdims=True) - 2 * codes @ centroids.T
               + np.sum(centroids**2, axis=1))
    return np.argmin(squared, axis=1).astype(np.int32)


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

    def __init__(self, n_clusters=10, sample_shape=None, random_state=None, **kwargs):
        _check_backend()
        super().__init__(**kwargs)
        self.n_clusters = check_n_clusters(n_clusters)
        if random_state is not None and (
            isinstance(random_state, bool) or not isinstance(random_state, numbers.Integral)
        ):
            raise ValueError(f"random_state must be an int or None, got {random_state!r}.")
        self.random_state = None if random_state is None else int(random_state)
        self.sample_shape = None if sample_shape is None else tuple(int(s) for s in sample_shape)

    def _prepare_data(self, x, name="x"):
        """Checks `x` (finite, numeric, right sample shape) and builds the model on first
        use. A `tf.data.Dataset` of batches is checked by its element spec and, batch by
        batch as it streams, for NaN and infinite values."""
        if isinstance(x, tf.data.Dataset):
            return self._prepare_dataset(x, name)
        x = check_array(x, name=name)
        self._build_for(tuple(x.shape[1:]), name)
        return x

    def _prepare_dataset(self, dataset, name):
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
        return dataset.map(lambda batch: tf.debugging.check_numerics(
            tf.cast(batch, tf.float32), message))

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
        x = self._prepare_data(x)
        if not isinstance(x, tf.data.Dataset):  # a stream is checked on its codes
            check_n_clusters(self.n_clusters, len(x))
        if batch_size is not None:
            check_distributed_fit(batch_size, self.distribute_strategy)
        if validation_data is not None:
            if isinstance(validation_data, tuple):
                validation_data = validation_data[0]
            validation_data = (self._prepare_data(validation_data, name="validation_data"),)
        self._seed()
        return x, validation_data

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
        return super().predict(self._prepare_data(x), batch_size=batch_size, verbose=verbose, **kwargs)

    def predict_labels(self, x, batch_size=256, verbose=0):
        """Hard cluster labels, an `(n_samples,)` int32 array (argmax of `predict`)."""
        return np.argmax(self.predict(x, batch_size=batch_size, verbose=verbose), axis=1).astype(
            np.int32
        )

    def embed(self, x, batch_size=256, verbose=0):
        """Codes of `x` from the encoder, an `(n_samples, embedding_dim)` array."""
        x = self._prepare_data(x)  # builds the model on first use
        return self.assignment_encoder().predict(x, batch_size=batch_size, verbose=verbose)

    def assignment_encoder(self):
        """The network that maps inputs to the codes the assignment head reads
        (the autoencoder's `encoder` unless a method says otherwise)."""
        return self.encoder

    def soft_assignment_head(self):
        """The layer (or callable) that maps codes to `(batch, K)` probabilities."""
        raise NotImplementedError

    def assigner(self, include_embedding=False):
        """The inference model of the export contract.

        A functional `keras.Model` with one input named `inputs` (dynamic batch) and
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
        embedding = self.assignment_encoder()(inputs)
        probabilities = self.soft_assignment_head()(embedding)
        outputs = {"probabilities": probabilities, "cluster": HardAssignment(name="cluster")(probabilities)}
        if include_embedding:
            outputs["embedding"] = embedding
        return keras.Model(inputs, outputs, name=f"{self.name}_assigner")

    def get_config(self):
        return {
            "name": self.name,
            "n_clusters": self.n_clusters,
            "sample_shape": None if self.sample_shape is None else list(self.sample_shape),
            "random_state": self.random_state,
        }
