"""Quadrature rules for one-dimensional Gaussian expectations ``E[g(z)]``, ``z ~ N(0, 1)``.

Rule. Composite Gauss-Legendre quadrature (:data:`GL_NODES` nodes per panel) on ``[-Z, Z]`` with ``Z =``
:data:`Z_MAX` (extended automatically when the integrand is still large at the ends). Panels are no wider than ``1``
and, for an integrand ``g(z) = G(sqrt(q) z)``, no wider than ``1/sqrt(q)`` (the scale on which ``G`` varies); the
activation's kinks ``k/sqrt(q)`` are extra panel boundaries, so integrands with jumps in a derivative are integrated to
full precision. For integrands that are smooth on the scale ``|h|`` beyond ``|h| =`` :data:`H_FINE` (every built-in
except sin) the panels grow geometrically there, so very large ``q`` stays cheap. A :data:`GL_NODES_CHECK`-node rule
on the same panels gives an error bound (it is always the less accurate of the two); a :class:`QuadratureWarning` is
issued when that bound exceeds :data:`QUAD_RTOL`. Measured accuracy against mpmath for tanh (``E[tanh^2]``,
``E[tanh'^4]``, ``q`` from 0.01 to 100): about 1e-16 relative.

This module is the bottom of the engine: it imports nothing from :mod:`meanfield`.
"""

from __future__ import annotations

import math
import warnings
from collections.abc import Callable
from functools import lru_cache

import numpy as np

__all__ = [
    "GL_NODES",
    "GL_NODES_CHECK",
    "H_FINE",
    "INV_SQRT_2PI",
    "MAX_PANELS",
    "QUAD_RTOL",
    "QuadratureWarning",
    "Z_MAX",
    "breakpoints",
    "check_variance",
    "gaussian_expectation",
    "gaussian_nodes",
    "graded_h_points",
    "legendre_rule",
    "panel_width",
    "rule_from_breaks",
    "standard_normal_rule",
]

#: Gauss-Legendre nodes per panel of the primary rule.
GL_NODES = 12
#: Gauss-Legendre nodes per panel of the coarser rule whose difference from the primary one is the error bound.
GL_NODES_CHECK = 10
#: Half-width of the integration interval in z (the N(0,1) density there is 1e-37).
Z_MAX = 13.0
#: Relative error bound (to ``E[|g|]``) above which a :class:`QuadratureWarning` is issued.
QUAD_RTOL = 1e-11
#: Panels of width 1 in ``h = sqrt(q) z`` cover ``|h| <= H_FINE``; beyond, non-oscillatory integrands get panels growing
#: geometrically (ratio :data:`H_RATIO`) in ``h`` up to width 1 in ``z``.
H_FINE = 40.0
H_RATIO = 1.25
#: Most panels of one rule (about 1.2 million nodes): an oscillatory integrand at a larger variance is an error.
MAX_PANELS = 100_000
#: ``1 / sqrt(2 pi)``, the N(0, 1) density at 0.
INV_SQRT_2PI = 1.0 / math.sqrt(2.0 * math.pi)


class QuadratureWarning(RuntimeWarning):
    """The engine's own error bound for a Gaussian expectation exceeds the tolerance."""


@lru_cache(maxsize=16)
def legendre_rule(n: int) -> tuple[np.ndarray, np.ndarray]:
    """Gauss-Legendre nodes and weights on ``[-1, 1]`` (cached)."""
    return np.polynomial.legendre.leggauss(n)


def panel_width(q: float, kmax: int = 0) -> float:
    """Widest panel in ``z`` for ``G(sqrt(q) z)`` times a Hermite polynomial of degree up to ``kmax``."""
    width = 1.0
    if q > 1.0:
        width = 1.0 / math.sqrt(q)
    if kmax > 0:
        width = min(width, 2.0 / math.sqrt(kmax))
    return width


def graded_h_points(q: float, zmax: float = Z_MAX) -> np.ndarray:
    """Panel boundaries in ``h = sqrt(q) z`` for integrands smooth on the scale ``|h|`` beyond :data:`H_FINE`: the
    integers up to ``H_FINE`` and a geometric sequence (ratio :data:`H_RATIO`) beyond, to ``zmax sqrt(q)``, both signs
    and 0 (sorted)."""
    hmax = zmax * math.sqrt(max(q, 0.0))
    fine = np.arange(1.0, H_FINE + 1.0)
    ratio = np.log(max(hmax / H_FINE, 1.0)) / np.log(H_RATIO)
    coarse = H_FINE * H_RATIO ** np.arange(1.0, math.ceil(ratio) + 1.0)
    h = np.concatenate([fine, coarse])
    h = h[h < hmax]
    return np.concatenate([-h[::-1], [0.0], h])


