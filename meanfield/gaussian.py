"""Gaussian expectations of activations: the one quadrature engine every mean-field quantity is built on.

Rule. ``E[g(z)]`` for ``z ~ N(0, 1)`` is computed by composite Gauss-Legendre quadrature (12 nodes per panel) on
``[-Z, Z]`` with ``Z = 13`` (extended automatically when the integrand is still large at the ends), panels no wider than
``1`` and no wider than ``1/sqrt(q)`` (the scale on which ``phi(sqrt(q) z)`` varies), with extra panel boundaries at the
activation's kinks ``k/sqrt(q)``, so that integrands with jumps in a derivative are integrated to full precision.
A 10-node rule on the same panels gives an error bound (it is always the less accurate of the two); a
:class:`QuadratureWarning` is issued when that bound exceeds the tolerance. Measured accuracy against mpmath for tanh
(``E[tanh^2]``, ``E[tanh'^4]``, ``q`` from 0.01 to 100): about 1e-16 relative.

Hermite coefficients ``a_k(q) = E[phi(sqrt(q) z) He_k(z)] / sqrt(k!)`` (probabilists' Hermite polynomials) are
computed on the same rule, with panels narrowed to ``2/sqrt(k_max)`` to resolve the oscillations of ``He_k``, by the
three-term recurrence of the normalised polynomials. By Mehler's formula, for ``(h1, h2)`` with variances ``q1, q2`` and
correlation ``c``, ``E[phi(h1) phi(h2)] = sum_k a_k(q1) a_k(q2) c^k`` (see ``docs/formulas.md``).

Two-point kernel ``E[phi(h1) phi(h2)]`` (:func:`gaussian_kernel`): closed forms where they exist; for smooth
activations Mehler's series by :class:`MehlerKernel` (coefficients of all distinct variances of a call at once, cached
per activation, so thousands of pairs sharing a few variances cost little), with a per-pair truncation bound; for
kinked activations and the pairs that bound cannot settle, a conditional 2-D composite Gauss-Legendre quadrature.
"""

from __future__ import annotations

import math
import warnings
from collections.abc import Callable
from functools import lru_cache

import numpy as np
from numpy.polynomial.legendre import leggauss

from .activations import Activation, get_activation

__all__ = [
    "MehlerKernel",
    "QuadratureWarning",
    "gaussian_nodes",
    "gaussian_expectation",
    "gaussian_kernel",
    "hermite_coefficients",
    "standard_normal_rule",
]

#: Gauss-Legendre nodes per panel (primary rule) and of the coarser rule used for the error bound.
GL_NODES = 12
GL_NODES_CHECK = 10
#: Half-width of the integration interval in z (the N(0,1) density there is 1e-37).
Z_MAX = 13.0
#: Relative error bound (to E[|g|]) above which a QuadratureWarning is issued.
QUAD_RTOL = 1e-11

_INV_SQRT_2PI = 1.0 / math.sqrt(2.0 * math.pi)


class QuadratureWarning(RuntimeWarning):
    """The engine's own error bound for a Gaussian expectation exceeds the tolerance."""


@lru_cache(maxsize=8)
def _legendre(n: int) -> tuple[np.ndarray, np.ndarray]:
    return leggauss(n)


def _panel_width(q: float, kmax: int = 0) -> float:
    width = 1.0
    if q > 1.0:
        width = 1.0 / math.sqrt(q)
    if kmax > 0:
        width = min(width, 2.0 / math.sqrt(kmax))
    return width


#: Panels of width 1 in ``h`` cover ``|h| <= H_FINE``; beyond, non-oscillatory integrands get panels growing
#: geometrically (ratio 1.25) in ``h`` up to width 1 in ``z``.
H_FINE = 40.0


