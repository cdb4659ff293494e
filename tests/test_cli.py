import html
import json
import logging
import os
import re
import subprocess
import sys
import warnings
from types import SimpleNamespace

import keras
import numpy as np
import pytest

from keras_deepclust import cli
from keras_deepclust._console import STARTUP_LINE
from keras_deepclust.report import stability_sentence


@pytest.fixture
def image_npz(tmp_path, tiny_images):
    x, y = tiny_images
    path = tmp_path / "images.npz"
    np.savez(path, x=x, y=y)
    return path


def test_fit_writes_model_metrics_and_plots(tmp_path, image_npz, capsys):
    out = tmp_path / "run"
    code = cli.main(["fit", "dcec", "--dataset", str(image_npz), "--quick", "--seed", "3",
                     "--out", str(out)])
    assert code == 0
    report = json.loads((out / "metrics.json").read_text())
    assert report["n_clusters"] == 3 and report["seed"] == 3
    # --quick on 60 rows: one step an epoch, so the 1,000 steps reach DCEC's 200 epochs.
    assert report["pretrain_epochs"] == 200 and report["clustering_epochs"] <= 20
    assert sum(report["cluster_sizes"]) == 60
    assert set(report["scores"]) == {"acc", "nmi", "ari", "v_measure"}
    assert 0 <= report["kmeans_on_inputs"]["acc"] <= 1
    for name in ("model.keras", "training_curves.png", "embedding.png",
                 "reconstructions.png", "decoded_centroids.png", "cluster_gallery.png",
                 "report.html"):
        assert (out / name).stat().st_size > 0
    assert not [p for p in out.iterdir() if p.name.startswith(".")]  # no temporary leftovers
    printed = capsys.readouterr().out
    assert "k-means on inputs" in printed and "dcec" in printed
    assert f"({report['clustering_epochs']} epochs); precision " in printed
    # The label-free scores are those of the saved model's codes and labels.
    from keras_deepclust.model_selection import internal_scores

    saved = keras.saving.load_model(out / "model.keras")
    x = np.load(image_npz)["x"]
    expected = internal_scores(saved.embed(x), saved.predict_labels(x))
    assert report["internal_scores"] == pytest.approx({**expected, "n_rows": 60}, rel=1e-5)
    assert f"on the codes: silhouette {expected['silhouette']:.3f}" in printed

    assert cli.main(["evaluate", str(out / "model.keras"), "--dataset", str(image_npz)]) == 0
    evaluated = json.loads(capsys.readouterr().out)
    assert evaluated == pytest.approx(report["scores"])

    exported = tmp_path / "exported"
    assert cli.main(["export", str(out / "model.keras"), "--format", "all", "--dataset",
                     str(image_npz), "--name", "tiny", "--out", str(exported)]) == 0
    printed = capsys.readouterr().out
    assert printed.count("cluster agreement 1.0000 on 60 rows") == 3
    onnx_metadata = json.loads((exported / "tiny.onnx.metadata.json").read_text())
    assert onnx_metadata["metrics"] == pytest.approx(report["scores"])
    assert (exported / "tiny.tflite").is_file()
    assert (exported / "savedmodel" / "tiny" / "1" / "saved_model.pb").is_file()


def test_fit_is_repeatable_with_a_seed(tmp_path, image_npz):
    scores = []
    for run in ("a", "b"):
        cli.main(["fit", "idec", "--dataset", str(image_npz), "--quick", "--seed", "1",
                  "--pretrain-epochs", "5", "--epochs", "5", "--clusters", "4",
                  "--out", str(tmp_path / run)])
        report = json.loads((tmp_path / run / "metrics.json").read_text())
        scores.append((report["scores"], report["history"]["clustering"]["loss"]))
    assert scores[0] == scores[1]


def test_clusters_auto_sweeps_k_on_one_pretrained_autoencoder(tmp_path, image_npz, capsys):
    out = tmp_path / "auto"
    assert cli.main(["fit", "cae-gmm", "--dataset", str(image_npz), "--clusters", "auto",
                     "--k-range", "2", "5", "--quick", "--out", str(out)]) == 0
    report = json.loads((out / "metrics.json").read_text())
    selection = report["n_clusters_selection"]
    sweep = selection["sweep"]
    assert selection["criterion"] == "bic" and sweep["n_clusters"] == [2, 3, 4, 5]
    assert set(sweep) == {"n_clusters", "silhouette", "calinski_harabasz", "bic", "v_measure"}
    best = sweep["n_clusters"][int(np.argmin(sweep["bic"]))]
    assert report["n_clusters"] == selection["chosen"] == best
    assert len(report["cluster_sizes"]) == best and report["pretrain_epochs"] == 50  # all
    assert (out / "n_clusters.png").stat().st_size > 0
    page, printed = (out / "report.html").read_text(), capsys.readouterr().out
    assert f"<dt>K chosen by</dt><dd>bic (K = {best})</dd>" in page
    assert f"K chosen by bic over 2..5: {best}" in printed
    stability = report["stability"]
    assert stability["starts"] == 20 and -1 <= stability["restart_agreement"] <= 1
    assert stability["restart_agreement"] == report["history"]["clustering"][
        "restart_agreement"][0]
    sentence = stability_sentence(stability)
    assert "The 20 starts of the clustering step" in sentence
    assert sentence in printed and html.escape(sentence) in page


