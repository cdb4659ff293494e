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
`specific { versions: V ... }`. A relative `base_path` is read from the file's folder,
so a folder holding the file and its models serves wherever it is moved or copied.
`tensorflow_model_server` refuses relative base paths ("Expected model NAME to have an
absolute path or URI"): `absolute_model_config` gives the same file with absolute ones.
`with_model` adds or updates one model's entry in such a file, keeping everything else.
"""

import os
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import NamedTuple

# A comment, a quoted string (no raw line break), a mark, or a word.
_TOKEN = re.compile(r'\s*(?:(#[^\n]*)|("(?:[^"\\\n]|\\.)*"|\'(?:[^\'\\\n]|\\.)*\')'
                    r'|([{}:])|([-\w.]+))')
_ESCAPE = re.compile(rb"\\(x[0-9a-fA-F]{1,2}|[0-7]{1,3}|.)", re.S)
_SIMPLE_ESCAPES = {b"n": b"\n", b"t": b"\t", b"r": b"\r", b"a": b"\a", b"b": b"\b",
                   b"f": b"\f", b"v": b"\v"}


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


class Field(NamedTuple):
    """One `key: value` or `key { ... }` of the text, with where its value is in the text."""

    key: str
    value: object  # a string, or the list of Fields of a nested message
    line: int  # of the key
    value_start: int  # offset of the value (of its '{' for a message)
    end: int  # offset just after the value (after its '}')


def _unescape(body, path, line):
    """A quoted string's content with the text format's escapes (\\n, \\", \\ooo, \\xHH)
    decoded; the bytes they spell are UTF-8."""
    def one(match):
        escape = match.group(1)
        if escape[:1] == b"x":
            return bytes([int(escape[1:], 16)])
        if escape[:1].isdigit():
            return bytes([int(escape, 8) & 0xFF])
        return _SIMPLE_ESCAPES.get(escape, escape)

    try:
        return _ESCAPE.sub(one, body.encode("utf-8")).decode("utf-8")
    except UnicodeDecodeError:
        raise ValueError(f"{path}, line {line}: a string's escapes are not UTF-8") from None


def quote(text):
    """`text` as a double-quoted string of the text format."""
    escaped = text.replace("\\", "\\\\").replace('"', '\\"').replace("\n", "\\n")
    return f'"{escaped}"'


def _tokens(text, path):
    """`(kind, value, line, start, end)` of each token: kind "string" (value unquoted),
    "word", or the mark itself ("{", "}", ":"). Comments are skipped."""
    position, line = 0, 1
    while position < len(text):
        match = _TOKEN.match(text, position)
        if not match or match.end() == position:
            rest = text[position:]
            if not rest.strip():
                return
            offset = len(text) - len(rest.lstrip())
            line += text.count("\n", position, offset)
            raise ValueError(f"{path}, line {line}: cannot read {text[offset:offset + 20]!r}")
        comment, string, mark, word = match.groups()
        start = match.start(match.lastindex)
        line += text.count("\n", position, start)
        position = match.end()
        if string is not None:
            yield "string", _unescape(string[1:-1], path, line), line, start, position
        elif mark is not None:
            yield mark, mark, line, start, position
        elif word is not None:
            yield "word", word, line, start, position
        line += text.count("\n", start, position)


def _parse_block(tokens, path, opening=None):
    """`(fields, end)` of one message: its `Field`s up to the '}' closing `opening` (the
    '{' token), or to the end of the text when `opening` is None."""
    fields = []
    for kind, value, line, _, end in tokens:
        if kind == "}":
            if opening is None:
                raise ValueError(f"{path}, line {line}: unexpected '}}'")
            return fields, end
        if kind != "word":
            raise ValueError(f"{path}, line {line}: expected a field name, got {value!r}")
        following = next(tokens, None)
        if following is not None and following[0] == ":":
            following = next(tokens, None)
        if following is not None and following[0] == "{":
            body, body_end = _parse_block(tokens, path, opening=following)
            fields.append(Field(value, body, line, following[3], body_end))
        elif following is not None and following[0] in ("string", "word"):
            fields.append(Field(value, following[1], line, following[3], following[4]))
        else:
            where = line if following is None else following[2]
            raise ValueError(f"{path}, line {where}: field {value!r} has no value")
    if opening is not None:
        raise ValueError(f"{path}, line {opening[2]}: this '{{' is never closed")
    return fields, None


def _fields(text, path):
    """The top-level `Field`s of a model config file's text."""
    return _parse_block(_tokens(text, path), path)[0]


def _integer(value, key, path, line):
    if not re.fullmatch(r"\d+", str(value)):
        raise ValueError(f"{path}, line {line}: {key} must be a non-negative integer, "
                         f"got {value!r}")
    return int(value)


def _message(value, key, path, line):
    """The fields of `key { ... }`; refuses `key: value`."""
    if not isinstance(value, list):
        raise ValueError(f"{path}, line {line}: {key} must be a {{ ... }} block, got {value!r}")
    return value


def _model(fields, path):
    config = {"labels": {}}
    for key, value, line, _, _ in fields:
        if key in ("name", "base_path", "model_platform"):
            if not isinstance(value, str):
                raise ValueError(f"{path}, line {line}: {key} must be a string")
            config[key] = value
        elif key == "model_version_policy":
            value = _message(value, key, path, line)
            if len(value) != 1 or value[0].key not in ("latest", "all", "specific"):
                raise ValueError(f"{path}, line {line}: model_version_policy must hold one of "
                                 "latest, all, specific")
            policy = value[0].key
            body = _message(value[0].value, policy, path, value[0].line)
            config["policy"] = policy
            numbers = [(f.key, _integer(f.value, f.key, path, f.line)) for f in body]
            if policy == "latest":
                config["num_versions"] = next((n for k, n in numbers if k == "num_versions"), 1)
            elif policy == "specific":
                config["versions"] = tuple(n for k, n in numbers if k == "versions")
                if not config["versions"]:
                    raise ValueError(f"{path}, line {line}: a specific policy needs versions")
        elif key == "version_labels":
            entries = {f.key: f.value for f in _message(value, key, path, line)}
            if set(entries) != {"key", "value"}:
                raise ValueError(f"{path}, line {line}: version_labels needs a key and a value")
            config["labels"][entries["key"]] = _integer(entries["value"], "value", path, line)
        else:
            raise ValueError(f"{path}, line {line}: unknown model config field {key!r}")
    for required in ("name", "base_path"):
        if required not in config:
            raise ValueError(f"{path}: a model config has no {required}")
    config.pop("model_platform", None)
    return ModelConfig(base_path=resolve_base_path(config.pop("base_path"), path), **config)


def resolve_base_path(base_path, path):
    """Where a `base_path` of the model config file `path` points: an absolute path as it
    is, a relative one from the file's folder (so a folder holding the file and its models
    serves wherever it is moved or copied)."""
    return Path(path).absolute().parent / base_path


def absolute_model_config(path, root=None):
    """The text of the model config file `path` with every relative `base_path` made
    absolute, for `tensorflow_model_server`, which refuses relative ones. A relative path
    is joined to `root` (default: the file's own folder; for a container, the folder the
    file's folder is mounted at, such as "/models"). Everything else is kept as it is.

    Example: `keras_deepclust.serving.model_config.absolute_model_config(
    "served/models.config", root="/models")`.
    """
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"No such model config file: {path}")
    text = path.read_text(encoding="utf-8")
    root = str(path.absolute().parent) if root is None else str(root)
    if not os.path.isabs(root):
        raise ValueError(f"root must be an absolute path, got {root!r}.")
    relative = [f for entry in _model_list(_fields(text, path), path) if entry.key == "config"
                for f in entry.value if f.key == "base_path" and isinstance(f.value, str)
                and not os.path.isabs(f.value) and "://" not in f.value]
    for setting in sorted(relative, key=lambda f: f.value_start, reverse=True):
        absolute = os.path.normpath(os.path.join(root, setting.value))
        text = text[:setting.value_start] + quote(absolute) + text[setting.end:]
    return text


def _model_list(fields, path):
    """The body of the one `model_config_list { ... }` of a file's top-level fields."""
    if [f.key for f in fields] != ["model_config_list"] or not isinstance(fields[0].value, list):
        raise ValueError(f"{path}: expected one model_config_list {{ ... }}")
    return fields[0].value


def read_model_config(path):
    """The `ModelConfig` of each model in a TF Serving model config file."""
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"No such model config file: {path}")
    fields = _fields(path.read_text(encoding="utf-8"), path)
    models = [_model(f.value, path) for f in _model_list(fields, path)
              if f.key == "config"]
    names = [model.name for model in models]
    if not models or len(set(names)) != len(names):
        raise ValueError(f"{path}: expected models with distinct names, got {names}")
    return models


