"""``python -m validate signal|spectra|gradnorm|speed|diagnose``: bad input exits 2 naming the flag; runs resume."""

import importlib.util
import json
import math
import subprocess
import sys
from pathlib import Path

import pytest

from validate.cli import main

ROOT = Path(__file__).resolve().parent.parent


pytestmark = pytest.mark.usefixtures("one_torch_thread")


@pytest.mark.parametrize("argv, flag", [
    (["signal", "--width", "abc"], "--width"),
    (["signal", "--width", "1"], "--width"),
    (["signal", "--activation", "__import__('os')"], "--activation"),
    (["signal", "--sigma-w2", "-1"], "--sigma-w2"),
    (["signal", "--depth", "0"], "--depth"),
    (["signal", "--device", "tpu"], "--device"),
    (["signal", "--data", "nosuchdata"], "--data"),
    (["spectra", "--settings", "fc:bogus"], "--settings"),
    (["spectra", "--sigma-b2", "nan"], "--sigma-b2"),
    (["gradnorm", "--variants", "plain,wat"], "--variants"),
    (["gradnorm", "--widths", "16,x"], "--widths"),
    (["speed", "--inits", "gaussian,he"], "--inits"),
    (["speed", "--steps", "0"], "--steps"),
    (["diagnose", "--model-file", "nosuchfile.py:make", "--input-shape", "4"], "--model-file"),
    (["diagnose", "--model-file", "model.txt", "--input-shape", "4"], "--model-file"),
    (["diagnose", "--model-file", "m.py:make"], "--input-shape"),
    (["diagnose", "--model-file", "m.py:make", "--input-shape", "4,a"], "--input-shape"),
])
def test_bad_input_exits_2_naming_the_flag(argv, flag, capsys):
    with pytest.raises(SystemExit) as exc:
        main(argv)
    assert exc.value.code == 2
    err = capsys.readouterr().err
    assert flag in err and "Traceback" not in err


def test_signal_run_writes_and_resumes(tmp_path, capsys):
    out = tmp_path / "sig"
    argv = ["signal", "--width", "16,32", "--depth", "2", "--draws", "3", "--no-progress", "--out", str(out),
            "--json", "--device", "cpu"]
    assert main(argv) == 0
    first = json.loads(capsys.readouterr().out)
    assert {"layer", "q_theory", "q_sampled", "q_stderr", "c_theory", "c_sampled", "c_stderr"} <= set(first["rows"][0])
    assert (out / "signal.csv").exists() and (out / "config.json").exists()
    part = out / "part-width=16.csv"
    stamp = part.stat().st_mtime_ns
    assert main(argv) == 0  # resume: parts are reused, not recomputed
    assert part.stat().st_mtime_ns == stamp
    assert json.loads(capsys.readouterr().out)["rows"] == first["rows"]
    with pytest.raises(SystemExit) as exc:  # different settings in the same directory
        main(argv[:4] + ["3"] + argv[5:])
    assert exc.value.code == 2
    assert "--out" in capsys.readouterr().err


def test_spectra_and_cnn_signal_commands(tmp_path, capsys):
    assert main(["spectra", "--activation", "linear", "--sigma-w2", "1", "--sigma-b2", "0", "--depth", "3",
                 "--width", "8", "--settings", "fc:orthogonal", "--draws", "1", "--no-progress", "--json"]) == 0
    rows = json.loads(capsys.readouterr().out)["rows"]
    assert rows[0]["ks_distance"] == 0.0
    assert main(["signal", "--model", "cnn", "--depth", "2", "--channels", "4", "--draws", "2", "--no-progress",
                 "--out", str(tmp_path / "cnn")]) == 0
    assert (tmp_path / "cnn" / "signal.csv").exists()


