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
    assert f'base_path: "{(tmp_path / "digits").resolve()}"' in config
    assert 'name: "other"' in config
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
