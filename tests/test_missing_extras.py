"""A light install (no torch, no pyarrow) degrades with a clear message naming the extra, never a traceback.

Missing packages are simulated in a subprocess by a ``sitecustomize`` that blocks their import (the shared environment
keeps them installed).
"""

import os
import pathlib
import subprocess
import sys

import pytest

from meanfield.optional import MissingExtraError, has, require

ROOT = pathlib.Path(__file__).resolve().parents[1]

_BLOCKER = '''import sys
BLOCKED = {blocked!r}
class _Block:
    def find_spec(self, name, path=None, target=None):
        if name.split(".")[0] in BLOCKED:
            raise ModuleNotFoundError(f"No module named {{name!r}}", name=name)
        return None
sys.meta_path.insert(0, _Block())
'''


def _run_without(tmp_path, blocked, argv, cwd=None):
    site = tmp_path / "site"
    site.mkdir(exist_ok=True)
    (site / "sitecustomize.py").write_text(_BLOCKER.format(blocked=list(blocked)))
    env = {**os.environ, "PYTHONPATH": f"{site}{os.pathsep}{ROOT}"}
    return subprocess.run([sys.executable, *argv], capture_output=True, text=True, env=env, cwd=cwd or tmp_path,
                          timeout=300)


def test_require_and_has():
    assert has("numpy") and not has("no_such_module_sigprop")
    assert require("math", "none", "test").sqrt(4.0) == 2.0
    with pytest.raises(MissingExtraError, match=r"pip install 'sigprop-theory\[parquet\]'") as info:
        require("no_such_module_sigprop", "parquet", "writing Parquet")
    assert isinstance(info.value, ImportError) and info.value.extra == "parquet"
    assert "writing Parquet" in str(info.value)


def test_has_respects_a_module_blocked_in_sys_modules(monkeypatch):
    monkeypatch.setitem(sys.modules, "pyarrow", None)
    assert not has("pyarrow")
    with pytest.raises(MissingExtraError):
        require("pyarrow", "parquet", "writing Parquet")


def test_blocker_really_hides_torch(tmp_path):
    result = _run_without(tmp_path, ["torch"], ["-c", "import torch"])
    assert result.returncode == 1 and "No module named 'torch'" in result.stderr


@pytest.mark.parametrize("argv", [["--help"], [], ["trainability", "--out", "x"], ["trainability", "--help"]])
def test_validate_without_torch_names_the_extra(tmp_path, argv):
    result = _run_without(tmp_path, ["torch"], ["-m", "validate", *argv])
    assert result.returncode == 2, result.stderr
    assert "pip install 'sigprop-theory[validate]'" in result.stderr
    assert "Traceback" not in result.stderr


def test_import_validate_without_torch_then_a_clear_error(tmp_path):
    code = ("import validate\n"
            "try:\n    validate.critical_\nexcept ImportError as exc:\n    print('MSG', exc)\n"
            "import meanfield, rmt")
    result = _run_without(tmp_path, ["torch"], ["-c", code])
    assert result.returncode == 0, result.stderr
    assert "MSG" in result.stdout and "sigprop-theory[validate]" in result.stdout


def test_meanfield_grid_parquet_without_pyarrow(tmp_path):
    grid = ["-m", "meanfield", "grid", "--sigma-w2", "1:2:3", "--sigma-b2", "0:1:3"]
    result = _run_without(tmp_path, ["pyarrow", "fastparquet"], [*grid, "--out", "g.parquet"])
    assert result.returncode == 2, result.stderr
    assert "pip install 'sigprop-theory[parquet]'" in result.stderr and "Traceback" not in result.stderr
    assert not (tmp_path / "g.parquet").exists()
    result = _run_without(tmp_path, ["pyarrow", "fastparquet"], [*grid, "--out", "g.csv", "--no-progress"])
    assert result.returncode == 0, result.stderr
    assert (tmp_path / "g.csv").read_text().count("\n") == 10
