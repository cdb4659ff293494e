"""Versioned model folders of TF Serving's layout: BASE/NAME/VERSION, written atomically,
and BASE/models.config, which names the models under BASE."""

import os
import shutil
import tempfile
from contextlib import contextmanager
from pathlib import Path

from keras_deepclust._io import atomic_path, versions_in
from keras_deepclust._validation import check_positive_int
from keras_deepclust.export._common import check_name, check_output_folder, remove
from keras_deepclust.serving.model_config import with_model

MODEL_CONFIG = "models.config"


def check_new_version(base_dir, name, version=None, platform="tensorflow"):
    """Every check of a versioned export, run before any work: the name, the folders, the
    version number and BASE/models.config (which must be readable and must not serve NAME
    from another folder). Nothing is written.

    Returns:
        The version to write: `version`, or one above the newest existing version.
    """
    check_name(name)
    check_output_folder(base_dir)
    model_dir = Path(base_dir) / name
    if model_dir.exists() and not model_dir.is_dir():
        raise ValueError(f"{model_dir} is a file, not a model folder: export under another "
                         "name or folder.")
    existing = versions_in(model_dir)
    if version is None:
        version = existing[-1] + 1 if existing else 1
    version = check_positive_int(version, "version")
    if existing and version <= existing[-1]:
        raise ValueError(
            f"version {version} is not above the newest existing version {existing[-1]}."
        )
    model_config_text(base_dir, name, platform)
    return version


@contextmanager
def new_version_folder(base_dir, name, version=None, platform="tensorflow"):
    """Yields `(temporary_folder, version)`; when the block succeeds, renames the folder to
    BASE/NAME/VERSION, so a watcher of BASE/NAME never sees a half-written version, and
    adds NAME to BASE/models.config (`write_model_config`). `check_new_version` runs first.

    `version` None takes one above the newest existing version.
    """
    version = check_new_version(base_dir, name, version, platform)
    model_dir = Path(base_dir) / name
    made = [folder for folder in (model_dir, Path(base_dir)) if not folder.exists()]
    model_dir.mkdir(parents=True, exist_ok=True)
    tmp = tempfile.mkdtemp(dir=model_dir, prefix=f".{version}.")
    try:
        yield Path(tmp), version
        os.rename(tmp, model_dir / str(version))
    except BaseException:
        remove(tmp)
        for folder in made:  # a failed first export leaves no empty folders behind
            if folder.is_dir() and not any(folder.iterdir()):
                folder.rmdir()
        raise
    write_model_config(base_dir, name, platform)


def model_config_text(base_dir, name, platform="tensorflow"):
    """`(path, current_text, new_text)` of BASE/models.config serving BASE/NAME: the file
    as it is (None when there is none) and as it will be, with NAME's entry added or its
    stale base path updated and everything else kept (`serving.model_config.with_model`).
    The base path written is NAME, relative to the file's folder, so BASE serves wherever
    it is moved or copied.

    Raises:
        ValueError: the file is a folder, cannot be read (naming its line), or serves NAME
            from another folder.
    """
    path = Path(base_dir) / MODEL_CONFIG
    if path.exists() and not path.is_file():
        raise ValueError(f"{path} is not a file: a model config file is written there.")
    current = None
    if path.is_file():
        try:
            current = path.read_text(encoding="utf-8")
        except UnicodeDecodeError as error:
            raise ValueError(f"{path} is not UTF-8 text: {error}") from None
    return path, current, with_model(current, path, name, name, platform)


def write_model_config(base_dir, name, platform="tensorflow"):
    """Makes BASE/models.config (TF Serving's `--model_config_file` format, read by
    `tensorflow_model_server` for SavedModels and by `keras-deepclust serve
    --model-config-file` for ONNX) serve BASE/NAME, keeping every other entry and setting
    of a file that exists (see `model_config_text`). A file that needs no change is not
    touched; a changed one is replaced atomically, keeping its permissions.

    Returns:
        The file's path.
    """
    with _locked(base_dir):  # two exports into BASE at once both keep their entries
        path, current, text = model_config_text(base_dir, name, platform)
        if text == current:
            return path
        with atomic_path(path) as tmp:
            Path(tmp).write_text(text, encoding="utf-8")
            if current is not None:
                shutil.copymode(path, tmp)
    return path


@contextmanager
def _locked(folder):
    """Holds an exclusive lock on `folder` (where `flock` exists; no file is created)."""
    try:
        import fcntl
    except ImportError:  # Windows
        yield
        return
    handle = os.open(folder, os.O_RDONLY)
    try:
        fcntl.flock(handle, fcntl.LOCK_EX)
        yield
    finally:
        os.close(handle)
