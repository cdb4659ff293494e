"""TF Serving's model config text format: what `serve --model-config-file` reads."""

from pathlib import Path

import pytest

from keras_deepclust.serving.model_config import ModelConfig, read_model_config

CONFIG = """
model_config_list {
  config {
    name: "digits"   # relative base paths are the file's folder's
    base_path: "digits"
    model_platform: "tensorflow"
    model_version_policy { specific { versions: 1 versions: 3 } }
    version_labels { key: 'stable' value: 1 }
    version_labels { key: "canary" value: 3 }
  }
  config {
    name: 'fashion'
    base_path: '/models/fashion'
    model_version_policy: { latest: { num_versions: 2 } }
  }
  config { name: "all" base_path: "/m/all" model_version_policy { all {} } }
  config { name: "plain" base_path: "/m/plain" }
}
"""


def test_names_paths_policies_and_labels(tmp_path):
    (tmp_path / "models.config").write_text(CONFIG)
    digits, fashion, every, plain = read_model_config(tmp_path / "models.config")
    assert digits == ModelConfig("digits", tmp_path / "digits", "specific", 1, (1, 3),
                                 {"stable": 1, "canary": 3})
    assert (fashion.name, fashion.base_path, fashion.policy, fashion.num_versions) == (
        "fashion", Path("/models/fashion"), "latest", 2)
    assert every.policy == "all" and (plain.policy, plain.num_versions) == ("latest", 1)
    available = [1, 2, 3, 4]
    assert [m.wanted(available) for m in (digits, fashion, every, plain)] == [
        [1, 3], [3, 4], [1, 2, 3, 4], [4]]


def test_the_onnx_exporters_file_reads_back_and_is_served(tmp_path):
    """export_onnx_version writes BASE/models.config, which the server reads."""
    import numpy as np

    from keras_deepclust.export import export_onnx_version
    from keras_deepclust.models import AEKMeans
    from keras_deepclust.serving.server import ModelRegistry

    x = np.random.default_rng(0).uniform(0, 1, (40, 5)).astype("float32")
    model = AEKMeans(n_clusters=2, hidden_units=(8,), embedding_dim=2, random_state=0)
    model.pretrain(x, epochs=1, verbose=0)
    model.fit(x, verbose=0)
    for name in ("a", "b"):
        export_onnx_version(model, tmp_path, name=name)
    models = read_model_config(tmp_path / "models.config")
    assert [(m.name, m.base_path, m.policy) for m in models] == [
        ("a", (tmp_path / "a").resolve(), "latest"), ("b", (tmp_path / "b").resolve(), "latest")]
    registry = ModelRegistry(models, poll_seconds=60)
    try:
        version, assigner = registry.watcher("b").get()
        assert version == 1
        np.testing.assert_array_equal(assigner.predict_labels(x), model.predict_labels(x))
    finally:
        registry.stop()


@pytest.mark.parametrize("text, message", [
    ("model_config_list { config { name: 'a' } }", "has no base_path"),
    ("model_config_list { config { name: 'a' base_path: 'x' speed: 3 } }",
     "unknown model config field 'speed'"),
    ("model_config_list { config { name: 'a' base_path: 'x' "
     "model_version_policy { newest {} } } }", "one of latest, all, specific"),
    ("model_config_list { config { name: 'a' base_path: 'x' "
     "model_version_policy { specific { versions: two } } } }", "versions must be a non-negative"),
    ("model_config_list { config { name: 'a' base_path: 'x' }", "never closed"),
    ("model_config_list { config { name: 'a' base_path: 'x' } "
     "config { name: 'a' base_path: 'y' } }", "distinct names"),
    ("models { }", "expected one model_config_list"),
    ("model_config_list { config { name: 'a' base_path: 'x' version_labels { key: 'l' } } }",
     "needs a key and a value"),
])
def test_bad_files_name_the_problem(tmp_path, text, message):
    (tmp_path / "models.config").write_text(text)
    with pytest.raises(ValueError, match=message):
        read_model_config(tmp_path / "models.config")


def test_a_missing_file_is_named(tmp_path):
    with pytest.raises(FileNotFoundError, match="No such model config file"):
        read_model_config(tmp_path / "nope.config")


def test_serve_takes_a_base_and_a_name_or_a_config_file(tmp_path, capsys):
    from keras_deepclust import cli

    assert cli.main(["serve"]) == 2
    assert "Pass a base folder and a model name (or a model config file)" in capsys.readouterr().err
    assert cli.main(["serve", str(tmp_path), "--name", "a",
                     "--model-config-file", str(tmp_path / "models.config")]) == 2
    assert "not both" in capsys.readouterr().err
    assert cli.main(["serve", "--model-config-file", str(tmp_path / "none.config")]) == 2
    assert "No such model config file" in capsys.readouterr().err
