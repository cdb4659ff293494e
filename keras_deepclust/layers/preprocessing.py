"""The input scaling that `fit` learns and every saved or exported model carries."""

import keras
import numpy as np

from keras_deepclust.layers.precision import Float32Layer

# "auto": images to [0, 1], tables standardised per feature (see `scaling_statistics`).
SCALINGS = ("auto", "standard", "minmax", "none")


def check_scaling(scaling):
    """`scaling` if it names one of `SCALINGS`, else a ValueError naming it."""
    if scaling not in SCALINGS:
        raise ValueError(f"scaling must be one of {SCALINGS}, got {scaling!r}.")
    return scaling


def resolved_scaling(scaling, sample_shape):
    """The concrete mode "auto" stands for: "unit" for images (samples of rank >= 2),
    "standard" for tables (samples of rank 1)."""
    if scaling != "auto":
        return scaling
    return "standard" if len(sample_shape) == 1 else "unit"


def scaling_statistics(x, scaling):
    """`(offset, scale)` such that `(x - offset) / scale` is the scaled input.

    Tables (`x` of shape `(n, n_features)`) are scaled per feature; images with one
    offset and scale for all pixels, so that an always-dark corner stays dark.

    - "standard": offset the mean, scale the standard deviation.
    - "minmax": offset the minimum, scale the range (to [0, 1]).
    - "unit" (images under "auto"): uint8 pixels by 255; values already within
      [0, 1] kept as they are; anything else min-max scaled.
    - "none": offset 0, scale 1.

    A constant feature keeps scale 1 (it scales to 0), as in scikit-learn's scalers.

    Raises:
        ValueError: every feature constant (tables), or constant data (images), under
            "standard" or "minmax".
    """
    values = np.asarray(x, np.float64)
    axis = 0 if values.ndim == 2 else None
    moments = {"min": values.min(axis=axis), "max": values.max(axis=axis),
               "mean": values.mean(axis=axis), "std": values.std(axis=axis)}
    return _from_moments(moments, scaling, x.shape[1:], uint8=x.dtype == np.uint8)


def stream_scaling_statistics(dataset, scaling):
    """`scaling_statistics` of the rows of a `tf.data.Dataset` of batches, from one
    pass that holds only per-feature sums (the variance in float64)."""
    sample_shape = tuple(dataset.element_spec.shape[1:])
    if resolved_scaling(scaling, sample_shape) == "none":
        return _from_moments({}, "none", sample_shape)
    table = len(sample_shape) == 1
    count, total, squares, low, high = 0, 0.0, 0.0, np.inf, -np.inf
    for batch in dataset.as_numpy_iterator():
        values = np.asarray(batch, np.float64).reshape(len(batch), -1)
        if not table:
            values = values.reshape(-1, 1)
        count += len(values)
        total = total + values.sum(axis=0)
        squares = squares + np.square(values).sum(axis=0)
        low, high = np.minimum(low, values.min(axis=0)), np.maximum(high, values.max(axis=0))
    if count == 0:
        raise ValueError("The dataset yields no rows to learn the input scaling from.")
    mean = total / count
    std = np.sqrt(np.maximum(squares / count - mean**2, 0.0))
    squeeze = (lambda v: v) if table else (lambda v: v[0])
    moments = {"min": squeeze(low), "max": squeeze(high), "mean": squeeze(mean),
               "std": squeeze(std)}
    return _from_moments(moments, scaling, sample_shape)


def _from_moments(moments, scaling, sample_shape, uint8=False):
    scaling = resolved_scaling(scaling, sample_shape)
    ones = np.ones(sample_shape, np.float32)
    if scaling == "none":
        return 0 * ones, ones
    if scaling == "unit":
        if uint8:
            return 0 * ones, 255 * ones
        if float(np.min(moments["min"])) >= 0.0 and float(np.max(moments["max"])) <= 1.0:
            return 0 * ones, ones
        scaling = "minmax"
    if scaling == "standard":
        offset, scale = moments["mean"], moments["std"]
    else:
        offset, scale = moments["min"], moments["max"] - moments["min"]
    scale = np.atleast_1d(np.array(scale, np.float64))
    if np.all(scale == 0):
        what = ("every feature is constant" if len(sample_shape) == 1
                else "every value of the images is the same")
        raise ValueError(f"Cannot scale the inputs by {scaling!r}: {what}, so there is "
                         "nothing to cluster.")
    # As scikit-learn's scalers do: a constant feature (the digits' always-blank border
    # pixels) keeps scale 1, so it scales to 0 and carries no weight.
    scale[scale == 0] = 1.0
    return (offset * ones).astype(np.float32), (scale * ones).astype(np.float32)


@keras.saving.register_keras_serializable(package="keras_deepclust")
class InputScaling(Float32Layer):
    """`(x - offset) / scale`, elementwise, with `offset` and `scale` learnt by `adapt`.

    The first layer of every exported assigner, so the raw rows a model was fitted on
    are what `predict`, the ONNX/TFLite/SavedModel files and the server take. The
    statistics are non-trainable weights, saved with the model.

    Args:
        scaling: one of `SCALINGS`; see `scaling_statistics`.

    Example:

    >>> layer = InputScaling("standard")
    >>> layer.adapt(np.array([[0.0, 10.0], [2.0, 30.0]], "float32"))
    >>> layer(np.array([[1.0, 20.0]], "float32")).numpy().tolist()
    [[0.0, 0.0]]
    """

    def __init__(self, scaling="auto", **kwargs):
        super().__init__(**kwargs)
        self.scaling = check_scaling(scaling)

    def build(self, input_shape):
        shape = tuple(input_shape[1:])
        self.offset = self.add_weight(shape=shape, initializer="zeros", trainable=False,
                                      name="offset")
        self.scale = self.add_weight(shape=shape, initializer="ones", trainable=False,
                                     name="scale")
        self._adapted = self.add_weight(shape=(), dtype="int32", initializer="zeros",
                                        trainable=False, name="adapted")

    @property
    def adapted(self):
        """True once `adapt` has set the statistics (saved with the model)."""
        return self.built and bool(self._adapted.numpy())

    def adapt(self, x):
        """Sets `offset` and `scale` from the training data `x` (an array)."""
        if not self.built:
            self.build((None, *x.shape[1:]))
        offset, scale = scaling_statistics(x, self.scaling)
        self.set_statistics(offset, scale)

    def set_statistics(self, offset, scale):
        """Sets the statistics directly (shapes must match the sample shape)."""
        self.offset.assign(np.broadcast_to(offset, self.offset.shape))
        self.scale.assign(np.broadcast_to(scale, self.scale.shape))
        self._adapted.assign(1)

    def transform(self, x):
        """The scaled `x` as a float32 numpy array, computed as `call` does (without
        a copy when the scaling is the identity)."""
        offset, scale = self.offset.numpy(), self.scale.numpy()
        if not offset.any() and (scale == 1).all():
            return np.asarray(x, np.float32)
        return (np.asarray(x, np.float32) - offset) / scale

    def description(self):
        """What the exported metadata records about this layer."""
        return {"scaling": self.scaling, "in_model": True,
                "offset_range": [float(np.min(self.offset.numpy())),
                                 float(np.max(self.offset.numpy()))],
                "scale_range": [float(np.min(self.scale.numpy())),
                                float(np.max(self.scale.numpy()))]}

    def call(self, inputs):
        return (keras.ops.cast(inputs, self.compute_dtype) - self.offset) / self.scale

    def compute_output_shape(self, input_shape):
        return input_shape

    def get_config(self):
        config = super().get_config()
        config["scaling"] = self.scaling
        return config
