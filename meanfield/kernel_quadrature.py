"""Two-dimensional Gaussian expectations ``E[f(h1) g(h2)]`` by conditional composite Gauss-Legendre quadrature.

``h1 = sqrt(q1) z1``; given ``h1``, ``h2 ~ N(m, s2)`` with ``m = (q12/q1) h1`` and ``s2 = q2 - q12^2/q1``. Both
integrals use the panels of :mod:`meanfield.quadrature` (width ``min(1, 1/sqrt(max variance))``) with boundaries at the
kinks (shifted by ``m`` in the inner one, graded around the smoothed kink in the outer one), so the error is at the
1e-13 level for smooth and kinked activations alike. This is the general (slow, about 2.5 ms per pair at ``q ~ 1``)
two-point rule that the Mehler series and the correlation fixed point fall back on.
"""

from __future__ import annotations

import math
from collections.abc import Callable

import numpy as np

from .quadrature import GL_NODES, H_FINE, INV_SQRT_2PI, graded_h_points, legendre_rule, panel_width

__all__ = ["BLOCK", "KERNEL_MAX_NODES", "KERNEL_Q_MAX", "check_covariances", "kernel_quadrature"]


def check_covariances(q1, q2, q12) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Broadcast float64 ``q1, q2, q12``; ValueError unless a valid covariance; ``q12`` clipped to the PSD range."""
    q1, q2, q12 = np.broadcast_arrays(*(np.asarray(v, dtype=np.float64) for v in (q1, q2, q12)))
    for name, v in (("q1", q1), ("q2", q2)):
        if not np.all(np.isfinite(v)) or np.any(v < 0):
            raise ValueError(f"gaussian_kernel: {name} must be finite variances >= 0")
    if not np.all(np.isfinite(q12)):
        raise ValueError("gaussian_kernel: q12 must be finite")
    bound = np.sqrt(q1 * q2)
    if np.any(np.abs(q12) > bound * (1 + 1e-12) + 1e-300):
        raise ValueError("gaussian_kernel: need |q12| <= sqrt(q1 q2) (positive semi-definite covariance)")
    return q1, q2, np.clip(q12, -bound, bound)


def kernel_quadrature(f: Callable, g: Callable, kinks, q1: np.ndarray, q2: np.ndarray, q12: np.ndarray,
                      zmax: float = 11.0, oscillatory: bool = True) -> np.ndarray:
    """``E[f(h1) g(h2)]`` for 1-D arrays of covariances by conditional composite Gauss-Legendre quadrature.

    ``h1 = sqrt(q1) z1``; given ``h1``, ``h2 ~ N(m, s2)`` with ``m = (q12/q1) h1``, ``s2 = q2 - q12^2/q1``. With
    ``oscillatory`` (safe for any ``f, g``) both integrals use panels of width ``min(1, 1/sqrt(max variance))``; without
    it (``f, g`` smooth on the scale ``|h|`` beyond ``|h| = 40``, as every activation with
    ``Activation.oscillatory`` False), panels of width 1 in ``z`` plus the graded boundaries
    :func:`meanfield.quadrature.graded_h_points` in ``h`` (shifted by ``m`` in the inner integral), so very large
    variances stay cheap. Kinks are panel boundaries too (shifted by ``m`` in the inner one, graded around the smoothed
    kink in the outer one), so the error is at the 1e-13 level for smooth and kinked activations alike.

    Raises
    ------
    FloatingPointError
        With ``oscillatory``, a variance so large that the rule would need more than :data:`KERNEL_MAX_NODES` nodes
        per axis.
    """
    out = np.empty(q1.shape)
    qmax = float(max(q1.max(initial=0.0), q2.max(initial=0.0)))
    graded_rule = not oscillatory and qmax > (H_FINE / zmax) ** 2  # else the uniform rule is the cheaper one
    width = 1.0 if graded_rule else panel_width(qmax)
    m = max(int(math.ceil(2.0 * zmax / width)), 2)
    base = np.linspace(-zmax, zmax, m + 1)
    kinks = np.asarray(kinks, dtype=np.float64)
    graded = graded_h_points(qmax, zmax) if graded_rule else np.empty(0)
    inner_kinks = np.concatenate([kinks, graded])
    x, wl = legendre_rule(GL_NODES)
    n_nodes = (m + kinks.size * (1 + GRADING.size) + 2 * graded.size) * GL_NODES
    if n_nodes > KERNEL_MAX_NODES:
        raise FloatingPointError(
            f"gaussian_kernel: a variance of {qmax:.3g} needs {n_nodes} quadrature nodes per axis, more than the "
            f"{KERNEL_MAX_NODES} the 2-D quadrature allows (variances up to about {KERNEL_Q_MAX:.0f} for oscillatory "
            "activations); is the iteration diverging?")
    chunk = max(1, int(BLOCK // (n_nodes * n_nodes)))
    for start in range(0, q1.size, chunk):
        sl = slice(start, start + chunk)
        a1, a2, a12 = q1[sl], q2[sl], q12[sl]
        s1 = np.sqrt(a1)
        with np.errstate(invalid="ignore", divide="ignore"):
            ratio = np.where(a1 > 0, a12 / np.where(a1 > 0, a1, 1.0), 0.0)
        s2 = np.sqrt(np.maximum(a2 - ratio * a12, 0.0))
        # outer rule (P, N1): besides the kinks of f, the inner expectation is a kink of g smoothed over a width
        # s2/|ratio| in h1 around k/ratio; graded panel boundaries there keep nearly degenerate covariances accurate.
        # The inner expectation varies on the scale 1/|ratio| in h1 where g varies on the scale 1.
        outer_kinks = np.broadcast_to(np.concatenate([kinks, graded]), (len(a1), kinks.size + graded.size))
        if graded.size:
            scaled = graded / np.maximum(np.abs(ratio), 1.0)[:, None]
            outer_kinks = np.concatenate([outer_kinks, scaled], axis=1)
        if kinks.size:
            with np.errstate(invalid="ignore", divide="ignore"):
                spread = np.abs(s2 / ratio)[:, None, None] * GRADING
                centre = (kinks / ratio[:, None])[:, :, None]
                extra = np.where(ratio[:, None, None] != 0, centre + spread, np.inf).reshape(len(a1), -1)
            outer_kinks = np.concatenate([outer_kinks, extra], axis=1)
        z1, w1 = batched_rule(base, outer_kinks, s1, np.zeros_like(s1), x, wl)
        h1 = s1[:, None] * z1
        mean = ratio[:, None] * h1
        # inner rule (P, N1, N2), in blocks of outer nodes so that memory stays bounded at large variances
        inner = np.empty(h1.shape)
        step = max(1, int(BLOCK // (len(a1) * n_nodes)))
        for j in range(0, h1.shape[1], step):
            part = mean[:, j:j + step]
            z2, w2 = batched_rule(base, inner_kinks, np.broadcast_to(s2[:, None], part.shape), part, x, wl)
            h2 = part[..., None] + s2[:, None, None] * z2
            with np.errstate(over="ignore", invalid="ignore"):
                inner[:, j:j + step] = np.sum(w2 * g(h2), axis=-1)
        with np.errstate(over="ignore", invalid="ignore"):
            out[sl] = np.sum(w1 * f(h1) * inner, axis=-1)
    return out


#: Most Gauss-Legendre nodes per axis the 2-D kernel quadrature uses (about ``12 * 22 sqrt(q)`` for a smooth
#: activation, so variances up to about 3500); beyond it :func:`gaussian_kernel` raises FloatingPointError rather than
#: run for minutes (a diverging iteration reaches such variances).
KERNEL_MAX_NODES = 16000
KERNEL_Q_MAX = (KERNEL_MAX_NODES / (GL_NODES * 22.0)) ** 2
#: Array elements per block of the 2-D quadrature and of the Mehler series (bounds their memory to ~32 MB per array).
BLOCK = 4e6


GRADING = np.array([-27.0, -9.0, -3.0, -1.0, 0.0, 1.0, 3.0, 9.0, 27.0])


def batched_rule(base: np.ndarray, kinks: np.ndarray, scale: np.ndarray, shift: np.ndarray, x, wl):
    """Composite rules for ``h = shift + scale * z`` with panel boundaries ``base`` plus kinks ``(k - shift)/scale``."""
    shape = scale.shape
    if kinks.size:
        with np.errstate(invalid="ignore", divide="ignore"):
            zk = (kinks - shift[..., None]) / scale[..., None]  # kinks: shape (K,) or shape + (K,)
        zk = np.where(np.isfinite(zk), np.clip(zk, base[0], base[-1]), base[0])
        b = np.sort(np.concatenate([np.broadcast_to(base, shape + base.shape), zk], axis=-1), axis=-1)
    else:
        b = np.broadcast_to(base, shape + base.shape)
    lo = b[..., :-1, None]
    half = 0.5 * (b[..., 1:, None] - lo)
    z = (lo + half * (1.0 + x)).reshape(shape + (-1,))
    w = (half * wl).reshape(shape + (-1,)) * np.exp(-0.5 * z * z) * INV_SQRT_2PI
    return z, w


