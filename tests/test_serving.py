import json
import subprocess
import sys

import numpy as np
import pytest

from keras_deepclust.serving import ClusterAssigner


@pytest.fixture
def exported(dcec_artifacts):
    return dcec_artifacts


def test_assigner_matches_keras_in_batches(exported):
    model, x, folder = exported
    assigner = ClusterAssigner(folder / "m.onnx", batch_size=64, intra_op_threads=1)
    outputs = assigner.assign(x)
    assert outputs["cluster"].dtype == np.int32 and outputs["cluster"].shape == (300,)
    np.testing.assert_array_equal(outputs["cluster"], model.predict_labels(x))
    np.testing.assert_allclose(assigner.predict_proba(x), model.predict(x), atol=1e-5)
    np.testing.assert_allclose(outputs["embedding"], model.embed(x), atol=1e-5)
    np.testing.assert_array_equal(assigner.predict_labels(x[:1]), model.predict_labels(x[:1]))
    # Flat rows (what np.save(df.values) and JSON clients hold) and Fortran order.
    np.testing.assert_array_equal(assigner.predict_labels(x.reshape(300, 64)),
                                  model.predict_labels(x))
    np.testing.assert_array_equal(assigner.predict_labels(np.asfortranarray(x)),
                                  model.predict_labels(x))
    assert assigner.n_clusters == 4 and assigner.sample_shape == (8, 8, 1)


def test_assigner_rejects_bad_input(exported):
    _, x, folder = exported
    assigner = ClusterAssigner(folder / "m.onnx")
    bad = x[:5].copy()
    bad[2, 1, 1, 0] = np.nan
    with pytest.raises(ValueError, match=r"NaN or infinite values .*first at index \(2, 1, 1, 0\)"):
        assigner.predict_labels(bad)
    with pytest.raises(ValueError, match=r"samples of shape \(63,\) but the model takes samples of "
                       r"shape \(8, 8, 1\) .* or flat rows of 64 values"):
        assigner.predict_labels(x[:5].reshape(5, 64)[:, :63])
    with pytest.raises(ValueError, match="must be numeric"):
        assigner.predict_labels(np.full((2, 8, 8, 1), "a"))
    with pytest.raises(ValueError, match="has 0 samples; at least 1 are needed"):
        assigner.predict_labels(np.zeros((0, 8, 8, 1), "float32"))
    with pytest.raises(ValueError, match="is a tflite artifact, not ONNX"):
        ClusterAssigner(folder / "m.tflite")
    with pytest.raises(FileNotFoundError, match="No such ONNX file"):
        ClusterAssigner(folder / "none.onnx")
    with pytest.raises(ValueError, match="batch_size must be a positive integer"):
        ClusterAssigner(folder / "m.onnx", batch_size=0)


def test_assigner_runs_without_tensorflow(exported):
    _, x, folder = exported
    np.save(folder / "x.npy", x[:20])
    code = (
        "import sys, numpy as np\n"
        "from keras_deepclust.serving import ClusterAssigner\n"
        f"a = ClusterAssigner({str(folder / 'm.onnx')!r})\n"
        f"print(a.predict_labels(np.load({str(folder / 'x.npy')!r})).tolist())\n"
        "print(sorted(m for m in sys.modules if m.split('.')[0] in ('tensorflow', 'keras')))\n"
    )
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                            check=True, cwd=folder)  # outside the repository
    labels, heavy = result.stdout.strip().splitlines()
    assert heavy == "[]"
    assert json.loads(labels) == exported[0].predict_labels(x[:20]).tolist()


def test_assign_cli_streams_a_memory_mapped_file(exported, tmp_path):
    model, x, folder = exported
    # The raw float rows the model was fitted on (its scaling is inside the artifact), as
    # flat rows in Fortran order, what np.save(df.values) writes: read through a memory map.
    np.save(tmp_path / "big.npy", np.asfortranarray(x.reshape(300, 64)))
    with open(tmp_path / "big.npy", "rb") as f:
        np.lib.format.read_magic(f)
        assert np.lib.format.read_array_header_1_0(f)[1]  # fortran_order
    out = tmp_path / "labels.csv"
    code = (
        "import sys; from keras_deepclust import cli\n"
        f"code = cli.main(['assign', {str(folder / 'm.onnx')!r}, {str(tmp_path / 'big.npy')!r}, "
        f"'--out', {str(out)!r}, '--chunk-rows', '70', '--probabilities'])\n"
        "print(sorted(m for m in sys.modules if m.split('.')[0] in ('tensorflow', 'keras')))\n"
        "sys.exit(code)\n"
    )
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                            check=True, cwd=tmp_path)
    assert result.stdout.strip().splitlines()[-1] == "[]"
    assert "assigned 300/300 rows (100%)" in result.stderr
    table = np.loadtxt(out, delimiter=",", skiprows=1)
    assert out.read_text().splitlines()[0] == "row,cluster,p_0,p_1,p_2,p_3"
    np.testing.assert_array_equal(table[:, 0], np.arange(300))
    np.testing.assert_array_equal(table[:, 1].astype(int), model.predict_labels(x))
    np.testing.assert_allclose(table[:, 2:], model.predict(x), atol=1e-5)  # written as %.6g
    np.testing.assert_allclose(table[:, 2:].sum(1), 1.0, atol=1e-4)


def test_assign_cli_errors(exported, tmp_path, capsys):
    from keras_deepclust import cli

    _, _, folder = exported
    assert cli.main(["assign", str(folder / "m.onnx"), str(tmp_path / "none.npy"),
                     "--out", str(tmp_path / "o.csv")]) == 2
    assert "No such data file" in capsys.readouterr().err
    np.save(tmp_path / "wrong.npy", np.zeros((4, 5), "float32"))
    assert cli.main(["assign", str(folder / "m.onnx"), str(tmp_path / "wrong.npy"),
                     "--out", str(tmp_path / "o.csv")]) == 2
    assert "samples of shape (5,)" in capsys.readouterr().err
    assert not (tmp_path / "o.csv").exists() and not list(tmp_path.glob(".o.*"))


def test_assign_file_memory_stays_flat(exported, tmp_path):
    import tracemalloc

    from keras_deepclust.serving.batch import assign_file

    _, _, folder = exported
    rows = np.random.default_rng(0).integers(0, 256, (100_000, 8, 8, 1), dtype=np.uint8)
    np.save(tmp_path / "big.npy", rows)  # 6.4 MB on disk, 26 MB as float32
    del rows
    assigner = ClusterAssigner(folder / "m.onnx")
    tracemalloc.start()
    n = assign_file(assigner, tmp_path / "big.npy", tmp_path / "out.csv", chunk_rows=2000,
                    progress=False)
    peak = tracemalloc.get_traced_memory()[1]
    tracemalloc.stop()
    assert n == 100_000
    assert peak < 3_000_000, f"peak {peak / 1e6:.1f} MB"  # a few chunks, not the file
    assert sum(1 for _ in open(tmp_path / "out.csv")) == 100_001
