"""The meanfield CLI at its edges: no traceback from any input, warnings shown, outputs checked first and written
atomically, long grids resumable, light imports, no import cycles."""

import json
import os
import pathlib
import subprocess
import sys

import numpy as np
import pandas as pd
import pytest

from meanfield import grid_cli
from meanfield.cli import main

ROOT = pathlib.Path(__file__).resolve().parents[1]
ENV = {**os.environ, "PYTHONPATH": str(ROOT)}


def _run(*argv, cwd=None, timeout=300):
    return subprocess.run([sys.executable, "-m", "meanfield", *argv], capture_output=True, text=True, cwd=cwd or ROOT,
                          env=ENV, timeout=timeout)


@pytest.mark.parametrize("name", ["meanfield.cli", "meanfield.conv_cli", "meanfield.grid_cli", "meanfield.arguments",
                                  "meanfield.optional", "meanfield.expressions", "meanfield.activations"])
def test_each_cli_module_imports_first_in_a_fresh_process(name):
    subprocess.run([sys.executable, "-c", f"import {name}"], check=True, cwd=ROOT, env=ENV)


def test_point_with_a_builtin_imports_no_sympy_tqdm_or_cli_extras():
    code = ("import sys, runpy; sys.argv = ['meanfield', 'point', '--sigma-w2', '1.5', '--sigma-b2', '0.05'];\n"
            "try:\n    runpy.run_module('meanfield', run_name='__main__')\nexcept SystemExit as e:\n"
            "    assert e.code == 0\n"
            "bad = [m for m in ('sympy', 'tqdm', 'mpmath') if m in sys.modules]\n"
            "assert not bad, bad")
    subprocess.run([sys.executable, "-c", code], check=True, cwd=ROOT, env=ENV)


BAD_INPUTS = [
    (["point", "--sigma-w2", "-1", "--sigma-b2", "0"], "--sigma-w2"),
    (["point", "--sigma-w2", "0", "--sigma-b2", "0"], "--sigma-w2"),
    (["point", "--sigma-w2", "inf", "--sigma-b2", "0"], "--sigma-w2"),
    (["point", "--sigma-w2", "1", "--sigma-b2", "nan"], "--sigma-b2"),
    (["point", "--sigma-w2", "1", "--sigma-b2", "-1e-300"], "--sigma-b2"),
    (["point", "--sigma-w2", "1e400", "--sigma-b2", "0"], "--sigma-w2"),
    (["point", "--sigma-w2", "abc", "--sigma-b2", "0"], "--sigma-w2"),
    (["point", "--activation", "tan(x)", "--sigma-w2", "1", "--sigma-b2", "0"], "--activation"),
    (["point", "--activation", "1/(x-1)", "--sigma-w2", "1", "--sigma-b2", "0"], "--activation"),
    (["point", "--activation", "leaky_relu(slope=nan)", "--sigma-w2", "1", "--sigma-b2", "0"], "--activation"),
    (["point", "--activation", "leaky_relu(alpha=1)", "--sigma-w2", "1", "--sigma-b2", "0"], "--activation"),
    (["point", "--activation", "", "--sigma-w2", "1", "--sigma-b2", "0"], "--activation"),
    (["critical", "--sigma-b2", "-0.1"], "--sigma-b2"),
    (["critical", "--activation", "exp(x**2)", "--sigma-b2", "0.1"], "--activation"),
    (["grid", "--sigma-w2", "1:2", "--sigma-b2", "0:1:3", "--out", "x.csv"], "--sigma-w2"),
    (["grid", "--sigma-w2", "1:2:0", "--sigma-b2", "0:1:3", "--out", "x.csv"], "--sigma-w2"),
    (["grid", "--sigma-w2", "1:2:1.5", "--sigma-b2", "0:1:3", "--out", "x.csv"], "--sigma-w2"),
    (["grid", "--sigma-w2", "1:2:99999999999", "--sigma-b2", "0:1:3", "--out", "x.csv"], "--sigma-w2"),
    (["grid", "--sigma-w2", "0:2:3", "--sigma-b2", "0:1:3", "--out", "x.csv"], "--sigma-w2"),
    (["grid", "--sigma-w2", "1:nan:3", "--sigma-b2", "0:1:3", "--out", "x.csv"], "--sigma-w2"),
    (["grid", "--sigma-w2", "1:2:3", "--sigma-b2", "-1:1:3", "--out", "x.csv"], "--sigma-b2"),
    (["grid", "--sigma-w2", "1:2:3", "--sigma-b2", "0:inf:3", "--out", "x.csv"], "--sigma-b2"),
    (["grid", "--sigma-w2", "1:2:3", "--sigma-b2", "0:1:3", "--out", "x.txt"], "--out"),
    (["grid", "--sigma-w2", "1:2:3", "--sigma-b2", "0:1:3", "--out", "."], "--out"),
    (["grid", "--sigma-w2", "1:2:3", "--sigma-b2", "0:1:3", "--out", "pyproject.toml/g.csv"], "--out"),
    (["grid", "--sigma-w2", "1:2:3", "--sigma-b2", "0:1:3", "--out", "g.csv", "--chunk-points", "0"],
     "--chunk-points"),
    (["grid", "--sigma-w2", "1:2:10000000", "--sigma-b2", "0:1:10000000", "--out", "g.csv"], "points"),
    (["modes", "--sigma-w2", "1", "--sigma-b2", "0", "--size", "0"], "--size"),
    (["modes", "--sigma-w2", "1", "--sigma-b2", "0", "--size", "99999999"], "--size"),
    (["modes", "--sigma-w2", "1", "--sigma-b2", "0", "--kernel-size", "4"], "--kernel-size"),
    (["modes", "--sigma-w2", "1", "--sigma-b2", "0", "--kernel", "0.5,0.6"], "--kernel"),
    (["modes", "--sigma-w2", "1", "--sigma-b2", "0", "--kernel", "GS2", "--kernel-size", "9", "--size", "4"],
     "--size"),
    (["nosuchcommand"], "invalid choice"),
    ([], "required"),
]


