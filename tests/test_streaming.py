"""Data larger than memory: `datasets.stream` reads .npy and IDX files batch by batch,
and pretraining and the two-stage fit take the stream."""

import gzip
import json

import numpy as np
import pytest
import tensorflow as tf

from keras_deepclust import datasets
from keras_deepclust.models import AEC, AEKMeans

TINY = {"hidden_units": (16,), "embedding_dim": 3}


def write_idx(path, images):
    header = bytes([0, 0, 0x08, images.ndim]) + b"".join(
        int(n).to_bytes(4, "big") for n in images.shape)
    opener = gzip.open if path.suffix == ".gz" else open
    with opener(path, "wb") as f:
        f.write(header + images.astype(np.uint8).tobytes())


@pytest.mark.parametrize("name", ["images-idx3-ubyte", "images-idx3-ubyte.gz"])
def test_stream_of_an_idx_file_equals_the_loaded_array(tmp_path, name):
    images = np.random.default_rng(0).integers(0, 256, size=(50, 8, 8))
    write_idx(tmp_path / name, images)
    dataset, n = datasets.stream(tmp_path / name, batch_size=16)
    batches = [b.numpy() for b in dataset]
    assert n == 50 and [len(b) for b in batches] == [16, 16, 16, 2]
    expected, _ = datasets.from_idx(tmp_path / name)
    np.testing.assert_array_equal(np.concatenate(batches), expected)


def test_stream_of_an_npy_file_and_its_errors(tmp_path):
    x = np.random.default_rng(1).uniform(size=(30, 6)).astype(np.float32)
    np.save(tmp_path / "x.npy", x)
    dataset, n = datasets.stream(tmp_path / "x.npy", batch_size=7)
    np.testing.assert_array_equal(np.concatenate([b.numpy() for b in dataset]), x)
    np.save(tmp_path / "big.npy", x * 3)
    with pytest.raises(ValueError, match=r"must be uint8 pixels or lie in \[0, 1\], found \[0"):
        datasets.stream(tmp_path / "big.npy")
    (tmp_path / "cut.npy").write_bytes((tmp_path / "x.npy").read_bytes()[:-40])
    with pytest.raises(ValueError, match=r"ends after 28 of the 30 samples"):
        datasets.stream(tmp_path / "cut.npy")
    with pytest.raises(datasets.DataNotFoundError):
        datasets.stream(tmp_path / "missing.npy")


def test_two_stage_pretrains_and_fits_on_a_stream_like_on_the_array(blobs, tmp_path):
    x, _ = blobs
    np.save(tmp_path / "x.npy", x)
    dataset, _ = datasets.stream(tmp_path / "x.npy", batch_size=16)
    streamed = AEKMeans(3, random_state=0, **TINY)
    streamed.pretrain(dataset, epochs=3, verbose=0)
    streamed.fit(dataset, verbose=0)
    labels = streamed.predict_labels(dataset)
    assert labels.shape == (90,) and streamed.sample_shape == (6,)
    np.testing.assert_array_equal(labels, streamed.predict_labels(x))
    # Same weights as pretraining on the array in row order, batch 16.
    in_memory = AEKMeans(3, random_state=0, **TINY)
    in_memory.pretrain(tf.data.Dataset.from_tensor_slices(x).batch(16), epochs=3, verbose=0)
    for network in ("encoder", "decoder"):
        for a, b in zip(getattr(in_memory, network).get_weights(),
                        getattr(streamed, network).get_weights(), strict=True):
            np.testing.assert_allclose(a, b, atol=1e-4)  # float rounding of the two pipelines


def test_bad_streams(blobs):
    x, _ = blobs
    model = AEKMeans(3, random_state=0, **TINY)
    with pytest.raises(ValueError, match=r"must yield batches .* got shape \(6,\)"):
        model.pretrain(tf.data.Dataset.from_tensor_slices(x), epochs=1, verbose=0)
    with pytest.raises(ValueError, match="one tensor per element and no labels"):
        model.pretrain(tf.data.Dataset.from_tensor_slices((x, x)).batch(8), epochs=1, verbose=0)
    bad = x.copy()
    bad[3, 1] = np.nan
    with pytest.raises(tf.errors.InvalidArgumentError, match="x contains NaN or infinite values"):
        model.pretrain(tf.data.Dataset.from_tensor_slices(bad).batch(8), epochs=1, verbose=0)
    with pytest.raises(ValueError, match=r"AEC.fit needs x as an array"):
        AEC(3, **TINY).fit(tf.data.Dataset.from_tensor_slices(x).batch(8), epochs=1)
    with pytest.raises(ValueError, match=r"n_clusters=3 is larger than the number of samples \(2\)"):
        model.fit(tf.data.Dataset.from_tensor_slices(x[:2]).batch(8), verbose=0)


