import json

import keras
import numpy as np
import pytest

from keras_deepclust import export as kdc_export
from keras_deepclust.export import ExportParityError, export_onnx, export_savedmodel, export_tflite
from keras_deepclust.layers import heads
from keras_deepclust.models import IDEC
from keras_deepclust.serving.metadata import metadata_path, read_metadata


@pytest.fixture(scope="module")
def model():
    rng = np.random.default_rng(0)
    x = rng.uniform(0, 1, (120, 6)).astype("float32")
    model = IDEC(n_clusters=3, hidden_units=(16,), embedding_dim=3, random_state=0)
    model.pretrain(x, epochs=3, verbose=0)
    model.initialize_centroids(x)
    return model


def test_all_formats_match_keras_and_carry_metadata(tmp_path, model):
    sample = np.random.default_rng(1).uniform(0, 1, (50, 6)).astype("float32")
    results = kdc_export.export(model, tmp_path, sample=sample, include_embedding=True,
                                metrics={"acc": 0.5})
    artifacts = {"savedmodel": tmp_path / "savedmodel" / "clusterer" / "1",
                 "onnx": tmp_path / "clusterer.onnx", "tflite": tmp_path / "clusterer.tflite"}
    for export_format, artifact in artifacts.items():
        metadata = read_metadata(artifact)  # verifies the checksum too
        assert metadata == results[export_format]
        assert metadata["method"] == "idec" and metadata["n_clusters"] == 3
        assert metadata["input_shape"] == [None, 6]
        assert metadata["outputs"] == ["probabilities", "cluster", "embedding"]
        assert metadata["metrics"] == {"acc": 0.5}
        assert metadata["parity"]["n_samples"] == 50
        assert metadata["parity"]["cluster_agreement"] == 1.0
        assert metadata["parity"]["max_abs_probability_difference"] <= 1e-5
    assert not [p for p in tmp_path.rglob(".*")]  # no temporary leftovers


def test_savedmodel_versions_and_model_config(tmp_path, model):
    assert export_savedmodel(model, tmp_path, name="digits")["version"] == 1
    assert export_savedmodel(model, tmp_path, name="digits")["version"] == 2
    export_savedmodel(model, tmp_path, name="other", version=7)
    assert sorted(p.name for p in (tmp_path / "digits").iterdir()) == ["1", "2"]
    config = (tmp_path / "models.config").read_text()
    assert config.count("config {") == 2
    assert 'name: "digits"\n    base_path: "digits"\n    model_platform: "tensorflow"' in config
    assert 'name: "other"\n    base_path: "other"' in config  # relative: BASE may move
    with pytest.raises(ValueError, match="version 2 is not above the newest existing version 2"):
        export_savedmodel(model, tmp_path, name="digits", version=2)
    with pytest.raises(ValueError, match="name must be letters"):
        export_savedmodel(model, tmp_path, name="../x")


def test_parity_failure_keeps_no_file(tmp_path, model, monkeypatch):
    from keras_deepclust.export import onnx

    real_run = onnx.run_onnx

    def perturbed(path, x):
        outputs = real_run(path, x)
        return dict(outputs, probabilities=outputs["probabilities"] + 1e-3)

    monkeypatch.setattr(onnx, "run_onnx", perturbed)
    with pytest.raises(ExportParityError, match="differ from Keras by up to 0.001"):
        export_onnx(model, tmp_path / "m.onnx")
    assert list(tmp_path.iterdir()) == []


def test_tflite_refuses_ops_outside_the_builtins(tmp_path, model, monkeypatch):
    # keras.ops.argmax on TensorFlow lowers to Bitcast/BitwiseAnd, which needs Flex ops.
    monkeypatch.setattr(heads.HardAssignment, "call",
                        lambda self, q: keras.ops.cast(keras.ops.argmax(q, axis=-1), "int32"))
    with pytest.raises(Exception, match="(?i)flex|select|not supported|Bitcast"):
        export_tflite(model, tmp_path / "m.tflite")
    assert not (tmp_path / "m.tflite").exists()


def test_quantized_tflite_reports_agreement(tmp_path, model):
    for quantization in ("dynamic", "float16"):
        metadata = export_tflite(model, tmp_path / f"{quantization}.tflite",
                                 quantization=quantization)
        assert metadata["quantization"] == quantization
        assert 0.9 <= metadata["parity"]["cluster_agreement"] <= 1.0


def test_tampered_artifact_fails_its_checksum(tmp_path, model):
    export_onnx(model, tmp_path / "m.onnx")
    with open(tmp_path / "m.onnx", "ab") as f:
        f.write(b"\0")
    with pytest.raises(ValueError, match="does not match the checksum"):
        read_metadata(tmp_path / "m.onnx")
    meta = json.loads(metadata_path(tmp_path / "m.onnx").read_text())
    assert meta["format"] == "onnx" and meta["opset"] == 17


