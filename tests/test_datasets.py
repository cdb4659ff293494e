import gzip

import numpy as np
import pytest

from keras_deepclust import datasets


def write_idx(path, array):
    codes = {np.dtype(np.uint8): 0x08, np.dtype(">i4"): 0x0C}
    header = bytes([0, 0, codes[array.dtype], array.ndim])
    header += b"".join(int(s).to_bytes(4, "big") for s in array.shape)
    opener = gzip.open if str(path).endswith(".gz") else open
    with opener(path, "wb") as f:
        f.write(header + array.tobytes())


@pytest.fixture
def idx_dir(tmp_path):
    rng = np.random.default_rng(0)
    for prefix, n in (("train", 6), ("t10k", 4)):
        write_idx(tmp_path / f"{prefix}-images-idx3-ubyte.gz",
                  rng.integers(0, 256, (n, 5, 4), dtype=np.uint8))
        write_idx(tmp_path / f"{prefix}-labels-idx1-ubyte", np.arange(n, dtype=np.uint8) % 3)
    return tmp_path


def test_digits_is_scaled_images():
    x, y = datasets.load_digits()
    assert x.shape == (1797, 8, 8, 1) and x.dtype == np.float32
    assert x.min() == 0.0 and x.max() == 1.0
    assert sorted(set(y.tolist())) == list(range(10))


def test_idx_round_trip_gzipped_and_raw(idx_dir):
    raw = datasets.read_idx(idx_dir / "train-images-idx3-ubyte.gz")
    x, y = datasets.load_idx_directory(idx_dir, split="train")
    assert x.shape == (6, 5, 4, 1)
    # As stored: the models learn their scaling (uint8 pixels by 255) themselves.
    assert x.dtype == np.uint8
    np.testing.assert_array_equal(x[..., 0], raw)
    np.testing.assert_array_equal(y, [0, 1, 2, 0, 1, 2])
    x_all, y_all = datasets.load_idx_directory(idx_dir, split="all")
    assert x_all.shape[0] == 10 and y_all.shape == (10,)
    big_endian = np.arange(6, dtype=">i4").reshape(2, 3)
    write_idx(idx_dir / "ints-idx2", big_endian)
    np.testing.assert_array_equal(datasets.read_idx(idx_dir / "ints-idx2"), big_endian)


def test_named_dataset_found_through_environment(idx_dir, monkeypatch):
    monkeypatch.setenv(datasets.DATA_DIR_ENV, str(idx_dir))
    x, y = datasets.load_fashion_mnist(split="test")
    assert x.shape == (4, 5, 4, 1) and len(y) == 4


def test_missing_named_dataset_says_how_to_get_it(tmp_path, monkeypatch):
    monkeypatch.setenv(datasets.DATA_DIR_ENV, str(tmp_path))
    monkeypatch.setitem(datasets._DEBIAN_DIRS, "fashion_mnist", str(tmp_path / "none"))
    monkeypatch.setattr(datasets, "_from_tensorflow_datasets", lambda name, split: None)
    with pytest.raises(datasets.DataNotFoundError, match="apt-get install dataset-fashion-mnist"):
        datasets.load_fashion_mnist()


def test_bad_idx_file(tmp_path):
    bad = tmp_path / "bad-idx"
    bad.write_bytes(b"\x01\x02\x03\x04rest")
    with pytest.raises(ValueError, match="is not an IDX file"):
        datasets.read_idx(bad)
    truncated = tmp_path / "short-idx"
    truncated.write_bytes(bytes([0, 0, 8, 1]) + (10).to_bytes(4, "big") + b"abc")
    with pytest.raises(ValueError, match=r"header says shape \(10,\)"):
        datasets.read_idx(truncated)


def test_npz_npy_csv(tmp_path):
    x = np.arange(12, dtype=np.float64).reshape(4, 3)
    y = np.array([0, 1, 0, 1])
    np.savez(tmp_path / "d.npz", x=x, y=y)
    xs, ys = datasets.load(tmp_path / "d.npz")
    # As stored (the models learn their scaling): no min-max to [0, 1], dtype kept.
    assert xs.dtype == np.float64
    np.testing.assert_array_equal(xs, x)
    np.testing.assert_array_equal(ys, y)
    np.save(tmp_path / "d.npy", x.astype(np.float32) * 3)
    xs, ys = datasets.load(tmp_path / "d.npy")
    assert ys is None and xs.shape == (4, 3) and xs.dtype == np.float32
    np.testing.assert_array_equal(xs, x.astype(np.float32) * 3)
    pixels = np.arange(24, dtype=np.uint8).reshape(2, 3, 4, 1) * 10
    np.save(tmp_path / "pixels.npy", pixels)
    xs, _ = datasets.load(tmp_path / "pixels.npy")
    assert xs.dtype == np.uint8
    np.testing.assert_array_equal(xs, pixels)
    (tmp_path / "d.csv").write_text("a,b,label\n0.1,20,1\n0.3,-40,0\n")
    xs, ys = datasets.load(tmp_path / "d.csv")
    assert xs.dtype == np.float32
    np.testing.assert_allclose(xs, [[0.1, 20], [0.3, -40]], rtol=1e-6)
    np.testing.assert_array_equal(ys, [1, 0])


