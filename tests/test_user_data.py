"""The data files users bring, read by the installed `keras-deepclust` in a fresh process
from a folder of their own: Excel's CSV, fractional labels, an empty `.npy`, `convert` of a
folder of IDX files. Every refusal is one line naming the file, exit status 2, and leaves
every file of the user's as it was. (The many other bad files are checked in-process, with
their exact messages, in test_datasets.py and test_streaming.py.)"""

import gzip
import json

import numpy as np


def one_error_line(result, command):
    """The refusal's message: exit status 2 and one line on stderr, no traceback."""
    assert result.returncode == 2, result.stderr
    assert "Traceback" not in result.stderr
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1, result.stderr
    prefix = f"keras-deepclust {command}: error: "
    assert lines[0].startswith(prefix), lines
    return lines[0][len(prefix):]


def test_fit_reads_an_excel_csv_with_a_byte_order_mark(installed):
    # Excel's "CSV UTF-8": a byte-order mark before "label", CRLF line ends, and ",,,,"
    # lines after the data. The label column must be the labels, not a feature.
    rng = np.random.default_rng(0)
    y = np.repeat(np.arange(3), 20)
    x = rng.normal(0, 0.1, (60, 4)) + y[:, None]
    lines = ["label,a,b,c,d"] + [f"{label}," + ",".join(f"{v:.4f}" for v in row)
                                 for label, row in zip(y, x, strict=True)] + [",,,,"]
    (installed.cwd / "bom.csv").write_bytes(b"\xef\xbb\xbf" + "\r\n".join(lines).encode())
    before = installed.snapshot()
    result = installed("fit", "ae-kmeans", "--dataset", "bom.csv", "--quick",
                       "--pretrain-epochs", "1", "--out", "run")
    assert result.returncode == 0, result.stderr
    # 4 features (label left out) and K = 3 counted from the labels.
    assert "ae-kmeans on bom.csv: 60 samples of shape (4,), K=3" in result.stdout
    metrics = json.loads((installed.cwd / "run" / "metrics.json").read_text())
    assert metrics["n_samples"] == 60 and metrics["n_clusters"] == 3
    assert set(metrics["scores"]) >= {"acc", "nmi", "ari"}  # labels were found
    after = installed.snapshot()
    assert {name: after[name] for name in before} == before


def test_fit_refuses_fractional_labels_and_an_empty_npy(installed):
    rows = "\n".join(f"{i % 2 + 0.5},{i},{i * i}" for i in range(60))
    (installed.cwd / "frac.csv").write_text("label,a,b\n" + rows + "\n")
    (installed.cwd / "empty.npy").write_bytes(b"")
    before = installed.snapshot()
    result = installed("fit", "ae-kmeans", "--dataset", "frac.csv", "--quick", "--out", "run")
    assert one_error_line(result, "fit") == (
        "labels (column 'label') of frac.csv must be whole numbers (class ids), not "
        "fractions; line 2 holds 0.5.")
    result = installed("fit", "ae-kmeans", "--dataset", "empty.npy", "--clusters", "2",
                       "--quick", "--out", "run")
    assert one_error_line(result, "fit") == "empty.npy is empty (0 bytes)."
    assert installed.snapshot() == before  # nothing written, nothing changed


def test_convert_takes_a_folder_of_idx_files_and_never_touches_user_files(installed):
    folder = installed.cwd / "digits-idx"
    folder.mkdir()
    images = np.random.default_rng(1).integers(0, 256, (5, 4, 3)).astype(np.uint8)
    with gzip.open(folder / "t10k-images-idx3-ubyte.gz", "wb") as f:
        f.write(bytes([0, 0, 8, 3, 0, 0, 0, 5, 0, 0, 0, 4, 0, 0, 0, 3]) + images.tobytes())
    (folder / "t10k-labels-idx1-ubyte").write_bytes(bytes([0, 0, 8, 1, 0, 0, 0, 5, 2, 0, 1, 1, 0]))
    mine = installed.cwd / "mine"
    mine.mkdir()
    (mine / "part-00000-of-00001.tfrecord").write_bytes(b"the user's own file")
    before = installed.snapshot()
    result = installed("convert", "digits-idx", "--out", "mine")
    assert one_error_line(result, "convert") == (
        "mine is not empty (it holds part-00000-of-00001.tfrecord); convert writes into a new "
        "or empty folder, so that nothing in it is mixed up with the shards or replaced.")
    assert installed.snapshot() == before
    result = installed("convert", "digits-idx", "--out", "shards", "--rows-per-shard", "2")
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip().endswith(
        "wrote 5 samples of shape (4, 3, 1) (with labels) in 3 shard(s) to shards")
    meta = json.loads((installed.cwd / "shards" / "meta.json").read_text())
    assert meta["n_samples"] == 5 and meta["has_labels"] and len(meta["shards"]) == 3
    after = installed.snapshot()
    assert {name: after[name] for name in before} == before
    assert sorted(set(after) - set(before)) == sorted(
        f"shards/{name}" for name in ["meta.json", *meta["shards"]])
