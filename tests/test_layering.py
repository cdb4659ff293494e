"""The package's layering, held by import-linter's contracts in pyproject.toml, and no
private name (`module._name`) used outside its module."""

import ast
import os
import shutil
import subprocess
import sys
import tomllib
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
CONFIG = ROOT / "pyproject.toml"
LINT = ("import sys; from importlinter.cli import lint_imports; "
        "sys.exit(lint_imports(sys.argv[1], no_cache=True, no_logo=True))")


def source_folders():
    """`{package: folder}` from pyproject's package-dir (export/ and serving/ install as
    keras_deepclust.export and keras_deepclust.serving)."""
    config = tomllib.loads(CONFIG.read_text())
    return {package: ROOT / folder
            for package, folder in config["tool"]["setuptools"]["package-dir"].items()}


def installed_layout(tmp_path):
    """The source tree copied as it installs, so the linter reads this checkout's code
    whether the package is installed from it editable or not."""
    for package, folder in sorted(source_folders().items()):
        shutil.copytree(folder, tmp_path / package.replace(".", os.sep), dirs_exist_ok=True,
                        ignore=shutil.ignore_patterns("__pycache__"))
    return tmp_path


def lint(layout):
    return subprocess.run([sys.executable, "-c", LINT, str(CONFIG)], cwd=layout,
                          env={**os.environ, "PYTHONPATH": str(layout)},
                          capture_output=True, text=True, timeout=300)


@pytest.fixture(scope="module")
def layout(tmp_path_factory):
    return installed_layout(tmp_path_factory.mktemp("layout"))


def test_import_contracts_are_kept(layout):
    result = lint(layout)
    assert result.returncode == 0, result.stdout + result.stderr
    assert "Contracts: 4 kept, 0 broken." in result.stdout


def test_a_reader_importing_the_models_breaks_the_contracts(tmp_path):
    layout = installed_layout(tmp_path)
    idx = layout / "keras_deepclust" / "readers" / "idx.py"
    idx.write_text(idx.read_text() + "\n\ndef late():\n    from keras_deepclust import cli\n")
    result = lint(layout)
    assert result.returncode != 0
    assert "keras_deepclust.readers is not allowed to import keras_deepclust.cli" in result.stdout
    assert "keras_deepclust.readers.idx -> keras_deepclust.cli" in result.stdout


def private_names_used_across_modules(path, package):
    """`(line, "module._name")` for each private name of another package module that
    `path` imports (`from keras_deepclust.x import _y`) or reads (`x._y`)."""
    tree = ast.parse(path.read_text(), filename=str(path))
    found, modules = [], set()
    for node in ast.walk(tree):
        if isinstance(node, ast.ImportFrom) and (node.level or (node.module or "").startswith(
                package)):
            for alias in node.names:
                if alias.name.startswith("_") and not alias.name.startswith("__"):
                    found.append((node.lineno, f"{node.module}.{alias.name}"))
                modules.add(alias.asname or alias.name)
        elif isinstance(node, ast.Import):
            modules.update((a.asname or a.name).split(".")[0] for a in node.names
                           if a.name.startswith(package))
    for node in ast.walk(tree):
        if (isinstance(node, ast.Attribute) and isinstance(node.value, ast.Name)
                and node.value.id in modules and node.attr.startswith("_")
                and not node.attr.startswith("__")):
            found.append((node.lineno, f"{node.value.id}.{node.attr}"))
    return found


def test_no_private_name_is_used_outside_its_module(tmp_path):
    found = {f"{path.relative_to(ROOT)}:{line}": name
             for folder in source_folders().values() for path in folder.rglob("*.py")
             for line, name in private_names_used_across_modules(path, "keras_deepclust")}
    assert found == {}
    # The check itself finds both spellings.
    sample = tmp_path / "sample.py"
    sample.write_text("from keras_deepclust.networks import _Seeded\n"
                      "from keras_deepclust import networks\n\nnetworks._seed()\n")
    assert private_names_used_across_modules(sample, "keras_deepclust") == [
        (1, "keras_deepclust.networks._Seeded"), (4, "networks._seed")]
