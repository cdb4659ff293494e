"""`keras-deepclust assign` and `serve` as a user runs them: the installed command in a
fresh process from a temporary folder, with bad data files, bad paths and bad flags.
Each mistake must end in one line on standard error naming what is wrong, exit status 2,
and every file of the user's still there byte for byte. Neither command imports
TensorFlow, so each process takes about a second."""

import json
import shutil
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from pathlib import Path

import numpy as np
import pytest

from keras_deepclust.serving.metadata import METADATA_SUFFIX


@pytest.fixture
def user(installed, dcec_artifacts):
    """The user's folder (`installed.cwd`): `m.onnx` and its metadata (a DCEC on 8x8x1
    images, 64 features) and `x.npy`, the 300 flat float32 rows it was fitted on."""
    _, x, folder = dcec_artifacts
    for name in ("m.onnx", "m.onnx" + METADATA_SUFFIX):
        shutil.copy(folder / name, installed.cwd / name)
    np.save(installed.cwd / "x.npy", x.reshape(len(x), -1))
    installed.x = x.reshape(len(x), -1)
    return installed


def one_line_error(result, command="assign"):
    """The message of a one-line error after any ended progress line; fails on a
    traceback, a warning or another exit status than 2."""
    assert result.returncode == 2, (result.returncode, result.stdout, result.stderr)
    assert "Traceback" not in result.stderr and "Warning" not in result.stderr, result.stderr
    # Text mode reads the progress line's "\r" as a line end: "", "assigned 100/300 ...".
    lines = result.stderr.splitlines()
    assert all(line == "" or line.startswith("assigned ") for line in lines[:-1]), result.stderr
    prefix = f"keras-deepclust {command}: error: "
    assert lines[-1].startswith(prefix), result.stderr
    return lines[-1][len(prefix):]


def test_assign_names_a_bad_value_by_its_row_in_the_whole_file(user):
    """Issue 29, point 7: the bad value sits in row 250, the third chunk of 100 rows."""
    nan = user.x.copy()
    nan[250, 3] = np.nan
    np.save(user.cwd / "nan.npy", nan)
    beyond_float32 = user.x.astype(np.float64)
    beyond_float32[250, 3] = 1e300
    np.save(user.cwd / "wide.npy", beyond_float32)
    overflowing = user.x.copy()
    overflowing[250, 3] = 1e30  # a float32, but the network overflows on it
    np.save(user.cwd / "overflow.npy", overflowing)
    (user.cwd / "labels.csv").write_text("an earlier run's output\n")
    before = user.snapshot()

    for data, expected in [("nan.npy", "first at index (250, 3)"),  # check_finite's words
                           ("wide.npy", "wide.npy holds values too large for the model, "
                                        "beyond float32's ±3.4e+38 (1 of them, first at "
                                        "index (250, 3): 1e+300)."),
                           ("overflow.npy", "overflow.npy holds values too large for the "
                                            "model: its probabilities are not finite for 1 "
                                            "row(s) (first: row 250, largest |value| 1e+30).")]:
        result = user("assign", "m.onnx", data, "--out", "labels.csv", "--chunk-rows", "100")
        message = one_line_error(result)
        assert message.startswith(data) and expected in message, message
        # The progress line was ended before the error: the error has a line of its own.
        assert result.stderr.splitlines()[-2] == "assigned 200/300 rows (67%)"
    assert user.snapshot() == before  # the earlier CSV kept, no temporary file left


