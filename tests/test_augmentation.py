import keras
import numpy as np
import pytest

from keras_deepclust import losses
from keras_deepclust.export import export_onnx
from keras_deepclust.layers import ImageAugmentation
from keras_deepclust.models import DCEC, IDEC

SMALL_CONV = {"filters": (4, 8), "kernel_sizes": (3, 3), "embedding_dim": 3}


def block_images(row, col, n=32, side=28):
    """`n` copies of a dark image with one bright 2x2 block whose top-left is (row, col)."""
    x = np.zeros((n, side, side, 1), np.float32)
    x[:, row:row + 2, col:col + 2] = 1.0
    return x


def centres_of_mass(x):
    """(n, 2) row and column of each image's centre of mass."""
    grid = np.indices(x.shape[1:3]).astype(np.float64)
    mass = x[..., 0].sum(axis=(1, 2))
    return np.stack([(x[..., 0] * g).sum(axis=(1, 2)) / mass for g in grid], axis=1)


def test_shifts_stay_within_the_fraction_and_inference_is_the_identity():
    x = block_images(13, 13)
    augment = ImageAugmentation(shift=0.1, rotation=0.0, seed=0)
    np.testing.assert_array_equal(augment(x), x)
    moved = np.asarray(augment(x, training=True))
    displacement = np.abs(centres_of_mass(moved) - centres_of_mass(x))
    assert displacement.max() <= 0.1 * 28 + 1e-3  # at most 2.8 pixels either way
    assert (displacement.max(axis=1) > 0.5).mean() > 0.5  # and the draws do move most images
    np.testing.assert_allclose(moved.sum(axis=(1, 2, 3)), 4.0, rtol=1e-4)  # nothing left the image


def test_rotations_turn_about_the_centre_within_the_angle():
    x = block_images(13, 21)  # centre of mass 8 pixels right of the image centre (13.5, 13.5)
    turned = np.asarray(ImageAugmentation(shift=0.0, rotation=10.0, seed=0)(x, training=True))
    offset = centres_of_mass(turned) - 13.5
    radius = np.hypot(offset[:, 0], offset[:, 1])
    angle = np.degrees(np.abs(np.arctan2(offset[:, 0], offset[:, 1])))
    np.testing.assert_allclose(radius, 8.0, atol=0.3)
    assert angle.max() <= 10.0 + 0.5
    assert angle.max() > 3.0


def test_bad_arguments_and_shapes_are_named():
    with pytest.raises(ValueError, match=r"^shift must be a number in \[0, 1\), got 1.0\.$"):
        ImageAugmentation(shift=1.0)
    with pytest.raises(ValueError, match=r"^rotation must be a number in \[0, 180\], got 200"):
        ImageAugmentation(rotation=200)
    with pytest.raises(ValueError, match=r"^augmentation must be \(shift, degrees\): shift a "
                                         r"number in \[0, 1\), degrees a number in \[0, 180\], "
                                         r"got \(0.1, 10, 2\)\.$"):
        DCEC(n_clusters=3, augmentation=(0.1, 10, 2))
    with pytest.raises(ValueError, match="expected ndim=4"):
        ImageAugmentation()(np.zeros((2, 64), np.float32), training=True)
    with pytest.raises(TypeError, match=r"augmentation must be a Keras layer, a pair "
                                        r"\(shift, degrees\), 'auto' or None, got 'flip'"):
        DCEC(n_clusters=3, augmentation="flip")
    # A pair of numbers is DEC-DA's layer with that shift and rotation, seeded by the model.
    pair = DCEC(n_clusters=3, augmentation=(0.2, 5), random_state=4).augmentation
    assert (type(pair), pair.shift, pair.rotation, pair.seed) == (ImageAugmentation, 0.2, 5.0, 4)
    with pytest.raises(ValueError, match=r"image-shaped samples .* got samples of shape \(6,\)"):
        IDEC(n_clusters=3, augmentation=ImageAugmentation()).build((None, 6))


def test_layer_config_round_trip():
    layer = ImageAugmentation(shift=0.05, rotation=7.5, fill_mode="nearest", seed=3)
    clone = ImageAugmentation.from_config(layer.get_config())
    assert clone.get_config() == layer.get_config()
    x = block_images(10, 12, n=4)
    np.testing.assert_array_equal(clone(x, training=True), layer(x, training=True))


