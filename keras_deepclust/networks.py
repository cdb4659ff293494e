"""Autoencoder builders: the dense SAE of DEC/IDEC and the convolutional CAE of DCEC.

Each builder of `BUILDERS` returns `(encoder, decoder)` functional models: the encoder
maps an input of `input_shape` to a code, the decoder maps the code back to exactly
`input_shape`. `ENCODERS` build the same encoders alone, for methods without a decoder.
"""

import math

import keras

DENSE_HIDDEN_UNITS = (500, 500, 2000)
CONV_FILTERS = (32, 64, 128)
CONV_KERNEL_SIZES = (5, 5, 3)


@keras.saving.register_keras_serializable(package="keras_deepclust")
def relu_tanh(x):
    """tanh(relu(x)): a ReLU followed by a Tanh layer, as in DAC's encoder."""
    return keras.ops.tanh(keras.ops.relu(x))


def float32_output(tensor, name):
    """`tensor` cast to float32 by an identity layer: the networks' outputs, which the
    float32 heads and losses take, under a mixed-precision policy (see
    `keras_deepclust.layers.precision`; a no-op under float32)."""
    return keras.layers.Activation("linear", dtype="float32", name=name)(tensor)


def resolve_activation(name):
    """A Keras activation name, "relu_tanh", a callable or None (linear)."""
    return relu_tanh if name == "relu_tanh" else name


class SeededInitializers:
    """Hands out Glorot-uniform initializers with distinct seeds derived from one seed,
    so a network built twice with the same `random_state` starts from the same weights."""

    def __init__(self, random_state):
        self._seed = random_state
        self._count = 0

    def __call__(self):
        if self._seed is None:
            return keras.initializers.GlorotUniform()
        self._count += 1
        return keras.initializers.GlorotUniform(seed=self._seed * 1000 + self._count)


def dense_autoencoder(
    input_shape,
    hidden_units=DENSE_HIDDEN_UNITS,
    embedding_dim=10,
    activation="relu",
    output_activation=None,
    random_state=None,
    embedding_activation=None,
    decoder_activation=None,
):
    """Stacked autoencoder d-500-500-2000-10 with a mirrored decoder (DEC, IDEC).

    Internal layers use `activation`; the code and the output are linear by default,
    as in the DEC and DCEC papers. Inputs of any rank are flattened, and the decoder
    reshapes back to `input_shape`.

    Args:
        input_shape: shape of one sample, e.g. `(784,)` or `(28, 28, 1)`.
        hidden_units: widths of the encoder's hidden layers; the decoder mirrors them.
        embedding_dim: size of the code.
        activation: activation of the hidden layers (a Keras name, or "relu_tanh":
            tanh(relu(h)), DAC's encoder).
        output_activation: activation of the reconstruction (None = linear).
        random_state: int seed for the weight initialisers, or None.
        embedding_activation: activation of the code (None = linear; AEC: "sigmoid").
        decoder_activation: activation of the decoder's hidden layers (None = `activation`).

    Returns:
        `(encoder, decoder)` functional `keras.Model`s.

    Example:

    >>> encoder, decoder = dense_autoencoder((64,), hidden_units=(32,), embedding_dim=4)
    >>> encoder.output.shape
    (None, 4)
    """
    input_shape = _checked_dense_options(input_shape, hidden_units, embedding_dim)
    init = SeededInitializers(random_state)
    n_features = math.prod(input_shape)
    decoder_activation = resolve_activation(decoder_activation or activation)
    encoder = _dense_encoder(input_shape, hidden_units, embedding_dim, activation,
                             embedding_activation, init)

    code_in = keras.Input(shape=(embedding_dim,), name="code")
    h = code_in
    for i, units in enumerate(reversed(hidden_units)):
        h = keras.layers.Dense(
            units, decoder_activation, kernel_initializer=init(), name=f"decoder_{i}"
        )(h)
    h = keras.layers.Dense(
        n_features, output_activation, kernel_initializer=init(), name="reconstruction"
    )(h)
    if len(input_shape) > 1:
        h = keras.layers.Reshape(input_shape, name="unflatten")(h)
    decoder = keras.Model(code_in, float32_output(h, "reconstruction_float32"), name="decoder")
    return encoder, decoder


