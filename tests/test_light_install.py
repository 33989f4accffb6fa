"""The light install (``pip install .``, no extras) degrades well: no traceback for a missing extra.

Builds a fresh virtual environment (no system site packages), installs the core dependencies listed in setup.cfg's
``install_requires`` from the package registry, then this checkout with ``--no-deps`` (so neither torch nor pyarrow is
present), and runs the command-line entry points from outside the checkout. A missing extra must give a one-line
message naming ``pip install 'sigprop-theory[<extra>]'``, never a traceback, and must be detected before any work.

Marked slow: creating the environment downloads and installs numpy, scipy, numba, sympy, pandas and matplotlib
(about 2 minutes on 2 cores under load); ``python -m figures`` then draws every figure it can (about 1 minute quiet).
Run it with ``python -m pytest -m slow tests/test_light_install.py``.
"""

from __future__ import annotations

import configparser
import csv
import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

ROOT = Path(__file__).resolve().parent.parent

pytestmark = pytest.mark.slow

EXTRA_HINT = "pip install 'sigprop-theory["


def core_requirements() -> list[str]:
    """setup.cfg's ``install_requires``: the light install's dependencies, and nothing else."""
    cfg = configparser.ConfigParser()
    cfg.read(ROOT / "setup.cfg")
    return [line.strip() for line in cfg["options"]["install_requires"].splitlines() if line.strip()]


class LightEnv:
    """A virtual environment holding the light install, and a runner for commands in it."""

    def __init__(self, path: Path, workdir: Path):
        self.python = path / "bin" / "python"
        self.workdir = workdir  # outside the checkout, so the installed copy is the one imported
        self.env = {k: v for k, v in os.environ.items() if k not in ("PYTHONPATH", "PYTHONHOME", "VIRTUAL_ENV")}
        self.env["MPLBACKEND"] = "Agg"

    def run(self, *args: str, timeout: float = 600) -> subprocess.CompletedProcess:
        return subprocess.run([str(self.python), *args], cwd=self.workdir, env=self.env, capture_output=True,
                              text=True, timeout=timeout, stdin=subprocess.DEVNULL)


def pip(python: Path, *args: str) -> None:
    result = subprocess.run([str(python), "-m", "pip", "install", "--disable-pip-version-check", "-q", *args],
                            capture_output=True, text=True, timeout=1800)
    if result.returncode != 0:
        pytest.fail(f"pip install {' '.join(args)} failed:\n{result.stdout[-3000:]}\n{result.stderr[-3000:]}")


@pytest.fixture(scope="module")
def light(tmp_path_factory) -> LightEnv:
    base = tmp_path_factory.mktemp("light")
    venv = base / "venv"
    subprocess.run([sys.executable, "-m", "venv", str(venv)], check=True, timeout=300)
    python = venv / "bin" / "python"
    # setuptools and wheel: the build backend of pyproject.toml, so the project builds without build isolation.
    pip(python, *core_requirements(), "setuptools>=64", "wheel")
    pip(python, "--no-deps", "--no-build-isolation", str(ROOT))
    work = base / "work"
    work.mkdir()
    return LightEnv(venv, work)


def assert_clean(result: subprocess.CompletedProcess) -> str:
    """Combined output, after checking it holds no traceback."""
    output = result.stdout + result.stderr
    assert "Traceback" not in output, output[-4000:]
    return output


def test_light_install_has_the_core_and_no_extras(light):
    code = "import meanfield, rmt, figures; print(meanfield.__file__, rmt.__file__, figures.__file__)"
    result = light.run("-c", code)
    assert result.returncode == 0, result.stderr
    for path in result.stdout.split():
        assert Path(path).is_relative_to(light.python.parent.parent), path  # the installed copy, not the checkout
    for extra_module in ("torch", "pyarrow"):
        probe = light.run("-c", f"import {extra_module}")
        assert probe.returncode != 0, f"{extra_module} is installed: not a light install"


