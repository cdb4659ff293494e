"""K dense autoencoders computed at once: the cluster models of DAMIC (Chazan et al.)."""

import math

import keras
import numpy as np
from keras import ops

from keras_deepclust import networks
from keras_deepclust._validation import check_positive_int


@keras.saving.register_keras_serializable(package="keras_deepclust")
class MixtureOfAutoencoders(keras.layers.Layer):
    """`n_autoencoders` dense autoencoders of the same widths, evaluated in one pass.

    Autoencoder k maps a flattened input of d features through `hidden_units`, a code
    of `embedding_dim` and the mirrored widths back to d, like
    `networks.dense_autoencoder`. Layer l of all K autoencoders is one stacked kernel
    `kernel_l` of shape `(K, in, out)` and bias `bias_l` of shape `(K, out)`, applied
    with a batched matrix product, so the graph holds one op per layer, not per
    autoencoder.

    Args:
        n_autoencoders: number of autoencoders K.
        hidden_units: widths of each encoder's hidden layers; decoders mirror them.
        embedding_dim: size of each code.
        activation: activation of the hidden layers (a Keras name or "relu_tanh").
        embedding_activation: activation of the code (None = linear).
        output_activation: activation of the reconstruction (None = linear).
        seed: int seed of the Glorot-uniform initialisers, or None.
        **kwargs: standard `keras.layers.Layer` arguments.

    Returns:
        `(batch, K, d)` reconstructions of the flattened inputs, one per autoencoder.

    Example:

    >>> import numpy as np
    >>> layer = MixtureOfAutoencoders(3, hidden_units=(8,), embedding_dim=2)
    >>> layer(np.zeros((4, 6), "float32")).shape
    TensorShape([4, 3, 6])
    """

    def __init__(
        self,
        n_autoencoders,
        hidden_units=networks.DENSE_HIDDEN_UNITS,
        embedding_dim=10,
        activation="relu",
        embedding_activation=None,
        output_activation=None,
        seed=None,
        **kwargs,
    ):
        super().__init__(**kwargs)
        self.n_autoencoders = check_positive_int(n_autoencoders, "n_autoencoders")
        self.hidden_units = tuple(check_positive_int(u, "hidden_units") for u in hidden_units)
        self.embedding_dim = check_positive_int(embedding_dim, "embedding_dim")
        self.activation = activation
        self.embedding_activation = embedding_activation
        self.output_activation = output_activation
        self.seed = seed

    def build(self, input_shape):
        self.n_features = math.prod(input_shape[1:])
        widths = [self.n_features, *self.hidden_units, self.embedding_dim,
                  *reversed(self.hidden_units), self.n_features]
        self.kernels, self.biases = [], []
        for i, (fan_in, fan_out) in enumerate(zip(widths[:-1], widths[1:])):
            # Glorot limits of one (in, out) kernel: Keras' own initialiser would count
            # the K copies into the fans.
            limit = math.sqrt(6.0 / (fan_in + fan_out))
            seed = None if self.seed is None else self.seed + i
            self.kernels.append(self.add_weight(
                shape=(self.n_autoencoders, fan_in, fan_out), name=f"kernel_{i}",
                initializer=keras.initializers.RandomUniform(-limit, limit, seed=seed),
            ))
            self.biases.append(self.add_weight(
                shape=(self.n_autoencoders, fan_out), initializer="zeros", name=f"bias_{i}"
            ))
        n_hidden = len(self.hidden_units)
        activations = ([self.activation] * n_hidden + [self.embedding_activation]
                       + [self.activation] * n_hidden + [self.output_activation])
        self._activations = [
            keras.activations.get(networks.resolve_activation(a)) for a in activations
        ]

    def call(self, inputs):
        h = ops.reshape(inputs, (-1, self.n_features))[None]  # (1, batch, d), shared by all K
        for kernel, bias, activation in zip(self.kernels, self.biases, self._activations):
            h = activation(ops.matmul(h, kernel) + bias[:, None, :])  # (K, batch, out)
        return ops.transpose(h, (1, 0, 2))

    def squared_errors(self, inputs):
        """`(batch, K)` squared Euclidean reconstruction errors ||x - f_k(x)||^2."""
        flat = ops.cast(ops.reshape(inputs, (-1, self.n_features)), "float32")
        # In float32 under a mixed policy: the autoencoders' outputs are 16-bit.
        return ops.sum(ops.square(flat[:, None, :] - ops.cast(self(inputs), "float32")), axis=-1)

    def set_from_autoencoder(self, encoder, decoder):
        """Copies one pretrained dense autoencoder into every one of the K autoencoders.

        Args:
            encoder, decoder: the models of `networks.dense_autoencoder` with this
                layer's widths; their `Dense` layers are taken in order.
        """
        dense = [layer for model in (encoder, decoder) for layer in model.layers
                 if isinstance(layer, keras.layers.Dense)]
        if len(dense) != len(self.kernels):
            raise ValueError(
                f"The autoencoder has {len(dense)} Dense layers; this mixture has "
                f"{len(self.kernels)} per autoencoder."
            )
        for layer, kernel, bias in zip(dense, self.kernels, self.biases):
            weights = layer.get_weights()
            if weights[0].shape != tuple(kernel.shape[1:]):
                raise ValueError(
                    f"Dense layer {layer.name!r} has a kernel of shape {weights[0].shape}; "
                    f"this mixture expects {tuple(kernel.shape[1:])}."
                )
            kernel.assign(np.broadcast_to(weights[0], kernel.shape))
            bias.assign(np.broadcast_to(weights[1], bias.shape))

    def compute_output_shape(self, input_shape):
        return (input_shape[0], self.n_autoencoders, math.prod(input_shape[1:]))

    def get_config(self):
        config = super().get_config()
        config.update(
            {
                "n_autoencoders": self.n_autoencoders,
                "hidden_units": list(self.hidden_units),
                "embedding_dim": self.embedding_dim,
                "activation": self.activation,
                "embedding_activation": self.embedding_activation,
                "output_activation": self.output_activation,
                "seed": self.seed,
            }
        )
        return config
