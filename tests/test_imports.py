"""Each import package resolves to this project, not to a PyPI namesake (meanfield, validate, figures exist there)."""

import importlib
import pathlib
import subprocess
import sys

import pytest

ROOT = pathlib.Path(__file__).resolve().parents[1]


@pytest.mark.parametrize("name", ["meanfield", "rmt", "validate", "figures"])
def test_package_imports_from_this_project(name):
    module = importlib.import_module(name)
    path = pathlib.Path(module.__file__).resolve()
    assert path.parent == ROOT / name, f"{name} imported from {path}, not from this project"


@pytest.mark.parametrize("name", ["meanfield", "rmt"])
def test_core_packages_do_not_import_torch(name):
    code = f"import sys, {name}; assert 'torch' not in sys.modules, 'torch was imported by {name}'"
    subprocess.run([sys.executable, "-c", code], check=True)