def write_bad_npy_files(folder, x):
    """`{file name: what the message must say}` for every kind of bad `.npy`."""
    good = folder / "x.npy"
    header_end = good.read_bytes().index(b"\n") + 1
    (folder / "empty.npy").write_bytes(b"")
    (folder / "cut_header.npy").write_bytes(good.read_bytes()[:30])
    (folder / "cut_data.npy").write_bytes(good.read_bytes()[:header_end + 1000])
    (folder / "not_npy.npy").write_bytes(b"row,a,b\n1,2,3\n")
    np.save(folder / "objects.npy", np.array([{"a": 1}] * 3, dtype=object), allow_pickle=True)
    np.save(folder / "flat.npy", x[0])
    np.save(folder / "scalar.npy", np.float32(1))
    np.save(folder / "fields.npy", np.zeros(3, dtype=[("a", "f4"), ("b", "f4")]))
    np.save(folder / "text.npy", np.full((3, 64), "a"))
    np.save(folder / "complex.npy", np.zeros((3, 64), complex))
    np.save(folder / "no_rows.npy", np.zeros((0, 64), "float32"))
    np.save(folder / "narrow.npy", x[:, :5])
    return {
        "empty.npy": "empty.npy is empty (0 bytes).",
        "cut_header.npy": "cut_header.npy cannot be read as an .npy file",
        "cut_data.npy": "cut_data.npy ends after 3 of the 300 samples its header announces.",
        "not_npy.npy": "not_npy.npy is not an .npy file",
        "objects.npy": "objects.npy holds Python objects",
        # Worded by keras_deepclust.datasets.read_npy_header: the file, then what is wrong.
        "flat.npy": "got shape (64,)",
        "scalar.npy": "got shape ()",
        "fields.npy": "structured array",
        "text.npy": "<U1",
        "complex.npy": "complex128",
        "no_rows.npy": "0 samples",
        "narrow.npy": "narrow.npy has samples of shape (5,) but the model takes samples of "
                      "shape (8, 8, 1)",
    }


def test_assign_refuses_every_bad_npy_in_one_line_naming_it(user):
    """Issue 29, point 11: checked from the header, before any row is assigned (no
    progress line), with no file handle left open (a ResourceWarning would show)."""
    expected = write_bad_npy_files(user.cwd, user.x)
    before = user.snapshot()
    for data, message in expected.items():
        result = user("assign", "m.onnx", data, "--out", "labels.csv", "--chunk-rows", "100")
        error = one_line_error(result)
        assert error.startswith(data) and message in error, (data, error)
        assert "assigned" not in result.stderr, result.stderr  # nothing assigned first
    assert user.snapshot() == before


def test_assign_names_the_file_in_every_format(user):
    """The formats read whole (.npz, .csv, .parquet, IDX) name the file too, and a
    wrong width is refused before anything is written."""
    import pyarrow as pa
    import pyarrow.parquet as pq

    np.savez(user.cwd / "narrow.npz", x=user.x[:, :5])
    np.savetxt(user.cwd / "narrow.csv", user.x[:, :5], delimiter=",")
    (user.cwd / "broken.parquet").write_bytes(b"PAR1 but not parquet")
    pq.write_table(pa.table({"a": ["x", "y"]}), user.cwd / "words.parquet")
    (user.cwd / "cut-idx3-ubyte").write_bytes(bytes([0, 0, 8, 3]) + (300).to_bytes(4, "big")
                                             + (8).to_bytes(4, "big") * 2 + bytes(100))
    before = user.snapshot()
    for data, message in [
            ("narrow.npz", "narrow.npz has samples of shape (5,) but the model takes"),
            ("narrow.csv", "narrow.csv has samples of shape (5,) but the model takes"),
            ("broken.parquet", "broken.parquet"),  # named, whoever words the rest
            ("words.parquet", "words.parquet: column 'a' is not numeric"),
            ("cut-idx3-ubyte", "cut-idx3-ubyte: header says shape (300, 8, 8)")]:
        result = user("assign", "m.onnx", data, "--out", "labels.csv")
        assert message in one_line_error(result), (data, result.stderr)
        assert "assigned" not in result.stderr, result.stderr
    assert user.snapshot() == before


def test_assign_never_writes_over_its_inputs_or_into_a_folder(user):
    """Issue 29, point 13: --out is checked before any data is read (here the data is
    an empty file, which would be refused otherwise); flags are checked too."""
    (user.cwd / "empty.npy").write_bytes(b"")
    (user.cwd / "results").mkdir()
    before = user.snapshot()
    for out, message in [
            ("results", "results is a folder: name the CSV file to write in it, e.g. "
                        "results/assignments.csv."),
            ("empty.npy", "empty.npy is the data file itself: assign never overwrites its "
                          "inputs"),
            ("m.onnx", "m.onnx is the model file itself"),
            ("m.onnx.metadata.json", "m.onnx.metadata.json is the model's metadata file"),
            ("x.npy/labels.csv", "cannot write x.npy/labels.csv: x.npy is a file, not a folder.")]:
        result = user("assign", "m.onnx", "empty.npy", "--out", out)
        assert message in one_line_error(result), (out, result.stderr)
    for flag, value in [("--threads", "-1"), ("--chunk-rows", "0")]:
        result = user("assign", "m.onnx", "x.npy", "--out", "labels.csv", flag, value)
        message = one_line_error(result)  # the command line's check or the library's
        assert (flag in message or flag.lstrip("-").replace("-", "_") in message) \
            and value in message, message
    assert user.snapshot() == before


