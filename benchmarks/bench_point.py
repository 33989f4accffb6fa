"""Benchmark: single mean-field points per built-in activation, warm and cold, and ``q_star`` alone (issue 10).

Run:  python benchmarks/bench_point.py [--repeat 20] [--skip-cold] [--sweep 200]

For every built-in activation, at an ordered and a chaotic point:

- warm: ``meanfield.mean_field_point`` after one call at another point (imports, JIT and tables done), median of
  ``--repeat`` calls at fresh points (every call solves anew; nothing is memoised per point);
- ``q_star`` alone, warm (the length map only);
- cold: a fresh interpreter that imports meanfield and computes one point (wall time of the whole process and the
  in-process time after interpreter start), with the disk caches (Numba, tables) as the previous runs left them.

Baseline measured in the same run: ``q*`` by ``scipy.optimize.brentq`` on ``sigma_w2 E[phi^2] + sigma_b2 - q`` with
``scipy.integrate.quad`` expectations (what a user would write), and, for the activations ``tests/reference.py``
covers, that slow reference's full point. Each figure is printed next to its baseline, with the ratio. Timings on a
loaded machine are noisy: the load average is printed.

Sweep (kinked activations, whose chaotic points take the Price route): ``--sweep`` random points per activation,
``sigma_w2`` log-uniform in ``[0.1, 10]`` and ``sigma_b2`` uniform in ``[0, 2]``, plus the extremes
``sigma_w2, sigma_b2`` in ``{1e-6, 1, 1e6}`` (``sigma_b2 = 0`` too); each point timed as the median of 3 calls
(wall and CPU) after a warm-up; the slowest is printed as ``slowest of N random points: ...``.
"""

from __future__ import annotations

import argparse
import importlib.util
import math
import os
import pathlib
import statistics
import subprocess
import sys
import time
import warnings

from scipy.integrate import quad
from scipy.optimize import brentq

import meanfield as mf

ROOT = pathlib.Path(__file__).resolve().parents[1]
#: (ordered, chaotic) points (sigma_w2, sigma_b2) per activation; relu-like ones have no finite chaotic q*.
POINTS = {
    "tanh": ((1.2, 0.3), (3.0, 0.1)), "erf": ((1.0, 0.3), (3.0, 0.1)), "relu": ((1.5, 0.3), (2.5, 0.1)),
    "leaky_relu": ((1.5, 0.3), (2.5, 0.1)), "hard_tanh": ((0.8, 0.3), (2.0, 0.1)), "linear": ((0.5, 0.3), (2.0, 0.1)),
    "sigmoid": ((3.0, 0.1), (16.0, 0.1)), "softplus": ((1.0, 0.3), (1.9, 0.1)), "elu": ((1.0, 0.3), (1.9, 0.0)),
    "selu": ((0.8, 0.3), (1.2, 0.0)), "gelu": ((1.5, 0.3), (2.5, 0.0)), "swish": ((1.5, 0.3), (2.5, 0.0)),
    "sin": ((0.8, 0.3), (3.0, 0.1)),
}


def load_reference():
    spec = importlib.util.spec_from_file_location("reference", ROOT / "tests" / "reference.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def baseline_q_star(act, sw2: float, sb2: float) -> float:
    """q* by brentq on scipy.quad expectations (the textbook approach), bracketed by doubling."""

    def second(q):
        s = math.sqrt(q)
        return quad(lambda z: float(act.phi(s * z)) ** 2 * math.exp(-0.5 * z * z) / math.sqrt(2 * math.pi),
                    -12, 12, points=[0.0], limit=200)[0]

    def g(q):
        return sw2 * second(q) + sb2 - q

    lo, hi = 1e-12, max(sb2, 1e-3)
    while g(hi) > 0:
        lo, hi = hi, 2 * hi
        if hi > 1e8:
            return math.inf
    return brentq(g, lo, hi, xtol=1e-14, rtol=1e-13)


def timed(f, repeat: int) -> float:
    times = []
    for i in range(repeat):
        t0 = time.perf_counter()
        f(i)
        times.append(time.perf_counter() - t0)
    return statistics.median(times)


def cold_point(name: str, sw2: float, sb2: float) -> tuple[float, float]:
    code = ("import time; t = time.perf_counter(); import warnings; warnings.simplefilter('ignore'); "
            f"import meanfield as mf; mf.mean_field_point({name!r}, {sw2!r}, {sb2!r}); "
            "print(time.perf_counter() - t)")
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    t0 = time.perf_counter()
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=env, check=True)
    return time.perf_counter() - t0, float(out.stdout.strip())