def test_bad_export_arguments(tmp_path, model):
    with pytest.raises(ValueError, match="opset must be >= 17, got 13"):
        export_onnx(model, tmp_path / "m.onnx", opset=13)
    with pytest.raises(ValueError, match="must end with .onnx"):
        export_onnx(model, tmp_path / "m.bin")
    with pytest.raises(ValueError, match="quantization must be one of"):
        export_tflite(model, tmp_path / "m.tflite", quantization="int4")
    with pytest.raises(ValueError, match=r"Unknown export formats \['pb'\]"):
        kdc_export.export(model, tmp_path, formats=("pb",))
    with pytest.raises(ValueError, match=r"sample has samples of shape \(5,\)"):
        export_onnx(model, tmp_path / "m.onnx", sample=np.zeros((3, 5), "float32"))


def test_parity_tolerance_follows_the_models_own_sensitivity_and_spares_near_ties():
    from keras_deepclust.export._common import compare

    reference = {"probabilities": np.array([[0.9, 0.1], [0.5002, 0.4998]], np.float32),
                 "cluster": np.array([0, 0], np.int32)}
    # The second row is a near-tie (margin 4e-4): its id may flip when the tolerance
    # (ten times the sensitivity, 1e-3 here) exceeds the margin.
    flipped = {"probabilities": np.array([[0.9, 0.1], [0.4999, 0.5001]], np.float32),
               "cluster": np.array([0, 1], np.int32)}
    parity = compare(dict(reference, sensitivity=1e-4), flipped)
    assert parity["probability_tolerance"] == pytest.approx(1e-3)
    assert parity["near_ties"] == 1 and parity["cluster_agreement"] == 0.5
    # Without that sensitivity the tolerance is 1e-5: the same outputs are refused.
    with pytest.raises(ExportParityError, match=r"differ from Keras by up to 0.0003 \(tolerance "
                       r"1e-05\) and 1 cluster ids differ outside near-ties"):
        compare(reference, flipped)
    # A confident row whose id changes is never a near-tie.
    wrong = dict(reference, cluster=np.array([1, 0], np.int32))
    with pytest.raises(ExportParityError, match="1 cluster ids differ outside near-ties"):
        compare(dict(reference, sensitivity=1e-4), wrong)


def test_export_checks_its_options_before_any_work(tmp_path):
    check = kdc_export.check_export
    (tmp_path / "file").write_text("mine")
    assert check(tmp_path / "out", "onnx") == ("onnx",)
    assert check(tmp_path / "out", ("tflite", "onnx", "tflite"), quantization="dynamic") == (
        "tflite", "onnx")
    for kwargs, message in [
        ({"formats": ()}, r"No export format given; choose from \['savedmodel', 'onnx', "
                          r"'tflite'\]"),
        ({"formats": ("onnx",), "quantization": "dynamic"},
         r"quantization 'dynamic' applies to TFLite files only and would be ignored by an "
         r"export of \['onnx'\]"),
        ({"formats": ("savedmodel",), "quantization": "float16"}, "would be ignored"),
        ({"formats": ("onnx",), "versioned": True, "quantization": "dynamic"},
         "would be ignored by a versioned export"),
        ({"formats": ("tflite",), "versioned": True},
         r"versioned export writes the server's ONNX layout .* got \['tflite'\]"),
        ({"quantization": "int4"}, "quantization must be one of"),
        ({"name": "../x"}, r"name must be letters, .* got '../x'"),
        ({"name": "a/b", "formats": ("onnx",)}, "name must be letters"),
    ]:
        with pytest.raises(ValueError, match=message):
            check(tmp_path / "out", **kwargs)
    with pytest.raises(ValueError, match=f"The output folder {tmp_path / 'file'} is a file"):
        check(tmp_path / "file")
    with pytest.raises(ValueError, match=f"cannot write the output folder "
                       f"{tmp_path / 'file' / 'x'}: {tmp_path / 'file'} is a file, not a folder"):
        check(tmp_path / "file" / "x", versioned=True, formats="onnx")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["file"]  # nothing written


def test_a_flat_export_replaces_only_an_unchanged_earlier_export(tmp_path, model):
    kdc_export.export(model, tmp_path, formats=("onnx",), name="m")
    again = kdc_export.export(model, tmp_path, formats=("onnx",), name="m")["onnx"]
    assert read_metadata(tmp_path / "m.onnx") == again  # the earlier export was replaced
    (tmp_path / "m.onnx").write_bytes(b"the user's model")
    user_files = {p.name: p.read_bytes() for p in tmp_path.iterdir()}
    with pytest.raises(ValueError, match=r"m.onnx already exists and is not an earlier export "
                       r"left unchanged \(it changed since m.onnx.metadata.json was written\)"):
        export_onnx(model, tmp_path / "m.onnx")
    metadata_path(tmp_path / "m.onnx").unlink()
    with pytest.raises(ValueError, match="it has no metadata m.onnx.metadata.json"):
        kdc_export.export(model, tmp_path, formats=("tflite", "onnx"), name="m")
    assert not (tmp_path / "m.tflite").exists()  # refused before the TFLite file was written
    (tmp_path / "x.tflite").mkdir()
    with pytest.raises(ValueError, match="x.tflite is a folder"):
        export_tflite(model, tmp_path / "x.tflite")
    (tmp_path / "y.tflite.metadata.json").write_text("{}")
    with pytest.raises(ValueError, match="y.tflite.metadata.json has no y.tflite beside it"):
        export_tflite(model, tmp_path / "y.tflite")
    assert (tmp_path / "m.onnx").read_bytes() == user_files["m.onnx"]