def test_convert_writes_shards_that_stream_back(tmp_path, tiny_images):
    from keras_deepclust import cli, tfrecords

    x, y = tiny_images
    np.savez(tmp_path / "images.npz", x=x, y=y)
    assert cli.main(["convert", str(tmp_path / "images.npz"), "--out", str(tmp_path / "shards"),
                     "--rows-per-shard", "25"]) == 0
    meta = json.loads((tmp_path / "shards" / "meta.json").read_text())
    assert meta["n_samples"] == 60 and meta["has_labels"] and meta["sample_shape"] == [8, 8, 1]
    assert meta["shards"] == [f"part-0000{i}-of-00003.tfrecord" for i in range(3)]
    dataset, n = datasets.stream(tmp_path / "shards", batch_size=16)
    assert n == 60
    np.testing.assert_array_equal(np.concatenate(list(dataset.as_numpy_iterator())), x)
    labelled, _ = tfrecords.read(tmp_path / "shards", with_labels=True)
    np.testing.assert_array_equal(np.concatenate([b[1] for b in labelled.as_numpy_iterator()]), y)
    with pytest.raises(ValueError, match="already holds a conversion"):
        tfrecords.convert(tmp_path / "images.npz", tmp_path / "shards")
    (tmp_path / "half").mkdir()
    with pytest.raises(ValueError, match="not a conversion, or an interrupted one"):
        datasets.stream(tmp_path / "half")


def test_convert_an_idx_file_and_a_folder_of_images(tmp_path):
    from matplotlib import image as mpimg

    from keras_deepclust import tfrecords

    images = np.random.default_rng(2).integers(0, 256, size=(9, 5, 4))
    write_idx(tmp_path / "x-idx3-ubyte", images)
    tfrecords.convert(tmp_path / "x-idx3-ubyte", tmp_path / "from_idx", rows_per_shard=4)
    dataset, n = datasets.stream(tmp_path / "from_idx")
    np.testing.assert_allclose(np.concatenate(list(dataset.as_numpy_iterator())),
                               images[..., None] / 255.0, atol=1e-7)
    folder = tmp_path / "pngs"
    folder.mkdir()
    for i, image in enumerate(images[:3]):
        mpimg.imsave(folder / f"{i}.png", image.astype(np.uint8), cmap="gray", vmin=0, vmax=255)
    meta = tfrecords.convert(folder, tmp_path / "from_pngs")
    assert meta["n_samples"] == 3 and meta["sample_shape"][:2] == [5, 4]
    mpimg.imsave(folder / "3.png", np.zeros((6, 4), np.uint8), cmap="gray")
    with pytest.raises(ValueError, match=r"3.png has shape \(6, 4, .*resize them alike"):
        tfrecords.convert(folder, tmp_path / "bad")


def test_stream_and_convert_bad_input(tmp_path, blobs):
    from keras_deepclust import tfrecords

    x, _ = blobs
    np.save(tmp_path / "x.npy", x)
    with pytest.raises(ValueError, match="batch_size must be >= 1, got 0"):
        datasets.stream(tmp_path / "x.npy", batch_size=0)
    np.save(tmp_path / "flat.npy", x[:, 0])
    with pytest.raises(ValueError, match=r"holds an array of shape \(90,\); samples are rows"):
        datasets.stream(tmp_path / "flat.npy")
    np.save(tmp_path / "fortran.npy", np.asfortranarray(x))
    with pytest.raises(ValueError, match="streaming needs a C-ordered numeric array"):
        datasets.stream(tmp_path / "fortran.npy")
    with pytest.raises(ValueError, match="rows_per_shard must be >= 1, got 0"):
        tfrecords.convert(tmp_path / "x.npy", tmp_path / "s0", rows_per_shard=0)
    tfrecords.convert(tmp_path / "x.npy", tmp_path / "unlabelled")
    with pytest.raises(ValueError, match="was converted without labels"):
        tfrecords.read(tmp_path / "unlabelled", with_labels=True)
    (tmp_path / "empty").mkdir()
    with pytest.raises(ValueError, match=r"holds no images \(.png"):
        tfrecords.convert(tmp_path / "empty", tmp_path / "s1")