def _breakpoints(q: float, kinks=(), zmax: float = Z_MAX, kmax: int = 0, oscillatory: bool = False) -> np.ndarray:
    width = _panel_width(0.0 if not oscillatory else q, kmax)
    m = max(int(math.ceil(2.0 * zmax / width)), 2)
    b = np.linspace(-zmax, zmax, m + 1)
    if q > 1.0 and not oscillatory:
        s = math.sqrt(q)
        fine = np.arange(1.0, H_FINE + 1.0)
        ratio = np.log(max(zmax * s / H_FINE, 1.0)) / np.log(1.25)
        coarse = H_FINE * 1.25 ** np.arange(1.0, math.ceil(ratio) + 1.0)
        h = np.concatenate([fine, coarse]) / s
        h = h[h < zmax]
        b = np.union1d(b, np.concatenate([-h, [0.0], h]))
    if q > 0 and len(kinks):
        zk = np.asarray(kinks, dtype=np.float64) / math.sqrt(q)
        zk = zk[np.abs(zk) < zmax]
        b = np.union1d(b, zk)
    return b


def _rule_from_breaks(b: np.ndarray, n: int) -> tuple[np.ndarray, np.ndarray]:
    x, w = _legendre(n)
    lo = b[:-1, None]
    hi = b[1:, None]
    half = 0.5 * (hi - lo)
    z = (0.5 * (lo + hi) + half * x).ravel()
    wz = (half * w).ravel() * np.exp(-0.5 * z * z) * _INV_SQRT_2PI
    return z, wz


def standard_normal_rule(q: float, kinks=(), *, kmax: int = 0, zmax: float = Z_MAX, n: int = GL_NODES,
                         oscillatory: bool = True) -> tuple[np.ndarray, np.ndarray]:
    """Quadrature rule for ``E[g(z)]``, ``z ~ N(0, 1)``, adapted to ``g(z) = G(sqrt(q) z)``.

    Parameters
    ----------
    q : float
        Variance of the pre-activation ``h = sqrt(q) z``; sets the panel width ``min(1, 1/sqrt(q))``.
    kinks : sequence of float
        Points in ``h`` where ``G`` or a derivative jumps; become panel boundaries ``k/sqrt(q)``.
    kmax : int
        Largest Hermite degree the rule must integrate against (panels at most ``2/sqrt(kmax)`` wide).
    zmax : float
        Half-width of the integration interval in ``z``.
    n : int
        Gauss-Legendre nodes per panel.
    oscillatory : bool
        If False, ``G`` is assumed smooth on the scale ``|h|`` for ``|h| > 40`` (true of every built-in except sin)
        and panels grow geometrically there, so very large ``q`` stays cheap.

    Returns
    -------
    z, w : ndarray, shape (m,)
        Nodes in ``z`` and weights including the N(0, 1) density, so ``E[g(z)] ~ sum(w * g(z))``.
    """
    return _rule_from_breaks(_breakpoints(q, kinks, zmax, kmax, oscillatory), n)


def _check_variance(q, name: str = "q") -> float:
    q = float(q)
    if not math.isfinite(q) or q < 0:
        raise ValueError(f"{name} must be a finite variance >= 0, got {q!r}")
    return q


def gaussian_nodes(q: float, kinks=(), *, oscillatory: bool = True) -> tuple[np.ndarray, np.ndarray]:
    """Nodes and weights for ``E[g(h)]`` with ``h ~ N(0, q)``.

    ``sum(w * g(h))`` approximates ``E[g(h)]`` to about 1e-13 relative or better for smooth ``g`` and for ``g``
    with jumps in a derivative at ``kinks``, as long as ``g`` varies on the scale ``O(1)`` in ``h`` (all activations
    and their products with polynomials do) and grows at most like ``exp(a |h|)``.

    Parameters
    ----------
    q : float
        Variance, ``q >= 0``. ``q = 0`` gives the single node ``h = 0`` with weight 1.
    kinks : sequence of float
        Points in ``h`` where ``g`` or a derivative jumps (e.g. ``act.kinks``).
    oscillatory : bool
        Keep panels of width ``1`` in ``h`` everywhere (default, safe for any ``g``); pass
        ``act.oscillatory`` (False for most activations) to coarsen beyond ``|h| = 40`` at large ``q``.

    Returns
    -------
    h, w : ndarray of float64, shape (m,)
    """
    q = _check_variance(q)
    if q == 0.0:
        return np.zeros(1), np.ones(1)
    z, w = standard_normal_rule(q, kinks, oscillatory=oscillatory)
    return math.sqrt(q) * z, w


