"""Data larger than memory: `datasets.stream` reads .npy and IDX files batch by batch,
and pretraining and every method's fit take the stream."""

import gzip
import json

import numpy as np
import pytest
import tensorflow as tf

from keras_deepclust import datasets, tfrecords
from keras_deepclust.backup import ClusteringBackup
from keras_deepclust.models import AEC, DAC, DAMIC, DEC, AEKMeans
from keras_deepclust.models.trainer import steps_per_epoch

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
    # NaN fails before any batch is made (a float file is read once up front), naming its
    # row and column; a file cut short at once (its size tells).
    bad = x.copy()
    bad[20, 3] = np.nan
    np.save(tmp_path / "nan.npy", bad)
    with pytest.raises(ValueError, match=r"nan.npy contains NaN or infinite values \(first at "
                       r"index \(20, 3\)\): row 20, column 3 holds nan"):
        datasets.stream(tmp_path / "nan.npy", batch_size=7)
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
    (tmp_path / "half" / "part-00000-of-00001.tfrecord").write_bytes(b"x")
    with pytest.raises(ValueError, match="holds TFRecord shards but no meta.json: an interrupted"):
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
    with pytest.raises(ValueError, match=r"3.png is 6 x 4 pixels, the first image 0.png 5 x 4: resize them alike"):
        tfrecords.convert(folder, tmp_path / "bad")


def test_stream_and_convert_bad_input(tmp_path, blobs):
    from keras_deepclust import tfrecords

    x, _ = blobs
    np.save(tmp_path / "x.npy", x)
    with pytest.raises(ValueError, match="batch_size must be a positive integer, got 0"):
        datasets.stream(tmp_path / "x.npy", batch_size=0)
    np.save(tmp_path / "flat.npy", x[:, 0])
    with pytest.raises(ValueError, match=r"flat.npy must have shape \(n_samples, n_features\) .*"
                       r"got shape \(90,\)"):
        datasets.stream(tmp_path / "flat.npy")
    np.save(tmp_path / "fortran.npy", np.asfortranarray(x))
    with pytest.raises(ValueError, match="fortran.npy is stored in Fortran order; streaming reads"):
        datasets.stream(tmp_path / "fortran.npy")
    with pytest.raises(ValueError, match="rows_per_shard must be a positive integer, got 0"):
        tfrecords.convert(tmp_path / "x.npy", tmp_path / "s0", rows_per_shard=0)
    tfrecords.convert(tmp_path / "x.npy", tmp_path / "unlabelled")
    with pytest.raises(ValueError, match="was converted without labels"):
        tfrecords.read(tmp_path / "unlabelled", with_labels=True)
    (tmp_path / "empty").mkdir()
    with pytest.raises(ValueError, match=r"empty is a folder without data: .* or images \(.png"):
        tfrecords.convert(tmp_path / "empty", tmp_path / "s1")


def _idx_folder(folder, n_train=7, n_test=5, dtype=np.uint8):
    """An MNIST-style folder: gzipped images (n, 4, 3) and raw labels, both splits."""
    folder.mkdir(exist_ok=True)
    rng = np.random.default_rng(3)
    images = {}
    for prefix, n in (("train", n_train), ("t10k", n_test)):
        images[prefix] = rng.integers(0, 256, size=(n, 4, 3)).astype(np.uint8)
        write_idx(folder / f"{prefix}-images-idx3-ubyte.gz", images[prefix])
        with open(folder / f"{prefix}-labels-idx1-ubyte", "wb") as f:
            f.write(bytes([0, 0, 8, 1]) + n.to_bytes(4, "big") + (np.arange(n) % 3).astype(
                np.uint8).tobytes())
    return images


def test_stream_of_idx_folders_and_named_data_sets(tmp_path, monkeypatch):
    images = _idx_folder(tmp_path / "fashion-mnist")
    dataset, n = datasets.stream(tmp_path / "fashion-mnist", batch_size=4)  # the test split
    assert n == 5
    np.testing.assert_array_equal(np.concatenate(list(dataset.as_numpy_iterator())),
                                  images["t10k"][..., None])
    monkeypatch.setenv(datasets.DATA_DIR_ENV, str(tmp_path))
    dataset, n = datasets.stream("fashion_mnist_all", batch_size=4)
    batches = list(dataset.as_numpy_iterator())
    # Train then test, in batches of 4 across the two files: 12 rows in 3 full batches.
    assert n == 12 and [len(b) for b in batches] == [4, 4, 4]
    np.testing.assert_array_equal(np.concatenate(batches)[..., 0],
                                  np.concatenate([images["train"], images["t10k"]]))
    np.testing.assert_array_equal(np.concatenate(batches), datasets.load("fashion_mnist_all")[0])


