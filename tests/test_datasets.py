import gzip

import numpy as np
import pytest

from keras_deepclust import datasets
from keras_deepclust.readers import named


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
    monkeypatch.setitem(named.DEBIAN_DIRS, "fashion_mnist", str(tmp_path / "none"))
    monkeypatch.setattr(named, "_from_tensorflow_datasets", lambda name, split: None)
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
    # scikit-learn's frames name the labels "target": labels, not a feature.
    (tmp_path / "frame.csv").write_text("a,b,target\n0.1,20,1\n0.3,-40,0\n")
    xs, ys = datasets.load(tmp_path / "frame.csv")
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


# ---------------------------------------------------------------- user files
def error_of(source, **kwargs):
    """The message `datasets.load` refuses `source` with (a ValueError or a
    FileNotFoundError, the two the CLI prints as one line)."""
    with pytest.raises((ValueError, FileNotFoundError)) as caught:
        datasets.load(source, **kwargs)
    return str(caught.value)


def test_csv_as_excel_and_pandas_write_it(tmp_path):
    rows = ["0,1.5,2", "1,3,4", "0,5,6"]
    # Excel's "CSV UTF-8": a byte-order mark before the first header cell, CRLF lines.
    lines = "\r\n".join(["label,a,b", *rows, ""])
    (tmp_path / "bom.csv").write_bytes(b"\xef\xbb\xbf" + lines.encode())
    x, y = datasets.load(tmp_path / "bom.csv")
    np.testing.assert_array_equal(x, [[1.5, 2], [3, 4], [5, 6]])
    np.testing.assert_array_equal(y, [0, 1, 0])
    # Excel in many locales: ';' between cells; quoted cells; trailing ',,,' lines skipped.
    (tmp_path / "semi.csv").write_text("label;a;b\n" + "\n".join(r.replace(",", ";") for r in rows))
    np.testing.assert_array_equal(datasets.load(tmp_path / "semi.csv")[0], x)
    (tmp_path / "quoted.csv").write_text('"label","a","b"\n' + "\n".join(
        ",".join(f'"{c}"' for c in r.split(",")) for r in rows) + "\n,,\n\n")
    np.testing.assert_array_equal(datasets.load(tmp_path / "quoted.csv")[0], x)
    # Class names are mapped to ids in sorted order.
    (tmp_path / "names.csv").write_text("a,b,label\n1,2,dog\n3,4,cat\n5,6,dog\n")
    np.testing.assert_array_equal(datasets.load(tmp_path / "names.csv")[1], [1, 0, 1])
    # Blank lines do not shift the line numbers of the messages.
    (tmp_path / "blank.csv").write_text("a,b\n\n1,2\n\n3,x\n")
    assert error_of(tmp_path / "blank.csv").endswith(
        "blank.csv: column 'b' is not numeric (line 5: 'x'). Encode or drop non-numeric "
        "columns first.")


