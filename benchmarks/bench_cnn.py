"""Benchmark: the CNN covariance map on a 2-D 8x8 image (4096 position pairs) over 1000 layers (issue 3).

Run: ``python benchmarks/bench_cnn.py [--depth 1000] [--size 8]``. Target: under 5 s for the translation-invariant
input. Every figure is printed as wall-clock and CPU time of this process (``time.process_time``); on a shared machine
the CPU time is the fairer comparison.

Measured in the same run:

1. ``propagate_covariance`` (tanh at its critical point for ``sigma_b2 = 0.05``, uniform 3x3 kernel) from a
   translation-invariant ``Sigma0``: the exploited symmetry leaves ``n**2 = 64`` distinct entries per layer, evaluated
   by ``meanfield.gaussian_kernel`` (for tanh its Mehler series, ``meanfield.mehler.MehlerKernel``, with the Hermite
   coefficients cached while the variances repeat); and the same for erf (closed-form kernel).
2. The baseline: the direct per-pair loop, one scalar 2-D quadrature (the core's ``kernel_quadrature``, which
   ``gaussian_kernel`` used for tanh before the Mehler path) per pair of positions and layer, with ``A_v`` by explicit
   loops. It is far too slow to run for 1000 layers: a sample of pairs
   of one layer is timed and extrapolated to 4096 pairs x ``depth`` layers (printed as an extrapolation).
3. ``propagate_covariance`` from a generic (not translation-invariant) ``Sigma0``: all 2080 distinct pairs per layer,
   for all layers, tanh and erf.
4. Accuracy: the first layers of (1) against the per-pair quadrature loop on the distinct entries.
"""

from __future__ import annotations

import argparse
import itertools
import time

import numpy as np

from meanfield import gaussian_kernel, get_activation, propagate_covariance
from meanfield.kernel_quadrature import kernel_quadrature
from meanfield.kernels import kernel_variance

TANH = ("tanh", 1.7609546, 0.05)  # critical (docs/formulas.md reference value)
ERF = ("erf", 2.25, 0.25)


def translation_invariant_input(n: int, q: float = 0.9) -> np.ndarray:
    k = np.array(list(itertools.product(range(n), repeat=2)))
    k = np.minimum(k, n - k)
    g = np.fft.ifft2(np.exp(-(k**2).sum(1) / 4.0).reshape(n, n)).real
    g *= q / g[0, 0]
    coords = np.array(list(itertools.product(range(n), repeat=2)))
    d = (coords[None, :, :] - coords[:, None, :]) % n
    return g[d[..., 0], d[..., 1]]


def quadrature_kernel(activation, q1, q2, q12):
    """``E[phi(h1) phi(h2)]`` by the core's 2-D quadrature alone (no closed form, no Mehler series)."""
    act = get_activation(activation)
    args = (np.atleast_1d(np.asarray(v, dtype=np.float64)) for v in (q1, q2, q12))
    return kernel_quadrature(act.phi, act.phi, act.kinks, *args)


def naive_layer(S: np.ndarray, activation, sigma_w2, sigma_b2, v, n, pairs=None):
    """One layer by the direct loop: a scalar 2-D quadrature per pair, then A_v by explicit index loops."""
    N = S.shape[0]
    C = np.zeros((N, N))
    todo = pairs if pairs is not None else list(itertools.product(range(N), repeat=2))
    for a, b in todo:
        C[a, b] = sigma_w2 * quadrature_kernel(activation, S[a, a], S[b, b], S[a, b])[0] + sigma_b2
    if pairs is not None:
        return C
    out = np.zeros((N, N))
    k = v.shape[0] // 2
    for a1, a2, b1, b2 in itertools.product(range(n), repeat=4):
        total = 0.0
        for d1, d2 in itertools.product(range(-k, k + 1), repeat=2):
            total += v[d1 + k, d2 + k] * C[((a1 + d1) % n) * n + (a2 + d2) % n, ((b1 + d1) % n) * n + (b2 + d2) % n]
        out[a1 * n + a2, b1 * n + b2] = total
    return out