def test_stream_refuses_bad_data_before_the_first_batch(tmp_path):
    values = np.zeros((30, 2, 2), ">f4")
    values[17, 1, 0] = np.inf
    with gzip.open(tmp_path / "float-idx3-ubyte.gz", "wb") as f:
        f.write(bytes([0, 0, 0x0D, 3]) + b"".join(int(s).to_bytes(4, "big") for s in values.shape)
                + values.tobytes())
    with pytest.raises(ValueError, match=r"float-idx3-ubyte.gz contains NaN or infinite values "
                       r"\(first at index \(17, 1, 0, 0\)\): row 17, position \(1, 0, 0\) of the "
                       r"sample holds inf"):
        datasets.stream(tmp_path / "float-idx3-ubyte.gz", batch_size=8)
    write_idx(tmp_path / "whole-idx3-ubyte.gz", np.zeros((400, 8, 8)))
    (tmp_path / "cut-idx3-ubyte.gz").write_bytes(
        (tmp_path / "whole-idx3-ubyte.gz").read_bytes()[:-20])
    with pytest.raises(ValueError, match=r"cut-idx3-ubyte.gz cannot be read as a gzipped file: "
                       "Compressed file ended"):
        datasets.stream(tmp_path / "cut-idx3-ubyte.gz")
    np.save(tmp_path / "one.npy", np.ones((1, 3)))
    with pytest.raises(ValueError, match="one.npy has 1 sample; at least 2 are needed"):
        datasets.stream(tmp_path / "one.npy")
    (tmp_path / "rows.csv").write_text("a,b\n1,2\n3,4\n")
    with pytest.raises(ValueError, match=r"rows.csv is not read batch by batch: .* Convert it "
                       r"first \(keras-deepclust convert .*rows.csv --out DIR\) and stream DIR"):
        datasets.stream(tmp_path / "rows.csv")
    with pytest.raises(ValueError, match="stored in Fortran order"):
        tfrecords.convert(_fortran(tmp_path), tmp_path / "never")
    assert not (tmp_path / "never").exists()


def _fortran(tmp_path):
    np.save(tmp_path / "fortran.npy", np.asfortranarray(np.ones((4, 3))))
    return tmp_path / "fortran.npy"


def test_convert_takes_what_load_takes_and_keeps_labels(tmp_path, monkeypatch):
    images = _idx_folder(tmp_path / "idx")
    meta = tfrecords.convert(tmp_path / "idx", tmp_path / "from_folder", rows_per_shard=2)
    assert meta["n_samples"] == 5 and meta["has_labels"] and meta["sample_shape"] == [4, 3, 1]
    assert len(meta["shards"]) == 3
    labelled, _ = tfrecords.read(tmp_path / "from_folder", batch_size=4, with_labels=True)
    x = np.concatenate([b[0] for b in labelled.as_numpy_iterator()])
    y = np.concatenate([b[1] for b in labelled.as_numpy_iterator()])
    np.testing.assert_array_equal(x[..., 0], images["t10k"])
    np.testing.assert_array_equal(y, np.arange(5) % 3)
    monkeypatch.setenv(datasets.DATA_DIR_ENV, str(tmp_path / "idx"))
    meta = tfrecords.convert("mnist_all", tmp_path / "named")
    assert meta["n_samples"] == 12 and meta["has_labels"]
    (tmp_path / "t.csv").write_text("\ufefflabel,a\n1,0.5\n0,1.5\n")
    meta = tfrecords.convert(tmp_path / "t.csv", tmp_path / "from_csv")
    assert meta["has_labels"] and meta["sample_shape"] == [1]
    # Everything is checked before anything is written: a bad source leaves no folder.
    np.savez(tmp_path / "frac.npz", x=np.ones((3, 2)), y=[0, 0.5, 1])
    with pytest.raises(ValueError, match=r"frac.npz must be whole numbers .* index 1 holds 0.5"):
        tfrecords.convert(tmp_path / "frac.npz", tmp_path / "not_written")
    assert not (tmp_path / "not_written").exists()
    with pytest.raises(ValueError, match=r"from_csv is already a folder of TFRecord shards"):
        tfrecords.convert(tmp_path / "from_csv", tmp_path / "again")


