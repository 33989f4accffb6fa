"""Benchmark of the Jacobian-spectrum solver (issues 5 and 14), each case beside a per-point root-finding baseline.

1. ``jacobian_spectrum`` at 2000 points for every case of a sweep (activations tanh, hard tanh, ReLU, erf; Gaussian
   and orthogonal weights; depth 1 to 10^4; tanh and erf at their critical ``sigma_w2`` for ``sigma_b2 = 0.05``), warm
   (best of 2 after a JIT warm-up call), each beside a plain per-point baseline measured in the same run on the same
   grid: for each ``lam``, ``scipy.optimize.newton`` (complex) on ``F(z) = log lam`` (mod 2 pi i) with
   ``F(z) = a log(1 + m) + (L - 1) log m + L log(sigma_w2 z)``, ``m = M_{D^2}(z)`` summed in numpy over the nodes of
   a fine rule (``rmt.d2_law`` with :data:`BASELINE_NODES` per panel, 64x the core's nodes: the core rule alone is
   off by up to 100% where ``z`` comes close to the range of ``phi'^2``), seeded by the tangent
   predictor from the previous point's root (the first one by the quadratic expansion at the baseline's own upper
   edge; seeding with the previous root itself jumped to non-physical roots deep in the tail, 3e-4 off, erf). Both
   must agree on the density (the share of points within 1e-6 is printed; next to a soft edge the density is
   ill-conditioned and the baseline's atoms can differ by a few 1e-6 there). ``--baseline-max-depth`` limits the
   (slow) baseline. Wall and CPU seconds are printed (on a loaded machine the CPU time is the better figure).
2. ``import rmt`` and a cold ``python -m rmt spectrum`` in fresh processes.
3. Optionally (``--sample``) the sampled spectrum of a width-1024, depth-256 tanh network (QR accumulation).

Usage: ``python benchmarks/bench_spectrum.py [--quick] [--baseline-max-depth 1000] [--sample]``. Timings on a shared
machine are inflated by its load (printed at the start).
"""

from __future__ import annotations

import argparse
import math
import os
import resource
import subprocess
import sys
import time
import warnings

import numpy as np
from scipy import optimize

import meanfield
import rmt

#: Gauss-Legendre nodes per panel of the baseline's rule for D^2 (64x the core's GL_NODES).
BASELINE_NODES = 768


def baseline_density(lam: np.ndarray, law, sigma_w2: float, depth: int, weights: str) -> np.ndarray:
    """Per-point ``scipy.optimize.newton`` (complex, numpy sums over the nodes, no JIT) on the same equation."""
    law = law.merged()  # equal atoms (even phi'^2) once: same sums, half the work
    d, w = law.values, law.weights
    c = w * d
    a = 1.0 - depth if weights == "orthogonal" else 1.0

    def parts(z):
        r = 1.0 / (z - d)
        return np.sum(c * r), z * np.sum(w * r), -np.sum(c * r * r)  # m, 1 + m, m'

    def big_f(z):
        m, p, _ = parts(z)
        return a * np.log(p) + (depth - 1) * np.log(m) + depth * (math.log(sigma_w2) + np.log(z))

    def f1(z):
        m, p, dm = parts(z)
        return (a / p + (depth - 1) / m) * dm + depth / z

    # the baseline's own upper edge: F'(x) = 0 on the real axis above max d, then the quadratic expansion
    top = d.max()
    xs = top + top * np.logspace(-12, 9, 3000)
    vals = np.array([f1(x).real for x in xs])
    k = np.nonzero(np.sign(vals[:-1]) != np.sign(vals[1:]))[0][-1]
    x_e = optimize.brentq(lambda x: f1(x).real, xs[k], xs[k + 1], xtol=1e-15 * xs[k + 1], rtol=1e-15)
    u_e = big_f(x_e).real
    h = 1e-7 * abs(x_e)
    f2 = (f1(x_e + h).real - f1(x_e - h).real) / (2 * h)

    def residual(z, log_lam):
        e = big_f(z) - log_lam
        return complex(e.real, (e.imag + math.pi) % (2 * math.pi) - math.pi)

    z = complex(x_e, math.sqrt(max(2.0 * (u_e - math.log(lam[-1])) / f2, 0.0)))
    u_prev = None
    density = np.empty(lam.size)
    for i in range(lam.size - 1, -1, -1):  # from the top, each point seeded by the previous one
        u = math.log(lam[i])
        seed = z if u_prev is None else z + (u - u_prev) / f1(z)  # tangent predictor: stays on the physical root
        seed = seed.conjugate() if seed.imag < 0 else seed
        try:
            z_new = optimize.newton(residual, seed, fprime=lambda z, _: f1(z), args=(u,), tol=1e-14,
                                    rtol=1e-11, maxiter=100)
        except (RuntimeError, ZeroDivisionError):
            density[i] = np.nan
            continue
        z, u_prev = (z_new.conjugate() if z_new.imag < 0 else z_new), u
        density[i] = max(-np.sum(c / (z - d)).imag, 0.0) / (math.pi * lam[i])
    return density


