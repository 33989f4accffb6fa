"""``python -m validate trainability``: end to end, ranges, and exit status 2 naming the flag for bad input."""

import json
import os
import subprocess
import sys

import numpy as np
import pandas as pd
import pytest
import torch

from validate.cli import main, parse_range

COLUMNS = ["model", "activation", "init", "sigma_w2", "sigma_b2", "depth", "seed", "step", "loss", "train_accuracy",
           "test_accuracy", "xi_c"]
SMALL = ["--data", "synthetic", "--steps", "20", "--width", "8", "--batch-size", "16", "--evals", "1",
         "--eval-size", "64", "--no-progress"]


def test_parse_range():
    assert parse_range("1:4:4") == [1.0, 2.0, 3.0, 4.0]
    assert parse_range("0.5,1.76") == [0.5, 1.76]
    assert parse_range("10:300:16", integer=True) == [int(v) for v in np.round(np.linspace(10, 300, 16))]
    assert parse_range("1:3:5", integer=True) == [1, 2, 3]  # rounded, duplicates dropped
    for bad in ["1:4", "a", "1:4:0", "1,,2", "nan"]:
        with pytest.raises(ValueError):
            parse_range(bad)
    with pytest.raises(ValueError, match="integers"):
        parse_range("2.5,3", integer=True)


def test_module_runs_end_to_end_and_resumes(tmp_path):
    out = tmp_path / "run"
    cmd = [sys.executable, "-m", "validate", "trainability", "--model", "fc", "--activation", "tanh", "--sigma-b2",
           "0.05", "--sigma-w2", "1:2:2", "--depth", "2,4", "--device", "cpu", "--seed", "3", "--out", str(out), *SMALL]
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    done = subprocess.run(cmd, capture_output=True, text=True, env=env, timeout=300)
    assert done.returncode == 0, done.stderr
    assert "agreement with 'trains iff depth < 6 xi_c'" in done.stdout
    results = pd.read_parquet(out / "trainability.parquet")
    assert list(results.columns[:12]) == COLUMNS
    assert len(results) == 4 * 2 and set(results["seed"]) == {3}
    assert json.loads((out / "config.json").read_text())["depth"] == [2, 4]
    assert main(cmd[3:]) == 0  # in process this time: the rerun resumes, nothing is retrained or duplicated
    assert pd.read_parquet(out / "trainability.parquet").equals(results)


def _exit_message(capsys, argv):
    with pytest.raises(SystemExit) as info:
        main(["trainability", *argv])
    return info.value.code, capsys.readouterr().err.strip().splitlines()[-1]


@pytest.mark.parametrize("argv, flag", [
    (["--sigma-w2", "a:b:c"], "--sigma-w2"),
    (["--sigma-w2", "0,1"], "--sigma-w2"),
    (["--sigma-b2", "-1"], "--sigma-b2"),
    (["--depth", "0,5"], "--depth"),
    (["--depth", "2.5"], "--depth"),
    (["--steps", "0"], "--steps"),
    (["--model", "rnn"], "--model"),
    (["--init", "xavier"], "--init"),
    (["--activation", "tanh(("], "--activation"),
    (["--data", "nowhere"], "--data"),
    (["--data", "mnist:/definitely/not/here"], "--data"),
    (["--device", "tpu"], "--device"),
    (["--lr", "0"], "--lr"),
    (["--threshold", "1.5"], "--threshold"),
    (["--workers", "0"], "--workers"),
    (["--model", "cnn", "--kernel", "GS9", "--data", "digits"], "--kernel"),
    (["--lr-depth-ref", "0"], "--lr-depth-ref"),
    (["--metric", "both"], "--metric"),
    (["--preset", "paper"], "--preset"),
    (["--dtype", "float16"], "--dtype"),
    (["--threads", "none"], "--threads"),
])
def test_bad_flags_exit_2_naming_the_flag(capsys, tmp_path, argv, flag):
    code, message = _exit_message(capsys, ["--out", str(tmp_path), *SMALL, *argv])
    assert code == 2 and flag in message, message


def test_workers_and_scheduler_are_exclusive(capsys, tmp_path):
    code, message = _exit_message(capsys, ["--out", str(tmp_path), "--workers", "2", "--scheduler", "tcp://x:1"])
    assert code == 2 and "--scheduler" in message


@pytest.mark.skipif(torch.cuda.is_available(), reason="checks the no-GPU error")
def test_cuda_without_gpu_exits_2(capsys, tmp_path):
    code, message = _exit_message(capsys, ["--out", str(tmp_path), "--device", "cuda", *SMALL])
    assert code == 2 and "--device cuda" in message and "no CUDA device" in message