def breakpoints(q: float, kinks=(), zmax: float = Z_MAX, kmax: int = 0, oscillatory: bool = False) -> np.ndarray:
    """Panel boundaries in ``z`` of the rule described in the module docstring (sorted 1-D array).

    Raises FloatingPointError when an oscillatory integrand's variance needs more than :data:`MAX_PANELS` panels.
    """
    width = panel_width(0.0 if not oscillatory else q, kmax)
    m = max(int(math.ceil(2.0 * zmax / width)), 2)
    if m > MAX_PANELS:
        raise FloatingPointError(f"Gaussian expectation at q={q:.3g}: an oscillatory integrand needs {m} panels, more "
                                 f"than {MAX_PANELS} (variances up to about {(MAX_PANELS / (2.0 * zmax)) ** 2:.3g})")
    b = np.linspace(-zmax, zmax, m + 1)
    if q > 1.0 and not oscillatory:
        h = graded_h_points(q, zmax) / math.sqrt(q)
        b = np.union1d(b, h[np.abs(h) < zmax])
    if q > 0 and len(kinks):
        zk = np.asarray(kinks, dtype=np.float64) / math.sqrt(q)
        zk = zk[np.abs(zk) < zmax]
        b = np.union1d(b, zk)
    return b


def rule_from_breaks(b: np.ndarray, n: int = GL_NODES) -> tuple[np.ndarray, np.ndarray]:
    """Composite ``n``-point Gauss-Legendre rule on panels ``b``, weights including the N(0, 1) density."""
    x, w = legendre_rule(n)
    lo = b[:-1, None]
    hi = b[1:, None]
    half = 0.5 * (hi - lo)
    z = (0.5 * (lo + hi) + half * x).ravel()
    wz = (half * w).ravel() * np.exp(-0.5 * z * z) * INV_SQRT_2PI
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
        Gauss-Legendre nodes per panel (:data:`GL_NODES`; :data:`GL_NODES_CHECK` for the error bound).
    oscillatory : bool
        If False, ``G`` is assumed smooth on the scale ``|h|`` for ``|h| >`` :data:`H_FINE` (true of every built-in
        except sin) and panels grow geometrically there, so very large ``q`` stays cheap.

    Returns
    -------
    z, w : ndarray, shape (m,)
        Nodes in ``z`` and weights including the N(0, 1) density, so ``E[g(z)] ~ sum(w * g(z))``.
    """
    return rule_from_breaks(breakpoints(q, kinks, zmax, kmax, oscillatory), n)


def check_variance(q, name: str = "q") -> float:
    """``float(q)``; ValueError naming ``name`` unless ``q`` is a finite variance ``>= 0``."""
    try:
        q = float(q)
    except (TypeError, ValueError):
        raise TypeError(f"{name} must be a real number (a variance), got {q!r}") from None
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
    q = check_variance(q)
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
    q : float
        Variance that sets the panel width (``q >= 0``, finite; ValueError otherwise).
    kinks, kmax, oscillatory
        As in :func:`standard_normal_rule`.
    rtol : float
        A :class:`QuadratureWarning` is issued when the error bound exceeds ``rtol * E[|g|]``.
    return_error : bool
        Also return the error bound (same shape as the result).

    Returns
    -------
    value : float or ndarray
    error : float or ndarray, only if ``return_error``

    Raises
    ------
    ValueError
        ``q`` negative or not finite.
    FloatingPointError
        The integrand overflows or does not decay within ``|z| < 200``.
    """
    q = check_variance(q)
    zmax = Z_MAX
    for _ in range(8):
        b = breakpoints(q, kinks, zmax, kmax, oscillatory)
        z, w = rule_from_breaks(b, GL_NODES)
        with np.errstate(over="ignore", invalid="ignore"):
            gz = np.asarray(g(z), dtype=np.float64)
        wb = w.reshape(w.shape + (1,) * (gz.ndim - 1))
        with np.errstate(over="ignore", invalid="ignore"):
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
    z2, w2 = rule_from_breaks(b, GL_NODES_CHECK)
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
