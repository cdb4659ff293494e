"""Atomic file writing: write next to the target, then rename, so a reader never
sees half a file."""

import json
import math
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
    """Writes `data` as JSON atomically; numpy values become Python ones and NaN or
    infinite numbers become null (JSON has neither: a bare NaN fails other languages'
    parsers)."""
    with atomic_path(path) as tmp:
        with open(tmp, "w") as f:
            json.dump(json_ready(data), f, indent=2, sort_keys=True, allow_nan=False)
            f.write("\n")


def json_ready(value):
    """`value` with numpy arrays and scalars as Python values and NaN or infinite
    floats as None, in nested dicts, lists and tuples."""
    if hasattr(value, "tolist"):
        value = value.tolist()
    if isinstance(value, dict):
        return {key: json_ready(item) for key, item in value.items()}
    if isinstance(value, (list, tuple)):
        return [json_ready(item) for item in value]
    if isinstance(value, float) and not math.isfinite(value):
        return None
    return value


def nearest_existing(path):
    """`path` itself if it exists, else its nearest ancestor that does (the folder a new
    file or folder would be made in, or a file that stands in the way)."""
    path = Path(path)
    return next(p for p in (path, *path.parents) if p.exists())


def check_can_write_in(folder, writing):
    """Refuses, before any work, to write `writing` (the words an error names it by) in
    `folder`, or in folders to be made there: when the nearest of them that exists is a
    file, or a folder this process cannot write to. Returns that nearest folder."""
    existing = nearest_existing(folder)
    if not existing.is_dir():
        raise ValueError(f"cannot write {writing}: {existing} is a file, not a folder.")
    if not os.access(existing, os.W_OK | os.X_OK):
        raise ValueError(f"cannot write {writing}: the folder {existing} is not writable by "
                         "this user.")
    return existing


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