def test_corrupt_mnist_and_changed_config_exit_2(capsys, tmp_path):
    data = tmp_path / "mnist"
    data.mkdir()
    for name in ["train-images-idx3-ubyte", "train-labels-idx1-ubyte", "t10k-images-idx3-ubyte",
                 "t10k-labels-idx1-ubyte"]:
        (data / name).write_bytes(b"\x00\x00\x08\x03garbage")
    code, message = _exit_message(capsys, ["--out", str(tmp_path / "a"), "--data", f"mnist:{data}"])
    assert code == 2 and "--data" in message and "train-images-idx3-ubyte" in message
    out = tmp_path / "b"
    out.mkdir()
    (out / "config.json").write_text(json.dumps({"steps": 1}))
    code, message = _exit_message(capsys, ["--out", str(out), "--sigma-w2", "1", "--depth", "2", *SMALL])
    assert code == 2 and "--out" in message and "different configuration" in message


def test_ctrl_c_exits_130_with_resume_hint(capsys, tmp_path, monkeypatch):
    import validate.trainability as tr

    def interrupted(*args, **kwargs):
        raise KeyboardInterrupt

    monkeypatch.setattr(tr, "_train_unit", interrupted)
    code = main(["trainability", "--out", str(tmp_path), "--sigma-w2", "1", "--depth", "2", *SMALL])
    assert code == 130 and "rerun the same command to resume" in capsys.readouterr().err


def test_presets_listing_and_dry_run_resolve_settings(capsys):
    assert main(["presets"]) == 0
    listing = capsys.readouterr().out
    for name in ("default", "schoenholz2017-fc", "xiao2018-cnn"):
        assert name in listing
    assert "source:" in listing and "scaled:" in listing
    assert main(["trainability", "--preset", "schoenholz2017-fc", "--dry-run", "--json", "--device", "cpu"]) == 0
    resolved = json.loads(capsys.readouterr().out)
    assert resolved["lr"] == 1e-3 and resolved["metric"] == "train" and resolved["model"] == "fc"
    assert resolved["cells"] == 256 and resolved["depth"][-1] == 300
    # an explicit flag wins over the preset, the rest still comes from it
    assert main(["trainability", "--preset", "xiao2018-cnn", "--dry-run", "--json", "--lr", "0.05", "--depth",
                 "10,20", "--device", "cpu"]) == 0
    resolved = json.loads(capsys.readouterr().out)
    assert resolved["lr"] == 0.05 and resolved["depth"] == [10, 20] and resolved["model"] == "cnn"
    assert resolved["channels"] == 64 and resolved["metric"] == "train"


def test_preset_and_engine_flags_errors(capsys, tmp_path):
    code, message = _exit_message(capsys, ["--preset", "nope", "--dry-run"])
    assert code == 2 and "--preset" in message
    code, message = _exit_message(capsys, ["--threads", "0", "--out", str(tmp_path)])
    assert code == 2 and "--threads" in message
    code, message = _exit_message(capsys, [*SMALL, "--sigma-w2", "1", "--depth", "2"])
    assert code == 2 and "--out" in message


def test_add_engine_arguments_gives_other_commands_the_same_flags():
    import argparse

    from validate.cli import add_engine_arguments, check_engine_arguments

    parser = argparse.ArgumentParser()
    add_engine_arguments(parser)
    args = parser.parse_args(["--device", "cpu", "--dtype", "float64", "--seed", "3", "--data", "synthetic", "--out",
                              "x", "--no-resume", "--no-progress", "--json", "--threads", "2", "--tf32"])
    assert (args.device, args.dtype, args.seed, args.data, args.out, args.threads) == ("cpu", "float64", 3,
                                                                                        "synthetic", "x", 2)
    assert args.no_resume and args.no_progress and args.json and args.tf32
    assert check_engine_arguments(parser, args) == torch.device("cpu")
    with pytest.raises(SystemExit) as info:
        check_engine_arguments(parser, parser.parse_args(["--data", "nowhere"]))
    assert info.value.code == 2


def test_no_resume_refuses_existing_results_and_metric_train(capsys, tmp_path):
    argv = ["trainability", "--out", str(tmp_path), "--sigma-w2", "1", "--depth", "2", "--device", "cpu", *SMALL]
    assert main([*argv, "--metric", "train", "--json"]) == 0
    summary = json.loads(capsys.readouterr().out.strip().splitlines()[-1])
    assert summary["metric"] == "train" and summary["n_cells"] == 1
    code, message = _exit_message(capsys, [*argv[1:], "--no-resume"])
    assert code == 2 and "--no-resume" in message
