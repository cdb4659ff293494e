"""The encoder part of a method: the code of one network from `keras_deepclust.networks`,
with no decoder required (`AutoencoderClusteringModel` adds one). A method composes it
with how it fits: `IterativeClusteringModel` (epochs) or `OneShotClusteringModel`."""

import keras
import numpy as np

from keras_deepclust import networks, options
from keras_deepclust._validation import check_positive_int
from keras_deepclust.layers import ImageAugmentation, InputScaling
from keras_deepclust.models.base import ClusteringModel


class EncoderClusteringModel(ClusteringModel):
    """A `ClusteringModel` with an `encoder` built from a named network.

    Subclasses add their clustering part in `_build_head()`, and take their `fit` from
    `IterativeClusteringModel` (with an objective in `train_step`) or
    `OneShotClusteringModel` (a head fitted once, in `_fit_once`).

    Args:
        n_clusters: number of clusters K (>= 2).
        network: "dense" (d-500-500-2000-10 by default), "conv"
            (conv32(5)-conv64(5)-conv128(3)-FC10 by default), or "auto": "conv" for
            image-shaped samples `(h, w, c)` when the method has a conv network,
            "dense" otherwise (resolved when the model is built).
        embedding_dim: size of the code.
        hidden_units: widths of the dense encoder (network="dense").
        filters: filters of the conv encoder (network="conv").
        kernel_sizes: kernel sizes of the conv encoder (network="conv").
        activation: activation of the hidden layers.
        embedding_activation: activation of the code (None = linear).
        sample_shape: shape of one sample; inferred from the data when None.
        augmentation: None, or a Keras layer that augments a batch of images when
            called with `training=True`, e.g. `layers.ImageAugmentation()`. Needs
            image-shaped samples `(h, w, c)`; prediction and export never augment.
            "auto": DEC-DA's `ImageAugmentation()` (shifts of up to a tenth of the
            size, rotations of up to 10 degrees, seeded by `random_state`) for images,
            None for tables (resolved when the model is built). A pair of numbers
            `(shift, degrees)`: `ImageAugmentation(shift, degrees)` seeded by
            `random_state` (what `fit --augment SHIFT DEGREES` gives).
        scaling: how the first `fit` scales the raw inputs, a layer saved and exported
            with the model (`input_scaling`): "auto" takes images to [0, 1] and
            standardises tables per feature; "standard", "minmax" or "none".
        random_state: int seed for weights, shuffling, noise and k-means, or None.
    """

    OPTIONS = ClusteringModel.OPTIONS + ("augmentation",)

    def __init__(
        self,
        n_clusters=10,
        network="dense",
        embedding_dim=10,
        hidden_units=networks.DENSE_HIDDEN_UNITS,
        filters=networks.CONV_FILTERS,
        kernel_sizes=networks.CONV_KERNEL_SIZES,
        activation="relu",
        embedding_activation=None,
        sample_shape=None,
        augmentation=None,
        random_state=None,
        **kwargs,
    ):
        super().__init__(
            n_clusters=n_clusters, sample_shape=None, random_state=random_state, **kwargs
        )
        if network not in (*networks.ENCODERS, "auto"):
            raise ValueError(f"network must be one of {sorted(networks.ENCODERS) + ['auto']}, "
                             f"got {network!r}.")
        self.network = network
        self.embedding_dim = check_positive_int(embedding_dim, "embedding_dim")
        self.hidden_units = tuple(hidden_units)
        self.filters = tuple(filters)
        self.kernel_sizes = tuple(kernel_sizes)
        self.activation = activation
        self.embedding_activation = embedding_activation
        if isinstance(augmentation, dict):  # from get_config
            augmentation = keras.saving.deserialize_keras_object(augmentation)
        if isinstance(augmentation, (tuple, list)):
            augmentation = ImageAugmentation(*options.check("augmentation", augmentation),
                                             seed=self.random_state)
        if not (augmentation is None or isinstance(augmentation, keras.layers.Layer)
                or (isinstance(augmentation, str) and augmentation == "auto")):
            raise TypeError("augmentation must be a Keras layer, a pair (shift, degrees), "
                            "'auto' or None, got "
                            f"{augmentation!r}.")
        self.augmentation = augmentation
        self._pending_sample_shape = sample_shape

    def _build_if_shape_known(self):
        """Subclasses call this at the end of `__init__`, once their own state exists."""
        if self._pending_sample_shape is not None:
            self.build((None, *self._pending_sample_shape))

    # ----------------------------------------------------------------- building
    def _network_options(self):
        options = {"activation": self.activation, "embedding_activation": self.embedding_activation}
        if self.network == "dense":
            options["hidden_units"] = self.hidden_units
        else:
            options.update(filters=self.filters, kernel_sizes=self.kernel_sizes)
        return options

    def build(self, input_shape):
        if self.built:
            return
        self.sample_shape = tuple(int(s) for s in input_shape[1:])
        self._resolve_auto_options()
        if self.augmentation is not None and len(self.sample_shape) != 3:
            raise ValueError(
                "augmentation needs image-shaped samples (height, width, channels), got "
                f"samples of shape {self.sample_shape}.")
        self.input_scaling = InputScaling(self._input_scaling_mode(), name="input_scaling")
        self.input_scaling.build((None, *self.sample_shape))
        self._build_networks()
        self._build_head()
        self.built = True

    def _build_networks(self):
        """Creates `self.encoder` (subclasses add their other networks)."""
        self.encoder = networks.ENCODERS[self.network](
            self.sample_shape, embedding_dim=self.embedding_dim,
            random_state=self.random_state, **self._network_options())

    def _resolve_auto_options(self):
        """Replaces `network="auto"` and `augmentation="auto"` by what suits the samples."""
        images = len(self.sample_shape) == 3
        if self.network == "auto":
            self.network = "conv" if images and "conv" in self._offered_networks() else "dense"
        if isinstance(self.augmentation, str):  # "auto"
            self.augmentation = ImageAugmentation(seed=self.random_state) if images else None

    def _offered_networks(self):
        """The networks `network="auto"` chooses from (a method may offer fewer)."""
        return tuple(networks.ENCODERS)

    def _input_scaling_mode(self):
        """`scaling`, with "auto" on tables made "standard" (images: [0, 1])."""
        if self.scaling == "auto" and len(self.sample_shape) == 1:
            return "standard"
        return self.scaling

    def _build_head(self):
        """Creates the clustering layers on top of the code (subclass hook)."""

    def finite_codes(self, x, batch_size=256):
        """The encoder's codes of `x`, with a clear error when training diverged."""
        x = self.prepare_inputs(x)  # builds the model on first use
        codes = self.encoder.predict(x, batch_size=batch_size, verbose=0)
        if not np.isfinite(codes).all():
            raise ValueError(
                "The encoder produced NaN or infinite codes; training diverged. Lower the "
                "learning rate or check the input scaling."
            )
        return codes

    def selection_features(self, x, batch_size=256):
        """What a sweep over K clusters (`model_selection.sweep_n_clusters`): the codes."""
        return self.finite_codes(x, batch_size=batch_size)

    def get_config(self):
        config = super().get_config()
        config.update(
            {
                "network": self.network,
                "embedding_dim": self.embedding_dim,
                "hidden_units": list(self.hidden_units),
                "filters": list(self.filters),
                "kernel_sizes": list(self.kernel_sizes),
                "activation": self.activation,
                "embedding_activation": self.embedding_activation,
                "augmentation": self._augmentation_config(),
            }
        )
        return config

    def _augmentation_config(self):
        if self.augmentation is None or isinstance(self.augmentation, str):
            return self.augmentation
        config = keras.saving.serialize_keras_object(self.augmentation)
        # Built again on its first call; kept, its shape tuple would come back a list.
        config.pop("build_config", None)
        return config
