"""Benchmark: tanh mean-field quantities on a 512 x 512 (sigma_w2, sigma_b2) grid, checked against the slow reference.

Run:  python benchmarks/bench_grid.py [--n 512] [--samples 8]

Prints the grid time after warm-up (tables built and Numba compiled on a small grid over the same ranges), the largest
relative difference from ``tests/reference.py`` (adaptive scipy quadrature) at sampled grid points, and the reference's
own time per point measured in the same run, with the ratio of per-point times.
"""

from __future__ import annotations

import argparse
import importlib.util
import pathlib
import time

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
    args = parser.parse_args()
    ref = load_reference()
    sw2 = np.linspace(0.5, 5.0, args.n)
    sb2 = np.linspace(0.0, 2.0, args.n)

    t0 = time.perf_counter()
    mf.mean_field_grid("tanh", np.linspace(0.5, 5.0, 16), np.linspace(0.0, 2.0, 16), progress=False)
    warm = time.perf_counter() - t0

    t0 = time.perf_counter()
    grid = mf.mean_field_grid("tanh", sw2, sb2, progress=False)
    elapsed = time.perf_counter() - t0
    per_point = elapsed / len(grid)

    rng = np.random.default_rng(0)
    chaotic = np.flatnonzero((grid.phase == "chaotic").to_numpy())
    near = chaotic[np.argsort(grid.chi_1.to_numpy()[chaotic])[:: max(1, len(chaotic) // 50)][:2]]
    picks = np.concatenate([rng.choice(len(grid), max(args.samples - 2, 1), replace=False), near])
    worst = dict.fromkeys(KEYS, 0.0)
    t0 = time.perf_counter()
    for i in picks:
        row = grid.iloc[int(i)]
        expected = ref.point("tanh", float(row.sigma_w2), float(row.sigma_b2))
        for key in KEYS:
            e = abs(row[key] - expected[key]) / max(abs(expected[key]), 1e-300)
            worst[key] = max(worst[key], e)
    ref_per_point = (time.perf_counter() - t0) / len(picks)

    print(f"tanh grid {args.n} x {args.n} = {len(grid)} points, sigma_w2 in [0.5, 5], sigma_b2 in [0, 2]")
    print(f"warm-up (tables + JIT): {warm:.2f} s")
    print(f"grid time: {elapsed:.3f} s  ({per_point * 1e6:.2f} us/point; target < 2 s)")
    print(f"q* range: [{grid.q_star.min():.4g}, {grid.q_star.max():.4g}];  phases: "
          + ", ".join(f"{k} {v}" for k, v in grid.phase.value_counts().items()))
    print(f"reference (scipy quad) at {len(picks)} sampled points: {ref_per_point:.3f} s/point; "
          f"ratio reference/grid per point: {ref_per_point / per_point:.3g}")
    print("max relative difference from the reference: "
          + ", ".join(f"{k} {v:.1e}" for k, v in worst.items()) + "  (target 1e-9)")


if __name__ == "__main__":
    main()
