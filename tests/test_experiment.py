"""The run as a library object: `kdc.run` and `RunResult`, which `keras-deepclust fit`
calls, and the report of a model fitted by hand."""

import json

import keras
import numpy as np
import pytest

import keras_deepclust as kdc
from keras_deepclust.experiment import RunResult, run
from keras_deepclust.models import IMSAT


def test_run_trains_scores_and_writes_what_the_cli_writes(tmp_path, tiny_images, capsys):
    x, y = tiny_images
    result = run("aec", x, y, random_state=0, epochs=3, precision="float32",
                 options={"embedding_dim": 3}, verbose=0)
    assert capsys.readouterr().out == ""  # verbose=0: nothing printed
    report = result.report
    assert (report["method"], report["n_clusters"], report["n_samples"]) == ("aec", 3, 60)
    assert report["clustering_epochs"] == 3 and report["pretrain_epochs"] == 0
    np.testing.assert_array_equal(result.labels, result.model.predict_labels(x))
    assert report["cluster_sizes"] == np.bincount(result.labels, minlength=3).tolist()
    assert report["scores"] == kdc.metrics.clustering_scores(y, result.labels)
    assert "k-means on inputs" in result.summary()
    assert "refinement" not in result.summary()
    refined = RunResult(result.model, result.labels, json.loads(json.dumps(report)),
                        result.sample, result.codes)
    refined.report["history"]["clustering"]["refine_seconds"] = [12.5]  # as auto logs it
    assert "(3 epochs), of which the refinement 12.5 s; precision float32" in refined.summary()
    (tmp_path / "run").mkdir()
    (tmp_path / "run" / "feature_weights.png").write_bytes(b"a previous run's figure")
    with pytest.raises(ValueError, match=r"out .*run holds another run \(feature_weights.png\)"
                       r": pass overwrite=True to replace it"):
        result.write(tmp_path / "run")
    assert [p.name for p in (tmp_path / "run").iterdir()] == ["feature_weights.png"]
    # AEC does not draw it: replacing the run removes it.
    assert result.write(tmp_path / "run", overwrite=True) == ["feature_weights.png"]
    written = sorted(p.name for p in (tmp_path / "run").iterdir())
    assert written == ["cluster_gallery.png", "decoded_centroids.png", "embedding.png",
                       "labels.csv", "metrics.json", "model.keras", "reconstructions.png",
                       "report.html", "training_curves.png"]
    assert json.loads((tmp_path / "run" / "metrics.json").read_text()) == json.loads(
        json.dumps(report))
    restored = keras.saving.load_model(tmp_path / "run" / "model.keras")
    np.testing.assert_array_equal(restored.predict_labels(x), result.labels)


def test_the_report_of_a_model_fitted_by_hand(tmp_path, tiny_images):
    x, y = tiny_images
    model = IMSAT(3, random_state=0, filters=(4, 8), kernel_sizes=(3, 3), embedding_dim=3)
    history = model.fit(x, epochs=2, batch_size=20, verbose=0)
    as_list = RunResult.from_model(model, x.tolist(), y)  # any array-like, as fit takes
    assert as_list.sample.shape == x.shape and as_list.report["scores"]["acc"] > 0
    result = RunResult.from_model(model, x, y, history=history, dataset="tiny images")
    np.testing.assert_array_equal(result.labels, model.labels_)
    assert result.report["scores"] == kdc.metrics.clustering_scores(y, model.labels_)
    assert result.report["internal_scores"]["n_rows"] == 60
    result.write(tmp_path)
    page = (tmp_path / "report.html").read_text()
    assert "imsat on tiny images" in page  # its registered name
    assert "<h2>Gallery</h2>" in page and "60 samples, K = 3." in page
    # A model without a decoder draws neither reconstructions nor decoded centroids.
    assert sorted(p.name for p in tmp_path.glob("*.png")) == [
        "cluster_gallery.png", "embedding.png", "training_curves.png"]


