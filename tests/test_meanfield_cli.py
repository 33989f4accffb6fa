"""The stable CLI contract: subcommands, JSON keys, exit status 2 for bad flags."""

import json
import subprocess
import sys

import pandas as pd
import pytest

from meanfield.cli import main


def test_point_json_keys(capsys):
    assert main(["point", "--activation", "tanh", "--sigma-w2", "1.5", "--sigma-b2", "0.05", "--json"]) == 0
    data = json.loads(capsys.readouterr().out)
    assert list(data) == ["q_star", "c_star", "chi_1", "chi_c", "xi_q", "xi_c", "phase"]
    assert data["phase"] == "ordered" and data["c_star"] == 1.0


def test_point_infinite_values_as_strings(capsys):
    assert main(["point", "--activation", "relu", "--sigma-w2", "2.5", "--sigma-b2", "0.1", "--json"]) == 0
    assert json.loads(capsys.readouterr().out)["q_star"] == "inf"


def test_critical_json(capsys):
    assert main(["critical", "--activation", "tanh", "--sigma-b2", "0.05", "--json"]) == 0
    data = json.loads(capsys.readouterr().out)
    assert list(data) == ["sigma_w2", "q_star"]
    assert data["sigma_w2"] == pytest.approx(1.7609546, abs=5e-8)


def test_grid_csv_and_expression(tmp_path):
    out = tmp_path / "g.csv"
    assert main(["grid", "--activation", "x*tanh(x)", "--sigma-w2", "0.5:1.5:3", "--sigma-b2", "0:1:2",
                 "--out", str(out), "--no-progress"]) == 0
    table = pd.read_csv(out)
    assert len(table) == 6 and {"q_star", "phase", "xi_c"} <= set(table.columns)


@pytest.mark.parametrize("argv,flag", [
    (["point", "--sigma-w2", "-1", "--sigma-b2", "0"], "--sigma-w2"),
    (["point", "--sigma-w2", "1", "--sigma-b2", "nan"], "--sigma-b2"),
    (["point", "--activation", "nope", "--sigma-w2", "1", "--sigma-b2", "0"], "--activation"),
    (["grid", "--sigma-w2", "1:2", "--sigma-b2", "0:1:3", "--out", "x.csv"], "--sigma-w2"),
    (["grid", "--sigma-w2", "1:2:3", "--sigma-b2", "-1:1:3", "--out", "x.csv"], "--sigma-b2"),
    (["grid", "--sigma-w2", "1:2:3", "--sigma-b2", "0:1:3", "--out", "x.txt"], "--out"),
])
def test_bad_flags_exit_2(argv, flag, capsys):
    with pytest.raises(SystemExit) as info:
        main(argv)
    assert info.value.code == 2
    err = capsys.readouterr().err
    assert flag in err and "Traceback" not in err


def test_module_entry_point():
    result = subprocess.run([sys.executable, "-m", "meanfield", "point", "--sigma-w2", "-2", "--sigma-b2", "0"],
                            capture_output=True, text=True)
    assert result.returncode == 2 and "Traceback" not in result.stderr