def gaussian_expectation(g: Callable[[np.ndarray], np.ndarray], q: float, kinks=(), *, kmax: int = 0,
                         oscillatory: bool = True, rtol: float = QUAD_RTOL, return_error: bool = False):
    """``E[g(z)]`` for ``z ~ N(0, 1)`` where ``g(z)`` depends on ``z`` through ``sqrt(q) z`` (kinks in that variable).

    ``g`` is called with an array of ``z`` nodes and may return an array of shape ``(m,)`` or ``(m, k)`` (several
    integrands at once; the result then has shape ``(k,)``).

    Parameters
    ----------
    g : callable
        Integrand as a function of the standard normal variable ``z``.
    q, kinks, kmax, oscillatory
        As in :func:`standard_normal_rule`.
    rtol : float
        A :class:`QuadratureWarning` is issued when the error bound exceeds ``rtol * E[|g|]``.
    return_error : bool
        Also return the error bound (same shape as the result).

    Returns
    -------
    value : float or ndarray
    error : float or ndarray, only if ``return_error``
    """
    zmax = Z_MAX
    for _ in range(8):
        b = _breakpoints(q, kinks, zmax, kmax, oscillatory)
        z, w = _rule_from_breaks(b, GL_NODES)
        with np.errstate(over="ignore", invalid="ignore"):
            gz = np.asarray(g(z), dtype=np.float64)
        wb = w.reshape(w.shape + (1,) * (gz.ndim - 1))
        contrib = wb * gz
        value = contrib.sum(axis=0)
        scale = np.abs(contrib).sum(axis=0)
        if not np.all(np.isfinite(value)):
            raise FloatingPointError("Gaussian expectation is not finite (the integrand overflows)")
        ends = np.abs(contrib[:GL_NODES]).sum(axis=0) + np.abs(contrib[-GL_NODES:]).sum(axis=0)
        if np.all(ends <= 1e-17 * np.maximum(scale, 1e-300)):
            break
        zmax *= 1.5
    else:
        raise FloatingPointError("Gaussian expectation: the integrand does not decay within |z| < 200")
    z2, w2 = _rule_from_breaks(b, GL_NODES_CHECK)
    with np.errstate(over="ignore", invalid="ignore"):
        g2 = np.asarray(g(z2), dtype=np.float64)
    value2 = (w2.reshape(w2.shape + (1,) * (g2.ndim - 1)) * g2).sum(axis=0)
    error = np.abs(value - value2)
    if np.any(error > rtol * np.maximum(scale, 1e-300)):
        warnings.warn(f"Gaussian expectation at q={q:.6g}: error bound {np.max(error / np.maximum(scale, 1e-300)):.2e}"
                      f" relative exceeds {rtol:.0e}", QuadratureWarning, stacklevel=2)
    if value.ndim == 0:
        value, error = float(value), float(error)
    return (value, error) if return_error else value