def test_pretraining_through_a_no_op_augmentation_equals_plain_pretraining(tiny_images):
    # The augmented path adds its reconstruction loss inside the network; with nothing
    # to augment it must train exactly as the plain path's "mse".
    x = tiny_images[0]
    histories = []
    for augmentation in (None, ImageAugmentation(shift=0.0, rotation=0.0)):
        model = DCEC(n_clusters=3, random_state=0, augmentation=augmentation, **SMALL_CONV)
        histories.append(model.pretrain(x, epochs=3, batch_size=16, verbose=0).history["loss"])
    np.testing.assert_allclose(histories[1], histories[0], rtol=1e-6)


@keras.saving.register_keras_serializable(package="keras_deepclust_tests")
class FlipWhenTraining(keras.layers.Layer):
    """A deterministic augmentation: mirror the images left-right in training."""

    def call(self, inputs, training=False):
        return inputs[:, :, ::-1, :] if training else inputs


def test_train_step_fits_the_augmented_soft_labels_to_the_clean_target(tiny_images, round_trip,
                                                                       tmp_path):
    x = tiny_images[0]
    flipped = x[:, :, ::-1, :]
    model = DCEC(n_clusters=3, random_state=0, gamma=0.5, augmentation=FlipWhenTraining(),
                 **SMALL_CONV)
    model.pretrain(x, epochs=20, batch_size=16, verbose=0)
    model.initialize_centroids(x)
    model.update_target_distribution(x)
    p = model.target_distribution()
    np.testing.assert_allclose(p, losses.target_distribution(model.predict(x)), rtol=1e-5)

    def kl(target, q):
        return (target * np.log(target / q)).sum(1)

    q = model.predict(flipped)
    p_flipped = np.asarray(losses.target_distribution(q))
    wrong = (kl(p_flipped, q).mean(), kl(p, model.predict(x)).mean())  # targets or Q mixed up
    kl = kl(p, q)
    reconstruction = ((model.reconstruct(flipped) - flipped) ** 2).reshape(len(x), -1).mean(1)
    rows = np.arange(len(x), dtype=np.int32)
    # augment_clustering=False: the clustering phase sees the clean images (lr 0: a probe).
    model.augment_clustering = False
    model.compile(optimizer=keras.optimizers.SGD(0.0))
    clean_logs = model.train_on_batch(x, rows, return_dict=True)
    assert clean_logs["clustering_loss"] == pytest.approx(wrong[1], rel=1e-4)
    model.augment_clustering = True
    model.compile(optimizer=keras.optimizers.SGD(1e-3))
    logs = model.train_on_batch(x, rows, return_dict=True)
    assert logs["clustering_loss"] == pytest.approx(kl.mean(), rel=1e-4)
    assert all(abs(logs["clustering_loss"] - other) > 1e-3 * other for other in wrong)
    assert logs["reconstruction_loss"] == pytest.approx(reconstruction.mean(), rel=1e-4)
    assert logs["loss"] == pytest.approx(np.mean(reconstruction + 0.5 * kl), rel=1e-4)

    restored = round_trip(model, x)
    assert isinstance(restored.augmentation, FlipWhenTraining) and restored.augment_clustering
    config = DCEC(augmentation=FlipWhenTraining(), augment_clustering=False).get_config()
    assert DCEC.from_config(config).augment_clustering is False
    # The assigner is the clean inference path: no augmentation in the exported file.
    metadata = export_onnx(model, tmp_path / "augmented.onnx", sample=x)
    assert metadata["parity"]["cluster_agreement"] == 1.0



class DimWhenTraining(keras.layers.Layer):
    """A deterministic augmentation that changes the pixel values: halve them in training."""

    def call(self, inputs, training=False):
        return inputs * 0.5 if training else inputs


def test_pretraining_reconstructs_the_augmented_images(tiny_images):
    x = tiny_images[0]
    model = DCEC(n_clusters=3, random_state=0, augmentation=DimWhenTraining(), **SMALL_CONV)
    model.build((None, *x.shape[1:]))
    reconstruction = model.reconstruct(x * 0.5)
    expected = ((reconstruction - x * 0.5) ** 2).mean()
    clean_target = ((reconstruction - x) ** 2).mean()
    history = model.pretrain(x, epochs=1, batch_size=len(x), optimizer=keras.optimizers.SGD(1e-6),
                             verbose=0)
    assert history.history["loss"][0] == pytest.approx(expected, rel=1e-4)
    assert abs(expected - clean_target) > 0.1 * expected