def test_fit_of_a_method_without_pretraining(tmp_path, image_npz, capsys):
    out = tmp_path / "aec"
    assert cli.main(["fit", "aec", "--dataset", str(image_npz), "--quick", "--out", str(out)]) == 0
    report = json.loads((out / "metrics.json").read_text())
    assert report["pretrain_epochs"] == 0 and report["clustering_epochs"] == 20
    assert len(report["history"]["clustering"]["centroid_distance"]) == 20
    assert (out / "decoded_centroids.png").stat().st_size > 0
    assert cli.main(["fit", "aec", "--dataset", str(image_npz), "--clusters", "auto", "--quick",
                     "--out", str(tmp_path / "aec-auto")]) == 2
    assert "--clusters auto needs a method that starts from a pretrained" in capsys.readouterr().err


def test_a_mixed_precision_fit_writes_the_labels_of_the_saved_model(tmp_path, image_npz):
    """Trained in bfloat16, the networks compute in float32 once loaded (as evaluate,
    export and assign load them): labels.csv, the cluster sizes and the label-free
    scores are those of the saved model, not of the 16-bit one that trained."""
    from keras_deepclust.model_selection import internal_scores

    out = tmp_path / "run"
    assert cli.main(["fit", "aec", "--dataset", str(image_npz), "--epochs", "3",
                     "--pretrain-epochs", "3", "--precision", "mixed_bfloat16",
                     "--out", str(out)]) == 0
    report = json.loads((out / "metrics.json").read_text())
    assert report["precision"] == "mixed_bfloat16"
    saved = keras.saving.load_model(out / "model.keras")
    x = np.load(image_npz)["x"]
    expected = saved.predict_labels(x)
    written = np.loadtxt(out / "labels.csv", delimiter=",", skiprows=1)[:, 1].astype(int)
    np.testing.assert_array_equal(written, expected)
    assert report["cluster_sizes"] == np.bincount(expected, minlength=3).tolist()
    assert report["internal_scores"] == pytest.approx(
        {**internal_scores(saved.embed(x), expected), "n_rows": 60}, rel=1e-5)


def test_fit_under_the_mirrored_strategy_matches_one_device(tmp_path, image_npz, mirrored,
                                                           monkeypatch, capsys):
    from keras_deepclust import distribute

    real_get_strategy = distribute.get_strategy
    monkeypatch.setattr(distribute, "get_strategy",
                        lambda name: mirrored if name == "mirrored" else real_get_strategy(name))
    reports = []
    for strategy in ("default", "mirrored"):
        out = tmp_path / strategy
        # float32 on every CPU: bfloat16 (the default where the CPU has it) rounds the two
        # replicas' partial sums apart by more than the tolerance.
        assert cli.main(["fit", "aec", "--dataset", str(image_npz), "--epochs", "4",
                         "--batch-size", "16", "--strategy", strategy, "--precision", "float32",
                         "--out", str(out)]) == 0
        reports.append(json.loads((out / "metrics.json").read_text()))
    assert [r["replicas"] for r in reports] == [1, 2]
    assert reports[0]["cluster_sizes"] == reports[1]["cluster_sizes"]
    np.testing.assert_allclose(reports[1]["history"]["clustering"]["loss"],
                               reports[0]["history"]["clustering"]["loss"], rtol=1e-5)
    assert cli.main(["fit", "aec", "--dataset", str(image_npz), "--epochs", "4", "--batch-size",
                     "15", "--strategy", "mirrored", "--out", str(tmp_path / "odd")]) == 2
    assert "batch_size=15 does not divide among the 2 replicas" in capsys.readouterr().err