def test_parquet_grid_without_pyarrow_names_the_extra_before_computing(light):
    out = light.workdir / "g.parquet"
    # 360 000 points: computing them would take seconds and show a progress bar; the check must come first.
    result = light.run("-m", "meanfield", "grid", "--activation", "tanh", "--sigma-w2", "0.5:4:600",
                       "--sigma-b2", "0:2:600", "--out", str(out))
    output = assert_clean(result)
    assert result.returncode == 2, output
    assert "pip install 'sigprop-theory[parquet]'" in output, output
    assert "%|" not in output, f"a progress bar ran before the check:\n{output}"
    assert not out.exists()


def test_csv_grid_works_without_pyarrow(light):
    out = light.workdir / "g.csv"
    result = light.run("-m", "meanfield", "grid", "--activation", "tanh", "--sigma-w2", "1:3:4", "--sigma-b2",
                       "0:0.1:3", "--out", str(out))
    assert result.returncode == 0, assert_clean(result)
    with open(out, newline="") as f:
        rows = list(csv.DictReader(f))
    assert len(rows) == 12
    assert {"sigma_w2", "sigma_b2", "q_star", "chi_1", "xi_c"} <= set(rows[0])


def test_meanfield_point_gives_the_numbers_of_the_full_install(light):
    import meanfield

    result = light.run("-m", "meanfield", "point", "--activation", "tanh", "--sigma-w2", "1.5", "--sigma-b2",
                       "0.05", "--json")
    assert result.returncode == 0, assert_clean(result)
    point = json.loads(result.stdout)
    reference = meanfield.mean_field_point("tanh", 1.5, 0.05)
    assert point["phase"] == reference.phase == "ordered"
    for key in ("q_star", "chi_1", "xi_c"):
        np.testing.assert_allclose(float(point[key]), getattr(reference, key), rtol=1e-9)


def test_rmt_spectrum_works_on_the_light_install(light):
    import rmt

    args = ("tanh", 1.7609546, 0.05, 10)
    result = light.run("-m", "rmt", "spectrum", "--activation", "tanh", "--sigma-w2", "1.7609546", "--sigma-b2",
                       "0.05", "--depth", "10", "--weights", "orthogonal", "--json")
    assert result.returncode == 0, assert_clean(result)
    spectrum = json.loads(result.stdout)
    m1, m2 = rmt.jacobian_moments(*args, weights="orthogonal", k=2)
    np.testing.assert_allclose(spectrum["mean"], m1, rtol=1e-9)
    np.testing.assert_allclose(spectrum["variance"], m2 - m1**2, rtol=1e-7)
    assert len(spectrum["lam"]) == len(spectrum["density"]) > 10


@pytest.mark.parametrize(
    "args",
    [
        ("--help",),
        ("trainability", "--model", "fc", "--activation", "tanh", "--sigma-w2", "1.5", "--depth", "4", "--steps", "2",
         "--data", "synthetic"),
    ],
    ids=["help", "trainability"],
)
def test_validate_without_torch_names_the_extra(light, args):
    result = light.run("-m", "validate", *args)
    output = assert_clean(result)
    assert "pip install 'sigprop-theory[validate]'" in output, output
    if args != ("--help",):
        assert result.returncode != 0, output


def test_figures_make_what_they_can_and_exit_0(light):
    listing = light.run("-m", "figures", "--list")
    assert listing.returncode == 0, assert_clean(listing)
    names = {line.split()[0] for line in listing.stdout.splitlines() if line.strip()}
    assert "trainability" in names, listing.stdout
    out = light.workdir / "figures-out"
    result = light.run("-m", "figures", "--out", str(out), timeout=1800)
    output = assert_clean(result)
    assert result.returncode == 0, output
    made = {path.stem for path in out.rglob("*.png")}
    # Only the trainability figure trains torch networks; every other one is drawn on the light install.
    assert names - {"trainability"} <= made, f"missing: {sorted(names - {'trainability'} - made)}\n{output}"
    assert "trainability" not in made
    assert "trainability" in output and f"{EXTRA_HINT}validate]'" in output, (
        f"the skipped figure and the extra it needs are not named:\n{output}")