def test_assign_replaces_an_earlier_csv_whole_and_creates_missing_folders(user):
    (user.cwd / "labels.csv").write_text("an earlier run's output\n")
    result = user("assign", "m.onnx", "x.npy", "--out", "labels.csv", "--chunk-rows", "100")
    assert result.returncode == 0, result.stderr
    assert result.stderr.splitlines()[-1] == "assigned 300/300 rows (100%)"
    lines = (user.cwd / "labels.csv").read_text().splitlines()
    assert lines[0] == "row,cluster" and len(lines) == 301 and lines[-1].startswith("299,")
    result = user("assign", "m.onnx", "x.npy", "--out", "new/sub/labels.csv")
    assert result.returncode == 0, result.stderr
    assert (user.cwd / "new/sub/labels.csv").read_text() == "\n".join(lines) + "\n"
    assert sorted(p.name for p in user.cwd.rglob(".*")) == []  # no temporary file left


def fresh_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def test_serve_refuses_a_port_in_use_before_announcing_anything(user):
    """Issue 29, point 15: one line naming host:port, exit 2, nothing on stdout."""
    version = user.cwd / "models" / "digits" / "1"
    version.mkdir(parents=True)
    for name in ("model.onnx", "model.onnx" + METADATA_SUFFIX):
        shutil.copy(user.cwd / name.replace("model", "m"), version / name)
    before = user.snapshot()
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        start = time.monotonic()
        result = user("serve", "models", "--name", "digits", "--port", port, timeout=60)
        assert time.monotonic() - start < 15
    assert one_line_error(result, "serve") == (
        f"cannot listen on 127.0.0.1:{port}: Address already in use (another server listens "
        "there: stop it or choose another port).")
    assert result.stdout == ""
    for flag, value in [("--port", "70000"), ("--max-rows", "0"), ("--poll-seconds", "-1")]:
        result = user("serve", "models", "--name", "digits", flag, value)
        message = one_line_error(result, "serve")
        assert flag in message and value in message, message
    assert user.snapshot() == before


def test_serve_announces_its_model_and_refuses_values_too_large_for_float32(user):
    """Issue 29, point 15: the real model name in the address, and a 400 "too large for
    the model" (not a RuntimeWarning and a NaN message) for 1e308."""
    version = user.cwd / "models" / "digits" / "1"
    version.mkdir(parents=True)
    for name in ("model.onnx", "model.onnx" + METADATA_SUFFIX):
        shutil.copy(user.cwd / name.replace("model", "m"), version / name)
    port = fresh_port()
    script = Path(sys.executable).with_name("keras-deepclust")
    process = subprocess.Popen([str(script), "serve", "models", "--name", "digits", "--port",
                                str(port)], cwd=user.cwd, stdout=subprocess.PIPE,
                               stderr=subprocess.PIPE, text=True)
    try:
        announced = process.stdout.readline()
        url = f"http://127.0.0.1:{port}/v1/models/digits"
        assert announced == f"serving digits on {url}\n"
        answers = []
        for row in ([1e308] + [0.0] * 63, [float("nan")] + [0.0] * 63,
                    user.x[0].tolist()):
            body = json.dumps({"instances": [row]}).encode()
            for attempt in range(50):  # the socket is bound; uvicorn may still be starting
                try:
                    with urllib.request.urlopen(urllib.request.Request(url + ":predict", body),
                                                timeout=10) as response:
                        answers.append((response.status, json.loads(response.read())))
                    break
                except urllib.error.HTTPError as error:
                    answers.append((error.code, json.loads(error.read())))
                    break
                except urllib.error.URLError:
                    time.sleep(0.1)
        (big_status, big), (nan_status, nan), (good_status, _) = answers
        assert big_status == 400 and "too large for the model" in big["error"], big
        assert "NaN" not in big["error"]
        assert nan_status == 400 and "NaN or infinite values" in nan["error"], nan
        assert good_status == 200
    finally:
        process.terminate()
        _, stderr = process.communicate(timeout=20)
    assert "Warning" not in stderr and "Traceback" not in stderr, stderr