def test_convert_never_mixes_with_or_replaces_user_files(tmp_path):
    from matplotlib import image as mpimg

    np.save(tmp_path / "x.npy", np.ones((5, 2), np.float32))
    (tmp_path / "mine").mkdir()
    (tmp_path / "mine" / "part-00000-of-00001.tfrecord").write_bytes(b"my own file")
    (tmp_path / "file").write_text("mine")
    before = {p: p.read_bytes() for p in tmp_path.rglob("*") if p.is_file()}
    for out, message in ((tmp_path / "mine", r"mine is not empty \(it holds "
                          r"part-00000-of-00001.tfrecord\); convert writes into a new or empty"),
                         (tmp_path / "file", "file is a file; convert writes a folder"),
                         (tmp_path / "file" / "sub",
                          r"cannot write .*sub: .*file is a file, not a folder")):
        with pytest.raises(ValueError, match=message):
            tfrecords.convert(tmp_path / "x.npy", out)
    for bad in (0, -3, 2.5, True):
        with pytest.raises(ValueError, match=rf"rows_per_shard must be a positive integer, got "
                           rf"{bad!r}"):
            tfrecords.convert(tmp_path / "x.npy", tmp_path / "new", rows_per_shard=bad)
    (tmp_path / "empty").mkdir()  # an empty folder is fine
    assert tfrecords.convert(tmp_path / "x.npy", tmp_path / "empty")["n_samples"] == 5
    with pytest.raises(ValueError, match="empty already holds a conversion"):
        tfrecords.convert(tmp_path / "x.npy", tmp_path / "empty")
    # An image of another size is found before anything is written: neither the target
    # nor a temporary folder is left.
    folder = tmp_path / "pngs"
    folder.mkdir()
    for i, shape in enumerate([(4, 4), (4, 4), (5, 4)]):
        mpimg.imsave(folder / f"{i}.png", np.zeros(shape, np.uint8), cmap="gray")
    with pytest.raises(ValueError, match=r"2.png is 5 x 4 pixels, the first image 0.png 4 x 4"):
        tfrecords.convert(folder, tmp_path / "shards")
    assert not (tmp_path / "shards").exists() and not list(tmp_path.glob(".shards*"))
    assert all(p.read_bytes() == content for p, content in before.items())


def test_converted_folders_with_bad_metadata(tmp_path):
    np.save(tmp_path / "x.npy", np.ones((5, 2), np.float32))
    tfrecords.convert(tmp_path / "x.npy", tmp_path / "s")
    meta = tmp_path / "s" / "meta.json"
    good = meta.read_text()
    for text, message in (
            ("{not json", r"s/meta.json is not valid JSON \(Expecting property name"),
            ("[1, 2]", r"s/meta.json is not a conversion's metadata"),
            (good.replace('"n_samples"', '"rows"'), r"s/meta.json: 'n_samples' is missing or "
                                                    r"invalid \(None\)"),
            (good.replace('"has_labels": false', '"has_labels": "no"'),
             r"s/meta.json: 'has_labels' is missing or invalid \('no'\)"),
            (good.replace("part-00000-of-00001", "part-00009-of-00001"),
             r"shard 'part-00009-of-00001.tfrecord' listed in meta.json is missing or empty")):
        meta.write_text(text)
        with pytest.raises(ValueError, match=message):
            datasets.stream(tmp_path / "s")
    # Samples of another size than meta.json says, a damaged shard: refused before the
    # dataset is made, naming the shard.
    meta.write_text(good.replace('"sample_shape": [\n    2\n  ]', '"sample_shape": [\n    3\n  ]'))
    shard = tmp_path / "s" / "part-00000-of-00001.tfrecord"
    with pytest.raises(ValueError, match=r"part-00000-of-00001.tfrecord: its first sample is not "
                       r"12 bytes of float32 \(shape \(3,\) in meta.json\)"):
        datasets.stream(tmp_path / "s")
    meta.write_text(good)
    shard.write_bytes(shard.read_bytes()[:20])
    with pytest.raises(ValueError, match=r"part-00000-of-00001.tfrecord is not a readable "
                       r"TFRecord file \(truncated record"):
        datasets.stream(tmp_path / "s")
