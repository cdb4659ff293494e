import numpy as np
import pytest

from keras_deepclust import networks


@pytest.mark.parametrize("shape", [(28, 28, 1), (16, 16, 1), (8, 8, 1), (32, 32, 3), (13, 9, 2)])
def test_conv_autoencoder_reconstructs_any_size(shape):
    encoder, decoder = networks.conv_autoencoder(shape, filters=(4, 8, 16), embedding_dim=5)
    x = np.zeros((2, *shape), "float32")
    code = encoder(x)
    assert tuple(code.shape) == (2, 5)
    assert tuple(decoder(code).shape) == (2, *shape)


def test_conv_autoencoder_paper_layers():
    encoder, _ = networks.conv_autoencoder((28, 28, 1))
    convs = [layer for layer in encoder.layers if layer.name.startswith("conv_")]
    assert [(c.filters, c.kernel_size, c.strides) for c in convs] == [
        (32, (5, 5), (2, 2)), (64, (5, 5), (2, 2)), (128, (3, 3), (2, 2))
    ]
    assert encoder.output.shape == (None, 10)


def test_dense_autoencoder_paper_layers_and_shapes():
    encoder, decoder = networks.dense_autoencoder((8, 8, 1))
    widths = [layer.units for layer in encoder.layers if hasattr(layer, "units")]
    assert widths == [500, 500, 2000, 10]
    assert [l.units for l in decoder.layers if hasattr(l, "units")] == [2000, 500, 500, 64]
    assert decoder.output.shape == (None, 8, 8, 1)
    assert encoder.get_layer("embedding").activation.__name__ == "linear"


def test_seeded_networks_are_identical():
    a, _ = networks.dense_autoencoder((6,), hidden_units=(8,), embedding_dim=2, random_state=3)
    b, _ = networks.dense_autoencoder((6,), hidden_units=(8,), embedding_dim=2, random_state=3)
    for wa, wb in zip(a.get_weights(), b.get_weights()):
        np.testing.assert_array_equal(wa, wb)


def test_network_bad_arguments():
    with pytest.raises(ValueError, match=r"conv network needs images of shape \(height, width, channels\), got sample shape \(64,\)"):
        networks.conv_autoencoder((64,))
    with pytest.raises(ValueError, match="filters and kernel_sizes must have the same length"):
        networks.conv_autoencoder((8, 8, 1), filters=(4, 8), kernel_sizes=(3,))
    with pytest.raises(ValueError, match="hidden_units must be positive integers"):
        networks.dense_autoencoder((6,), hidden_units=(8, 0))
