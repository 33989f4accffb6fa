"""The figure runner: every registered figure resolves, files and data are written, bad flags exit 2."""

import numpy as np
import pandas as pd
import pytest

from figures import FIGURES
from figures.cli import main


def test_every_registered_figure_resolves_to_a_function():
    for spec in FIGURES:
        assert callable(spec.load()), spec.name


def test_batchnorm_figure_writes_images_and_the_predicted_eigenvalues(tmp_path):
    assert main(["--only", "batchnorm_eigenvalues", "--out", str(tmp_path), "--formats", "png"]) == 0
    assert (tmp_path / "batchnorm_eigenvalues.png").stat().st_size > 1000
    data = pd.read_csv(tmp_path / "batchnorm_eigenvalues.csv")
    # Independent prediction from the batch itself: m - 2 eigenvalues equal gamma / sqrt(var + eps).
    x = np.random.default_rng(0).normal(size=32)
    for eps, rows in data.groupby("eps"):
        rho = 1.0 / np.sqrt(x.var() + eps)
        top = np.sort(rows["eigenvalue"].to_numpy())[2:]
        np.testing.assert_allclose(top, rho, rtol=1e-10)


@pytest.mark.parametrize("argv", [["--only", "no_such_figure"], ["--formats", "bmp"], ["--only", ","]])
def test_bad_flags_exit_2(argv, tmp_path, capsys):
    with pytest.raises(SystemExit) as err:
        main([*argv, "--out", str(tmp_path)])
    assert err.value.code == 2
    assert "--" in capsys.readouterr().err