@pytest.mark.parametrize("method, name, refused, allowed", [
    ("auto", "refine", 1, ("auto", True, False)),  # 1 == True, but not a refine value
    ("n2d", "manifold_head", "tsne", ("regression", "neighbors")),
    ("aec", "init", "spectral", ("random", "kmeans", "gmm")),
    ("dec", "init", "random", ("kmeans", "gmm")),  # fewer than the table's: DEC's own
])
def test_the_constructors_check_an_option_against_its_row_of_the_table(method, name, refused,
                                                                      allowed):
    """The values a flag gives are the values the constructor takes (`options.check`):
    declared once, in `options.TABLE`; a bad value is refused in the same words."""
    from keras_deepclust import options
    from keras_deepclust.models import get_method

    cls = get_method(method)
    assert name in cls.OPTIONS
    assert set(allowed) <= set(options.BY_NAME[name].allowed())
    for value in allowed:
        assert getattr(cls(n_clusters=2, **{name: value}), name) == value
    with pytest.raises(ValueError, match=rf"^{name} must be one of \({', '.join(map(repr, allowed))}"
                                         rf"\), got {refused!r}\.$"):
        cls(n_clusters=2, **{name: refused})


def test_fit_streams_a_file(tmp_path, tiny_images, capsys):
    x, _ = tiny_images
    np.save(tmp_path / "x.npy", x)
    out = tmp_path / "run"
    assert cli.main(["fit", "dcec", "--dataset", str(tmp_path / "x.npy"), "--stream",
                     "--clusters", "3", "--pretrain-epochs", "2", "--epochs", "2",
                     "--batch-size", "16", "--out", str(out)]) == 0
    assert "a stream of samples of shape (8, 8, 1)" in capsys.readouterr().out
    report = json.loads((out / "metrics.json").read_text())
    assert report["n_samples"] == 60 and sum(report["cluster_sizes"]) == 60
    labels = np.loadtxt(out / "labels.csv", delimiter=",", skiprows=1, dtype=int)
    model = keras.saving.load_model(out / "model.keras")
    np.testing.assert_array_equal(labels[:, 1], model.predict_labels(x))
    assert cli.main(["fit", "dcec", "--dataset", str(tmp_path / "x.npy"), "--stream",
                     "--clusters", "3", "--resume", str(tmp_path / "b"),
                     "--out", str(tmp_path / "no")]) == 2
    assert "--resume needs the data loaded, not --stream" in capsys.readouterr().err
    assert cli.main(["fit", "ae-kmeans", "--dataset", str(tmp_path / "x.npy"), "--stream",
                     "--out", str(tmp_path / "no")]) == 2
    assert "--stream needs --clusters K" in capsys.readouterr().err


def test_dac_with_the_data_sets_labels_for_its_weights(tmp_path, image_npz, capsys):
    out = tmp_path / "dac"
    assert cli.main(["fit", "dac", "--dataset", str(image_npz), "--weight-labels", "--quick",
                     "--epochs", "5", "--out", str(out)]) == 0
    report = json.loads((out / "metrics.json").read_text())
    assert report["pretrain_epochs"] == 0 and report["clustering_epochs"] == 5
    assert (out / "feature_weights.png").stat().st_size > 0
    assert "labels" in capsys.readouterr().out
    model = keras.saving.load_model(out / "model.keras")
    assert model.weight_source == "labels"
    assert cli.main(["fit", "dcec", "--dataset", str(image_npz), "--weight-labels", "--quick",
                     "--out", str(tmp_path / "refused")]) == 2
    assert "--weight-labels is for dac only, not dcec" in capsys.readouterr().err
    assert cli.main(["fit", "dcec", "--dataset", str(image_npz), "--manifold-head", "neighbors",
                     "--out", str(tmp_path / "refused")]) == 2
    assert "--manifold-head is for auto, n2d only, not dcec" in capsys.readouterr().err


def test_augment_trains_dcec_as_dec_da_and_is_refused_elsewhere(tmp_path, image_npz, capsys):
    out = tmp_path / "augmented"
    assert cli.main(["fit", "dcec", "--dataset", str(image_npz), "--augment", "0.1", "10",
                     "--augment-phases", "pretrain", "--quick", "--seed", "2",
                     "--pretrain-epochs", "3", "--epochs", "3", "--out", str(out)]) == 0
    report = json.loads((out / "metrics.json").read_text())
    assert (report["augment"], report["augment_phases"]) == ([0.1, 10.0], "pretrain")
    model = keras.saving.load_model(out / "model.keras")
    augmentation = model.augmentation
    assert (augmentation.shift, augmentation.rotation, augmentation.seed) == (0.1, 10.0, 2)
    assert model.augment_clustering is False
    args = SimpleNamespace(method="dcec", augment=[0.1, 10.0], augment_phases="both", seed=0)
    assert cli._model_options(args)["augment_clustering"] is True
    args = SimpleNamespace(method="dcec", augment=None, augment_phases="pretrain")
    with pytest.raises(ValueError, match=r"--augment-phases needs --augment SHIFT DEGREES"):
        cli._model_options(args)
    with pytest.raises(SystemExit):  # the parser's error, before TensorFlow is imported
        cli.main(["fit", "dcec", "--dataset", str(image_npz), "--augment", "1.5", "10",
                  "--out", str(tmp_path / "refused")])
    assert ("argument --augment: SHIFT: expected a number in [0, 1), got 1.5"
            in capsys.readouterr().err)
    # Only DEC's family augments its clustering phase too.
    assert cli.main(["fit", "cae-gmm", "--dataset", str(image_npz), "--augment", "0.1", "10",
                     "--augment-phases", "both", "--out", str(tmp_path / "refused")]) == 2
    assert "--augment-phases is for dcec, dec, dec-conv, idec only, not cae-gmm" in (
        capsys.readouterr().err)