#: Kinked activations (Price route to c*) swept by ``--sweep``, with parametrised ones.
SWEEP = ("hard_tanh", "elu", "elu(alpha=0.5)", "elu(alpha=2.5)", "selu", "relu", "leaky_relu(slope=0.1)")


def sweep(n: int, seed: int = 0) -> None:
    """Time ``n`` random points plus the extremes per kinked activation (median of 3 calls each); print the slowest
    (wall and CPU)."""
    import numpy as np

    rng = np.random.default_rng(seed)
    extremes = [(w, b) for w in (1e-6, 1.0, 1e6) for b in (0.0, 1e-6, 1.0, 1e6)]
    worst = (0.0, 0.0, "", 0.0, 0.0)
    total = 0
    for name in SWEEP:
        act = mf.get_activation(name)
        mf.mean_field_point(act, 1.7, 0.1)  # warm-up
        points = [(float(math.exp(rng.uniform(math.log(0.1), math.log(10.0)))), float(rng.uniform(0.0, 2.0)))
                  for _ in range(n)] + extremes
        for sw2, sb2 in points:
            times = []
            for _ in range(3):  # median of 3 calls: one call alone also times a garbage collection or a preemption
                t0, c0 = time.perf_counter(), time.process_time()
                mf.mean_field_point(act, sw2, sb2)
                times.append((time.perf_counter() - t0, time.process_time() - c0))
            wall, cpu = sorted(times)[1]
            total += 1
            if wall > worst[0]:
                worst = (wall, cpu, name, sw2, sb2)
    wall, cpu, name, sw2, sb2 = worst
    print(f"slowest of {total} random points: {wall * 1e3:.2f} ms wall ({cpu * 1e3:.2f} ms CPU) at {name} "
          f"sigma_w2={sw2:.6g} sigma_b2={sb2:.6g} ({n} random + {len(extremes)} extreme points per activation)")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeat", type=int, default=20, help="calls per warm timing (median)")
    parser.add_argument("--skip-cold", action="store_true", help="skip the fresh-process timings")
    parser.add_argument("--sweep", type=int, default=200, help="random points per kinked activation (0: no sweep)")
    args = parser.parse_args()
    warnings.simplefilter("ignore")
    ref = load_reference()
    print(f"load average {os.getloadavg()[0]:.1f} on {os.cpu_count()} cores; times in ms; warm = median of "
          f"{args.repeat} calls at fresh points")
    print(f"{'activation':<11} {'point':<13} {'warm':>8} {'q* only':>8} {'cold wall':>10} {'cold in-proc':>12} "
          f"{'base q*':>9} {'ref point':>10}")
    worst = 0.0
    for name, points in POINTS.items():
        act = mf.get_activation(name)
        for sw2, sb2 in points:
            mf.mean_field_point(act, sw2 * 1.01, sb2)  # warm-up: JIT, tables, caches

            def point(i, act=act, sw2=sw2, sb2=sb2):
                mf.mean_field_point(act, sw2 * (1.0 + 1e-4 * (i + 1)), sb2)

            def q_only(i, act=act, sw2=sw2, sb2=sb2):
                mf.q_star(act, sw2 * (1.0 + 1e-4 * (i + 1)), sb2)

            warm = timed(point, args.repeat)
            qs = timed(q_only, args.repeat)
            worst = max(worst, warm)
            t0 = time.perf_counter()
            try:
                baseline_q_star(act, sw2, sb2)
                base = time.perf_counter() - t0
            except ValueError:  # brentq without a sign change (q* = 0 at sigma_b2 = 0)
                base = math.nan
            ref_time = math.nan
            if name in ref.ACTIVATIONS:
                t0 = time.perf_counter()
                try:
                    ref.point(name, sw2, sb2)
                    ref_time = time.perf_counter() - t0
                except ValueError:  # the reference has no answer without a finite q* (relu, chaotic)
                    pass
            cold = cold_point(name, sw2, sb2) if not args.skip_cold else (math.nan, math.nan)
            print(f"{name:<11} ({sw2:4.1f},{sb2:4.1f})  {warm * 1e3:8.2f} {qs * 1e3:8.2f} {cold[0] * 1e3:10.0f} "
                  f"{cold[1] * 1e3:12.0f} {base * 1e3:9.1f} {ref_time * 1e3:10.1f}")
    print(f"slowest warm point: {worst * 1e3:.2f} ms (targets: < 5 ms each, none > 20 ms)")
    if args.sweep > 0:
        sweep(args.sweep)


if __name__ == "__main__":
    main()
