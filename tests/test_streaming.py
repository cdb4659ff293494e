"""Data larger than memory: `datasets.stream` reads .npy and IDX files batch by batch,
and pretraining and every method's fit take the stream."""

import gzip
import json

import numpy as np
import pytest
import tensorflow as tf

from keras_deepclust import datasets
from keras_deepclust.backup import ClusteringBackup
from keras_deepclust.models import AEC, DAC, DAMIC, DEC, AEKMeans
from keras_deepclust.models.autoencoder import steps_per_epoch

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
    # Values as stored: outside [0, 1] and uint8 alike (the model learns its scaling).
    np.save(tmp_path / "big.npy", x * 3 - 1)
    dataset, _ = datasets.stream(tmp_path / "big.npy", batch_size=7)
    np.testing.assert_array_equal(np.concatenate(list(dataset.as_numpy_iterator())), x * 3 - 1)
    pixels = np.random.default_rng(2).integers(0, 256, (30, 4, 3, 1), dtype=np.uint8)
    np.save(tmp_path / "pixels.npy", pixels)
    dataset, _ = datasets.stream(tmp_path / "pixels.npy", batch_size=7)
    assert dataset.element_spec.dtype == tf.float32
    np.testing.assert_array_equal(np.concatenate(list(dataset.as_numpy_iterator())), pixels)
    # NaN fails as the stream reaches it; a file cut short at once (its size tells).
    bad = x.copy()
    bad[20, 3] = np.nan
    np.save(tmp_path / "nan.npy", bad)
    dataset, _ = datasets.stream(tmp_path / "nan.npy", batch_size=7)
    with pytest.raises(tf.errors.InvalidArgumentError, match=r"nan.npy contains NaN or infinite"):
        list(dataset.as_numpy_iterator())
    (tmp_path / "cut.npy").write_bytes((tmp_path / "x.npy").read_bytes()[:-40])
    with pytest.raises(ValueError, match=r"cut.npy ends after 28 of the 30 samples"):
        datasets.stream(tmp_path / "cut.npy", batch_size=7)
    with pytest.raises(datasets.DataNotFoundError):
        datasets.stream(tmp_path / "missing.npy")


def test_two_stage_pretrains_and_fits_on_a_stream_like_on_the_array(blobs, tmp_path):
    x, _ = blobs
    np.save(tmp_path / "x.npy", x)
    dataset, _ = datasets.stream(tmp_path / "x.npy", batch_size=16)
    streamed = AEKMeans(3, random_state=0, **TINY)
    streamed.pretrain(dataset, epochs=3, verbose=0)
    # The standardisation learnt in one pass over the stream is the array's.
    np.testing.assert_allclose(streamed.input_scaling.offset.numpy(), x.mean(0), rtol=1e-5)
    np.testing.assert_allclose(streamed.input_scaling.scale.numpy(), x.std(0), rtol=1e-4)
    streamed.fit(dataset, verbose=0)
    labels = streamed.predict_labels(dataset)
    assert labels.shape == (90,) and streamed.sample_shape == (6,)
    np.testing.assert_array_equal(labels, streamed.predict_labels(x))
    # Same weights as pretraining on the array in row order, batch 16.
    in_memory = AEKMeans(3, random_state=0, **TINY)
    in_memory.pretrain(tf.data.Dataset.from_tensor_slices(x).batch(16), epochs=3, verbose=0)
    for network in ("input_scaling", "encoder", "decoder"):
        for a, b in zip(getattr(in_memory, network).get_weights(),
                        getattr(streamed, network).get_weights(), strict=True):
            # Float rounding of the two pipelines, which Adam's normalised steps amplify
            # on standardised inputs (1.2e-4 seen); a skipped batch or another scaling
            # moves weights by 1e-2 and more.
            np.testing.assert_allclose(a, b, atol=3e-4)


def test_bad_streams(blobs, tmp_path):
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
    stream = tf.data.Dataset.from_tensor_slices(x).batch(8)
    with pytest.raises(ValueError, match="A ClusteringBackup needs x as an array"):
        AEC(3, **TINY).fit(stream, epochs=1, callbacks=[ClusteringBackup(tmp_path)])

    class ArraysOnly(AEKMeans):  # a method whose fit does not stream
        STREAMING_FIT = False

    with pytest.raises(ValueError, match="ArraysOnly.fit needs x as an array, not a tf.data"):
        ArraysOnly(3, **TINY).fit(stream)
    with pytest.raises(ValueError, match="weight_labels need x as an array"):
        DAC(3, **TINY).fit(stream, weight_labels=np.zeros(90, int), epochs=1)
    with pytest.raises(ValueError, match=r"n_clusters=3 is larger than the number of samples \(2\)"):
        model.fit(tf.data.Dataset.from_tensor_slices(x[:2]).batch(8), verbose=0)


# Per-row methods: the fit on a stream in row order (batch 16) must equal the fit on the
# array with shuffle=False. AEC starts from k-means (its random start hashes a stream's
# rows instead of drawing a permutation), DAC's weights use every row (m >= N).
# That a fit on a stream equals the fit on the array, for every method, is part of
# the contract (tests/test_contract.py).


