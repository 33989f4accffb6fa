"""One prepared script for a GPU lent for a few minutes: GPU tests, GPU benchmarks, recorded trainability runs.

Stages (each a subprocess with its own time limit; a stage that does not fit in the remaining budget is skipped and
says so). Default order, most informative first (measured on one H200: the fp32 FC grid alone takes about 225 s):

1. ``info``: torch, device, measured float32 and TF32 matmul rates.
2. ``pytest-gpu``: ``pytest -m gpu`` (the tests marked ``gpu``: CUDA-graph training equals one-at-a-time training in
   float64, divergence flags on the device, GPU equals CPU).
3. ``bench-fc`` / ``bench-cnn`` (and, last, ``bench-fc-64``): ``benchmarks/bench_sweep.py`` on the GPU (one at a
   time, batched eager, batched CUDA graph, graph + TF32) with FLOP counts and the fraction of the measured matmul
   rate; ``-64`` trains 64 networks per launch instead of one grid row of 16.
4. ``fc-grid-tf32`` (and, later, ``fc-grid`` in float32): the full default FC grid of issue 11 (256 cells, depths
   10-300, width 256, batch 128, 1000 steps, lr 0.01), timed (target: under 2 minutes), with its summary against
   6 xi_c and a heat map PNG; comparing the two runs' summaries and ``cells.csv`` gives the effect of TF32.
5. ``fc-preset-deep`` / ``fc-scaled-deep``: ``--preset schoenholz2017-fc`` (SGD lr 1e-3, training accuracy) and
   ``--preset fc-depth-scaled-lr`` (lr 0.01 * 20 / depth) at depths 165 and 300 only, 2000 steps, TF32: do critical
   networks train at the depths where none did with lr 0.01 (issue 11's H200 run)?
6. ``cnn-timing``: the deepest row of ``--preset xiao2018-cnn`` (64 channels) for 50 steps, extrapolated to the
   full CNN grid (target: under 30 minutes); the extrapolation is labelled as such.
7. ``fc-preset``: the whole schoenholz2017-fc grid (only with a larger ``--budget``).
8. the probe hooks below (helper he's ``python -m validate speed`` / ``gradnorm`` on CUDA), appended by whoever merges.

Everything goes under ``$OUT`` (default ``./gpu-out``) as it happens: ``suite.log`` (all output), ``summary.json``
(rewritten atomically after every stage), ``cells.csv`` (final accuracy per cell of every run), ``fc_grid.png``; the
run directories (resumable parquet) under ``--runs-dir`` (default ``$OUT/runs``). At most 8 files come back from a
lent machine, so keep ``--runs-dir`` outside ``$OUT`` there. The last thing printed is the table of all stages.

    python benchmarks/gpu_suite.py [--budget 470] [--smoke]

``--smoke`` runs every stage at toy size on whatever device is present (CPU included) in about a minute or two.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent

# ---------------------------------------------------------------------------------------------------------------
# PROBE HOOKS (coordinator: append helper he's probes here). Each entry: (stage name, argv after "python", seconds,
# smoke argv or None). "{out}" in an argument is replaced by the stage's output folder; "{device}" by cuda or cpu.
# Example (issue 12):
#   ("probe-speed", ["-m", "validate", "speed", "--device", "{device}", "--json"], 60,
#    ["-m", "validate", "speed", "--device", "{device}", "--json", "--data", "synthetic"]),
HOOKS: list[tuple[str, list[str], int, list[str] | None]] = [
    ("probes", ["benchmarks/gpu_probes.py", "--out", "{out}", "--device", "{device}"], 150,
     ["benchmarks/gpu_probes.py", "--out", "{out}", "--device", "{device}", "--smoke"]),
]
# ---------------------------------------------------------------------------------------------------------------


class Suite:
    def __init__(self, out: Path, budget: float):
        self.out, self.deadline, self.start = out, time.monotonic() + budget, time.monotonic()
        self.out.mkdir(parents=True, exist_ok=True)
        self.log = open(out / "suite.log", "a", buffering=1)
        self.stages: list[dict] = []
        self.extra: dict = {}

    def left(self) -> float:
        return self.deadline - time.monotonic()

    def say(self, text: str) -> None:
        print(text, flush=True)
        self.log.write(text + "\n")

    def save(self) -> None:
        tmp = self.out / "summary.json.tmp"
        tmp.write_text(json.dumps({"stages": self.stages, **self.extra}, indent=1, default=str))
        os.replace(tmp, self.out / "summary.json")

    def record(self, name: str, status: str, seconds: float, result: str = "", **data) -> dict:
        row = {"stage": name, "status": status, "seconds": round(seconds, 2), "result": result, **data}
        self.stages.append(row)
        self.save()
        return row

    def run(self, name: str, argv: list[str], limit: float, parse=None) -> dict:
        """Run ``python argv`` with a time limit (shrunk to the budget); log everything; ``parse(stdout) -> (result,
        data)`` summarises it."""
        limit = min(limit, self.left() - 5)
        if limit < 10:
            return self.record(name, "skipped", 0.0, "not enough budget left")
        self.say(f"\n=== {name} (limit {limit:.0f} s): python {' '.join(argv)}")
        env = {**os.environ, "PYTHONUNBUFFERED": "1", "PYTHONPATH": os.pathsep.join(
            [str(ROOT), *filter(None, [os.environ.get("PYTHONPATH")])])}
        start = time.monotonic()
        lines: list[str] = []
        proc = subprocess.Popen([sys.executable, *argv], cwd=ROOT, env=env, stdout=subprocess.PIPE,
                                stderr=subprocess.STDOUT, text=True, start_new_session=False)
        status = "ok"
        try:
            import threading

            def pump():
                for line in proc.stdout:
                    lines.append(line.rstrip("\n"))
                    self.log.write(line)
                    if "\r" not in line:
                        print(line, end="", flush=True)

            reader = threading.Thread(target=pump, daemon=True)
            reader.start()
            proc.wait(timeout=limit)
            reader.join(timeout=5)
            if proc.returncode != 0:
                status = f"failed (exit {proc.returncode})"
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
            status = "timed out"
        seconds = time.monotonic() - start
        result, data = "", {}
        if parse is not None:
            try:
                result, data = parse("\n".join(lines))
            except Exception as exc:  # a summary that cannot be parsed is reported, not fatal
                result = f"(no summary: {type(exc).__name__}: {exc})"
        elif lines:
            result = lines[-1][:160]
        return self.record(name, status, seconds, result, **data)


def _last_json(text: str) -> dict:
    for line in reversed(text.splitlines()):
        line = line.strip()
        if line.startswith("{") and line.endswith("}"):
            return json.loads(line)
    raise ValueError("no JSON line in the output")


def _trainability_summary(text: str):
    data = _last_json(text)
    fitted = data["fitted_multiplier"]
    fit = f"{fitted:.3g} xi_c" if fitted is not None else f"one-sided {data['fitted_interval']}"
    return (f"{data['n_cells']} cells, agreement {data['agreement']:.1%}, fitted {fit} ({data['metric']} accuracy)",
            data)


def _cells_csv(suite: Suite, runs: dict[str, Path]) -> None:
    """Final accuracy of every cell of every finished (or partial) run, one CSV."""
    import pandas as pd

    from validate.trainability import summarize_trainability

    frames = []
    for name, path in runs.items():
        parquet = path / "trainability.parquet"
        if parquet.exists():
            table = pd.read_parquet(parquet)
            if len(table):
                frames.append(summarize_trainability(table).cells.assign(run=name))
    if frames:
        tmp = suite.out / "cells.csv.tmp"
        pd.concat(frames, ignore_index=True).to_csv(tmp, index=False)
        os.replace(tmp, suite.out / "cells.csv")


def _figure(suite: Suite, run: Path, metric: str) -> None:
    try:
        import matplotlib

        matplotlib.use("Agg")
        import pandas as pd

        from figures.trainability import trainability_heatmap

        table = pd.read_parquet(run / "trainability.parquet")
        if metric == "train":  # the heat map shows the column it is given
            table = table.assign(test_accuracy=table["train_accuracy"])
        fig, _ = trainability_heatmap(table)
        fig.savefig(suite.out / "fc_grid.png", dpi=120)
        suite.say(f"figure: {suite.out / 'fc_grid.png'}")
    except Exception as exc:
        suite.say(f"figure not drawn: {type(exc).__name__}: {exc}")


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", default=os.environ.get("OUT", "gpu-out"), help="output folder (default $OUT)")
    parser.add_argument("--runs-dir", default=None, help="trainability run folders (default OUT/runs)")
    parser.add_argument("--budget", type=float, default=470.0, help="seconds for everything (default 470)")
    parser.add_argument("--smoke", action="store_true", help="toy sizes on any device (CPU included)")
    parser.add_argument("--skip", action="append", default=[], help="stage name to skip (repeatable)")
    parser.add_argument("--stages", default=None, help="comma list of stages in the order to run (default all)")
    parser.add_argument("--tests", nargs="*", default=["tests"], help="test paths for pytest -m gpu")
    args = parser.parse_args(argv)
    sys.path.insert(0, str(ROOT))
    import torch

    from validate.batched import matmul_rate

    suite = Suite(Path(args.out), args.budget)
    runs_dir = Path(args.runs_dir) if args.runs_dir else suite.out / "runs"
    cuda = torch.cuda.is_available()
    device = "cuda" if cuda else "cpu"
    smoke = args.smoke
    if not cuda and not smoke:
        parser.error("--smoke: no CUDA device here; the full suite needs a GPU (use --smoke to test it on a CPU)")

    start = time.monotonic()
    info = {"torch": torch.__version__, "device": torch.cuda.get_device_name(0) if cuda else "cpu",
            "smoke": smoke, "python": sys.version.split()[0]}
    info["matmul_tflops_fp32"] = matmul_rate(device, torch.float32, n=512 if smoke else None) / 1e12
    if cuda:
        info["matmul_tflops_tf32"] = matmul_rate(device, torch.float32, tf32=True) / 1e12
    suite.extra["info"] = info
    suite.say(f"gpu_suite: {info}")
    suite.record("info", "ok", time.monotonic() - start, f"{info['device']}, fp32 matmul "
                 f"{info['matmul_tflops_fp32']:.3g} TFLOP/s" + (f", tf32 {info['matmul_tflops_tf32']:.3g}"
                                                                  if cuda else ""))
    runs: dict[str, Path] = {}

    def bench(text):
        rows = json.loads(Path(suite.out / "bench.json.tmp").read_text())
        best = max(rows, key=lambda r: r["speedup"])
        return (f"best {best['way']}: {best['speedup']:.1f}x one at a time, {best['networks_per_s']:.1f} networks/s, "
                f"{best['fraction_of_matmul']:.1%} of matmul", {"rows": rows})

    common = ["--json", str(suite.out / "bench.json.tmp"), "--device", device]
    # progress bars (tqdm, to suite.log only) show how far a run got if the budget cuts it off
    engine = ["--device", device, "--json", *(["--no-progress"] if smoke else [])]
    toy = ["--data", "synthetic", "--sigma-w2", "1:3:3", "--depth", "2,8", "--steps", "20", "--width", "16",
           "--eval-size", "128", "--evals", "2"]

    def pytest_gpu():
        suite.run("pytest-gpu", ["-m", "pytest", "-m", "gpu", "-q", "-p", "no:cacheprovider", *args.tests],
                  60 if smoke else 150, lambda text: (text.strip().splitlines()[-1], {}))

    def bench_fc():
        size = ["--networks", "4", "--steps", "5", "--depth", "4", "--width", "16", "--data", "synthetic"] if smoke \
            else ["--networks", "16", "--steps", "50", "--tf32"]
        suite.run("bench-fc", ["benchmarks/bench_sweep.py", *common, *size], 60 if smoke else 120, bench)

    def bench_fc64():
        size = ["--networks", "8", "--steps", "5", "--depth", "4", "--width", "16", "--data", "synthetic"] if smoke \
            else ["--networks", "64", "--steps", "50"]
        suite.run("bench-fc-64", ["benchmarks/bench_sweep.py", *common, *size], 60 if smoke else 120, bench)

    def bench_cnn():
        size = ["--networks", "2", "--steps", "3", "--depth", "2", "--channels", "4", "--data", "digits"] if smoke \
            else ["--networks", "16", "--steps", "30", "--depth", "10", "--channels", "16", "--tf32"]
        suite.run("bench-cnn", ["benchmarks/bench_sweep.py", "--model", "cnn", *common, *size],
                  60 if smoke else 120, bench)

    def fc_grid(tf32=False):
        name = "fc-grid-tf32" if tf32 else "fc-grid"
        runs[name] = runs_dir / name.replace("-", "_")
        suite.run(name, ["-m", "validate", "trainability", "--out", str(runs[name]), *engine,
                         *(["--tf32"] if tf32 else []), *(toy if smoke else [])], 60 if smoke else 200,
                  _trainability_summary)
        if not (suite.out / "fc_grid.png").exists():  # the heat map of the first grid that ran
            _figure(suite, runs[name], "test")

    def fc_preset():
        runs["fc-preset"] = runs_dir / "fc_preset"
        suite.run("fc-preset", ["-m", "validate", "trainability", "--preset", "schoenholz2017-fc", "--out",
                                str(runs["fc-preset"]), *engine, *(toy if smoke else [])],
                  60 if smoke else 300, _trainability_summary)

    def fc_deep(name, preset):
        runs[name] = runs_dir / name.replace("-", "_")
        deep = ["--depth", "8"] if smoke else ["--depth", "165,300", "--tf32"]
        suite.run(name, ["-m", "validate", "trainability", "--preset", preset, "--out", str(runs[name]), *engine,
                         *(toy if smoke else []), *deep], 60 if smoke else 150, _trainability_summary)

    def cnn_timing():
        runs["cnn-timing"] = runs_dir / "cnn_timing"
        steps, depth = (3, 8) if smoke else (50, 300)
        size = ["--data", "digits", "--channels", "4", "--sigma-w2", "1:3:3"] if smoke else []
        row = suite.run("cnn-timing", ["-m", "validate", "trainability", "--preset", "xiao2018-cnn", "--steps",
                                       str(steps), "--evals", "1", "--depth", str(depth), "--out",
                                       str(runs["cnn-timing"]), *engine, *size], 60 if smoke else 150,
                        _trainability_summary)
        if row["status"] == "ok":
            import numpy as np

            depths = np.unique(np.round(np.linspace(10, 300, 16)).astype(int))
            estimate = row["seconds"] * depths.sum() / depth * 1000 / steps
            row["extrapolated_full_grid_s"] = estimate
            row["result"] += (f"; full 16 x 16 CNN grid, 1000 steps, extrapolated from one depth-{depth} row "
                              f"(start-up included, so an upper estimate): {estimate / 60:.1f} min")
            suite.save()

    stages = {"pytest-gpu": pytest_gpu, "bench-fc": bench_fc, "bench-fc-64": bench_fc64, "bench-cnn": bench_cnn,
              "fc-grid": fc_grid, "fc-preset": fc_preset, "cnn-timing": cnn_timing,
              "fc-grid-tf32": lambda: fc_grid(tf32=True),
              "fc-preset-deep": lambda: fc_deep("fc-preset-deep", "schoenholz2017-fc"),
              "fc-scaled-deep": lambda: fc_deep("fc-scaled-deep", "fc-depth-scaled-lr")}
    default_order = ["pytest-gpu", "bench-fc", "bench-cnn", "fc-grid-tf32", "fc-preset-deep", "fc-scaled-deep",
                     "cnn-timing", "fc-grid", "bench-fc-64", "fc-preset"]
    order = args.stages.split(",") if args.stages else default_order
    unknown = [name for name in order if name not in stages]
    if unknown:
        parser.error(f"--stages: unknown stage(s) {', '.join(unknown)}; known: {', '.join(stages)}")
    for name in order:
        if name in args.skip:
            suite.record(name, "skipped", 0.0, "--skip")
            continue
        stages[name]()
        if name in runs:
            _cells_csv(suite, runs)  # after every run, so that a timeout loses nothing finished
    (suite.out / "bench.json.tmp").unlink(missing_ok=True)

    for name, hook_argv, limit, smoke_argv in HOOKS:
        chosen = smoke_argv if smoke else hook_argv
        if chosen is None:
            suite.record(name, "skipped", 0.0, "no smoke version")
            continue
        folder = runs_dir / name  # outside $OUT: a lent machine returns at most 8 files
        suite.run(name, [a.replace("{out}", str(folder)).replace("{device}", device) for a in chosen], limit)

    _cells_csv(suite, runs)
    suite.extra["total_s"] = time.monotonic() - suite.start
    suite.save()
    width = max(len(s["stage"]) for s in suite.stages)
    table = [f"{'stage':{width}s}  {'status':14s} {'seconds':>8s}  result"]
    table += [f"{s['stage']:{width}s}  {s['status']:14s} {s['seconds']:8.1f}  {s['result']}" for s in suite.stages]
    table.append(f"total {suite.extra['total_s']:.1f} s; files in {suite.out}")
    suite.say("\n" + "\n".join(table))
    return 0 if all(s["status"] in ("ok", "skipped") for s in suite.stages) else 1


if __name__ == "__main__":
    sys.exit(main())
