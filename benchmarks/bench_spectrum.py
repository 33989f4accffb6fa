"""Benchmark of the Jacobian-spectrum solver and of sampled Jacobians (issue 5).

1. ``jacobian_spectrum`` at 2000 points for depth 1000 (tanh, critical, sigma_b2 = 0.05, orthogonal weights), after
   JIT warm-up, beside a plain per-point root-finding baseline measured in the same run: for each ``lam`` of the same
   grid, ``scipy.optimize.newton`` (complex) on ``log(1 + m) - log(lam m) - L log(S_W S_D) = 0`` (mod 2 pi i) with
   ``m = M_{D^2}(z_D)`` summed in numpy over the same quadrature nodes, seeded by the previous point's root (a
   general-purpose ``scipy.optimize.root`` on the unreduced four-real-unknown system stalls at this depth). Both
   must agree on the density.
2. The sampled spectrum of a width-1024, depth-256 tanh network (QR accumulation) with its time and its KS distance to
   the prediction.

Usage: ``python benchmarks/bench_spectrum.py [--width 1024] [--depth 256] [--skip-sampling]``.
"""

from __future__ import annotations

import argparse
import math
import time

import numpy as np
from scipy import optimize

import meanfield
from rmt import d2_law, jacobian_spectrum, sample_jacobian_spectrum
from rmt.spectrum import _edge_start, _locate_support, _make_equation


def baseline_density(lam: np.ndarray, activation, sigma_w2: float, q: float, depth: int,
                     z_start: complex) -> np.ndarray:
    """Per-point ``scipy.optimize.newton`` (complex, numpy sums over the nodes, no JIT), orthogonal weights.

    Unknown ``z_D``; residual ``log(1 + m) - log(lam m) - L log(S_W S_D)`` with ``m = M_{D^2}(z_D)``, imaginary part
    wrapped (the relation holds mod 2 pi i); each point is seeded with the previous point's root. Returns the density.
    """
    law = d2_law(activation, q)
    d, w = law.values, law.weights
    c = w * d

    def residual(z, log_lam):
        r = 1.0 / (z - d)
        m = np.sum(c * r)
        p = z * np.sum(w * r)  # 1 + m
        e = np.log(p) - log_lam - np.log(m) + depth * (math.log(sigma_w2) - np.log(p / (m * z)))
        return complex(e.real, (e.imag + math.pi) % (2 * math.pi) - math.pi)

    def derivative(z, log_lam):
        r = 1.0 / (z - d)
        m, p, dm = np.sum(c * r), z * np.sum(w * r), -np.sum(c * r * r)
        return ((1 - depth) / p + (depth - 1) / m) * dm + depth / z

    z = complex(z_start)
    density = np.empty(lam.size)
    for i in range(lam.size - 1, -1, -1):  # from the top, each point seeded by the previous one
        try:
            z = optimize.newton(residual, z, fprime=derivative, args=(math.log(lam[i]),), tol=1e-14, rtol=1e-11,
                                 maxiter=100)
        except RuntimeError:
            density[i] = np.nan
            continue
        z = z.conjugate() if z.imag < 0 else z
        density[i] = max(-np.sum(c / (z - d)).imag, 0.0) / (math.pi * lam[i])
    return density


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--width", type=int, default=1024)
    parser.add_argument("--sample-depth", type=int, default=256)
    parser.add_argument("--skip-sampling", action="store_true")
    args = parser.parse_args()

    sigma_w2, q = meanfield.critical_sigma_w2("tanh", 0.05)
    depth, num = 1000, 2000
    t0 = time.perf_counter()
    jacobian_spectrum("tanh", sigma_w2, 0.05, 10, "orthogonal", num=100)  # JIT warm-up (compilation or cache load)
    warm = time.perf_counter() - t0
    times = []
    for _ in range(3):
        t0 = time.perf_counter()
        result = jacobian_spectrum("tanh", sigma_w2, 0.05, depth, "orthogonal", num=num)
        times.append(time.perf_counter() - t0)
    print(f"jacobian_spectrum tanh depth={depth} num={num}: best {min(times):.3f} s of 3 "
          f"(warm-up call {warm:.2f} s); support [{result.support[0]:.3g}, {result.support[1]:.6g}], "
          f"tail_mass {result.tail_mass:.3g}")

    # baseline on the same grid, seeded just inside the upper edge by the solver's own first point
    lam = result.lam[:-1]
    law = d2_law("tanh", q)
    # start point: the solution at the top grid point from the edge expansion (the only thing taken from the solver)
    eq = _make_equation(law, sigma_w2, depth, "orthogonal")
    support = _locate_support(eq, None, 1.0, 1e-10)
    z_start = _edge_start(eq, support.x_hi, support.u_hi, math.log(lam[-1]))
    t0 = time.perf_counter()
    base = baseline_density(lam, "tanh", sigma_w2, q, depth, z_start)
    t_base = time.perf_counter() - t0
    ok = np.isfinite(base)
    rel = np.abs(base[ok] - result.density[:-1][ok]) / np.maximum(result.density[:-1][ok], 1e-300)
    agree = np.mean(rel < 1e-6) * ok.mean()
    print(f"baseline per-point scipy.optimize.newton (same grid, seeded by the previous point): {t_base:.3f} s; "
          f"converged at {ok.sum()} of {lam.size} points, {100 * agree:.1f}% of all points agree with the solver to "
          f"1e-6; speed-up {t_base / min(times):.1f}x")

    if args.skip_sampling:
        return
    t0 = time.perf_counter()
    frame = sample_jacobian_spectrum("tanh", sigma_w2, 0.05, args.sample_depth, args.width, "orthogonal", rng=0)
    t_sample = time.perf_counter() - t0
    theory = jacobian_spectrum("tanh", sigma_w2, 0.05, args.sample_depth, "orthogonal", num=num)
    print(f"sample_jacobian_spectrum tanh width={args.width} depth={args.sample_depth} orthogonal (QR accumulation): "
          f"{t_sample:.1f} s; lam from {frame.lam.min():.3g} to {frame.lam.max():.4g}; "
          f"KS distance to the prediction {theory.ks_distance(frame.lam):.4f}")


if __name__ == "__main__":
    main()