def hermite_coefficients(activation, q: float, kmax: int) -> np.ndarray:
    """Normalised Hermite coefficients ``a_k(q) = E[phi(sqrt(q) z) He_k(z)] / sqrt(k!)``, ``k = 0..kmax``.

    Mehler's formula (Poole et al. 2016 supplement; ``docs/formulas.md``): for ``h1, h2`` with variances
    ``q1, q2`` and correlation ``c``, ``E[phi(h1) phi(h2)] = sum_k a_k(q1) a_k(q2) c^k`` and
    ``sqrt(q1 q2) E[phi'(h1) phi'(h2)] = sum_k k a_k(q1) a_k(q2) c^(k-1)``; Parseval: ``sum_k a_k^2 = E[phi^2]``.

    Parameters
    ----------
    activation : str or Activation
    q : float
        Variance ``q >= 0``.
    kmax : int
        Highest degree.

    Returns
    -------
    ndarray, shape (kmax + 1,)
    """
    act = get_activation(activation)
    q = _check_variance(q)
    kmax = int(kmax)
    if kmax < 0:
        raise ValueError(f"kmax must be >= 0, got {kmax}")
    if q == 0.0:
        out = np.zeros(kmax + 1)
        out[0] = float(act.phi(0.0))
        return out
    s = math.sqrt(q)
    b = _breakpoints(q, act.kinks, Z_MAX + 2.0, kmax, act.oscillatory)
    z, w = _rule_from_breaks(b, GL_NODES)
    z2, w2 = _rule_from_breaks(b, GL_NODES_CHECK)
    a = _hermite_projections(z, w * act.phi(s * z), kmax)
    a_check = _hermite_projections(z2, w2 * act.phi(s * z2), kmax)
    scale = math.sqrt(float(np.sum(w * act.phi(s * z) ** 2)))
    error = float(np.max(np.abs(a - a_check)))
    if error > 1e-11 * max(scale, 1e-300):
        warnings.warn(f"hermite_coefficients at q={q:.6g}: error bound {error / scale:.2e} relative to sqrt(E[phi^2])",
                      QuadratureWarning, stacklevel=2)
    return a


def _hermite_polynomials(z: np.ndarray, kmax: int):
    """Yield the normalised probabilists' Hermite polynomials ``He_k(z) / sqrt(k!)``, ``k = 0..kmax``, by the
    three-term recurrence ``He_{k+1} = z He_k - k He_{k-1}``."""
    prev, cur = np.zeros_like(z), np.ones_like(z)
    yield cur
    for k in range(kmax):
        prev, cur = cur, (z * cur - math.sqrt(k) * prev) / math.sqrt(k + 1)
        yield cur


def _hermite_table(z: np.ndarray, kmax: int) -> np.ndarray:
    """``He_k(z_i) / sqrt(k!)``, shape ``(kmax + 1, z.size)``."""
    return np.array(list(_hermite_polynomials(z, kmax)))


def _hermite_projections(z: np.ndarray, wf: np.ndarray, kmax: int) -> np.ndarray:
    """``sum_i wf_i He_k(z_i)/sqrt(k!)`` for ``k = 0..kmax``; ``wf`` of shape ``(m,)`` or ``(m, P)`` (``P`` at once)."""
    return np.array([row @ wf for row in _hermite_polynomials(z, kmax)])


# ---------------------------------------------------------------------------------------------------------------------
# Two-point kernel E[phi(h1) phi(h2)]
# ---------------------------------------------------------------------------------------------------------------------


def _closed_form_kernel(act: Activation, q1, q2, q12):
    """Closed-form ``E[phi(h1) phi(h2)]`` where the activation has one (arrays broadcast), else None."""
    kind = act.closed_form
    if kind == "linear":
        return q12 + 0.0 * (q1 + q2)
    if kind == "erf":
        # Williams (1997): E[erf(h1) erf(h2)] = (2/pi) arcsin(2 q12 / sqrt((1 + 2 q1)(1 + 2 q2))).
        return 2.0 / math.pi * np.arcsin(np.clip(2.0 * q12 / np.sqrt((1.0 + 2.0 * q1) * (1.0 + 2.0 * q2)), -1, 1))
    if kind == "leaky_relu":
        # phi = (1+a)/2 x + (1-a)/2 |x|; E[|h1||h2|] = (2/pi) sqrt(q1 q2) (sqrt(1-c^2) + c arcsin c) (Cho & Saul).
        a = act.params["slope"]
        root = np.sqrt(q1 * q2)
        with np.errstate(invalid="ignore", divide="ignore"):
            c = np.where(root > 0, np.clip(q12 / np.where(root > 0, root, 1.0), -1.0, 1.0), 0.0)
        abs_part = 2.0 / math.pi * root * (np.sqrt(1.0 - c * c) + c * np.arcsin(c))
        return ((1.0 + a) / 2.0) ** 2 * q12 + ((1.0 - a) / 2.0) ** 2 * abs_part
    return None


