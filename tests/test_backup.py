"""A clustering fit that is stopped (or killed) resumes from its `ClusteringBackup` and
ends where an uninterrupted fit ends."""

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest

from keras_deepclust.backup import ClusteringBackup
from keras_deepclust.models import AEC, DAC, DAMIC, IDEC

DENSE = {"hidden_units": (16, 16), "embedding_dim": 3}
# model class: (constructor options, pretraining epochs)
RECIPES = {
    IDEC: ({"update_interval": 3, "tol": 0.0}, 2),
    AEC: ({}, 0),
    DAC: ({"n_init": 3}, 0),
    DAMIC: ({"init_epochs": 2, "n_init": 3, "clustering_units": (8,)}, 2),
}


def new_model(cls, x):
    options, pretrain_epochs = RECIPES[cls]
    model = cls(n_clusters=3, random_state=0, **DENSE, **options)
    if pretrain_epochs:
        model.pretrain(x, epochs=pretrain_epochs, batch_size=16, verbose=0)
    return model


@pytest.mark.parametrize("cls", list(RECIPES), ids=lambda cls: cls.__name__)
def test_a_stopped_fit_resumes_like_an_uninterrupted_one(blobs, tmp_path, cls):
    x = blobs[0]
    uninterrupted = new_model(cls, x)
    whole = uninterrupted.fit(x, epochs=4, batch_size=16, verbose=0).history

    backup = ClusteringBackup(tmp_path / "backup", delete_on_success=False)
    new_model(cls, x).fit(x, epochs=2, batch_size=16, verbose=0, callbacks=[backup])
    latest = json.loads((tmp_path / "backup" / "latest.json").read_text())
    assert latest["epoch"] == 2 and latest["model"] == cls.__name__
    # A new process would start from an unfitted model: the backup brings the rest.
    resumed = cls(n_clusters=3, random_state=0, **DENSE, **RECIPES[cls][0])
    history = resumed.fit(x, epochs=4, batch_size=16, verbose=0, callbacks=[backup])
    # Epochs 3 and 4 were trained; the History lists all four, as the uninterrupted one.
    assert sorted(history.history) == sorted(whole) and history.epoch == [0, 1, 2, 3]
    for name, values in whole.items():
        np.testing.assert_allclose(history.history[name], values, rtol=1e-5, err_msg=name)
    np.testing.assert_array_equal(resumed.predict_labels(x), uninterrupted.predict_labels(x))
    np.testing.assert_allclose(resumed.predict(x), uninterrupted.predict(x), atol=1e-6)
    assert [p.name for p in (tmp_path / "backup").glob("*.weights.h5")] == ["epoch-4.weights.h5"]


def test_backup_refuses_another_run_and_is_removed_on_success(blobs, tmp_path):
    x = blobs[0]
    backup = ClusteringBackup(tmp_path / "b", delete_on_success=False)
    AEC(3, random_state=0, **DENSE).fit(x, epochs=1, batch_size=16, verbose=0, callbacks=[backup])
    with pytest.raises(ValueError, match=r"made by another run \(n_clusters 3, this fit 4\)"):
        AEC(4, random_state=0, **DENSE).fit(x, epochs=2, verbose=0, callbacks=[backup])
    with pytest.raises(ValueError, match=r"made by another run \(fingerprint"):
        AEC(3, random_state=0, **DENSE).fit(x + 0.5, epochs=2, verbose=0, callbacks=[backup])
    with pytest.raises(ValueError, match=r"made by another run \(model 'AEC', this fit 'DAC'\)"):
        DAC(3, random_state=0, **DENSE).fit(x, epochs=2, verbose=0, callbacks=[backup])
    finishing = ClusteringBackup(tmp_path / "b")
    AEC(3, random_state=0, **DENSE).fit(x, epochs=2, verbose=0, callbacks=[finishing])
    assert not (tmp_path / "b").exists()
    with pytest.raises(ValueError, match="at most one ClusteringBackup, got 2"):
        AEC(3, **DENSE).fit(x, epochs=1, verbose=0, callbacks=[finishing, finishing])


def _cli(args, cwd):
    """The installed command, in a fresh process."""
    command = [str(Path(sys.executable).with_name("keras-deepclust")), *args]
    return subprocess.Popen(command, cwd=cwd, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                            env={**os.environ, "TF_CPP_MIN_LOG_LEVEL": "3"})


def _same_record(reference, resumed):
    """A resumed run's metrics.json describes the whole run, as the uninterrupted one's
    does: the same epochs, and the same logs of every epoch."""
    for key in ("pretrain_epochs", "clustering_epochs", "cluster_sizes", "scores"):
        assert resumed[key] == reference[key], key
    for phase in ("pretrain", "clustering"):
        expected, got = reference["history"][phase], resumed["history"][phase]
        assert sorted(got) == sorted(expected), phase
        for name, values in expected.items():
            assert len(got[name]) == len(values), (phase, name)
            np.testing.assert_allclose(np.array(got[name], dtype=float),
                                       np.array(values, dtype=float), rtol=1e-5,
                                       err_msg=f"{phase} {name}")