class Timing:
    def __init__(self, wall: float, cpu: float):
        self.wall, self.cpu = wall, cpu

    def scaled(self, factor: float) -> Timing:
        return Timing(self.wall * factor, self.cpu * factor)

    def __add__(self, other: Timing) -> Timing:
        return Timing(self.wall + other.wall, self.cpu + other.cpu)

    def __str__(self) -> str:
        return f"{self.wall:10.2f} s wall {self.cpu:10.2f} s cpu"


def timed(fn):
    wall, cpu = time.perf_counter(), time.process_time()
    value = fn()
    return Timing(time.perf_counter() - wall, time.process_time() - cpu), value


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--depth", type=int, default=1000)
    parser.add_argument("--size", type=int, default=8)
    args = parser.parse_args()
    n, depth = args.size, args.depth
    v = kernel_variance("uniform", 3, 2)
    S_inv = translation_invariant_input(n)
    rng = np.random.default_rng(0)
    A = rng.standard_normal((n * n, 2 * n * n))
    S_gen = A @ A.T / (2 * n * n)
    N = n * n
    print(f"2-D {n}x{n} image: {N * N} position pairs, {depth} layers, uniform 3x3 kernel")

    gaussian_kernel("tanh", 0.5, 0.5, 0.1)  # warm-up (imports, caches)
    t_tanh, layers = timed(lambda: propagate_covariance(S_inv, *TANH, v, depth))
    t_erf, _ = timed(lambda: propagate_covariance(S_inv, *ERF, v, depth))
    print(f"propagate_covariance, translation-invariant input, tanh: {t_tanh}   (target < 5 s)")
    print(f"propagate_covariance, translation-invariant input, erf:  {t_erf}")

    # accuracy of the fast path: distinct entries (row 0) of layers 1..3 by the per-pair quadrature loop
    S = S_inv
    worst = 0.0
    for layer in range(1, 4):
        C = naive_layer(S, TANH[0], TANH[1], TANH[2], v, n, pairs=[(0, b) for b in range(N)])
        worst = max(worst, float(np.max(np.abs(C[0] - layers[layer, 0]) / layers[layer, 0, 0])))
        S = layers[layer]
    print(f"fast path vs per-pair quadrature, layers 1-3: max relative difference {worst:.1e}")

    sample = [(a, b) for a in range(0, N, 9) for b in range(0, N, 7)]
    t_sample, _ = timed(lambda: naive_layer(S_inv, *TANH, v, n, pairs=sample))
    t_av, _ = timed(lambda: naive_layer(np.eye(N), "linear", 1.0, 0.0, v, n))
    per_layer = t_sample.scaled(N * N / len(sample)) + t_av
    naive_total = per_layer.scaled(depth)
    print(f"baseline: per-pair 2-D quadrature loop, tanh, per layer:   {per_layer}   ({len(sample)} pairs and one "
          f"A_v loop timed, extrapolated to {N * N} pairs)")
    print(f"baseline: per-pair 2-D quadrature loop, tanh, {depth} layers: {naive_total}   (extrapolated)")
    i, j = np.triu_indices(N)
    q = np.diag(S_gen)
    part = slice(0, i.size, 8)
    t_vec, _ = timed(lambda: quadrature_kernel(TANH[0], q[i[part]], q[j[part]], S_gen[i[part], j[part]]))
    t_vec = t_vec.scaled(i.size / i[part].size)
    print(f"baseline: vectorised 2-D quadrature on the {i.size} distinct pairs, tanh, per layer: {t_vec}   "
          f"(1/8 of them timed, extrapolated)")
    t_one, _ = timed(lambda: gaussian_kernel(TANH[0], q[i], q[j], S_gen[i, j]))
    print(f"gaussian_kernel (Mehler path) on the {i.size} distinct pairs, tanh, one layer: {t_one}")
    print(f"speed-up of the translation-invariant path over the per-pair loop: {naive_total.cpu / t_tanh.cpu:.0f} x "
          "(cpu time)")

    t_gen, _ = timed(lambda: propagate_covariance(S_gen, *TANH, v, depth))
    print(f"propagate_covariance, generic input (2080 distinct pairs per layer), tanh, {depth} layers: {t_gen}")
    t_gen_erf, _ = timed(lambda: propagate_covariance(S_gen, *ERF, v, depth))
    print(f"propagate_covariance, generic input, erf, {depth} layers: {t_gen_erf}")


if __name__ == "__main__":
    main()
