"""TF Serving's `--model_config_file`: the text format of its `ModelServerConfig`, the
part that names models, their base paths, version policies and version labels.

    model_config_list {
      config {
        name: "digits"
        base_path: "/models/digits"
        model_platform: "tensorflow"
        model_version_policy { specific { versions: 1 versions: 2 } }
        version_labels { key: "stable" value: 1 }
      }
    }

Policies as in TF Serving: `latest { num_versions: N }` (the default, N = 1), `all {}`,
`specific { versions: V ... }`. A relative `base_path` is taken from the file's folder.
"""

import re
from dataclasses import dataclass, field
from pathlib import Path

_TOKEN = re.compile(r'\s*(?:(#[^\n]*)|("(?:[^"\\]|\\.)*"|\'(?:[^\'\\]|\\.)*\')|([{}:])|([-\w.]+))')


@dataclass
class ModelConfig:
    """One served model: where its versions are and which of them to serve."""

    name: str
    base_path: Path
    policy: str = "latest"  # "latest", "all" or "specific"
    num_versions: int = 1  # with "latest"
    versions: tuple = ()  # with "specific"
    labels: dict = field(default_factory=dict)  # label -> version

    def wanted(self, available):
        """The versions to serve among the sorted `available` ones."""
        if self.policy == "latest":
            return list(available[-self.num_versions:])
        if self.policy == "all":
            return list(available)
        return [v for v in available if v in self.versions]


def _tokens(text, path):
    position, line = 0, 1
    while position < len(text):
        match = _TOKEN.match(text, position)
        if not match or match.end() == position:
            if not text[position:].strip():
                return
            raise ValueError(f"{path}, line {line}: cannot read {text[position:position + 20]!r}")
        comment, string, mark, word = match.groups()
        line += text.count("\n", position, match.end())
        position = match.end()
        if string is not None:
            yield "string", string[1:-1].encode().decode("unicode_escape"), line
        elif mark is not None:
            yield mark, mark, line
        elif word is not None:
            yield "word", word, line


def _parse_block(tokens, path, closing):
    """`[(key, value, line)]` of one message; a value is a scalar or a nested list."""
    fields = []
    for kind, value, line in tokens:
        if kind == "}":
            if not closing:
                raise ValueError(f"{path}, line {line}: unexpected '}}'")
            return fields
        if kind != "word":
            raise ValueError(f"{path}, line {line}: expected a field name, got {value!r}")
        kind_next, value_next, line_next = next(tokens, (None, None, line))
        if kind_next == ":":
            kind_next, value_next, line_next = next(tokens, (None, None, line))
        if kind_next == "{":
            fields.append((value, _parse_block(tokens, path, closing=True), line))
        elif kind_next in ("string", "word"):
            fields.append((value, value_next, line))
        else:
            raise ValueError(f"{path}, line {line_next}: field {value!r} has no value")
    if closing:
        raise ValueError(f"{path}: a '{{' is never closed")
    return fields


def _integer(value, key, path, line):
    if not re.fullmatch(r"\d+", str(value)):
        raise ValueError(f"{path}, line {line}: {key} must be a non-negative integer, "
                         f"got {value!r}")
    return int(value)


def _model(fields, path, folder):
    config = {"labels": {}}
    for key, value, line in fields:
        if key in ("name", "base_path", "model_platform"):
            if not isinstance(value, str):
                raise ValueError(f"{path}, line {line}: {key} must be a string")
            config[key] = value
        elif key == "model_version_policy":
            if len(value) != 1 or value[0][0] not in ("latest", "all", "specific"):
                raise ValueError(f"{path}, line {line}: model_version_policy must hold one of "
                                 "latest, all, specific")
            policy, body, _ = value[0]
            config["policy"] = policy
            numbers = [(k, _integer(v, k, path, ln)) for k, v, ln in body]
            if policy == "latest":
                config["num_versions"] = next((n for k, n in numbers if k == "num_versions"), 1)
            elif policy == "specific":
                config["versions"] = tuple(n for k, n in numbers if k == "versions")
                if not config["versions"]:
                    raise ValueError(f"{path}, line {line}: a specific policy needs versions")
        elif key == "version_labels":
            entries = {k: v for k, v, _ in value}
            if set(entries) != {"key", "value"}:
                raise ValueError(f"{path}, line {line}: version_labels needs a key and a value")
            config["labels"][entries["key"]] = _integer(entries["value"], "value", path, line)
        else:
            raise ValueError(f"{path}, line {line}: unknown model config field {key!r}")
    for required in ("name", "base_path"):
        if required not in config:
            raise ValueError(f"{path}: a model config has no {required}")
    config.pop("model_platform", None)
    base_path = Path(config.pop("base_path"))
    return ModelConfig(base_path=base_path if base_path.is_absolute() else folder / base_path,
                       **config)


def read_model_config(path):
    """The `ModelConfig` of each model in a TF Serving model config file."""
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"No such model config file: {path}")
    fields = _parse_block(_tokens(path.read_text(), path), path, closing=False)
    if [key for key, _, _ in fields] != ["model_config_list"]:
        raise ValueError(f"{path}: expected one model_config_list {{ ... }}")
    models = [_model(value, path, path.parent) for key, value, line in fields[0][1]
              if key == "config"]
    names = [model.name for model in models]
    if not models or len(set(names)) != len(names):
        raise ValueError(f"{path}: expected models with distinct names, got {names}")
    return models