def test_diagnose_command_runs_the_named_file(tmp_path, capsys):
    model_file = tmp_path / "my_model.py"
    model_file.write_text(
        "import torch\nfrom torch import nn\n"
        "def make():\n"
        "    torch.manual_seed(0)\n"
        "    layers = []\n"
        "    for _ in range(6):\n"
        "        lin = nn.Linear(64, 64)\n"
        "        nn.init.normal_(lin.weight, 0.0, (4.0 / 64) ** 0.5)\n"
        "        layers += [lin, nn.Tanh()]\n"
        "    return nn.Sequential(*layers, nn.Linear(64, 10))\n"
        "def not_a_model():\n"
        "    return 3\n")
    out = tmp_path / "diag"
    assert main(["diagnose", "--model-file", f"{model_file}:make", "--input-shape", "64", "--json",
                 "--out", str(out), "--device", "cpu"]) == 0
    payload = json.loads(capsys.readouterr().out)
    assert payload["verdict"] == "chaotic"
    assert payload["plain_stack"]["activation"] == "tanh"
    assert (out / "diagnose.json").exists() and (out / "diagnose.csv").exists()
    with pytest.raises(SystemExit) as exc:
        main(["diagnose", "--model-file", f"{model_file}:not_a_model", "--input-shape", "64"])
    assert exc.value.code == 2 and "not a torch.nn.Module" in capsys.readouterr().err
    with pytest.raises(SystemExit) as exc:
        main(["diagnose", "--model-file", f"{model_file}:make", "--input-shape", "3,5"])
    assert exc.value.code == 2 and "--input-shape" in capsys.readouterr().err


def test_diagnose_model_file_errors_are_reported_not_raised(tmp_path, capsys):
    bad = tmp_path / "bad.py"
    bad.write_text("raise RuntimeError('boom')\n")
    with pytest.raises(SystemExit) as exc:
        main(["diagnose", "--model-file", f"{bad}:make", "--input-shape", "4"])
    err = capsys.readouterr().err
    assert exc.value.code == 2 and "boom" in err and "Traceback" not in err


def test_entry_point_in_a_fresh_process_has_no_traceback():
    proc = subprocess.run([sys.executable, "-m", "validate", "spectra", "--settings", "xx"], cwd=ROOT,
                          capture_output=True, text=True, timeout=300)
    assert proc.returncode == 2 and "--settings" in proc.stderr and "Traceback" not in proc.stderr


def test_gpu_probes_smoke_mode(tmp_path):
    spec = importlib.util.spec_from_file_location("gpu_probes", ROOT / "benchmarks" / "gpu_probes.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    summary = module.main(tmp_path / "probes", device="cpu", smoke=True)
    assert set(summary) == {"speed", "gradnorm", "modulation"}
    assert set(summary["modulation"]) == {"depth=4,seed=0"}
    assert set(summary["modulation"]["depth=4,seed=0"]) == {"plain/orthonormal", "plain-modulated/orthonormal"}
    timings = json.loads((tmp_path / "probes" / "timings.json").read_text())
    assert timings["smoke"] and timings["speed_s"] > 0
    assert (tmp_path / "probes" / "gradnorm" / "gradnorm.csv").exists()
    assert (tmp_path / "probes" / "speed" / "speed.csv").exists()


DEMO = ["gradnorm", "--regularizers", "orthonormal", "--widths", "8,16,32", "--steps", "400", "--record-every", "50",
        "--lr", "0.05", "--modulate-iterations", "100", "--no-progress", "--json"]


def _gradnorm_summary(argv, out, capsys):
    assert main([*argv, "--out", str(out)]) == 0
    capsys.readouterr()
    return json.loads((out / "gradnorm.json").read_text())["summary"]


@pytest.mark.slow
@pytest.mark.parametrize("seed", [0, 1])
def test_modulation_trains_a_plain_net_deeper_than_the_unmodulated_one_trains(seed, tmp_path, capsys):
    # docs/probes.md "Recorded runs" (paper 000, Sec. "The Rationality of Modulation"): with the same SGD settings the
    # 25-layer plain Conv-BN-ReLU net trains without modulation, the 73-layer one diverges in its first steps, and the
    # 73-layer one with modulation on for the first 100 steps trains (about 4 minutes on a quiet core)
    chance = math.log(10)
    shallow = _gradnorm_summary([*DEMO, "--variants", "plain", "--per-stage", "8", "--seed", str(seed)],
                                tmp_path / "shallow", capsys)["plain/orthonormal"]
    assert not shallow["diverged"] and shallow["final_train_loss"] < 0.75 * chance
    deep = _gradnorm_summary([*DEMO, "--variants", "plain,plain-modulated", "--per-stage", "24", "--seed", str(seed)],
                             tmp_path / "deep", capsys)
    assert deep["plain/orthonormal"]["diverged"]
    modulated = deep["plain-modulated/orthonormal"]
    assert not modulated["diverged"]
    assert modulated["final_train_loss"] < 0.75 * chance and modulated["final_train_accuracy"] > 0.3