def test_parquet(tmp_path):
    pa = pytest.importorskip("pyarrow")
    pq = pytest.importorskip("pyarrow.parquet")
    table = pa.table({"a": [0.5, 2.0, -1.0], "b": np.array([1, 2, 3], np.int64),
                      "label": [2, 0, 1]})
    pq.write_table(table, tmp_path / "d.parquet")
    xs, ys = datasets.load(tmp_path / "d.parquet")
    assert xs.dtype == np.float32
    np.testing.assert_array_equal(xs, [[0.5, 1], [2, 2], [-1, 3]])  # as stored
    np.testing.assert_array_equal(ys, [2, 0, 1])
    xs, ys = datasets.from_parquet(tmp_path / "d.parquet")  # no label column: all features
    assert ys is None
    np.testing.assert_array_equal(xs, [[0.5, 1, 2], [2, 2, 0], [-1, 3, 1]])
    pq.write_table(pa.table({"a": [1.0, 2.0], "colour": ["red", "blue"]}),
                   tmp_path / "text.parquet")
    with pytest.raises(ValueError, match=r"column 'colour' is not numeric"):
        datasets.load(tmp_path / "text.parquet")
    pq.write_table(pa.table({"a": [1.0, None]}), tmp_path / "null.parquet")
    with pytest.raises(ValueError, match=r"column 'a' has 1 null cells"):
        datasets.load(tmp_path / "null.parquet")
    with pytest.raises(ValueError, match=r"has no column named 'y'"):
        datasets.from_parquet(tmp_path / "d.parquet", label_column="y")


def test_bad_data_files(tmp_path):
    with pytest.raises(datasets.DataNotFoundError, match="Unknown dataset 'nope'"):
        datasets.load("nope")
    x = np.ones((3, 2))
    x[1, 1] = np.nan
    np.save(tmp_path / "nan.npy", x)
    with pytest.raises(ValueError, match=r"NaN or infinite values \(1 of them, first at index \(1, 1\)\)"):
        datasets.load(tmp_path / "nan.npy")
    np.savez(tmp_path / "labels.npz", x=np.ones((3, 2)), y=np.arange(4))
    with pytest.raises(ValueError, match="has 4 entries but the data has 3 samples"):
        datasets.load(tmp_path / "labels.npz")
    (tmp_path / "text.csv").write_text("a,b\n1,2\n1,x\n")
    with pytest.raises(ValueError, match=r"column 'b' is not numeric \(line 3: 'x'\)"):
        datasets.load(tmp_path / "text.csv")
    (tmp_path / "empty_cell.csv").write_text("a,b\n1,\n")
    with pytest.raises(ValueError, match=r"column 'b' is not numeric \(line 2: ''\)"):
        datasets.load(tmp_path / "empty_cell.csv")
    (tmp_path / "nan.csv").write_text("a,b\n1,2\nnan,3\n")
    with pytest.raises(ValueError, match=r"column 'a' holds NaN or an infinite value \(line 3: 'nan'\)"):
        datasets.load(tmp_path / "nan.csv")
    (tmp_path / "headless.csv").write_text("1,2\n3,inf\n")  # no header: columns by index
    with pytest.raises(ValueError, match=r"column '1' holds NaN or an infinite value \(line 2: 'inf'\)"):
        datasets.load(tmp_path / "headless.csv")
    np.save(tmp_path / "flat.npy", np.ones(5))
    with pytest.raises(ValueError, match=r"must have shape \(n_samples, n_features\)"):
        datasets.load(tmp_path / "flat.npy")


def test_usps_h5(tmp_path):
    h5py = pytest.importorskip("h5py")  # installed with keras
    rng = np.random.default_rng(0)
    path = tmp_path / "usps.h5"
    with h5py.File(path, "w") as f:
        for group, n in (("train", 3), ("test", 2)):
            f.create_group(group)
            f[group]["data"] = rng.uniform(0, 1, (n, 256))
            f[group]["target"] = np.arange(n)
    x, y = datasets.load(path)
    # As stored: the float64 values of the file, reshaped to images, not rescaled.
    assert x.shape == (5, 16, 16, 1) and x.dtype == np.float64
    with h5py.File(path, "r") as f:
        stored = np.concatenate([f[g]["data"][:] for g in ("train", "test")])
    np.testing.assert_array_equal(x.reshape(5, 256), stored)
    np.testing.assert_array_equal(y, [0, 1, 2, 0, 1])
    with pytest.raises(datasets.DataNotFoundError, match="Download usps.h5"):
        datasets.load_usps(tmp_path / "none.h5")
