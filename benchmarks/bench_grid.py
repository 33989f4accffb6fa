"""Benchmark: tanh mean-field quantities on a 512 x 512 (sigma_w2, sigma_b2) grid, checked against the slow reference.

Run:  python benchmarks/bench_grid.py [--n 512] [--samples 8] [--skip-cold] [--skip-busy]

Prints the grid time after warm-up (tables built and Numba compiled on a small grid over the same ranges; target
< 1 s for 512 x 512), wall and CPU, next to the same grid on one thread (the parallel speed-up: threads take blocks of
points as they become free, so it should be close to the number of cores on a quiet machine) and with one other busy
process on the machine (sharing the cores fairly costs ``(cores + 1) / cores``, 1.5x on 2 cores; a static split of
the points between threads can cost 2x, the slowest thread setting the pace); the time of the same grid in a fresh
interpreter (imports, Numba and table caches loaded from disk, the grid, the DataFrame); the largest relative
difference from ``tests/reference.py`` (adaptive scipy quadrature) at sampled grid points and at near-critical
points, and the reference's own time per point measured in the same run, with the ratio of per-point times.
"""

from __future__ import annotations

import argparse
import importlib.util
import math
import os
import pathlib
import subprocess
import sys
import time

import numba
import numpy as np

import meanfield as mf

ROOT = pathlib.Path(__file__).resolve().parents[1]
KEYS = ("q_star", "c_star", "chi_1", "chi_c", "xi_q", "xi_c")