def test_versioned_exports_merge_into_the_users_model_config(tmp_path, model):
    config = tmp_path / "models.config"
    users = ("model_config_list {\n  config { name: 'kept'  # mine\n    base_path: '/srv/kept'\n"
             "    model_version_policy { all {} } }\n"
             "  config { name: 'digits' base_path: '/moved/away/digits'\n"
             "    version_labels { key: 'stable' value: 1 } }\n}\n")
    config.write_text(users)
    config.chmod(0o640)
    export_savedmodel(model, tmp_path, name="digits")
    # The stale absolute base_path (that folder is gone) now points here; the rest is kept.
    assert config.read_text() == users.replace("'/moved/away/digits'", '"digits"')
    assert config.stat().st_mode & 0o777 == 0o640
    export_savedmodel(model, tmp_path, name="digits")
    assert config.read_text() == users.replace("'/moved/away/digits'", '"digits"')
    (tmp_path / "elsewhere").mkdir()
    config.write_text(users.replace("/moved/away/digits", str(tmp_path / "elsewhere")))
    before = {str(p): p.read_bytes() for p in tmp_path.rglob("*") if p.is_file()}
    with pytest.raises(ValueError, match=f"models.config, line 5: the model 'digits' is served "
                       f"from {tmp_path / 'elsewhere'}, not from {tmp_path / 'digits'}"):
        export_savedmodel(model, tmp_path, name="digits")
    config.write_text("model_config_list { config { name: 'a' base_path: 'a' }")
    with pytest.raises(ValueError, match=r"models.config, line 1: this '\{' is never closed"):
        export_onnx_version_into(tmp_path, model)
    (tmp_path / "models.config").write_text(users.replace("/moved/away/digits",
                                                          str(tmp_path / "elsewhere")))
    assert {str(p): p.read_bytes() for p in tmp_path.rglob("*") if p.is_file()} == before
    assert sorted(p.name for p in (tmp_path / "digits").iterdir()) == ["1", "2"]


def export_onnx_version_into(base, model):
    from keras_deepclust.export import export_onnx_version

    return export_onnx_version(model, base, name="new")


def test_a_failed_first_versioned_export_leaves_no_folders(tmp_path, model, monkeypatch):
    from keras_deepclust.export import export_onnx_version, onnx

    monkeypatch.setattr(onnx, "run_onnx", lambda path, x: {"probabilities": 0, "cluster": 0})
    with pytest.raises(ExportParityError):
        export_onnx_version(model, tmp_path / "base", name="m")
    assert list(tmp_path.iterdir()) == []
    (tmp_path / "base").mkdir()
    (tmp_path / "base" / "m").write_text("mine")
    with pytest.raises(ValueError, match="base/m is a file, not a model folder"):
        export_onnx_version(model, tmp_path / "base", name="m")


def test_litert_info_lines_are_dropped_and_everything_else_kept(capfd, monkeypatch):
    import os

    from keras_deepclust.export._common import LITERT_INFO_LINES, quiet_litert, without_stderr_lines

    with without_stderr_lines(LITERT_INFO_LINES):
        os.write(2, b"E0101 an error\nINFO: Created TensorFlow Lite XNNPACK delegate for CPU.\n"
                    b"INFO: Created TensorFlow Lite XNNPACK delegate for CPU. and more\nlast")
    assert capfd.readouterr().err == ("E0101 an error\nINFO: Created TensorFlow Lite XNNPACK "
                                      "delegate for CPU. and more\nlast")
    with pytest.raises(RuntimeError), without_stderr_lines(LITERT_INFO_LINES):
        os.write(2, b"kept\n")
        raise RuntimeError
    assert capfd.readouterr().err == "kept\n"
    monkeypatch.setenv("TF_CPP_MIN_LOG_LEVEL", "0")  # as with --verbose: LiteRT speaks
    with quiet_litert():
        os.write(2, b"INFO: Created TensorFlow Lite XNNPACK delegate for CPU.\n")
    assert capfd.readouterr().err == "INFO: Created TensorFlow Lite XNNPACK delegate for CPU.\n"
