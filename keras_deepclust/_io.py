"""Atomic file writing: write next to the target, then rename, so a reader never
sees half a file."""

import json
import os
import tempfile
from contextlib import contextmanager
from pathlib import Path


@contextmanager
def atomic_path(path):
    """Yields a temporary path in the target's folder (same suffix); renames it to
    `path` when the block succeeds and removes it when the block fails."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    handle, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.stem}.", suffix=path.suffix)
    os.close(handle)
    os.unlink(tmp)  # writers such as keras refuse to overwrite or expect no file
    try:
        yield tmp
        os.replace(tmp, path)
    finally:
        if os.path.exists(tmp):
            os.unlink(tmp)


def write_json(path, data):
    with atomic_path(path) as tmp:
        with open(tmp, "w") as f:
            json.dump(data, f, indent=2, sort_keys=True, default=_to_builtin)
            f.write("\n")


def _to_builtin(value):
    if hasattr(value, "tolist"):
        return value.tolist()
    raise TypeError(f"cannot write {type(value).__name__} to JSON")


def versions_in(model_dir, holding=None):
    """The integer version folders of a model folder (TF Serving's BASE/NAME/VERSION),
    sorted; with `holding`, only those that hold that file. Temporary folders start with
    '.', so they are never versions."""
    model_dir = Path(model_dir)
    if not model_dir.is_dir():
        return []
    return sorted(int(p.name) for p in model_dir.iterdir()
                  if p.is_dir() and p.name.isdigit()
                  and (holding is None or (p / holding).is_file()))