def test_dec_on_a_stream_stops_on_tol_and_counts_its_epochs(blobs):
    x = blobs[0]
    model = DEC(3, random_state=0, update_interval=4, tol=0.5, **TINY)
    model.pretrain(x, epochs=2, verbose=0)
    stream = tf.data.Dataset.from_tensor_slices(x).batch(16)
    model.fit(stream, verbose=0)  # epochs=None: until tol, steps counted on the stream
    assert model.target_updater.stopped_step == 4
    assert model.target_distribution().shape == (0, 3)  # no N x K state was stored
    model.refresh_assignments.forget()
    with pytest.raises(RuntimeError, match="row state of this stream was never taken"):
        model.refresh_assignments(tf.constant(x[:4]))
    steps = tf.data.Dataset.from_generator(lambda: iter(x), output_signature=tf.TensorSpec(
        (6,), tf.float32)).batch(16)  # unknown cardinality: counted in a pass
    assert steps_per_epoch(steps, 16) == 6 == steps_per_epoch(x, 16)


def test_aec_stream_assignment_handles_a_random_start_and_empty_clusters(blobs):
    x = blobs[0]
    stream = tf.data.Dataset.from_tensor_slices(x).batch(16)
    model = AEC(3, random_state=0, **TINY)
    model.fit(stream, epochs=1, verbose=0)
    # The state works on the batches as the networks see them: scaled.
    scaled = model.prepare_inputs(stream)
    low, high = x.min(0), x.max(0)  # AEC's sigmoid output: min-max for tables
    np.testing.assert_allclose(np.concatenate(list(scaled.as_numpy_iterator())),
                               (x - low) / (high - low), rtol=1e-4, atol=1e-5)

    def stream_state():
        return np.concatenate([state.numpy() for _, state in model.assignment.chunks(scaled)])

    # The random start is the array's, row by row.
    model.initialize_assignments(stream)
    in_memory = AEC(3, random_state=0, **TINY)
    in_memory.copy_autoencoder_from(model)
    np.testing.assert_array_equal(stream_state(), in_memory.initialize_assignments(x))
    # An assignment that leaves cluster 2 empty: both paths re-seed it from the code
    # farthest from its own centroid and move that row to it.
    codes = model.embed(x)
    centroids = np.stack([codes[:45].mean(0), codes[45:].mean(0), codes.mean(0) + 100])
    model.centroid_head.set_centroids(centroids.astype(np.float32))
    model.assignment.take(scaled, None)
    previous = stream_state()
    assert 2 not in previous
    got = model.update_centroids_and_assignments(stream)
    in_memory.assignment.store(in_memory.prepare_inputs(x), previous)
    expected = in_memory.update_centroids_and_assignments(x)
    assert got["empty_clusters"] == expected["empty_clusters"] == 1
    assert got == pytest.approx(expected)
    np.testing.assert_allclose(model.code_centroids(), in_memory.code_centroids(), atol=1e-6)
    np.testing.assert_array_equal(stream_state(), in_memory.assignment.values.numpy())


@pytest.mark.parametrize("init", ["kmeans", "gmm"])
def test_damic_initialises_and_fits_on_a_stream(blobs, init):
    x = blobs[0]
    options = {"init_epochs": 2, "n_init": 3, "clustering_units": (8,),
               "init": init}
    models = [DAMIC(3, random_state=0, **TINY, **options) for _ in range(2)]
    for model in models:
        model.pretrain(x, epochs=3, verbose=0)
    stream = tf.data.Dataset.from_tensor_slices(x).batch(16)
    np.testing.assert_array_equal(models[1].initialize(stream), models[0].initialize(x))
    history = models[1].fit(stream, epochs=2, verbose=0)
    assert history.history["loss"][1] < history.history["loss"][0]
    assert [int(s.sum()) for s in models[1].cluster_monitor.sizes] == [90, 90]


def test_dac_reservoir_sample_is_uniform_and_complete():
    rows = np.arange(100, dtype=np.float32)[:, None]
    stream = tf.data.Dataset.from_tensor_slices(rows).batch(7)
    model = DAC(3, n_weight_samples=200, **TINY)
    np.testing.assert_array_equal(model._reservoir_sample(stream), rows)  # m >= N: all rows
    counts = np.zeros(100)
    for seed in range(300):
        model = DAC(3, n_weight_samples=10, random_state=seed, **TINY)
        sample = model._reservoir_sample(stream).ravel().astype(int)
        assert len(set(sample)) == 10
        counts[sample] += 1
    # Each row is kept with probability 10/100: 30 of 300 times (binomial sd 5.2).
    assert counts.min() >= 10 and counts.max() <= 50
    assert abs(counts[:50].sum() - counts[50:].sum()) < 300  # no bias to early rows


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
    # As stored: the pixel values as float32, not divided by 255.
    np.testing.assert_array_equal(np.concatenate(list(dataset.as_numpy_iterator())),
                                  images[..., None].astype(np.float32))
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