# (training arguments, the phase to kill in, its epoch count). The reference run has
# --resume too: resumable pretraining shuffles by (seed, epoch), unlike plain pretraining.
KILLS = {
    "aec-mid-clustering": (["aec", "--epochs", "30"], "clustering", 30),
    "idec-mid-pretraining": (["idec", "--pretrain-epochs", "30", "--epochs", "2"],
                             "pretraining", 30),
}


@pytest.mark.parametrize("case", list(KILLS))
def test_sigkill_then_resume_gives_the_uninterrupted_labels(tmp_path, tiny_images, case):
    x, y = tiny_images
    data = tmp_path / "images.npz"
    np.savez(data, x=x, y=y)
    arguments, phase, epochs = KILLS[case]
    common = ["fit", *arguments, "--dataset", str(data), "--batch-size", "8", "--seed", "5"]
    # Started first so the two runs overlap; nothing shares state between them.
    (tmp_path / "reference_backup").mkdir()  # the user's own folder: it stays
    reference = _cli([*common, "--resume", str(tmp_path / "reference_backup"),
                      "--out", str(tmp_path / "reference")], cwd=tmp_path)
    backup_dir = tmp_path / "backup"
    killed = _cli([*common, "--resume", str(backup_dir), "--out", str(tmp_path / "killed")],
                  cwd=tmp_path)
    latest = backup_dir / phase / "latest.json"
    deadline = time.monotonic() + 300
    while time.monotonic() < deadline and killed.poll() is None:
        if latest.exists() and json.loads(latest.read_text())["epoch"] >= 5:
            break
        time.sleep(0.05)
    assert killed.poll() is None, "the run ended before it could be killed"
    killed.send_signal(signal.SIGKILL)
    killed.wait()
    epoch_at_kill = json.loads(latest.read_text())["epoch"]
    assert 5 <= epoch_at_kill < epochs and not (tmp_path / "killed" / "model.keras").exists()

    resumed = _cli([*common, "--resume", str(backup_dir), "--out", str(tmp_path / "killed")],
                   cwd=tmp_path)
    output = resumed.communicate(timeout=600)[0].decode()
    assert resumed.returncode == 0, output
    assert {"clustering": "Resuming the clustering fit", "pretraining": "Resuming pretraining"}[
        phase] in output
    assert reference.wait(timeout=600) == 0
    reports = [json.loads((tmp_path / run / "metrics.json").read_text())
               for run in ("reference", "killed")]
    assert reports[1]["clustering_epochs" if phase == "clustering" else "pretrain_epochs"
                      ] == epochs
    _same_record(*reports)
    labels = [np.loadtxt(tmp_path / run / "labels.csv", delimiter=",", skiprows=1, dtype=int)
              for run in ("reference", "killed")]
    np.testing.assert_array_equal(labels[0], labels[1])
    assert not backup_dir.exists()  # made by the run, removed once the resumed run finished
    assert list((tmp_path / "reference_backup").iterdir()) == []


def test_a_stopped_pretraining_resumes_like_an_uninterrupted_one(blobs, tmp_path):
    x = blobs[0]

    def pretrained(epochs, folder):
        model = IDEC(3, random_state=0, **DENSE)
        backup = ClusteringBackup(tmp_path / folder, delete_on_success=False)
        model.pretrain(x, epochs=epochs, batch_size=16, verbose=0, callbacks=[backup])
        return model

    uninterrupted = pretrained(4, "a")
    pretrained(2, "b")
    latest = json.loads((tmp_path / "b" / "latest.json").read_text())
    assert latest["epoch"] == 2 and latest["phase"] == "pretrain"
    resumed = pretrained(4, "b")  # a new model: the backup brings epochs 1-2 and Adam's state
    for a, b in zip(uninterrupted.encoder.get_weights() + uninterrupted.decoder.get_weights(),
                    resumed.encoder.get_weights() + resumed.decoder.get_weights(), strict=True):
        np.testing.assert_allclose(b, a, atol=1e-6)
    assert resumed.is_pretrained
    assert pretrained(4, "b").is_pretrained  # all epochs done: nothing left to train
    with pytest.raises(ValueError, match=r"made by another run \(phase 'pretrain', this fit 'fit'\)"):
        IDEC(3, random_state=0, **DENSE).fit(
            x, epochs=1, verbose=0, callbacks=[ClusteringBackup(tmp_path / "b")])


def test_backup_outside_a_package_fit_and_resume_with_auto_k(blobs, tmp_path, capsys):
    import keras

    from keras_deepclust import cli

    x = blobs[0]
    plain = keras.Sequential([keras.Input((6,)), keras.layers.Dense(6)])
    plain.compile(optimizer="adam", loss="mse")
    with pytest.raises(RuntimeError, match="it was not bound to this fit"):
        plain.fit(x, x, epochs=1, verbose=0, callbacks=[ClusteringBackup(tmp_path / "b")])
    np.savez(tmp_path / "d.npz", x=x)
    assert cli.main(["fit", "ae-gmm", "--dataset", str(tmp_path / "d.npz"), "--clusters",
                     "auto", "--resume", str(tmp_path / "r"), "--out", str(tmp_path / "o")]) == 2
    assert "--resume needs a fixed K" in capsys.readouterr().err
