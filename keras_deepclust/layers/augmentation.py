"""Random shifts and rotations of image batches, the augmentation of DEC-DA
(Guo et al., "Deep Embedded Clustering with Data Augmentation", ACML 2018)."""

import keras

from keras_deepclust import options


@keras.saving.register_keras_serializable(package="keras_deepclust")
class ImageAugmentation(keras.layers.Layer):
    """Shifts and rotates each image of a training batch at random; the identity otherwise.

    DEC-DA trains the autoencoder on augmented images and, in the clustering
    phase, fits the clustering output of augmented images to the target
    distribution of the clean ones. Pass this layer as `augmentation=` to
    `DEC`/`IDEC`/`DECConv`/`DCEC` to do the same. Pixels moved in from outside the
    image take `fill_value`.

    Args:
        shift: largest shift, as a fraction of the height and of the width (DEC-DA:
            0.1, i.e. up to 3 pixels on 28 x 28).
        rotation: largest rotation in degrees, either way (DEC-DA: 10).
        fill_mode: how points outside the image are filled, as in
            `keras.layers.RandomTranslation` ("constant", "nearest", "reflect", "wrap").
        fill_value: the value of "constant" filling.
        seed: int seed of the random draws, or None.
        **kwargs: standard `keras.layers.Layer` arguments.

    Returns:
        A batch of the input's shape `(batch, height, width, channels)`.

    Example:

    >>> import numpy as np
    >>> augment = ImageAugmentation(shift=0.1, rotation=10, seed=0)
    >>> images = np.random.default_rng(0).random((4, 28, 28, 1)).astype("float32")
    >>> augment(images, training=True).shape
    TensorShape([4, 28, 28, 1])
    >>> bool((augment(images) == images).numpy().all())  # inference: unchanged
    True
    """

    def __init__(self, shift=0.1, rotation=10.0, fill_mode="constant", fill_value=0.0,
                 seed=None, **kwargs):
        super().__init__(**kwargs)
        self.shift = options.SHIFT.check(shift, "shift")
        self.rotation = options.DEGREES.check(rotation, "rotation")
        self.fill_mode = fill_mode
        self.fill_value = float(fill_value)
        self.seed = seed
        common = {"fill_mode": fill_mode, "fill_value": self.fill_value}
        self._translation = keras.layers.RandomTranslation(
            self.shift, self.shift, seed=seed, **common)
        self._rotation = keras.layers.RandomRotation(
            self.rotation / 360.0, seed=None if seed is None else seed + 1, **common)
        self.input_spec = keras.layers.InputSpec(ndim=4)

    def build(self, input_shape):
        self._translation.build(input_shape)
        self._rotation.build(input_shape)

    def call(self, inputs, training=False):
        if not training:
            return inputs
        return self._rotation(self._translation(inputs, training=True), training=True)

    def compute_output_shape(self, input_shape):
        return input_shape

    def get_config(self):
        config = super().get_config()
        config.update({"shift": self.shift, "rotation": self.rotation, "fill_mode": self.fill_mode,
                       "fill_value": self.fill_value, "seed": self.seed})
        return config
