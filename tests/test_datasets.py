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
    np.testing.assert_allclose(x[..., 0], raw / 255.0, rtol=1e-6)
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
    np.testing.assert_allclose(xs, x / 11.0, rtol=1e-6)  # min-max scaled to [0, 1]
    np.testing.assert_array_equal(ys, y)
    np.save(tmp_path / "d.npy", x.astype(np.float32) / 11.0)
    xs, ys = datasets.load(tmp_path / "d.npy")
    assert ys is None and xs.shape == (4, 3)
    (tmp_path / "d.csv").write_text("a,b,label\n0.1,0.2,1\n0.3,0.4,0\n")
    xs, ys = datasets.load(tmp_path / "d.csv")
    np.testing.assert_allclose(xs, [[0.1, 0.2], [0.3, 0.4]], rtol=1e-6)
    np.testing.assert_array_equal(ys, [1, 0])


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
    (tmp_path / "text.csv").write_text("a,b\n1,x\n")
    with pytest.raises(ValueError, match="is not a numeric CSV"):
        datasets.load(tmp_path / "text.csv")
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
    assert x.shape == (5, 16, 16, 1) and x.dtype == np.float32
    np.testing.assert_array_equal(y, [0, 1, 2, 0, 1])
    with pytest.raises(datasets.DataNotFoundError, match="Download usps.h5"):
        datasets.load_usps(tmp_path / "none.h5")