def test_augment_reaches_every_methods_pretraining(tmp_path, image_npz):
    """Every method pretrains through `pretrain`, and its constructor takes an
    augmentation: the flag must reach it as the Python argument does."""
    from keras_deepclust.models import get_method, list_methods

    out = tmp_path / "cae-gmm"
    assert cli.main(["fit", "cae-gmm", "--dataset", str(image_npz), "--augment", "0.1", "10",
                     "--quick", "--seed", "3", "--pretrain-epochs", "2", "--out", str(out)]) == 0
    augmentation = keras.saving.load_model(out / "model.keras").augmentation
    assert (augmentation.shift, augmentation.rotation, augmentation.seed) == (0.1, 10.0, 3)
    for name in list_methods():
        options = cli._model_options(SimpleNamespace(method=name, augment=[0.2, 5.0],
                                                    augment_phases=None, seed=1))
        augmentation = get_method(name)(3, random_state=1, **options).augmentation
        assert (augmentation.shift, augmentation.rotation, augmentation.seed) == (0.2, 5.0, 1)


def test_init_reaches_the_model_and_is_refused_elsewhere(tmp_path, image_npz, capsys):
    out = tmp_path / "gmm"
    assert cli.main(["fit", "dec-conv", "--dataset", str(image_npz), "--init", "gmm",
                     "--quick", "--pretrain-epochs", "3", "--epochs", "3", "--out", str(out)]) == 0
    assert json.loads((out / "metrics.json").read_text())["init"] == "gmm"
    assert keras.saving.load_model(out / "model.keras").init == "gmm"
    # The refusal names the methods whose class declares the option.
    assert cli.main(["fit", "cae-gmm", "--dataset", str(image_npz), "--init", "gmm",
                     "--out", str(tmp_path / "refused")]) == 2
    assert "--init is for aec, damic, dcec, dec, dec-conv, idec only, not cae-gmm" in (
        capsys.readouterr().err)
    assert cli.main(["fit", "dcec", "--dataset", str(image_npz), "--init", "random",
                     "--out", str(tmp_path / "refused")]) == 2
    assert "init must be one of ('kmeans', 'gmm'), got 'random'" in capsys.readouterr().err
    damic = SimpleNamespace(method="damic", init="gmm")
    assert cli._model_options(damic) == {"init": "gmm"}


def test_cli_errors(tmp_path, image_npz, capsys):
    assert cli.main(["fit", "nope", "--dataset", "digits", "--out", str(tmp_path)]) == 2
    assert "Unknown method 'nope'. Known methods: ae-gmm, ae-kmeans, aec," in capsys.readouterr().err
    assert cli.main(["fit", "dec", "--dataset", str(tmp_path / "missing.npy"),
                     "--out", str(tmp_path)]) == 2
    assert "Unknown dataset" in capsys.readouterr().err
    unlabelled = tmp_path / "unlabelled.npy"
    np.save(unlabelled, np.random.default_rng(0).uniform(size=(10, 4)))
    assert cli.main(["fit", "dec", "--dataset", str(unlabelled), "--out", str(tmp_path)]) == 2
    assert "has no labels: pass --clusters K or --clusters auto" in capsys.readouterr().err
    assert cli.main(["fit", "dec", "--dataset", str(unlabelled), "--clusters", "11",
                     "--quick", "--out", str(tmp_path)]) == 2
    assert "unlabelled.npy has 10 rows, too few for --clusters 11" in capsys.readouterr().err
    assert cli.main(["evaluate", str(tmp_path / "none.keras"), "--dataset", "digits"]) == 2
    assert "No such model file" in capsys.readouterr().err


def test_console_script_lists_methods(tmp_path):
    # cwd: outside the repository, so the installed package is imported, not the source tree.
    result = subprocess.run([sys.executable, "-m", "keras_deepclust.cli", "methods"],
                            capture_output=True, text=True, check=True, cwd=tmp_path)
    names = [line.split()[0] for line in result.stdout.splitlines() if not line.startswith(" ")]
    assert names == ["ae-gmm", "ae-kmeans", "aec", "auto", "cae-gmm", "cae-kmeans", "dac",
                     "damic", "dcec", "dec", "dec-conv", "idec", "imsat", "n2d"]