def conv_autoencoder(
    input_shape,
    filters=CONV_FILTERS,
    kernel_sizes=CONV_KERNEL_SIZES,
    embedding_dim=10,
    activation="relu",
    output_activation=None,
    random_state=None,
    embedding_activation=None,
):
    """Convolutional autoencoder of DCEC: conv32(5)->conv64(5)->conv128(3)->FC(code).

    Every convolution has stride 2 and "same" padding; the decoder mirrors the encoder
    with stride-2 `Conv2DTranspose` layers and crops where a stride-2 upsampling
    overshoots, so any image size is reconstructed exactly (28x28, 16x16, 8x8, 32x32x3).
    (The DCEC paper's code uses "valid" padding in the last layer for 28x28 inputs only.)

    Args:
        input_shape: `(height, width, channels)` of one image.
        filters: filters of each encoder convolution.
        kernel_sizes: kernel size of each encoder convolution (same length as `filters`).
        embedding_dim: size of the code.
        activation: activation of the hidden layers.
        output_activation: activation of the reconstruction (None = linear).
        random_state: int seed for the weight initialisers, or None.
        embedding_activation: activation of the code (None = linear).

    Returns:
        `(encoder, decoder)` functional `keras.Model`s.

    Example:

    >>> encoder, decoder = conv_autoencoder((8, 8, 1))
    >>> decoder.output.shape
    (None, 8, 8, 1)
    """
    input_shape = _checked_conv_options(input_shape, filters, kernel_sizes, embedding_dim)
    init = SeededInitializers(random_state)
    encoder = _conv_encoder(input_shape, filters, kernel_sizes, embedding_dim, activation,
                            embedding_activation, init)
    activation = resolve_activation(activation)
    sizes = [tuple(input_shape[:2])]
    for _ in filters:
        sizes.append(tuple(math.ceil(s / 2) for s in sizes[-1]))

    code_in = keras.Input(shape=(embedding_dim,), name="code")
    bottom = sizes[-1]
    h = keras.layers.Dense(
        bottom[0] * bottom[1] * filters[-1], activation, kernel_initializer=init(), name="fc"
    )(code_in)
    h = keras.layers.Reshape((*bottom, filters[-1]), name="unflatten")(h)
    out_filters = list(reversed(filters[:-1])) + [input_shape[-1]]
    for i, (n, k) in enumerate(zip(out_filters, reversed(kernel_sizes))):
        is_last = i == len(out_filters) - 1
        h = keras.layers.Conv2DTranspose(
            n, k, strides=2, padding="same",
            activation=output_activation if is_last else activation,
            kernel_initializer=init(), name=f"deconv_{i}",
        )(h)
        target = sizes[-2 - i]
        current = sizes[-1 - i]
        overshoot = (2 * current[0] - target[0], 2 * current[1] - target[1])
        if any(overshoot):
            h = keras.layers.Cropping2D(((0, overshoot[0]), (0, overshoot[1])), name=f"crop_{i}")(h)
    decoder = keras.Model(code_in, float32_output(h, "reconstruction_float32"), name="decoder")
    return encoder, decoder



def dense_encoder(input_shape, hidden_units=DENSE_HIDDEN_UNITS, embedding_dim=10,
                  activation="relu", random_state=None, embedding_activation=None):
    """The encoder of `dense_autoencoder` alone (the same layers and, for the same
    `random_state`, the same initial weights), for methods without a decoder.

    Example:

    >>> dense_encoder((64,), hidden_units=(32,), embedding_dim=4).output.shape
    (None, 4)
    """
    input_shape = _checked_dense_options(input_shape, hidden_units, embedding_dim)
    return _dense_encoder(input_shape, hidden_units, embedding_dim, activation,
                          embedding_activation, SeededInitializers(random_state))