def load_reference():
    spec = importlib.util.spec_from_file_location("reference", ROOT / "tests" / "reference.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--n", type=int, default=512, help="grid points per axis (default 512)")
    parser.add_argument("--samples", type=int, default=8, help="grid points checked against the reference")
    parser.add_argument("--skip-cold", action="store_true", help="skip the fresh-interpreter timing")
    parser.add_argument("--skip-busy", action="store_true", help="skip the timings on one thread and under load")
    args = parser.parse_args()
    ref = load_reference()
    sw2 = np.linspace(0.5, 5.0, args.n)
    sb2 = np.linspace(0.0, 2.0, args.n)

    t0 = time.perf_counter()
    mf.mean_field_grid("tanh", np.linspace(0.5, 5.0, 16), np.linspace(0.0, 2.0, 16), progress=False)
    warm = time.perf_counter() - t0

    def timed():
        t0, c0 = time.perf_counter(), time.process_time()
        result = mf.mean_field_grid("tanh", sw2, sb2, progress=False)
        return result, time.perf_counter() - t0, time.process_time() - c0

    grid, elapsed, cpu = timed()
    per_point = elapsed / len(grid)
    serial = busy = (math.nan, math.nan)
    if not args.skip_busy:
        threads = numba.get_num_threads()
        numba.set_num_threads(1)
        try:
            serial = timed()[1:]
        finally:
            numba.set_num_threads(threads)
        hog = subprocess.Popen([sys.executable, "-c", "while True: pass"])
        try:
            time.sleep(0.2)
            busy = timed()[1:]
        finally:
            hog.kill()
            hog.wait()

    # random points plus the two chaotic points nearest to chi_1 = 1.001 and one nearest to chi_1 = 1.0001 (near the
    # critical line, where c* and chi_c are ill-conditioned: relative condition number ~ 1/(1 - chi_c))
    rng = np.random.default_rng(0)
    chi1 = grid.chi_1.to_numpy()
    near = [int(np.argmin(np.abs(chi1 - t))) for t in (1.001, 1.002, 1.0001)]
    picks = np.concatenate([rng.choice(len(grid), max(args.samples - 3, 1), replace=False), near])
    errors = []
    t0 = time.perf_counter()
    for i in picks:
        row = grid.iloc[int(i)]
        expected = ref.point("tanh", float(row.sigma_w2), float(row.sigma_b2))
        errors.append({k: abs(row[k] - expected[k]) / max(abs(expected[k]), 1e-300) for k in KEYS})
    ref_per_point = (time.perf_counter() - t0) / len(picks)
    n_random = len(picks) - len(near)

    # chaotic points at fixed relative offsets above the critical line (sigma_b2 = 0.05), through the grid path
    crit, _ = mf.critical_sigma_w2("tanh", 0.05)
    offsets = (1e-3, 1e-4)
    line = mf.mean_field_grid("tanh", crit * (1.0 + np.array(offsets)), np.full(33, 0.05), progress=False)
    line_errors = []
    for off in offsets:
        row = line[(line.sigma_w2 == crit * (1.0 + off)) & (line.sigma_b2 == 0.05)].iloc[0]
        expected = ref.point("tanh", float(row.sigma_w2), 0.05)
        line_errors.append((off, row, {k: abs(row[k] - expected[k]) / max(abs(expected[k]), 1e-300) for k in KEYS}))

    cold = math.nan
    if not args.skip_cold:
        code = ("import numpy as np, meanfield as mf; "
                f"mf.mean_field_grid('tanh', np.linspace(0.5, 5.0, {args.n}), np.linspace(0.0, 2.0, {args.n}), "
                "progress=False)")
        t0 = time.perf_counter()
        subprocess.run([sys.executable, "-c", code], check=True, env={**os.environ, "PYTHONPATH": str(ROOT)})
        cold = time.perf_counter() - t0

    print(f"tanh grid {args.n} x {args.n} = {len(grid)} points, sigma_w2 in [0.5, 5], sigma_b2 in [0, 2]")
    print(f"warm-up (tables + JIT): {warm:.2f} s")
    print(f"grid time: {elapsed:.3f} s wall, {cpu:.3f} s CPU over all threads ({per_point * 1e6:.2f} us/point wall; "
          f"target < 1 s); load average now {os.getloadavg()[0]:.1f} on {os.cpu_count()} cores")
    print(f"baseline, the same grid on 1 thread: {serial[0]:.3f} s wall, {serial[1]:.3f} s CPU (speed-up "
          f"{serial[0] / elapsed:.2f} on {numba.get_num_threads()} threads)")
    print(f"under load, one busy process alongside: {busy[0]:.3f} s wall, {busy[1]:.3f} s CPU "
          f"({busy[0] / elapsed:.2f}x the unloaded time)")
    print(f"cold: the same grid in a fresh interpreter (imports, disk caches, grid, DataFrame): {cold:.2f} s wall")
    print(f"q* range: [{grid.q_star.min():.4g}, {grid.q_star.max():.4g}];  phases: "
          + ", ".join(f"{k} {v}" for k, v in grid.phase.value_counts().items()))
    print(f"reference (scipy quad) at {len(picks)} sampled points: {ref_per_point:.3f} s/point; "
          f"ratio reference/grid per point: {ref_per_point / per_point:.3g}")
    print(f"max relative difference from the reference at {n_random} random points: "
          + ", ".join(f"{k} {max(e[k] for e in errors[:n_random]):.1e}" for k in KEYS) + "  (target 1e-9)")
    for i, e in zip(picks[n_random:], errors[n_random:], strict=True):
        print(f"near-critical point sigma_w2={grid.sigma_w2.iloc[i]:.5f}, sigma_b2={grid.sigma_b2.iloc[i]:.5f}, "
              f"chi_1={chi1[i]:.6f}, 1-chi_c={1 - grid.chi_c.iloc[i]:.2e}: "
              + ", ".join(f"{k} {e[k]:.1e}" for k in KEYS))
    for off, row, e in line_errors:
        print(f"near-critical chaotic line sigma_w2 = crit*(1+{off:g}), sigma_b2=0.05, 1-chi_c={1 - row.chi_c:.2e}: "
              + ", ".join(f"{k} {e[k]:.1e}" for k in KEYS) + "  (target 1e-9)")


if __name__ == "__main__":
    main()