HEADER = ("# TF Serving's model config, for keras-deepclust serve --model-config-file FILE.\n"
          "# A relative base_path is read from this file's folder. tensorflow_model_server\n"
          "# needs absolute ones: keras_deepclust.serving.model_config.absolute_model_config.\n")


def with_model(text, path, name, base_path, platform):
    """The text of the model config file `path` (`text`, or None when there is none yet)
    once it serves the model `name` from `base_path` (written as given; a relative one is
    read from the file's folder).

    Only what must change is changed: a file that already names the model from that folder
    is returned as it is; another model's entry, every setting of the model's own entry
    (version policy, labels, platform) and the comments are kept. A model the file does not
    name gets an entry before the list's closing brace; a `base_path` of the model that
    points to a folder that no longer exists (the folder was moved) is replaced.

    Raises:
        ValueError (naming the file and line): the file cannot be read, or it serves the
            model from another folder that exists.
    """
    entry = (f"  config {{\n    name: {quote(name)}\n    base_path: {quote(str(base_path))}\n"
             f"    model_platform: {quote(platform)}\n  }}\n")
    if text is None:
        return HEADER + "model_config_list {\n" + entry + "}\n"
    fields = _fields(text, path)
    if not fields:  # empty, or comments only
        return text + ("" if text.endswith("\n") or not text else "\n") + (
            "model_config_list {\n" + entry + "}\n")
    model_list = fields[0]
    entries = [f for f in _model_list(fields, path) if f.key == "config"]
    same = [f for f in entries if _entry_name(f, path) == name]
    if len(same) > 1:
        raise ValueError(f"{path}, lines {same[0].line} and {same[1].line}: two entries name "
                         f"the model {name!r}")
    if not same:
        closing = model_list.end - 1  # the list's '}'
        head = text[:closing].rstrip(" \t")
        indent = text[len(head):closing]
        if head.endswith("\n"):
            return head + entry + indent + text[closing:]
        return head + "\n" + entry + text[closing:]
    return _with_base_path(text, path, same[0], name, base_path)


def _entry_name(entry, path):
    names = [f.value for f in entry.value if f.key == "name"]
    if len(names) != 1 or not isinstance(names[0], str):
        raise ValueError(f"{path}, line {entry.line}: a model config needs one name")
    return names[0]


def _with_base_path(text, path, entry, name, base_path):
    """`text` with the `base_path` of the model's `entry` set to `base_path`, unless it
    already points there; refused when it points to another existing folder."""
    current = [f for f in entry.value if f.key == "base_path"]
    if len(current) != 1:
        raise ValueError(f"{path}, line {entry.line}: the model {name!r} needs one base_path")
    setting = current[0]
    old, new = resolve_base_path(setting.value, path), resolve_base_path(base_path, path)
    if os.path.realpath(old) == os.path.realpath(new):
        return text
    if os.path.exists(old):
        raise ValueError(
            f"{path}, line {setting.line}: the model {name!r} is served from {old}, not from "
            f"{new} where this export writes it; change that base_path, or export under "
            "another name.")
    return text[:setting.value_start] + quote(str(base_path)) + text[setting.end:]