def _kernel_quadrature(f: Callable, g: Callable, kinks, q1: np.ndarray, q2: np.ndarray, q12: np.ndarray,
                       zmax: float = 11.0) -> np.ndarray:
    """``E[f(h1) g(h2)]`` for 1-D arrays of covariances by conditional composite Gauss-Legendre quadrature.

    ``h1 = sqrt(q1) z1``; given ``h1``, ``h2 ~ N(m, s2)`` with ``m = (q12/q1) h1``, ``s2 = q2 - q12^2/q1``. Both
    integrals use panels of width ``min(1, 1/sqrt(max variance))`` with boundaries at the kinks (shifted by ``m`` in the
    inner one), so the error is at the 1e-13 level for smooth and kinked activations alike.
    """
    out = np.empty(q1.shape)
    qmax = float(max(q1.max(initial=0.0), q2.max(initial=0.0)))
    width = _panel_width(qmax)
    m = max(int(math.ceil(2.0 * zmax / width)), 2)
    base = np.linspace(-zmax, zmax, m + 1)
    kinks = np.asarray(kinks, dtype=np.float64)
    x, wl = _legendre(GL_NODES)
    n_nodes = (m + kinks.size * (1 + _GRADING.size)) * GL_NODES
    if n_nodes > KERNEL_MAX_NODES:
        raise FloatingPointError(
            f"gaussian_kernel: a variance of {qmax:.3g} needs {n_nodes} quadrature nodes per axis, more than the "
            f"{KERNEL_MAX_NODES} the 2-D quadrature allows (variances up to about {_KERNEL_Q_MAX:.0f}); "
            "is the iteration diverging?")
    chunk = max(1, int(_BLOCK // (n_nodes * n_nodes)))
    for start in range(0, q1.size, chunk):
        sl = slice(start, start + chunk)
        a1, a2, a12 = q1[sl], q2[sl], q12[sl]
        s1 = np.sqrt(a1)
        with np.errstate(invalid="ignore", divide="ignore"):
            ratio = np.where(a1 > 0, a12 / np.where(a1 > 0, a1, 1.0), 0.0)
        s2 = np.sqrt(np.maximum(a2 - ratio * a12, 0.0))
        # outer rule (P, N1): besides the kinks of f, the inner expectation is a kink of g smoothed over a width
        # s2/|ratio| in h1 around k/ratio; graded panel boundaries there keep nearly degenerate covariances accurate.
        outer_kinks = kinks
        if kinks.size:
            with np.errstate(invalid="ignore", divide="ignore"):
                spread = np.abs(s2 / ratio)[:, None, None] * _GRADING
                centre = (kinks / ratio[:, None])[:, :, None]
                extra = np.where(ratio[:, None, None] != 0, centre + spread, np.inf).reshape(len(a1), -1)
            outer_kinks = np.concatenate([np.broadcast_to(kinks, (len(a1), kinks.size)), extra], axis=1)
        z1, w1 = _batched_rule(base, outer_kinks, s1, np.zeros_like(s1), x, wl)
        h1 = s1[:, None] * z1
        mean = ratio[:, None] * h1
        # inner rule (P, N1, N2), in blocks of outer nodes so that memory stays bounded at large variances
        inner = np.empty(h1.shape)
        step = max(1, int(_BLOCK // (len(a1) * n_nodes)))
        for j in range(0, h1.shape[1], step):
            part = mean[:, j:j + step]
            z2, w2 = _batched_rule(base, kinks, np.broadcast_to(s2[:, None], part.shape), part, x, wl)
            h2 = part[..., None] + s2[:, None, None] * z2
            inner[:, j:j + step] = np.sum(w2 * g(h2), axis=-1)
        out[sl] = np.sum(w1 * f(h1) * inner, axis=-1)
    return out


#: Most Gauss-Legendre nodes per axis the 2-D kernel quadrature uses (about ``12 * 22 sqrt(q)`` for a smooth
#: activation, so variances up to about 3500); beyond it :func:`gaussian_kernel` raises FloatingPointError rather than
#: run for minutes (a diverging iteration reaches such variances).
KERNEL_MAX_NODES = 16000
_KERNEL_Q_MAX = (KERNEL_MAX_NODES / (GL_NODES * 22.0)) ** 2
#: Array elements per block of the 2-D quadrature and of the Mehler series (bounds their memory to ~32 MB per array).
_BLOCK = 4e6


_GRADING = np.array([-27.0, -9.0, -3.0, -1.0, 0.0, 1.0, 3.0, 9.0, 27.0])


def _batched_rule(base: np.ndarray, kinks: np.ndarray, scale: np.ndarray, shift: np.ndarray, x, wl):
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
    w = (half * wl).reshape(shape + (-1,)) * np.exp(-0.5 * z * z) * _INV_SQRT_2PI
    return z, w


class MehlerKernel:
    """``E[phi(h1) phi(h2)]`` by Mehler's series, fast for many covariance pairs that share few distinct variances.

    Mehler's formula (``docs/formulas.md``; Poole et al. 2016 supplement) ``E[phi(h1) phi(h2)] =
    sum_k a_k(q1) a_k(q2) c^k`` (``c = q12 / sqrt(q1 q2)``) is summed with the coefficients of
    :func:`hermite_coefficients` and ``E[phi^2]`` of all distinct variances of a call at once, on the same rule
    (:func:`standard_normal_rule` for the largest variance and degree ``K``, half-width ``Z_MAX + 2``, with panel
    boundaries at the kinks of every variance). ``K`` doubles
    (from the degree the previous call needed, at least ``K_START``, at most ``K_MAX``) until every Parseval tail
    ``R(q) = E[phi^2] - sum_{k<=K} a_k^2`` is below ``TOL * E[phi^2]``, then is cut back to the smallest power of two
    times ``K_START`` that still meets it. The truncation error of a pair is at most ``|c|^(K+1) sqrt(R(q1) R(q2))``;
    pairs where that bound exceeds ``TOL * sqrt(E[phi(h1)^2] E[phi(h2)^2])`` (``c`` next to +-1 at large ``q``) are
    evaluated by the 2-D quadrature of :func:`gaussian_kernel`. Pairs with ``q1 = q2 = q12`` use ``E[phi^2]``.
    Measured: within 2e-14 of the quadrature relative to that scale (tanh, ``x*tanh(x)``, sin, gelu, softplus, swish,
    ``0.5*x + sin(x)**2``; ``q`` 0.05 to 7, ``c`` up to ``1 - 1e-12``; ``tests/test_gaussian.py``).

    Caching: the coefficients are reused while the set of distinct variances repeats (a converged or
    translation-invariant iteration), the Hermite table while the rule does. :func:`gaussian_kernel` keeps one
    instance per activation, so repeated calls (one per layer of a CNN covariance map) share it; the cache is not
    thread-safe.

    Parameters
    ----------
    activation : str or Activation
        Any activation; those with kinks converge slowly in the series (most pairs then go to the quadrature), which is
        why :func:`gaussian_kernel` sends them to its quadrature directly.
    """

    TOL = 1e-13
    K_START = 64
    K_MAX = 1024
    #: Most elements of the Hermite table (nodes x degrees) before FloatingPointError (about 160 MB).
    MAX_TABLE = 2e7

    def __init__(self, activation):
        self.act = get_activation(activation)
        self._last: tuple[np.ndarray, tuple[np.ndarray, np.ndarray, np.ndarray]] | None = None
        self._degree = self.K_START
        self._table: tuple[np.ndarray, np.ndarray] = (np.empty(0), np.empty((0, 0)))  # (nodes, Hermite table)

    def _hermite_at(self, z: np.ndarray, kmax: int) -> np.ndarray:
        nodes, table = self._table
        if table.shape[0] != kmax + 1 or not np.array_equal(nodes, z):  # the rule changes with q only in steps
            self._table = (z, _hermite_table(z, kmax))
        return self._table[1]

    def _breaks(self, variances: np.ndarray, kmax: int) -> np.ndarray:
        """Panel boundaries of :func:`standard_normal_rule` for the largest variance, plus every variance's kinks."""
        act, zmax = self.act, Z_MAX + 2.0
        b = _breakpoints(float(variances[-1]), act.kinks, zmax, kmax, act.oscillatory)
        if act.kinks and variances[0] < variances[-1]:
            zk = np.ravel(np.asarray(act.kinks)[:, None] / np.sqrt(variances[variances > 0]))
            b = np.union1d(b, zk[np.abs(zk) < zmax])
        return b

    def coefficients(self, variances) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """``(E[phi^2], a, R)`` for sorted distinct variances.

        Parameters
        ----------
        variances : array_like, shape (P,)
            Sorted, distinct, finite, ``>= 0``.

        Returns
        -------
        second : ndarray, shape (P,)
            ``E[phi(h)^2]``, ``h ~ N(0, q)``.
        a : ndarray, shape (P, K + 1)
            Hermite coefficients ``a_k(q)`` as :func:`hermite_coefficients`.
        tail : ndarray, shape (P,)
            Parseval tails ``max(E[phi^2] - sum_k a_k^2, 0)``.
        """
        variances = np.asarray(variances, dtype=np.float64)
        if self._last is not None and np.array_equal(self._last[0], variances):
            return self._last[1]
        act = self.act
        k = max(self._degree, self.K_START)
        roots = np.sqrt(variances)
        while True:
            z, w = _rule_from_breaks(self._breaks(variances, k), GL_NODES)
            if z.size * (k + 1) > self.MAX_TABLE:
                raise FloatingPointError(
                    f"gaussian_kernel: a variance of {variances[-1]:.3g} needs a Hermite table of {z.size} nodes x "
                    f"{k + 1} degrees, more than {self.MAX_TABLE:.0e} elements; is the iteration diverging?")
            with np.errstate(over="ignore", invalid="ignore"):
                values = act.phi(roots[None, :] * z[:, None])  # (nodes, P)
                weighted = w[:, None] * values
                second = np.einsum("ip,ip->p", weighted, values)
            if not np.all(np.isfinite(second)):
                raise FloatingPointError(f"gaussian_kernel: E[phi^2] overflows at a variance of {variances[-1]:.3g}")
            a = (self._hermite_at(z, k) @ weighted).T  # (P, k + 1)
            partial = np.cumsum(a * a, axis=1)
            converged = np.all(second[:, None] - partial <= self.TOL * second[:, None], axis=0)
            if converged[-1] or k >= self.K_MAX:
                break
            k *= 2
        while converged[-1] and k > self.K_START and converged[k // 2]:  # cut back to the degree actually needed
            k //= 2
        a = np.ascontiguousarray(a[:, :k + 1])
        tail = np.maximum(second - partial[:, k], 0.0)
        self._degree = k
        self._last = (variances, (second, a, tail))
        return second, a, tail

    def __call__(self, q1, q2, q12) -> np.ndarray:
        """``E[phi(h1) phi(h2)]`` for covariances ``[[q1, q12], [q12, q2]]`` (array_like, broadcast together).

        Returns
        -------
        ndarray
            Broadcast shape of the inputs. Raises ValueError for invalid covariances, as :func:`gaussian_kernel`.
        """
        q1, q2, q12 = _check_covariances(q1, q2, q12)
        return self._evaluate(q1.ravel(), q2.ravel(), q12.ravel()).reshape(q1.shape)

    def _evaluate(self, q1: np.ndarray, q2: np.ndarray, q12: np.ndarray) -> np.ndarray:
        """The series for 1-D arrays of valid covariances (``|q12| <= sqrt(q1 q2)``)."""
        if q1.size == 0:
            return np.empty(0)
        distinct = np.unique(np.concatenate([q1, q2]))
        second, a, tail = self.coefficients(distinct)
        i1, i2 = np.searchsorted(distinct, q1), np.searchsorted(distinct, q2)
        root = np.sqrt(q1 * q2)
        with np.errstate(invalid="ignore", divide="ignore"):
            c = np.clip(np.where(root > 0, q12 / np.where(root > 0, root, 1.0), 0.0), -1.0, 1.0)
        degree = a.shape[1]
        out = np.empty(q1.shape)
        chunk = max(1, int(_BLOCK // degree))
        for start in range(0, q1.size, chunk):
            sl = slice(start, start + chunk)
            powers = np.ones((c[sl].size, degree))
            powers[:, 1:] = np.cumprod(np.broadcast_to(c[sl, None], (c[sl].size, degree - 1)), axis=1)
            out[sl] = np.einsum("pk,pk,pk->p", a[i1[sl]], a[i2[sl]], powers)
        diagonal = (q1 == q2) & (q12 == q1)
        out[diagonal] = second[i1[diagonal]]
        bound = np.abs(c) ** degree * np.sqrt(tail[i1] * tail[i2])
        unresolved = ~diagonal & (bound > self.TOL * np.sqrt(second[i1] * second[i2]))
        if np.any(unresolved):
            act = self.act
            out[unresolved] = _kernel_quadrature(act.phi, act.phi, act.kinks, q1[unresolved], q2[unresolved],
                                                 q12[unresolved])
        return out


#: One :class:`MehlerKernel` per activation (the most recently used ones), shared by :func:`gaussian_kernel` calls.
_MEHLER_KERNELS: dict[Activation, MehlerKernel] = {}
_MEHLER_KERNELS_MAX = 16


def _mehler_kernel(act: Activation) -> MehlerKernel:
    kernel = _MEHLER_KERNELS.pop(act, None)
    if kernel is None:
        kernel = MehlerKernel(act)
        if len(_MEHLER_KERNELS) >= _MEHLER_KERNELS_MAX:
            del _MEHLER_KERNELS[next(iter(_MEHLER_KERNELS))]
    _MEHLER_KERNELS[act] = kernel  # re-inserted last: the dict is ordered by last use
    return kernel


def _check_covariances(q1, q2, q12) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
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


def gaussian_kernel(activation, q1, q2, q12):
    """Two-point Gaussian kernel ``E[phi(h1) phi(h2)]`` with ``(h1, h2) ~ N(0, [[q1, q12], [q12, q2]])``.

    Closed forms are used where the activation has one: erf (arcsine kernel, Williams 1997), relu / leaky relu
    (arc-cosine kernel, Cho & Saul 2009), linear (``q12``). Activations with kinks: a conditional 2-D composite
    Gauss-Legendre quadrature split at the kinks (about 1e-13 relative for q up to ~100; ~2.5 ms per pair). Smooth
    activations: Mehler's series by :class:`MehlerKernel` (one cached instance per activation), with the same
    quadrature for pairs its truncation bound cannot settle; fast for many pairs with few distinct variances.

    Parameters
    ----------
    activation : str or Activation
    q1, q2 : array_like
        Variances (``>= 0``).
    q12 : array_like
        Covariance, ``|q12| <= sqrt(q1 q2)``. All three broadcast together.

    Returns
    -------
    float or ndarray
        Broadcast shape of the inputs (a float for scalar inputs).

    Raises
    ------
    ValueError
        Negative or non-finite variances, or a covariance matrix that is not positive semi-definite.
    FloatingPointError
        Variances too large for the quadrature (see :data:`KERNEL_MAX_NODES`; typically a diverging iteration).
    """
    act = get_activation(activation)
    q1, q2, q12 = _check_covariances(q1, q2, q12)
    closed = _closed_form_kernel(act, q1, q2, q12)
    if closed is None:
        flat = (q1.ravel(), q2.ravel(), q12.ravel())
        if act.kinks:
            closed = _kernel_quadrature(act.phi, act.phi, act.kinks, *flat).reshape(q1.shape)
        else:
            closed = _mehler_kernel(act)._evaluate(*flat).reshape(q1.shape)
    closed = np.asarray(closed, dtype=np.float64)
    return float(closed) if closed.ndim == 0 else closed