@pytest.mark.parametrize("argv,flag", BAD_INPUTS, ids=[" ".join(a) or "empty" for a, _ in BAD_INPUTS])
def test_bad_input_exits_2_naming_the_flag(argv, flag, capsys, tmp_path, monkeypatch):
    monkeypatch.chdir(ROOT)
    with pytest.raises(SystemExit) as info:
        status = main(argv)
        raise SystemExit(status)
    err = capsys.readouterr().err
    assert info.value.code == 2, err
    assert flag in err and "Traceback" not in err


def test_no_traceback_in_a_subprocess_for_bad_input(tmp_path):
    result = _run("grid", "--sigma-w2", "1:2:3", "--sigma-b2", "0:1:3", "--out", str(tmp_path / "missing" / "x.txt"))
    assert result.returncode == 2 and "--out" in result.stderr and "Traceback" not in result.stderr
    result = _run("point", "--activation", "x**", "--sigma-w2", "1", "--sigma-b2", "0")
    assert result.returncode == 2 and "--activation" in result.stderr and "Traceback" not in result.stderr


def test_cli_shows_the_api_warning_for_relu_critical(capsys):
    assert main(["critical", "--activation", "relu", "--sigma-b2", "0.05"]) == 0
    captured = capsys.readouterr()
    assert "q_star" in captured.out and "inf" in captured.out
    assert "warning" in captured.err and "no finite fixed point" in captured.err


def test_json_output_stays_clean_when_warning(capsys):
    assert main(["critical", "--activation", "relu", "--sigma-b2", "0.05", "--json"]) == 0
    captured = capsys.readouterr()
    assert json.loads(captured.out) == {"sigma_w2": pytest.approx(2.0), "q_star": "inf"}
    assert "warning" in captured.err


def test_grid_output_checked_before_computing(tmp_path, monkeypatch, capsys):
    calls = []
    monkeypatch.setattr(grid_cli, "_solve_chunk", lambda *a: calls.append(a))
    blocker = tmp_path / "file"
    blocker.write_text("")
    with pytest.raises(SystemExit) as info:
        main(["grid", "--sigma-w2", "1:2:3", "--sigma-b2", "0:1:3", "--out", str(blocker / "g.csv")])
    assert info.value.code == 2 and not calls
    assert "--out" in capsys.readouterr().err


def test_missing_parquet_engine_is_reported_before_computing(tmp_path, monkeypatch, capsys):
    calls = []
    monkeypatch.setattr(grid_cli, "_solve_chunk", lambda *a: calls.append(a))
    monkeypatch.setitem(sys.modules, "pyarrow", None)
    status = main(["grid", "--sigma-w2", "1:2:3", "--sigma-b2", "0:1:3", "--out", str(tmp_path / "g.parquet")])
    err = capsys.readouterr().err
    assert status == 2 and not calls
    assert "pip install 'sigprop-theory[parquet]'" in err and "Traceback" not in err
    assert not (tmp_path / "g.parquet").exists()