def cases(quick: bool):
    sw_tanh, _ = meanfield.critical_sigma_w2("tanh", 0.05)
    sw_erf, _ = meanfield.critical_sigma_w2("erf", 0.05)
    depths = (1, 10, 100, 1000) if quick else (1, 3, 10, 30, 100, 300, 1000, 3000, 10000)
    for activation, sigma_w2 in (("tanh", sw_tanh), ("hard_tanh", 1.2), ("relu", 2.0), ("erf", sw_erf)):
        for weights in ("orthogonal", "gaussian"):
            for depth in depths:
                yield activation, sigma_w2, 0.05, depth, weights


def cold(code: list[str]) -> str:
    """Wall and CPU (user + system) seconds of a fresh ``python`` process running ``code``."""
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    t0 = time.perf_counter()
    subprocess.run([sys.executable, *code], check=True, capture_output=True)
    wall = time.perf_counter() - t0
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    return f"{wall:.2f} s (cpu {after.ru_utime + after.ru_stime - before.ru_utime - before.ru_stime:.2f} s)"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="fewer depths")
    parser.add_argument("--num", type=int, default=2000)
    parser.add_argument("--baseline-max-depth", type=int, default=1000)
    parser.add_argument("--sample", action="store_true", help="also sample a width-1024, depth-256 network")
    args = parser.parse_args()
    print(f"load average {os.getloadavg()[0]:.1f} on {os.cpu_count()} CPUs")
    cli = ["-m", "rmt", "spectrum", "--sigma-w2", "1.76", "--sigma-b2", "0.05", "--depth", "100", "--weights",
           "orthogonal"]
    print(f"cold `import rmt`: {cold(['-c', 'import rmt'])}; "
          f"cold `python -m rmt spectrum` (tanh, depth 100, orthogonal): {cold(cli)}")
    rmt.jacobian_spectrum("tanh", 1.5, 0.05, 10, "orthogonal", num=100)  # JIT warm-up (compilation or cache load)
    rmt.jacobian_spectrum("tanh", 1.5, 0.05, 10, "gaussian", num=100)
    print(f"{'case':<44} {'solver (s)':>10} {'cpu (s)':>8} {'baseline (s)':>12} {'speed-up':>8} {'agree 1e-6':>10}")
    worst = 0.0
    for activation, sigma_w2, sigma_b2, depth, weights in cases(args.quick):
        label = f"{activation} sw2={sigma_w2:.4g} {weights} L={depth}"
        times = []
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            try:
                for _ in range(2):
                    t0, c0 = time.perf_counter(), time.process_time()
                    result = rmt.jacobian_spectrum(activation, sigma_w2, sigma_b2, depth, weights, num=args.num)
                    times.append((time.perf_counter() - t0, time.process_time() - c0))
            except (ValueError, RuntimeError, ArithmeticError) as exc:
                print(f"{label:<44} failed: {exc}")
                continue
        best, cpu = min(times)
        worst = max(worst, best)
        base_text = agree_text = speed = "-"
        if result.lam.size and depth <= args.baseline_max_depth and result.params.get("depth") == depth:
            law = rmt.d2_law(activation, result.params["q"], nodes_per_panel=BASELINE_NODES)
            grid = result.lam[:-1] if result.support[0] == 0.0 else result.lam[1:-1]
            ours = result.density[:-1] if result.support[0] == 0.0 else result.density[1:-1]
            t0 = time.perf_counter()
            with warnings.catch_warnings(), np.errstate(all="ignore"):
                warnings.simplefilter("ignore")
                try:
                    base = baseline_density(grid, law, sigma_w2, depth, weights)
                except (IndexError, ValueError):  # no upper edge of its own (e.g. depth-1 orthogonal pushforward)
                    base = None
            t_base = time.perf_counter() - t0
            if base is not None:
                ok = np.isfinite(base)
                rel = np.abs(base[ok] - ours[ok]) / np.maximum(ours[ok], 1e-300)
                base_text = f"{t_base:.3f}"
                speed = f"{t_base / best:.1f}x"
                agree_text = f"{100 * np.mean(rel < 1e-6) * ok.mean():.1f}%"
        print(f"{label:<44} {best:>10.3f} {cpu:>8.3f} {base_text:>12} {speed:>8} {agree_text:>10}", flush=True)
    print(f"slowest warm case: {worst:.3f} s (target < 0.2 s on a quiet machine)")

    if args.sample:
        sigma_w2, _ = meanfield.critical_sigma_w2("tanh", 0.05)
        t0 = time.perf_counter()
        frame = rmt.sample_jacobian_spectrum("tanh", sigma_w2, 0.05, 256, 1024, "orthogonal", rng=0)
        t_sample = time.perf_counter() - t0
        theory = rmt.jacobian_spectrum("tanh", sigma_w2, 0.05, 256, "orthogonal", num=args.num)
        print(f"sample_jacobian_spectrum tanh width=1024 depth=256 orthogonal (QR accumulation): {t_sample:.1f} s; "
              f"KS distance to the prediction {theory.ks_distance(frame):.4f}")


if __name__ == "__main__":
    main()