# ------------------------------------------------------------- the library's own checks
def test_library_checks_its_arguments_naming_them(dcec_artifacts, tmp_path):
    """Issue 29, points 13 and 15, for Python callers: each bad value is refused with its
    name and value, before any model is loaded or any port bound."""
    from keras_deepclust.serving import ClusterAssigner
    from keras_deepclust.serving.batch import assign_file
    from keras_deepclust.serving.server import AddressUnavailable, create_app, serve

    _, x, folder = dcec_artifacts
    for option in ("intra_op_threads", "inter_op_threads"):
        with pytest.raises(ValueError, match=f"{option} must be a positive integer, got -1"):
            ClusterAssigner(folder / "m.onnx", **{option: -1})
    assigner = ClusterAssigner(folder / "m.onnx")
    np.save(tmp_path / "x.npy", x)
    with pytest.raises(ValueError, match="chunk_rows must be a positive integer, got 0"):
        assign_file(assigner, tmp_path / "x.npy", tmp_path / "o.csv", chunk_rows=0)
    missing = tmp_path / "no-models"  # loading it would fail with FileNotFoundError
    for options, message in [({"poll_seconds": 0}, "poll_seconds must be a finite number of "
                                                   "seconds above 0, got 0"),
                             ({"poll_seconds": float("nan")}, "poll_seconds .* got nan"),
                             ({"max_rows": 0}, "max_rows must be a positive integer, got 0"),
                             ({"max_body_bytes": -1}, "max_body_bytes .* got -1"),
                             ({"max_concurrent": 0}, "max_concurrent .* got 0"),
                             ({"intra_op_threads": -1}, "intra_op_threads .* got -1")]:
        with pytest.raises(ValueError, match=message):
            create_app(missing, "digits", **options)
        with pytest.raises(ValueError, match=message):
            serve(missing, "digits", port=fresh_port(), **options)
    for port in (0, -1, 70000, 8501.5, True):
        with pytest.raises(ValueError, match=f"port must be an integer from 1 to 65535, got "
                                             f"{port!r}"):
            serve(missing, "digits", port=port)
    with pytest.raises(ValueError, match="host must be an IP address or a host name, got ''"):
        serve(missing, "digits", host="")
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        with pytest.raises(AddressUnavailable, match=f"cannot listen on 127.0.0.1:{port}: "
                                                     "Address already in use") as caught:
            serve(missing, "digits", port=port)
    assert isinstance(caught.value, OSError) and isinstance(caught.value, ValueError)


def test_assigner_names_rows_from_first_row_and_refuses_what_float32_cannot_hold(
        dcec_artifacts):
    from keras_deepclust.serving import ClusterAssigner

    model, x, folder = dcec_artifacts
    assigner = ClusterAssigner(folder / "m.onnx")
    wide = x.reshape(300, 64).astype(np.float64)
    np.testing.assert_array_equal(assigner.predict_labels(wide), model.predict_labels(x))
    wide[7, 2] = -1e300
    with np.errstate(all="raise"):  # no overflow in a cast anywhere
        with pytest.raises(ValueError, match=r"^chunk.npy holds values too large for the model, "
                                             r"beyond float32's ±3.4e\+38 \(1 of them, first at "
                                             r"index \(1007, 2\): -1e\+300\)\.$"):
            assigner.assign(wide, first_row=1000, name="chunk.npy")
    with pytest.raises(ValueError, match=r"must hold real numbers, got dtype complex128"):
        assigner.assign(np.zeros((2, 64), complex))


def test_spark_rows_beyond_float32_are_too_large_not_infinite(dcec_artifacts):
    """The executors' feature matrix keeps doubles, so a huge value is named as too large
    for the model rather than cast to infinity (no Spark session needed)."""
    pd = pytest.importorskip("pandas")
    from keras_deepclust.serving import spark as spark_module

    _, x, folder = dcec_artifacts
    rows = x.reshape(300, 64)[:3].astype(np.float64)
    rows[1, 5] = 1e300
    frame = pd.DataFrame({"features": list(rows)})
    spec = {"path": str(folder / "m.onnx"), "batch_size": 64, "intra_op_threads": 1,
            "verify_checksum": True, "features": "features", "features_name": "features",
            "width": 64, "output_col": "cluster", "probabilities_col": None,
            "embedding_col": None, "drop": [], "udt_columns": []}
    with np.errstate(all="raise"):
        with pytest.raises(ValueError, match=r"features column 'features' holds values too "
                                             r"large for the model"):
            list(spark_module._assign_frames(iter([frame]), spec))