def test_grid_write_is_atomic(tmp_path, monkeypatch):
    out = tmp_path / "g.csv"
    out.write_text("old complete file\n")

    def broken(self, *args, **kwargs):
        args[0].write("sigma_w2,sigma_b2\n1.0,")  # a partial write, then the process "dies"
        raise OSError("disk full")

    monkeypatch.setattr(pd.DataFrame, "to_csv", broken)
    status = main(["grid", "--sigma-w2", "1:2:3", "--sigma-b2", "0:1:3", "--out", str(out), "--no-progress"])
    assert status == 1
    assert out.read_text() == "old complete file\n"  # untouched, not truncated
    assert sorted(p.name for p in tmp_path.iterdir()) == ["g.csv"]  # no temporary file left behind


def test_grid_output_gets_normal_permissions(tmp_path):
    out = tmp_path / "g.csv"
    assert main(["grid", "--sigma-w2", "1", "--sigma-b2", "0", "--out", str(out), "--no-progress"]) == 0
    umask = os.umask(0)
    os.umask(umask)
    assert out.stat().st_mode & 0o777 == 0o666 & ~umask


def test_grid_resumes_after_interrupt_and_matches_one_shot(tmp_path, monkeypatch, capsys):
    args = ["--activation", "erf", "--sigma-w2", "0.5:3:7", "--sigma-b2", "0:0.5:5", "--chunk-points", "6",
            "--no-progress"]
    reference = tmp_path / "ref.csv"
    assert main(["grid", *args[:-3], "--out", str(reference), "--no-progress"]) == 0

    out = tmp_path / "g.csv"
    real = grid_cli._solve_chunk
    calls = []

    def interrupted(a, start, stop):
        calls.append(start)
        if len(calls) == 3:
            raise KeyboardInterrupt
        return real(a, start, stop)

    monkeypatch.setattr(grid_cli, "_solve_chunk", interrupted)
    assert main(["grid", *args, "--out", str(out)]) == 130
    assert "rerun the same command to resume" in capsys.readouterr().err
    assert not out.exists()
    partial = grid_cli.partial_dir(out)
    assert len(list(partial.glob("chunk-*.npz"))) == 2

    calls.clear()
    monkeypatch.setattr(grid_cli, "_solve_chunk", lambda a, start, stop: calls.append(start) or real(a, start, stop))
    # a different grid refuses to mix with the saved chunks
    with pytest.raises(SystemExit):
        raise SystemExit(main(["grid", *args[:3], "0.5:3:8", *args[4:], "--out", str(out)]))
    assert "--out" in capsys.readouterr().err and not calls
    assert main(["grid", *args, "--out", str(out)]) == 0
    assert "resuming: 2 of 6 chunks" in capsys.readouterr().err
    assert calls == [12, 18, 24, 30]  # only the missing chunks are computed
    assert not partial.exists()
    got, want = pd.read_csv(out), pd.read_csv(reference)
    pd.testing.assert_frame_equal(got, want)


def test_grid_restart_discards_saved_chunks(tmp_path, capsys):
    out = tmp_path / "g.csv"
    partial = grid_cli.partial_dir(out)
    partial.mkdir()
    (partial / "config.json").write_text('{"format_version": 0}')
    args = ["grid", "--sigma-w2", "1:2:3", "--sigma-b2", "0:1:3", "--out", str(out), "--chunk-points", "4",
            "--no-progress"]
    assert main(args) == 2
    assert "--restart" in capsys.readouterr().err
    assert main([*args, "--restart"]) == 0
    assert len(pd.read_csv(out)) == 9 and not partial.exists()


def test_grid_parquet_chunked_equals_csv(tmp_path):
    pytest.importorskip("pyarrow")
    base = ["grid", "--sigma-w2", "0.5:2:4", "--sigma-b2", "0:1:3", "--no-progress"]
    assert main([*base, "--out", str(tmp_path / "a.parquet"), "--chunk-points", "5"]) == 0
    assert main([*base, "--out", str(tmp_path / "b.csv")]) == 0
    a, b = pd.read_parquet(tmp_path / "a.parquet"), pd.read_csv(tmp_path / "b.csv")
    assert len(a) == 12
    assert np.array_equal(a.drop(columns="phase").to_numpy(float), b.drop(columns="phase").to_numpy(float),
                          equal_nan=True)
    assert list(a["phase"]) == list(b["phase"])


def test_unexpected_errors_are_reported_without_traceback(monkeypatch, capsys):
    import meanfield.quantities

    def boom(*a, **k):
        raise RuntimeError("simulated bug")

    monkeypatch.setattr(meanfield.quantities, "mean_field_point", boom)
    assert main(["point", "--sigma-w2", "1", "--sigma-b2", "0"]) == 1
    err = capsys.readouterr().err
    assert "internal error" in err and "simulated bug" in err and "--traceback" in err
    with pytest.raises(RuntimeError):
        main(["--traceback", "point", "--sigma-w2", "1", "--sigma-b2", "0"])
