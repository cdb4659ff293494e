"""Versioned model folders of TF Serving's layout: BASE/NAME/VERSION, written atomically."""

import os
import re
import tempfile
from contextlib import contextmanager
from pathlib import Path

from keras_deepclust._io import atomic_path, versions_in
from keras_deepclust._validation import check_positive_int
from keras_deepclust.export._common import remove

_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]*$")


@contextmanager
def new_version_folder(base_dir, name, version=None):
    """Yields `(temporary_folder, version)`; renames the folder to BASE/NAME/VERSION when
    the block succeeds, so a watcher of BASE/NAME never sees a half-written version.

    `version` None takes one above the newest existing version.
    """
    if not _NAME.match(name):
        raise ValueError(f"name must be letters, digits, '_', '.' or '-', got {name!r}.")
    model_dir = Path(base_dir) / name
    existing = versions_in(model_dir)
    if version is None:
        version = existing[-1] + 1 if existing else 1
    version = check_positive_int(version, "version")
    if existing and version <= existing[-1]:
        raise ValueError(
            f"version {version} is not above the newest existing version {existing[-1]}."
        )
    model_dir.mkdir(parents=True, exist_ok=True)
    tmp = tempfile.mkdtemp(dir=model_dir, prefix=f".{version}.")
    try:
        yield Path(tmp), version
        os.rename(tmp, model_dir / str(version))
    finally:
        remove(tmp)


def write_model_config(base_dir, platform="tensorflow"):
    """Writes BASE/models.config (TF Serving's `--model_config_file` format, read by
    `tensorflow_model_server` for SavedModels and by `keras-deepclust serve
    --model-config-file` for ONNX) listing every model folder under BASE that holds at
    least one version."""
    base_dir = Path(base_dir).resolve()
    entries = [
        f'  config {{\n    name: "{d.name}"\n    base_path: "{d}"\n'
        f'    model_platform: "{platform}"\n  }}\n'
        for d in sorted(base_dir.iterdir()) if d.is_dir() and versions_in(d)
    ]
    text = "model_config_list {\n" + "".join(entries) + "}\n"
    path = base_dir / "models.config"
    with atomic_path(path) as tmp:
        Path(tmp).write_text(text)
    return path