def test_bad_csv_files(tmp_path):
    def message(text, name="bad.csv", encoding="utf-8"):
        (tmp_path / name).write_bytes(text.encode(encoding))
        return error_of(tmp_path / name).replace(str(tmp_path / name), name)

    body = "".join(f"{i},{i + 1}\n" for i in range(600))
    assert message("a,b\n" + body.replace("499,500", "499,abc")) == (
        "bad.csv: column 'b' is not numeric (line 501: 'abc'). Encode or drop non-numeric "
        "columns first.")
    assert message("a,b\n") == "bad.csv has a header but no rows."
    assert message("") == "bad.csv is empty."
    assert message("a,b\n1,2\n3,4,5\n") == "bad.csv, line 3: 3 cells where line 1 has 2."
    assert message("a,b\n1,2\n") == "bad.csv has 1 sample; at least 2 are needed."
    assert message("a;b\n1,5;2\n3;4\n") == (
        "bad.csv: column 'a' is not numeric (line 2: '1,5'). Decimal commas are not read: "
        "write numbers with a decimal point. Encode or drop non-numeric columns first.")
    assert message("café,b\n1,2\n", encoding="latin-1") == (
        'bad.csv is not UTF-8 text (byte 0xe9 on line 1): save it as "CSV UTF-8".')
    assert message("a,label\n1,0\n2,0.5\n") == (
        "labels (column 'label') of bad.csv must be whole numbers (class ids), not "
        "fractions; line 3 holds 0.5.")
    assert message("a,label\n1,0\n2,nan\n") == (
        "labels (column 'label') of bad.csv must name a class for every sample; line 3 "
        "holds nan.")
    assert message("a,label\n1,0\n2,\n") == (
        "labels (column 'label') of bad.csv must name a class for every row; line 3 is empty.")
    assert message("a,label\n1,0\n2,one\n") == (
        "labels (column 'label') of bad.csv mix numbers (line 2: '0') and text (line 3: "
        "'one'); give every row a class id or every row a class name.")
    assert message("a,b\n1,2\n3,inf\n") == (
        "bad.csv: column 'b' holds NaN or an infinite value (line 3: 'inf').")
    assert message("a,b\n1,2\n3,1e39\n") == (
        "bad.csv: column 'b' holds NaN or an infinite value beyond float32's range (line 3: "
        "'1e39').")
    assert message("label\n0\n1\n") == "bad.csv has samples of shape (0,): no values to cluster."
    assert message(",a\n0,5\n1,6\n2,7\n") == (
        "bad.csv: the first column has no name and holds the row numbers 0 to 2: a row "
        "index (pandas writes one unless to_csv(..., index=False)), not a feature. Drop it.")


def test_fractional_and_missing_labels_are_refused_in_every_format(tmp_path):
    x = np.ones((3, 2))
    np.savez(tmp_path / "frac.npz", x=x, y=[0, 1.5, 1])
    assert error_of(tmp_path / "frac.npz").endswith(
        "frac.npz must be whole numbers (class ids), not fractions; index 1 holds 1.5.")
    np.savez(tmp_path / "nan.npz", x=x, y=[0, 1, np.nan])
    assert error_of(tmp_path / "nan.npz").endswith(
        "nan.npz must name a class for every sample; index 2 holds nan.")
    np.savez(tmp_path / "whole.npz", x=x, y=[0.0, 2.0, 1.0])  # floats that are whole: kept
    assert datasets.load(tmp_path / "whole.npz")[1].tolist() == [0, 2, 1]
    np.savez(tmp_path / "names.npz", x=x, labels=["b", "a", "b"])
    assert datasets.load(tmp_path / "names.npz")[1].tolist() == [1, 0, 1]
    # IDX label files may hold floats (type 0x0D).
    write_idx(tmp_path / "t10k-images-idx3-ubyte", np.zeros((2, 3, 3), np.uint8))
    with open(tmp_path / "t10k-labels-idx1-ubyte", "wb") as f:
        f.write(bytes([0, 0, 0x0D, 1]) + (2).to_bytes(4, "big")
                + np.array([1, 0.5], ">f4").tobytes())
    assert error_of(tmp_path).endswith(
        "t10k-labels-idx1-ubyte must be whole numbers (class ids), not fractions; index 1 "
        "holds 0.5.")
    pa = pytest.importorskip("pyarrow")
    pq = pytest.importorskip("pyarrow.parquet")
    pq.write_table(pa.table({"a": [1.0, 2.0], "label": [1.0, 2.25]}), tmp_path / "f.parquet")
    assert error_of(tmp_path / "f.parquet").endswith(
        "f.parquet must be whole numbers (class ids), not fractions; row 1 holds 2.25.")
    h5py = pytest.importorskip("h5py")
    with h5py.File(tmp_path / "usps.h5", "w") as f:
        for group in ("train", "test"):
            f[f"{group}/data"] = np.zeros((2, 256))
            f[f"{group}/target"] = [3.0, np.nan]
    assert error_of(tmp_path / "usps.h5").endswith(
        "usps.h5 must name a class for every sample; index 1 holds nan.")