def test_the_cli_commands_as_functions(tmp_path, tiny_images):
    """What `keras-deepclust evaluate` and `export` do, called from Python on a saved run,
    and the run folders' checks with the library's argument names."""
    from keras_deepclust import commands

    x, y = tiny_images
    result = run("ae-kmeans", x, y, random_state=0, pretrain_epochs=2, precision="float32",
                 options={"filters": (4, 8), "kernel_sizes": (3, 3), "embedding_dim": 3},
                 verbose=0)
    result.write(tmp_path / "run")
    np.savez(tmp_path / "data.npz", x=x, y=y)
    model_path = tmp_path / "run" / "model.keras"
    assert commands.evaluate(model_path, tmp_path / "data.npz") == result.report["scores"]
    exported = commands.export_model(model_path, tmp_path / "export", ("onnx",),
                                     dataset=tmp_path / "data.npz")
    assert exported["onnx"]["parity"]["cluster_agreement"] == 1.0
    with pytest.raises(ValueError, match="holds another run .*: pass overwrite=True"):
        commands.check_run_folders(tmp_path / "run")
    assert "model.keras" in commands.check_run_folders(tmp_path / "run", overwrite=True)
    with pytest.raises(ValueError, match="overlap"):
        commands.check_run_folders(tmp_path / "new", resume=tmp_path / "new" / "backup")
    with pytest.raises(FileNotFoundError, match="No such model file"):
        commands.evaluate(tmp_path / "missing.keras", tmp_path / "data.npz")
    # `keras-deepclust fit` as a function: data from a file, the run written, the CLI's
    # checks in the library's words.
    small = {"filters": (4, 8), "kernel_sizes": (3, 3), "embedding_dim": 3}
    fitted = commands.fit("ae-kmeans", tmp_path / "data.npz", tmp_path / "fitted",
                          options=small, pretrain_epochs=2, precision="float32", verbose=0,
                          report_entries={"note": "by hand"})
    assert (tmp_path / "fitted" / "labels.csv").read_text().count("\n") == 61
    assert json.loads((tmp_path / "fitted" / "metrics.json").read_text())["note"] == "by hand"
    assert fitted.report["pretrain_epochs"] == 2
    with pytest.raises(ValueError, match="weight_labels is for dac only, not ae-kmeans"):
        commands.fit("ae-kmeans", tmp_path / "data.npz", tmp_path / "other",
                     weight_labels=True)
    with pytest.raises(ValueError, match="refine is for auto only, not ae-kmeans"):
        commands.fit("ae-kmeans", tmp_path / "data.npz", tmp_path / "other",
                     options={"refine": False})
    assert not (tmp_path / "other").exists()


def test_spelling_names_arguments_as_python_or_the_command_line_writes_them():
    from keras_deepclust.options import PYTHON, Spelling

    flags = Spelling({"n_clusters": "--clusters", "overwrite": "--overwrite"})
    assert (flags.name("n_clusters"), flags.setting("n_clusters", "K")) == (
        "--clusters", "--clusters K")
    assert flags.setting("overwrite") == "--overwrite"  # a switch is written alone
    assert (PYTHON.name("n_clusters"), PYTHON.setting("n_clusters", "K")) == (
        "n_clusters", "n_clusters=K")
    assert PYTHON.setting("overwrite") == "overwrite=True"
    assert flags.name("epochs") == "epochs"  # an argument without a flag keeps its name


def test_run_refuses_what_the_method_cannot_do_before_any_work(tiny_images):
    x, y = tiny_images
    with pytest.raises(ValueError, match="imsat has no autoencoder to pretrain"):
        run("imsat", x, y, pretrain_epochs=3, verbose=0)
    with pytest.raises(ValueError, match="the data has no labels: pass n_clusters=K or "
                                         "n_clusters=auto"):
        run("aec", x, verbose=0)
    # A one-shot fit has no epochs to set: refused, not ignored.
    with pytest.raises(ValueError, match="epochs is for methods whose fit trains in epochs; "
                                         "n2d fits its clusterer once"):
        run("n2d", x, y, epochs=5, verbose=0)
    with pytest.raises(ValueError, match="has 60 rows, too few for n_clusters=60"):
        run("aec", x, n_clusters=60, verbose=0)
    with pytest.raises(ValueError, match="n_clusters=auto needs a method that starts from a "
                                         "pretrained autoencoder; aec does not"):
        run("aec", x, n_clusters="auto", verbose=0)
    with pytest.raises(ValueError, match="umap_baseline scores against labels, and the data"):
        run("n2d", x, n_clusters=3, umap_baseline=True, verbose=0)
    with pytest.raises(ValueError, match="Unknown method 'kmeans'"):
        run("kmeans", x, y, verbose=0)


def test_kdc_run_is_the_function_after_its_module_is_imported():
    import keras_deepclust.experiment  # noqa: F401  (binds the module on the package)

    assert kdc.run is run and kdc.RunResult is RunResult
