"""``python -m rmt spectrum``: the stable CLI contract (flags, JSON keys, exit codes)."""

import json
import subprocess
import sys
import warnings

import numpy as np
import pandas as pd
import pytest

from rmt import jacobian_spectrum
from rmt.cli import main

BASE = ["spectrum", "--activation", "tanh", "--sigma-w2", "1.76", "--sigma-b2", "0.05", "--depth", "100",
        "--weights", "orthogonal"]


def test_json_output_has_exactly_the_contract_keys(capsys):
    assert main(BASE + ["--num", "200", "--json"]) == 0
    payload = json.loads(capsys.readouterr().out)
    assert {"lam", "density", "support", "mean", "variance"} <= set(payload)  # contract keys (more may be added)
    assert len(payload["lam"]) == len(payload["density"]) == 200 and len(payload["support"]) == 2
    expected = jacobian_spectrum("tanh", 1.76, 0.05, 100, "orthogonal", num=200)
    np.testing.assert_allclose(payload["density"], expected.density, rtol=1e-12)
    assert payload["mean"] == pytest.approx(expected.mean, rel=1e-12)
    assert payload["variance"] == pytest.approx(expected.variance, rel=1e-12)


def test_module_entry_point_and_out_files(tmp_path):
    out = tmp_path / "spectrum.csv"
    done = subprocess.run([sys.executable, "-m", "rmt", *BASE, "--num", "64", "--out", str(out)],
                          capture_output=True, text=True, check=False)
    assert done.returncode == 0, done.stderr
    assert "variance" in done.stdout
    frame = pd.read_csv(out)
    assert list(frame.columns) == ["lam", "density"] and len(frame) == 64
    json_out = tmp_path / "spectrum.json"
    assert main(BASE + ["--num", "32", "--out", str(json_out)]) == 0
    assert {"lam", "density", "support", "mean", "variance"} <= set(json.loads(json_out.read_text()))


@pytest.mark.parametrize("flags,name", [
    (["--sigma-w2", "-1"], "--sigma-w2"),
    (["--sigma-b2", "x"], "--sigma-b2"),
    (["--depth", "0"], "--depth"),
    (["--weights", "haar"], "--weights"),
    (["--num", "5"], "--num"),
    (["--activation", "nonsense_fn"], "--activation"),
    (["--out", "spectrum.txt"], "--out"),
])
def test_bad_flags_exit_2_naming_the_flag(flags, name, capsys):
    argv = list(BASE)
    for flag, value in zip(flags[::2], flags[1::2], strict=True):
        if flag in argv:
            argv[argv.index(flag) + 1] = value
        else:
            argv += [flag, value]
    with pytest.raises(SystemExit) as exc:
        main(argv)
    assert exc.value.code == 2
    err = capsys.readouterr().err
    assert name in err and "Traceback" not in err


def test_computation_errors_exit_1(capsys):
    # no finite fixed point q*: a computation error, not a bad flag
    argv = ["spectrum", "--activation", "x + x**3", "--sigma-w2", "2", "--sigma-b2", "0.1", "--depth", "3",
            "--weights", "gaussian"]
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        assert main(argv) == 1
    assert "no finite fixed point" in capsys.readouterr().err
