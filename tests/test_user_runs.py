"""`fit` as a user runs it: the installed command in a fresh process, from a folder outside
the repository. Mistakes get one line and exit status 2 before any work (most before
TensorFlow is imported, so these processes are fast), and no file the user had is
deleted or changed."""

import json
import os
from pathlib import Path

import numpy as np
import pytest

from keras_deepclust._io import write_json
from keras_deepclust.report import _internal_scores_html


def _table(folder, rows=60):
    rng = np.random.default_rng(0)
    y = np.repeat(np.arange(3), rows // 3)
    x = rng.normal(0, 1, (3, 6))[y] + rng.normal(0, 0.3, (rows, 6))
    np.savez(folder / "t.npz", x=x.astype(np.float32), y=y)
    return "t.npz"


def _one_error_line(result, *fragments):
    """The process failed with status 2 and one line on stderr holding `fragments`."""
    assert result.returncode == 2, (result.stdout, result.stderr)
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and "Traceback" not in result.stderr, result.stderr
    for fragment in fragments:
        assert fragment in lines[0], (fragment, lines[0])
    return lines[0]


def test_mistakes_are_one_line_before_any_work_and_touch_nothing(installed):
    data = _table(installed.cwd)
    (installed.cwd / "mydocs").mkdir()
    (installed.cwd / "mydocs" / "notes.txt").write_text("important\n")
    (installed.cwd / "t.npy").write_bytes(b"my array")
    (installed.cwd / "old").mkdir()
    (installed.cwd / "old" / "model.keras").write_bytes(b"the model of another run")
    before = installed.snapshot()
    fit = ["fit", "ae-kmeans", "--dataset", data, "--quick"]
    cases = [
        # --resume naming a folder of the user's: it used to be deleted with its files.
        ([*fit, "--resume", "mydocs", "--out", "run"],
         ["--resume mydocs holds files no backup wrote (notes.txt)"]),
        ([*fit, "--resume", "run/backup", "--out", "run"], ["overlap"]),
        # --out naming a file: it used to train, then end in a FileExistsError.
        ([*fit, "--out", "t.npy"], ["--out t.npy is a file, not a folder"]),
        ([*fit, "--out", "t.npy/run"],
         ["cannot write --out t.npy/run: t.npy is a file, not a folder."]),
        ([*fit, "--resume", "t.npy", "--out", "run"], ["--resume t.npy is a file"]),
        (["demo", "--out", "old"], ["--out old holds another run", "--overwrite"]),
        ([*fit, "--out", "old"], ["--out old holds another run (model.keras)", "--overwrite"]),
        # Numeric flags, at parse time, naming the flag and the allowed range.
        ([*fit, "--batch-size", "0", "--out", "run"],
         ["argument --batch-size: expected an integer >= 1, got 0"]),
        ([*fit, "--batch-size", "-4", "--out", "run"], ["--batch-size", "got -4"]),
        ([*fit, "--pretrain-epochs", "-1", "--out", "run"],
         ["argument --pretrain-epochs: expected an integer >= 0, got -1"]),
        ([*fit, "--epochs", "0", "--out", "run"], ["argument --epochs", "got 0"]),
        ([*fit, "--noise", "nan", "--out", "run"], ["argument --noise: expected a number >= 0"]),
        ([*fit, "--seed", "-1", "--out", "run"], ["argument --seed", "from 0 to 4294967295"]),
        ([*fit, "--clusters", "1", "--out", "run"], ["argument --clusters", "integer >= 2 or 'auto'"]),
        ([*fit, "--clusters", "auto", "--k-range", "5", "3", "--out", "run"],
         ["--k-range MIN MAX needs MIN <= MAX, got 5 3"]),
        (["serve", "base", "--name", "m", "--port", "70000"], ["--port", "from 1 to 65535"]),
        (["assign", "m.onnx", "t.npz", "--out", "a.csv", "--threads", "-1"],
         ["argument --threads: expected an integer >= 1, got -1"]),
        (["assign", "m.onnx", "t.npz", "--out", "a.csv", "--chunk-rows", "0"], ["--chunk-rows"]),
        (["convert", "t.npz", "--out", "c", "--rows-per-shard", "0"], ["--rows-per-shard"]),
        (["fitt"], ["invalid choice: 'fitt'", "--help"]),
        # A flag the command does not take: named by that command, with the nearest it takes.
        (["export", "m.keras", "--out", "e", "--formats", "onnx"],
         ["keras-deepclust export: error: unrecognized arguments: --formats onnx; did you "
          "mean --format? (see keras-deepclust export --help)"]),
        ([*fit, "--out", "run", "stray"], ["keras-deepclust fit: error: unrecognized "
                                           "arguments: stray (see keras-deepclust fit --help)"]),
        ([*fit, "--augment", "0.1", "200", "--out", "run"],
         ["argument --augment: DEGREES: expected a number in [0, 180], got 200"]),
    ]
    for args, fragments in cases:
        _one_error_line(installed(*args), *fragments)
    assert installed.snapshot() == before


def test_every_writer_refuses_a_folder_it_cannot_write_before_any_work(tmp_path,
                                                                         monkeypatch):
    """fit's folders, convert, export and assign make one check, naming the folder, before
    they read anything. chmod does not stop root, so os.access says no for one folder."""
    from types import SimpleNamespace

    from keras_deepclust import commands, export, tfrecords
    from keras_deepclust.serving.batch import assign_file

    locked = tmp_path / "locked"
    locked.mkdir()
    access = os.access
    monkeypatch.setattr(os, "access", lambda path, mode: Path(path) != locked
                        and access(path, mode))
    np.save(tmp_path / "x.npy", np.zeros((4, 3), np.float32))
    not_writable = f"the folder {locked} is not writable by this user."
    for write, what in [
            (lambda: commands.check_run_folders(locked / "run"), f"out {locked / 'run'}"),
            (lambda: commands.check_run_folders(tmp_path / "run", resume=locked),
             f"resume {locked}"),
            (lambda: tfrecords.convert(tmp_path / "x.npy", locked / "shards"),
             locked / "shards"),
            (lambda: export.check_export(locked / "a" / "b", "onnx"),
             f"the output folder {locked / 'a' / 'b'}"),
            (lambda: assign_file(SimpleNamespace(path=tmp_path / "m.onnx"), tmp_path / "x.npy",
                                 locked / "labels.csv"), locked / "labels.csv")]:
        with pytest.raises(ValueError) as error:
            write()
        assert str(error.value) == f"cannot write {what}: {not_writable}"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["locked", "x.npy"]
    assert not any(locked.iterdir())


def test_output_piped_to_a_reader_that_stops_ends_without_a_traceback(installed):
    """`keras-deepclust methods | head`: the reader closes the pipe before the command
    writes; the command stops quietly (status 1, as Python exits on a broken pipe)."""
    import subprocess

    result = subprocess.run('"$KDC" methods | head -c 0; exit "${PIPESTATUS[0]}"',
                            shell=True, executable="/bin/bash", cwd=installed.cwd,
                            capture_output=True, text=True, timeout=120,
                            env={**os.environ, "KDC": installed.script})
    assert (result.returncode, result.stdout, result.stderr) == (1, "", "")


def test_clusters_that_the_rows_cannot_give_are_refused_before_training(installed):
    data = _table(installed.cwd)
    fit = ["fit", "ae-kmeans", "--dataset", data, "--quick"]
    _one_error_line(installed(*fit, "--clusters", "60", "--out", "run"),
                    "t.npz has 60 rows, too few for --clusters 60")
    _one_error_line(installed(*fit, "--clusters", "auto", "--k-range", "2", "400", "--out", "run"),
                    "--k-range MAX must be below the number of rows", "400")
    np.savez(installed.cwd / "one.npz", x=np.zeros((10, 3), np.float32) + np.arange(10)[:, None],
             y=np.zeros(10, int))
    _one_error_line(installed("fit", "ae-kmeans", "--dataset", "one.npz", "--out", "run"),
                    "the labels of one.npz hold 1 class: pass --clusters K")
    assert sorted(installed.snapshot()) == ["one.npz", "t.npz"]  # nothing trained or written


def test_a_reused_out_folder_is_replaced_only_when_asked_and_only_the_run(installed):
    """A table run with --overwrite over an image run: that run's figures that a table
    run does not draw go, with a word; the user's own file in the folder stays."""
    data = _table(installed.cwd)
    run = installed.cwd / "run"
    run.mkdir()
    old_run = ("model.keras", "metrics.json", "labels.csv", "report.html",
               "reconstructions.png", "decoded_centroids.png", "cluster_gallery.png")
    for name in old_run:
        (run / name).write_bytes(b"an image run's " + name.encode())
    (run / "notes.txt").write_text("mine\n")
    before = installed.snapshot()
    _one_error_line(installed("fit", "ae-kmeans", "--dataset", data, "--out", "run"),
                    "--out run holds another run", "--overwrite")
    assert installed.snapshot() == before

    result = installed("fit", "ae-kmeans", "--dataset", data, "--quick", "--pretrain-epochs",
                       "1", "--out", "run", "--overwrite")
    assert result.returncode == 0, result.stderr
    assert "--overwrite: the run in run is replaced" in result.stdout
    removed = next(line for line in result.stdout.splitlines()
                   if line.startswith("removed the previous run's "))
    assert sorted(removed[len("removed the previous run's "):].split(", which")[0].split(", ")
                  ) == ["cluster_gallery.png", "decoded_centroids.png", "reconstructions.png"]
    assert (run / "notes.txt").read_text() == "mine\n"
    for name in ("reconstructions.png", "decoded_centroids.png", "cluster_gallery.png"):
        assert not (run / name).exists()
    report = json.loads((run / "metrics.json").read_text(),
                        parse_constant=lambda name: pytest.fail(f"bare {name} in JSON"))
    assert report["method"] == "ae-kmeans" and report["n_samples"] == 60
    assert (run / "model.keras").read_bytes()[:2] == b"PK"  # a real .keras (zip) file
    assert result.stderr == ""


def test_json_has_no_bare_nan_and_undefined_scores_say_why(tmp_path):
    write_json(tmp_path / "m.json", {"a": float("nan"), "b": [1.0, np.float32("inf")],
                                     "c": np.array([np.nan, 2.0])})
    text = (tmp_path / "m.json").read_text()
    assert "NaN" not in text and "Infinity" not in text
    assert json.loads(text) == {"a": None, "b": [1.0, None], "c": [None, 2.0]}

    collapsed = {"silhouette": None, "calinski_harabasz": None, "n_rows": 10,
                 "undefined": "the 10 rows fall in 1 cluster(s)"}
    assert "No label-free scores: the 10 rows fall in 1 cluster(s)" in _internal_scores_html(
        collapsed)


def test_quiet_mode_shows_the_package_warnings_as_one_line(capsys):
    """The empty-cluster warning came with `cli.py:403` and its source line."""
    import warnings

    from keras_deepclust._console import quiet_libraries
    from keras_deepclust.models import base

    with warnings.catch_warnings():  # restores the filters and `showwarning`
        quiet_libraries()
        warnings.warn_explicit("fit ended with 1 empty cluster(s)", UserWarning,
                               filename=base.__file__, lineno=1, module="keras_deepclust.cli")
        warnings.warn_explicit("a library's notice", UserWarning, filename="x.py", lineno=1,
                               module="umap.umap_")
    assert capsys.readouterr().err == (
        "keras-deepclust: warning: fit ended with 1 empty cluster(s)\n")