def conv_encoder(input_shape, filters=CONV_FILTERS, kernel_sizes=CONV_KERNEL_SIZES,
                 embedding_dim=10, activation="relu", random_state=None,
                 embedding_activation=None):
    """The encoder of `conv_autoencoder` alone (the same layers and, for the same
    `random_state`, the same initial weights), for methods without a decoder.

    Example:

    >>> conv_encoder((8, 8, 1)).output.shape
    (None, 10)
    """
    input_shape = _checked_conv_options(input_shape, filters, kernel_sizes, embedding_dim)
    return _conv_encoder(input_shape, filters, kernel_sizes, embedding_dim, activation,
                         embedding_activation, SeededInitializers(random_state))


def _dense_encoder(input_shape, hidden_units, embedding_dim, activation, embedding_activation,
                   init):
    inputs = keras.Input(shape=input_shape, name="inputs")
    h = keras.layers.Flatten(name="flatten")(inputs) if len(input_shape) > 1 else inputs
    for i, units in enumerate(hidden_units):
        h = keras.layers.Dense(
            units, resolve_activation(activation), kernel_initializer=init(), name=f"encoder_{i}"
        )(h)
    return _encoder_model(inputs, h, embedding_dim, embedding_activation, init)


def _conv_encoder(input_shape, filters, kernel_sizes, embedding_dim, activation,
                  embedding_activation, init):
    inputs = keras.Input(shape=input_shape, name="inputs")
    h = inputs
    for i, (n, k) in enumerate(zip(filters, kernel_sizes)):
        h = keras.layers.Conv2D(
            n, k, strides=2, padding="same", activation=resolve_activation(activation),
            kernel_initializer=init(), name=f"conv_{i}",
        )(h)
    return _encoder_model(inputs, keras.layers.Flatten(name="flatten")(h), embedding_dim,
                          embedding_activation, init)


def _encoder_model(inputs, features, embedding_dim, embedding_activation, init):
    """The code layer on `features`, and the encoder model ending in a float32 cast."""
    code = keras.layers.Dense(
        embedding_dim, resolve_activation(embedding_activation), kernel_initializer=init(),
        name="embedding",
    )(features)
    return keras.Model(inputs, float32_output(code, "code_float32"), name="encoder")


def _checked_dense_options(input_shape, hidden_units, embedding_dim):
    input_shape = _checked_shape(input_shape, min_rank=1)
    _check_positive_ints(hidden_units, "hidden_units")
    _check_positive_ints([embedding_dim], "embedding_dim")
    return input_shape


def _checked_conv_options(input_shape, filters, kernel_sizes, embedding_dim):
    input_shape = _checked_shape(input_shape, min_rank=3, max_rank=3, network="conv")
    _check_positive_ints(filters, "filters")
    _check_positive_ints(kernel_sizes, "kernel_sizes")
    _check_positive_ints([embedding_dim], "embedding_dim")
    if len(filters) != len(kernel_sizes):
        raise ValueError(
            f"filters and kernel_sizes must have the same length, got {len(filters)} "
            f"and {len(kernel_sizes)}."
        )
    return input_shape


def _checked_shape(input_shape, min_rank, max_rank=None, network="dense"):
    try:
        shape = tuple(int(s) for s in input_shape)
    except (TypeError, ValueError):
        raise ValueError(f"input_shape must be a tuple of positive ints, got {input_shape!r}.")
    if len(shape) < min_rank or (max_rank is not None and len(shape) > max_rank) or min(shape) < 1:
        if network == "conv":
            raise ValueError(
                "The conv network needs images of shape (height, width, channels), "
                f"got sample shape {input_shape!r}. Use network='dense' for flat features."
            )
        raise ValueError(f"input_shape must be a tuple of positive ints, got {input_shape!r}.")
    return shape


def _check_positive_ints(values, name):
    values = list(values)
    if not values or any(isinstance(v, bool) or not isinstance(v, int) or v < 1 for v in values):
        raise ValueError(f"{name} must be positive integers, got {values!r}.")


BUILDERS = {"dense": dense_autoencoder, "conv": conv_autoencoder}
ENCODERS = {"dense": dense_encoder, "conv": conv_encoder}
