"""TF Serving's model config text format: what `serve --model-config-file` reads."""

import re
from pathlib import Path

import pytest

from keras_deepclust.serving.model_config import ModelConfig, read_model_config, with_model

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
    text = (tmp_path / "models.config").read_text()
    assert 'base_path: "a"' in text and 'base_path: "b"' in text  # relative to the file
    models = read_model_config(tmp_path / "models.config")
    assert [(m.name, m.base_path, m.policy) for m in models] == [
        ("a", tmp_path / "a", "latest"), ("b", tmp_path / "b", "latest")]
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
    ("model_config_list { config { name: 'a' base_path: 'x' version_labels: 'l' } }",
     "line 1: version_labels must be a { ... } block, got 'l'"),
    ("model_config_list { config { name: 'a' base_path: 'x'\n"
     " model_version_policy { latest: 2 } } }",
     "line 2: latest must be a { ... } block, got '2'"),
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


def test_relative_base_paths_are_read_from_the_files_folder_wherever_it_is(tmp_path, monkeypatch):
    (tmp_path / "served").mkdir()
    (tmp_path / "served" / "models.config").write_text(
        "model_config_list { config { name: 'a' base_path: 'a' }\n"
        "  config { name: 'b' base_path: '/srv/b' }  config { name: 'c' base_path: '../c' } }")
    monkeypatch.chdir(tmp_path)
    a, b, c = read_model_config("served/models.config")
    monkeypatch.chdir("/")  # what was read does not depend on the working folder
    assert (a.base_path, b.base_path, c.base_path) == (
        tmp_path / "served" / "a", Path("/srv/b"), tmp_path / "served" / ".." / "c")


def test_strings_decode_the_text_formats_escapes_as_utf8(tmp_path):
    (tmp_path / "models.config").write_text(
        "model_config_list { config { name: 'caf\\303\\251'\n"
        "  base_path: \"caf\\xc3\\xa9 \\\"q\\\"\" }\n"
        "  config { name: 'thé' base_path: 'x' } }", encoding="utf-8")
    first, second = read_model_config(tmp_path / "models.config")
    assert first.name == "café" and first.base_path == tmp_path / 'café "q"'
    assert second.name == "thé"  # UTF-8 as it is


USERS = """# ours
model_config_list {
  config {
    name: "digits"  # trusted
    base_path: "digits"
    model_version_policy { specific { versions: 1 } }
    version_labels { key: "stable" value: 1 }
  }
  config { name: "gone" base_path: "/no/such/folder/gone" }
}
"""
ENTRY = ('  config {\n    name: "new"\n    base_path: "new"\n    model_platform: "onnx"\n'
         '  }\n')


def test_with_model_adds_or_updates_one_entry_and_keeps_every_other_byte(tmp_path):
    path = tmp_path / "models.config"
    (tmp_path / "digits").mkdir()
    assert with_model(USERS, path, "new", "new", "onnx") == USERS[:-2] + ENTRY + "}\n"
    # The model is served from the same folder (relative or absolute): nothing changes.
    assert with_model(USERS, path, "digits", "digits", "onnx") is USERS
    absolute = USERS.replace('base_path: "digits"', f'base_path: "{tmp_path / "digits"}"')
    assert with_model(absolute, path, "digits", "digits", "onnx") is absolute
    # A base_path whose folder is gone (moved) is updated; the entry's other settings stay.
    assert with_model(USERS, path, "gone", "gone", "onnx") == USERS.replace(
        '"/no/such/folder/gone"', '"gone"')
    with pytest.raises(ValueError, match=f"{path}, line 5: the model 'digits' is served from "
                       f"{tmp_path / 'digits'}, not from {tmp_path / 'elsewhere'}"):
        with_model(USERS, path, "digits", "elsewhere", "onnx")
    # New files, empty ones and one-line lists.
    created = with_model(None, path, "new", "new", "onnx")
    assert created.startswith("# TF Serving's model config") and created.endswith(
        "model_config_list {\n" + ENTRY + "}\n")
    assert with_model("# nothing yet", path, "new", "new", "onnx") == (
        "# nothing yet\nmodel_config_list {\n" + ENTRY + "}\n")
    one_line = "model_config_list { config { name: 'a' base_path: 'a' } }"
    merged = with_model(one_line, path, "new", "new", "onnx")
    assert merged == "model_config_list { config { name: 'a' base_path: 'a' }\n" + ENTRY + "}"
    path.write_text(merged)
    assert [m.name for m in read_model_config(path)] == ["a", "new"]


@pytest.mark.parametrize("text, message", [
    ("model_config_list { config { name: 'a' base_path: 'a' }", "line 1: this '{' is never closed"),
    ("custom_model_config { }", "expected one model_config_list"),
    ("model_config_list {\n config { base_path: 'a' } }", "line 2: a model config needs one name"),
    ("model_config_list {\n config { name: 'new' }\n }",
     "line 2: the model 'new' needs one base_path"),
    ("model_config_list { config { name: 'new' base_path: 'a' }\n"
     "config { name: 'new' base_path: 'b' } }", "lines 1 and 2: two entries name the model 'new'"),
    ("model_config_list {\n\n  config ; }", "line 3: cannot read '; }'"),
])
def test_with_model_refuses_a_file_it_cannot_read(tmp_path, text, message):
    with pytest.raises(ValueError, match=re.escape(f"{tmp_path / 'models.config'}") + ".*"
                       + re.escape(message)):
        with_model(text, tmp_path / "models.config", "new", "new", "onnx")


def test_absolute_model_config_gives_tensorflow_model_server_absolute_base_paths(tmp_path):
    from keras_deepclust.serving.model_config import absolute_model_config

    path = tmp_path / "models.config"
    path.write_text(USERS.replace('"digits"  #', '"digits"  # "a" \'b\' #') + "# end\n")
    expected = USERS.replace('"digits"  #', '"digits"  # "a" \'b\' #').replace(
        'base_path: "digits"', 'base_path: "/models/digits"') + "# end\n"
    assert absolute_model_config(path, root="/models") == expected
    assert absolute_model_config(path) == expected.replace("/models/", f"{tmp_path}/")
    path.write_text("model_config_list { config { name: 'a' base_path: '../a' }\n"
                    "  config { name: 'b' base_path: 'gs://bucket/b' } }")
    assert absolute_model_config(path, root="/srv/models") == (
        "model_config_list { config { name: 'a' base_path: \"/srv/a\" }\n"
        "  config { name: 'b' base_path: 'gs://bucket/b' } }")
    with pytest.raises(ValueError, match="root must be an absolute path, got 'models'"):
        absolute_model_config(path, root="models")