def test_bad_npy_and_npz_files(tmp_path):
    def message(name, write):
        write(tmp_path / name)
        return error_of(tmp_path / name).replace(str(tmp_path) + "/", "")

    def save(array, **kwargs):
        return lambda path: np.save(path, array, **kwargs)

    assert message("zero.npy", lambda p: p.write_bytes(b"")) == "zero.npy is empty (0 bytes)."
    assert message("text.npy", lambda p: p.write_text("1,2\n")) == (
        "text.npy is not an .npy file (it starts with b'1,2\\n'; np.save writes files "
        "starting with b'\\x93NUMPY').")
    assert message("objects.npy", save(np.array([{}, 1], object), allow_pickle=True)) == (
        "objects.npy holds Python objects (a pickled object array), which are never read: "
        "save a numeric array.")
    assert message("scalar.npy", save(np.float32(3))) == (
        "scalar.npy must have shape (n_samples, n_features) or (n_samples, height, width, "
        "channels), got shape ().")
    assert "flat.npy must have shape" in message("flat.npy", save(np.ones(4)))
    assert message("table.npy", save(np.zeros(3, [("a", "f4"), ("b", "i4")]))) == (
        "table.npy must be a plain numeric array, got a structured array with fields a, b; "
        "stack them into columns first.")
    assert message("words.npy", save(np.array([["a"], ["b"]]))) == (
        "words.npy must be numeric, got dtype <U1.")
    assert message("complex.npy", save(np.ones((2, 2), complex))) == (
        "complex.npy must hold real numbers, got dtype complex128.")
    assert message("one.npy", save(np.ones((1, 2)))) == (
        "one.npy has 1 sample; at least 2 are needed.")
    np.save(tmp_path / "whole.npy", np.ones((4, 3)))
    assert message("cut.npy", lambda p: p.write_bytes(
        (tmp_path / "whole.npy").read_bytes()[:-30])) == (
        "cut.npy ends after 2 of the 4 samples its header announces.")
    nan = np.ones((4, 3))
    nan[2, 1] = np.nan
    assert message("nan.npy", save(nan)) == (
        "nan.npy contains NaN or infinite values (1 of them, first at index (2, 1)): row 2, "
        "column 1 holds nan (counting from 0).")
    # .npz archives
    assert message("zero.npz", lambda p: p.write_bytes(b"")) == "zero.npz is empty (0 bytes)."
    assert message("npy.npz", lambda p: p.write_bytes((tmp_path / "whole.npy").read_bytes())) \
        .startswith("npy.npz is not an .npz archive (it is an .npy file: name it .npy); it starts")
    assert message("two.npz", lambda p: np.savez(p, data=np.ones((2, 2)), more=np.ones((2, 2)))) \
        == ("two.npz holds the arrays ['data', 'more'] and none is named 'x': save the samples "
            "as 'x' (and the labels as 'y').")
    assert message("only_y.npz", lambda p: np.savez(p, y=[0, 1])) == (
        "only_y.npz holds only labels ('y'); save the samples as 'x'.")
    assert message("none.npz", lambda p: np.savez(p)) == "none.npz holds no arrays."
    assert message("objects.npz", lambda p: np.savez(p, x=np.array([{}, 1], object))).startswith(
        "array 'x' of objects.npz cannot be read: Object arrays cannot be loaded")
    # One array under another name is the samples.
    np.savez(tmp_path / "named.npz", features=np.ones((2, 2)))
    assert datasets.load(tmp_path / "named.npz")[0].shape == (2, 2)