def _tiny_data(tmp_path, method):
    """A tiny labelled data file for `method`: uint8 images (.npz) for convolutional
    networks, a raw table with wide-ranged columns (.csv with a label column) else."""
    from keras_deepclust.models import get_method

    rng = np.random.default_rng(0)
    y = np.repeat(np.arange(3), 24)
    if get_method(method)(n_clusters=2).network == "conv":
        x = rng.integers(0, 40, (72, 8, 8, 1))
        for i, label in enumerate(y):
            x[i, 4 * (label // 2):4 * (label // 2) + 4, 4 * (label % 2):4 * (label % 2) + 4] += 180
        np.savez(tmp_path / "data.npz", x=x.astype(np.uint8), y=y)
        return tmp_path / "data.npz"
    x = (rng.normal(0, 3, (3, 5))[y] + rng.normal(0, 0.5, (72, 5))) * [1, 10, 100, 1e3, 1e4]
    header = "a,b,c,d,e,label"
    np.savetxt(tmp_path / "data.csv", np.column_stack([x, y]), delimiter=",", header=header,
               comments="", fmt="%.6g")
    return tmp_path / "data.csv"


# One fresh process serves every method (a TensorFlow import costs about 10 s).
_ELSEWHERE = """
import json, sys, numpy as np, keras_deepclust, keras
from keras_deepclust import cli, datasets
for model_file, data, exported in json.loads(sys.argv[1]):
    model = keras.saving.load_model(model_file)
    print(json.dumps(model.predict_labels(datasets.load(data)[0]).tolist()))
    assert cli.main(["evaluate", model_file, "--dataset", data]) == 0
    assert cli.main(["export", model_file, "--format", "onnx", "--out", exported]) == 0
    assert cli.main(["assign", exported + "/clusterer.onnx", data, "--out",
                     exported + "/labels.csv"]) == 0
"""


def test_every_method_fits_then_loads_evaluates_exports_and_assigns_elsewhere(tmp_path):
    """`fit --quick` for every registered method; then, in a fresh process where only
    `import keras_deepclust` precedes `keras.saving.load_model`, evaluate, export and
    assign, and `assign` on the raw rows `fit` read gives the fit's labels."""
    from keras_deepclust.models import get_method, list_methods

    runs = {}
    for method in list_methods():
        folder = tmp_path / method
        folder.mkdir()
        data = _tiny_data(folder, method)
        # --quick, cut further: this test is about the journey, not the schedule.
        pretrains = hasattr(get_method(method), "pretrain")  # not a method without a decoder
        short = (["--pretrain-epochs", "1"] if pretrains else []) + (
            ["--epochs", "1"] if get_method(method).ITERATIVE_FIT else [])
        assert cli.main(["fit", method, "--dataset", str(data), "--quick", *short,
                         "--out", str(folder / "run")]) == 0, method
        report = json.loads((folder / "run" / "metrics.json").read_text())
        labels = np.loadtxt(folder / "run" / "labels.csv", delimiter=",", skiprows=1)[:, 1]
        assert report["cluster_sizes"] == np.bincount(labels.astype(int), minlength=3).tolist()
        assert report["scaling"]["in_model"]
        page = (folder / "run" / "report.html").read_text()
        sources = re.findall(r'<img src="([^"]*)"', page)
        assert len(sources) >= 2 and all(s.startswith("data:image/png;base64,") for s in sources)
        assert "<h2>Gallery</h2>" in page, method
        runs[method] = (folder, data, report, labels.astype(int))
    work = [[str(folder / "run" / "model.keras"), str(data), str(folder / "exported")]
            for folder, data, _, _ in runs.values()]
    result = subprocess.run([sys.executable, "-c", _ELSEWHERE, json.dumps(work)],
                            capture_output=True, text=True, cwd=tmp_path)
    assert result.returncode == 0, result.stderr[-3000:]
    # Per method: its labels (one line), the scores `evaluate` prints (a JSON object).
    printed = result.stdout.splitlines()
    for method, (folder, _, report, labels) in runs.items():
        assert json.loads(printed.pop(0)) == labels.tolist(), method
        end = printed.index("}")
        assert json.loads("\n".join(printed[:end + 1])) == pytest.approx(report["scores"])
        del printed[:end + 1]
        while printed and not printed[0].startswith("["):  # export's and assign's lines
            printed.pop(0)
        assigned = np.loadtxt(folder / "exported" / "labels.csv", delimiter=",", skiprows=1)
        np.testing.assert_array_equal(assigned[:, 1].astype(int), labels, err_msg=method)


@pytest.mark.parametrize("method", ["aec", "dcec"])
def test_no_epochs_runs_the_methods_own_schedule(tmp_path, method):
    """No --epochs (the pretraining cut to 2): a method's `EPOCHS` (AEC: 100
    alternations), or the DEC family until tol; one code path serves every method."""
    from keras_deepclust.models import get_method

    from keras_deepclust import datasets

    # Unlabelled, so no per-epoch scores are computed: only the schedule is under test.
    np.save(tmp_path / "x.npy", datasets.load(_tiny_data(tmp_path, method))[0])
    assert cli.main(["fit", method, "--dataset", str(tmp_path / "x.npy"), "--clusters", "3",
                     "--pretrain-epochs", "2", "--out", str(tmp_path / "run")]) == 0
    report = json.loads((tmp_path / "run" / "metrics.json").read_text())
    expected = getattr(get_method(method), "EPOCHS", None)
    if expected is None:  # until tol: stopped before the cap of 20000 steps
        assert 1 <= report["clustering_epochs"] < 20000
    else:
        assert report["clustering_epochs"] == expected


def test_quick_pretrains_for_at_least_a_thousand_steps_within_the_schedule():
    """--quick's pretraining: 20 epochs, or on small data the epochs of 1,000 steps (the
    digits: 8 batches of 256 an epoch, so 125), never beyond the method's schedule."""
    from keras_deepclust import commands
    from keras_deepclust.models import get_method

    def cap(method, rows, batch_size=256, data=None):
        data = np.zeros((rows, 4)) if data is None else data
        return commands.quick_schedule(get_method(method), data, batch_size, None, None, {},
                                       pretrains=False)[0]

    assert cap("auto", 1797) == 125 and cap("dcec", 1797) == 125
    assert cap("auto", 10_000) == 25 and cap("auto", 70_000) == 20
    assert cap("auto", 60) == 200  # one step an epoch: the method's 200 epochs
    assert cap("ae-kmeans", 1797) == 50  # the paper's 50 epochs are its whole schedule
    assert cap("auto", 1797, batch_size=32) == 20  # 57 steps an epoch
    import tensorflow as tf

    stream = tf.data.Dataset.from_tensor_slices(np.zeros((1797, 4))).batch(256)
    assert cap("auto", None, data=stream) == 20
    # A pretraining asked for is capped, not lengthened; a method without one gets none.
    assert commands.quick_schedule(get_method("dcec"), np.zeros((1797, 4)), 256, 30, None, {},
                                   pretrains=True)[:2] == (30, 20)
    assert commands.quick_schedule(get_method("aec"), np.zeros((1797, 4)), 256, None, 50, {},
                                   pretrains=False)[:2] == (None, 20)


def test_quick_runs_every_kind_of_fit(tmp_path, capsys):
    for method in ("aec", "ae-gmm"):
        data = _tiny_data(tmp_path, method)
        assert cli.main(["fit", method, "--dataset", str(data), "--quick",
                         "--out", str(tmp_path / method)]) == 0
        report = json.loads((tmp_path / method / "metrics.json").read_text())
        assert report["pretrain_epochs"] == (50 if method == "ae-gmm" else 0)  # its schedule
        assert report["clustering_epochs"] == (20 if method == "aec" else 1)
    assert cli.main(["fit", "ae-gmm", "--dataset", str(data), "--epochs", "3",
                     "--out", str(tmp_path / "x")]) == 2
    assert "--epochs is for methods whose fit trains in epochs" in capsys.readouterr().err
    # The server's layout, straight from the CLI: OUT/NAME/VERSION/model.onnx.
    from keras_deepclust.serving import ClusterAssigner

    model_file, served = str(tmp_path / "ae-gmm" / "model.keras"), tmp_path / "served"
    for _ in range(2):
        assert cli.main(["export", model_file, "--format", "onnx", "--versioned",
                         "--name", "tables", "--out", str(served)]) == 0
    assert sorted(p.name for p in (served / "tables").iterdir()) == ["1", "2"]
    labels = np.loadtxt(tmp_path / "ae-gmm" / "labels.csv", delimiter=",", skiprows=1)[:, 1]
    from keras_deepclust import datasets

    assigner = ClusterAssigner(served / "tables" / "2" / "model.onnx")
    np.testing.assert_array_equal(assigner.predict_labels(datasets.load(data)[0]), labels)
    assert cli.main(["export", model_file, "--versioned", "--out", str(served)]) == 2
    assert "A versioned export writes the server's ONNX layout" in (
        capsys.readouterr().err)


def test_resume_never_overlaps_the_output_folder(tmp_path, image_npz, capsys):
    keep = tmp_path / "runs" / "a"
    keep.mkdir(parents=True)
    (keep / "mine.txt").write_text("keep me")
    for resume in (keep, tmp_path / "runs", keep / "backup"):
        assert cli.main(["fit", "dcec", "--dataset", str(image_npz), "--quick",
                         "--out", str(keep), "--resume", str(resume)]) == 2
        assert "overlap" in capsys.readouterr().err
    assert (keep / "mine.txt").read_text() == "keep me"


def test_methods_lists_each_with_its_description_and_paper(capsys):
    from keras_deepclust.models import list_methods

    assert cli.main(["methods"]) == 0
    printed = capsys.readouterr().out
    for name in list_methods():
        assert any(line.startswith(name + " ") for line in printed.splitlines())
    assert printed.count("paper: ") == len(list_methods())
    # Each option's default, read from the method's own signature.
    lines = printed.splitlines()
    flags = {line.split()[0]: lines[i + 2] for i, line in enumerate(lines)
             if line and not line[0].isspace()}
    assert flags["aec"].strip() == "flags: --augment (default none), --init (default random)"
    assert "--init (default kmeans)" in flags["dcec"]
    assert "--refine (default auto), --refine-epochs (default 60)" in flags["auto"]
    assert flags["dac"].strip() == "flags: --augment (default none), --weight-labels"


def test_a_default_a_flag_help_states_is_the_signatures_of_every_method_taking_it():
    """The help's words cannot drift from the constructors: a "default X" in an option's
    help is the default of every method that takes the option."""
    import re

    from keras_deepclust import options
    from keras_deepclust.models import get_method, list_methods

    stated = {option.flag: re.search(r"\(default:? ([\w.]+)", option.help)
              for option in options.TABLE}
    stated = {flag: match.group(1) for flag, match in stated.items() if match}
    assert set(stated) == {"--refine", "--refine-epochs", "--manifold-head"}
    for option in options.TABLE:
        takers = [get_method(m) for m in list_methods()
                  if option.flag in options.flags_of(get_method(m))]
        if option.flag in stated:
            assert {options.flag_default(cls, option) for cls in takers} == {
                stated[option.flag]}, option.flag


_JOURNEY = """
import sys
from keras_deepclust import cli
from keras_deepclust.report import stability_sentence
data, out = sys.argv[1:]
for argv in (["--help"], ["methods"],
             ["fit", "ae-kmeans", "--dataset", data, "--quick", "--pretrain-epochs", "1",
              "--out", out + "/run"],
             ["export", out + "/run/model.keras", "--format", "onnx", "--out", out + "/exported"],
             ["assign", out + "/exported/clusterer.onnx", data, "--out", out + "/labels.csv"]):
    try:
        cli.main(argv)
    except SystemExit:  # --help
        pass
"""


def test_commands_print_nothing_on_stderr_by_default(tmp_path, image_npz):
    """TensorFlow's C++ start-up lines, absl, oneDNN and library warnings stay hidden on a
    fresh process that runs methods, --help, fit, export and assign."""
    env = {key: value for key, value in os.environ.items() if key != "TF_CPP_MIN_LOG_LEVEL"}
    result = subprocess.run([sys.executable, "-c", _JOURNEY, str(image_npz), str(tmp_path)],
                            capture_output=True, text=True, env=env, timeout=600,
                            cwd=tmp_path)  # the installed package, not the source tree
    assert result.returncode == 0, result.stderr[-3000:]
    # Progress stays: Keras' bars on stdout, assign's row count on stderr.
    other = [line for line in result.stderr.splitlines()
             if line.strip() and not line.startswith("assigned ")]
    assert other == [] and "assigned 60/60 rows" in result.stderr, result.stderr[-3000:]
    assert "1/1" in result.stdout and "wrote" in result.stdout
    assert (tmp_path / "labels.csv").is_file()


def test_only_tensorflows_start_up_lines_are_dropped():
    """The lines TensorFlow 2.21 printed on import on a Xeon with AMX, even with
    TF_CPP_MIN_LOG_LEVEL=3, are dropped; errors and anything else are kept."""
    dropped = [
        "WARNING: All log messages before absl::InitializeLog() is called are written to STDERR",
        "I0000 00:00:1796309646.326031   14631 port.cc:153] oneDNN custom operations are on.",
        "I0000 00:00:1796309372.004992    5408 cpu_feature_guard.cc:227] This TensorFlow binary",
        "W0000 00:00:1796309372.004992    5408 some_file.cc:12] a start-up warning",
    ]
    kept = ["E0000 00:00:1796309646.326031   14631 port.cc:153] a real error",
            "Traceback (most recent call last):", "ImportError: libcudart.so.12",
            "assigned 60/60 rows (100%)"]
    assert [bool(STARTUP_LINE.fullmatch(line.encode())) for line in dropped + kept] == [
        True] * 4 + [False] * 4


@pytest.mark.parametrize("verbose", [False, True])
def test_verbose_shows_what_the_quiet_default_hides(monkeypatch, capsys, verbose):
    monkeypatch.delenv("TF_CPP_MIN_LOG_LEVEL", raising=False)
    tensorflow_log = logging.getLogger("tensorflow")
    monkeypatch.setattr(tensorflow_log, "level", logging.WARNING)
    assert cli.main(["methods", "--verbose"] if verbose else ["methods"]) == 0
    assert cli.main(["--verbose", "methods"] if verbose else ["methods"]) == 0
    with warnings.catch_warnings(record=True) as caught:
        warnings.warn_explicit("a library's notice", UserWarning, "umap_.py", 1, module="umap")
        warnings.warn_explicit("ours", UserWarning, "base.py", 1,
                               module="keras_deepclust.models.base")
    assert [str(w.message) for w in caught] == (["a library's notice", "ours"] if verbose
                                                else ["ours"])
    assert (os.environ.get("TF_CPP_MIN_LOG_LEVEL"), tensorflow_log.level) == (
        (None, logging.WARNING) if verbose else ("2", logging.ERROR))


def test_the_option_table_makes_the_flags_and_every_method_option_has_one():
    """Each option the CLI sets is declared once (`options.TABLE`): its flag is in `fit`'s
    help, it maps its values to the argument, and a method takes it; conversely every
    option a method declares has its flag."""
    from keras_deepclust import options
    from keras_deepclust.models import get_method, list_methods

    help_text = cli._build_parser()._subparsers._group_actions[0].choices["fit"].format_help()
    declared = set()
    for name in list_methods():
        cls = get_method(name)
        declared |= set(cls.OPTIONS) | set(cls.FIT_OPTIONS)
    for option in options.TABLE:
        assert option.flag in help_text and option.name in declared, option.flag
    assert declared - {"scaling"} == set(options.BY_NAME)  # scaling: fit's --scale
    assert options.BY_NAME["refine"].argument("off") is False
    assert options.flags_of(get_method("auto")) == ["--augment", "--refine", "--refine-epochs",
                                                    "--manifold-head"]


def test_a_number_option_has_one_range_for_its_flag_and_its_constructor(capsys):
    """A number's range is declared once (`options.Number`): the flag's parser refuses
    what the constructor refuses, in the range's words, before TensorFlow is imported."""
    from keras_deepclust import options
    from keras_deepclust.models import get_method

    parser = cli._build_parser()
    fit = ["fit", "auto", "--dataset", "digits", "--out", "run"]
    shift_degrees = "shift a number in [0, 1), degrees a number in [0, 180]"
    for flag, texts, argument, value, from_flag, from_python in [
            ("--refine-epochs", ["0"], "refine_epochs", 0, "expected an integer >= 1, got 0",
             "refine_epochs must be an integer >= 1, got 0."),
            ("--refine-epochs", ["2.5"], "refine_epochs", 2.5,
             "expected an integer >= 1, got '2.5'", "refine_epochs must be an integer >= 1, "
             "got 2.5."),
            ("--augment", ["0.1", "200"], "augmentation", (0.1, 200),
             "DEGREES: expected a number in [0, 180], got 200",
             f"augmentation must be (shift, degrees): {shift_degrees}, got (0.1, 200)."),
            ("--augment", ["1", "10"], "augmentation", (1, 10),
             "SHIFT: expected a number in [0, 1), got 1",
             f"augmentation must be (shift, degrees): {shift_degrees}, got (1, 10).")]:
        with pytest.raises(SystemExit):
            parser.parse_args([*fit, flag, *texts])
        assert f"argument {flag}: {from_flag} (see" in capsys.readouterr().err
        with pytest.raises(ValueError) as error:
            get_method("auto")(n_clusters=2, **{argument: value})
        assert str(error.value) == from_python
    args = parser.parse_args([*fit, "--augment", "0.2", "5", "--refine-epochs", "3"])
    assert cli._model_options(args) == {"augmentation": [0.2, 5.0], "refine_epochs": 3}
    model = get_method("auto")(n_clusters=2, **cli._model_options(args))
    assert (model.augmentation.shift, model.augmentation.rotation) == (0.2, 5.0)
    described = {options.Number(int, 0, 2**32 - 1): "an integer from 0 to 4294967295",
                 options.Number(float, 0, low_open=True): "a number > 0",
                 options.SHIFT: "a number in [0, 1)"}
    assert {number: number.describe() for number in described} == described
    assert not options.NON_NEGATIVE_FLOAT.takes(float("nan"))
    assert options.NON_NEGATIVE_FLOAT.check(3, "x") == 3.0  # an integer is a number