def test_bad_idx_usps_parquet_and_folders(tmp_path):
    def message(name, content):
        path = tmp_path / name
        if isinstance(content, bytes):
            path.write_bytes(content)
        return error_of(path).replace(str(tmp_path) + "/", "")

    assert message("zero-idx3-ubyte", b"") == "zero-idx3-ubyte is empty (0 bytes)."
    assert message("magic-idx3-ubyte", b"PK\x03\x04rest").startswith(
        "magic-idx3-ubyte is not an IDX file (bad magic number b'PK\\x03\\x04'")
    assert message("short-idx3-ubyte", bytes([0, 0, 8, 3, 0, 0])) == (
        "short-idx3-ubyte ends inside its IDX header (3 dimensions announced).")
    assert message("plain-idx3-ubyte.gz", bytes([0, 0, 8, 3])) == (
        "plain-idx3-ubyte.gz cannot be read as a gzipped IDX file: Not a gzipped file "
        "(b'\\x00\\x00')")
    write_idx(tmp_path / "whole-idx3-ubyte.gz", np.zeros((40, 9, 9), np.uint8))
    cut = (tmp_path / "whole-idx3-ubyte.gz").read_bytes()[:-12]
    assert message("cut-idx3-ubyte.gz", cut) == (
        "cut-idx3-ubyte.gz cannot be read as a gzipped IDX file: Compressed file ended "
        "before the end-of-stream marker was reached")
    assert message("usps.h5", b"") == "usps.h5 is empty (0 bytes)."
    assert message("text.h5", b"not hdf5") == "text.h5 is not an HDF5 file (usps.h5 is one)."
    h5py = pytest.importorskip("h5py")
    with h5py.File(tmp_path / "other.h5", "w") as f:
        f["train/data"] = np.zeros((2, 256))
    assert message("other.h5", None).startswith("other.h5 has no dataset train/target: usps.h5 "
                                                "holds groups train and test")
    assert message("x.parquet", b"") == "x.parquet is empty (0 bytes)."
    assert message("junk.parquet", b"PAR1 not really").startswith(
        "junk.parquet is not a readable Parquet file: ")
    (tmp_path / "empty").mkdir()
    assert message("empty", None).startswith("empty is a folder without data: a data folder "
                                             "holds {train,t10k}-{images-idx3,labels-idx1}")
    with pytest.raises(ValueError, match="No data set given: the name or path is empty"):
        datasets.load(" ")
    assert message("notes.txt", b"hello") == (
        "Cannot tell the format of notes.txt: use .npy, .npz, .csv, .parquet, usps .h5 or "
        "IDX (*-ubyte[.gz]).")


def test_identify_decides_once_what_a_path_is(tmp_path, idx_dir):
    from matplotlib import image as mpimg

    assert datasets.identify("digits").kind == "digits"
    assert datasets.identify(idx_dir) == datasets.Source("idx_folder", idx_dir, split="test")
    assert datasets.identify(idx_dir / "t10k-images-idx3-ubyte.gz").kind == "idx"
    (tmp_path / "d.CSV").write_text("a\n1\n")
    assert datasets.identify(tmp_path / "d.CSV").kind == "csv"
    only_train = tmp_path / "only_train"
    only_train.mkdir()
    for name in ("train-images-idx3-ubyte.gz", "train-labels-idx1-ubyte"):
        (only_train / name).write_bytes((idx_dir / name).read_bytes())
    assert datasets.identify(only_train).split == "train"
    assert datasets.load(only_train)[0].shape == (6, 5, 4, 1)
    images = tmp_path / "images"
    images.mkdir()
    for i in range(3):
        mpimg.imsave(images / f"{i}.png", np.full((4, 5), i * 100, np.uint8), cmap="gray",
                     vmin=0, vmax=255)
    assert datasets.identify(images).kind == "images"
    x, y = datasets.load(images)
    assert x.shape == (3, 4, 5, 4) and y is None and x.max() <= 1
    (images / "broken.png").write_bytes(b"\x89PNG not an image")
    assert error_of(images).startswith(f"{images / 'broken.png'} is not a readable image")
    converted = tmp_path / "converted"
    converted.mkdir()
    (converted / "meta.json").write_text("{}")
    assert datasets.identify(converted).kind == "converted"
    # `assign` and `evaluate` take no --stream: the error says who reads it.
    assert error_of(converted).endswith("is a folder of TFRecord shards written by `convert`: "
                                        "only `fit --stream` (datasets.stream) reads it, batch "
                                        "by batch; give this command the data it was "
                                        "converted from.")
