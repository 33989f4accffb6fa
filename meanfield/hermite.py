"""Hermite coefficients of activations and the one degree schedule of every Mehler series in the engine.

``a_k(q) = E[phi(sqrt(q) z) He_k(z)] / sqrt(k!)`` (probabilists' Hermite polynomials, ``z ~ N(0, 1)``). By Mehler's
formula (Poole et al. 2016 supplement; ``docs/formulas.md``), for ``(h1, h2)`` with variances ``q1, q2`` and
correlation ``c``, ``E[phi(h1) phi(h2)] = sum_k a_k(q1) a_k(q2) c^k`` and
``sqrt(q1 q2) E[phi'(h1) phi'(h2)] = sum_k k a_k(q1) a_k(q2) c^(k-1)``; Parseval: ``sum_k a_k^2 = E[phi^2]`` and
``sum_k k a_k^2 = q E[phi'^2]``.

Coefficients are projections on the quadrature rule of :mod:`meanfield.quadrature` with panels narrowed to
``2/sqrt(kmax)`` (to resolve the oscillations of ``He_k``) on ``|z| <= Z_MAX + 2``, computed by the three-term
recurrence of the normalised polynomials ``He_{k+1}/sqrt((k+1)!) = (z He_k/sqrt(k!) - sqrt(k) He_{k-1}/sqrt((k-1)!))
/ sqrt(k+1)``. :func:`hermite_rows` computes them for many variances on one shared rule (the one routine every caller
uses); :func:`degree_schedule` is the one sequence of truncation degrees.
"""

from __future__ import annotations

import math
import warnings
from collections.abc import Iterator

import numpy as np

from .activations import Activation, get_activation
from .quadrature import (
    GL_NODES,
    GL_NODES_CHECK,
    Z_MAX,
    QuadratureWarning,
    breakpoints,
    check_variance,
    rule_from_breaks,
)

__all__ = [
    "DEGREE_MAX",
    "DEGREE_START",
    "HERMITE_DEGREE_CAP",
    "HERMITE_ZMAX",
    "MAX_TABLE",
    "degree_schedule",
    "hermite_coefficients",
    "hermite_rows",
    "hermite_rule",
    "hermite_table",
]

#: Smallest truncation degree of a Mehler series; the schedule doubles from here.
DEGREE_START = 32
#: Largest truncation degree of any Mehler series in the engine (kernels, correlation fixed points, tables); beyond it
#: the series is abandoned for 2-D quadrature.
DEGREE_MAX = 4096
#: Largest degree :func:`hermite_coefficients` accepts (its table is ``nodes x degrees``; the rule's nodes grow like
#: ``sqrt(kmax)``, so 10**5 degrees already take about a gigabyte).
HERMITE_DEGREE_CAP = 20000
#: Half-width in ``z`` of the rule for Hermite projections (wider than Z_MAX: ``He_k`` grows at large ``|z|``).
HERMITE_ZMAX = Z_MAX + 2.0
#: Most elements of one Hermite table (nodes x degrees) before FloatingPointError (about 160 MB).
MAX_TABLE = 2e7


def degree_schedule(start: int = DEGREE_START) -> Iterator[int]:
    """Truncation degrees ``start, 2 start, 4 start, ...`` up to :data:`DEGREE_MAX` (always ending with it)."""
    k = max(int(start), 1)
    while k < DEGREE_MAX:
        yield k
        k *= 2
    yield DEGREE_MAX


def hermite_table(z: np.ndarray, kmax: int) -> np.ndarray:
    """``He_k(z_i) / sqrt(k!)`` for ``k = 0..kmax``, shape ``(kmax + 1, z.size)``, by the three-term recurrence."""
    out = np.empty((kmax + 1, z.size))
    out[0] = 1.0
    if kmax >= 1:
        out[1] = z
    for k in range(1, kmax):
        out[k + 1] = (z * out[k] - math.sqrt(k) * out[k - 1]) / math.sqrt(k + 1)
    return out


def hermite_rule(act: Activation, variances: np.ndarray, kmax: int, n: int = GL_NODES) -> tuple[np.ndarray, np.ndarray]:
    """One rule for the projections at all ``variances`` (sorted): the rule of the largest variance for degree
    ``kmax``, with panel boundaries at the kinks ``k/sqrt(q)`` of every variance."""
    qmax = float(variances[-1])
    b = breakpoints(qmax, act.kinks, HERMITE_ZMAX, kmax, act.oscillatory)
    if act.kinks and variances[0] < qmax:
        zk = np.ravel(np.asarray(act.kinks)[:, None] / np.sqrt(variances[variances > 0]))
        b = np.union1d(b, zk[np.abs(zk) < HERMITE_ZMAX])
    return rule_from_breaks(b, n)


def hermite_rows(act: Activation, variances, kmax: int, *, rule=None, table=None
                 ) -> tuple[np.ndarray, np.ndarray]:
    """``(E[phi^2], a)`` at sorted variances ``q_p > 0``: ``a[p, k] = a_k(q_p)``, ``k = 0..kmax``.

    Parameters
    ----------
    act : Activation
    variances : array_like, shape (P,)
        Sorted, finite, ``> 0``.
    kmax : int
        Highest degree.
    rule : (z, w), optional
        The rule of :func:`hermite_rule` if the caller has it already.
    table : ndarray, optional
        ``hermite_table(z, kmax)`` for that rule, if the caller caches it.

    Returns
    -------
    second : ndarray, shape (P,)
    a : ndarray, shape (P, kmax + 1)

    Raises
    ------
    FloatingPointError
        The table would exceed :data:`MAX_TABLE` elements, or ``E[phi^2]`` overflows.
    """
    variances = np.asarray(variances, dtype=np.float64)
    z, w = rule if rule is not None else hermite_rule(act, variances, kmax)
    if z.size * (kmax + 1) > MAX_TABLE:
        raise FloatingPointError(
            f"Hermite coefficients: a variance of {variances[-1]:.3g} at degree {kmax} needs a table of {z.size} "
            f"nodes x {kmax + 1} degrees, more than {MAX_TABLE:.0e} elements; is the iteration diverging?")
    with np.errstate(over="ignore", invalid="ignore"):
        values = act.phi(np.sqrt(variances)[None, :] * z[:, None])  # (nodes, P)
        weighted = w[:, None] * values
        second = np.einsum("ip,ip->p", weighted, values)
    if not np.all(np.isfinite(second)):
        raise FloatingPointError(f"Hermite coefficients: E[phi^2] overflows at a variance of {variances[-1]:.3g}")
    if table is None:
        table = hermite_table(z, kmax)
    return second, (table @ weighted).T


def hermite_coefficients(activation, q: float, kmax: int) -> np.ndarray:
    """Normalised Hermite coefficients ``a_k(q) = E[phi(sqrt(q) z) He_k(z)] / sqrt(k!)``, ``k = 0..kmax``.

    Mehler's formula (Poole et al. 2016 supplement; ``docs/formulas.md``): for ``h1, h2`` with variances
    ``q1, q2`` and correlation ``c``, ``E[phi(h1) phi(h2)] = sum_k a_k(q1) a_k(q2) c^k`` and
    ``sqrt(q1 q2) E[phi'(h1) phi'(h2)] = sum_k k a_k(q1) a_k(q2) c^(k-1)``; Parseval: ``sum_k a_k^2 = E[phi^2]``.
    A :class:`QuadratureWarning` is issued when the coarser rule disagrees by more than ``1e-11 sqrt(E[phi^2])``.

    Parameters
    ----------
    activation : str or Activation
    q : float
        Variance ``q >= 0``.
    kmax : int
        Highest degree, ``0 <= kmax <=`` :data:`HERMITE_DEGREE_CAP`.

    Returns
    -------
    ndarray, shape (kmax + 1,)

    Raises
    ------
    ValueError
        ``q`` negative or not finite, ``kmax`` negative or above :data:`HERMITE_DEGREE_CAP`.
    """
    act = get_activation(activation)
    q = check_variance(q)
    if isinstance(kmax, bool) or not isinstance(kmax, (int, np.integer)):
        raise TypeError(f"kmax must be an integer, got {kmax!r}")
    kmax = int(kmax)
    if not 0 <= kmax <= HERMITE_DEGREE_CAP:
        raise ValueError(f"kmax must be an integer in [0, {HERMITE_DEGREE_CAP}], got {kmax}")
    if q == 0.0:
        out = np.zeros(kmax + 1)
        out[0] = float(act.phi(0.0))
        return out
    variances = np.array([q])
    second, a = hermite_rows(act, variances, kmax)
    _, a_check = hermite_rows(act, variances, kmax, rule=hermite_rule(act, variances, kmax, GL_NODES_CHECK))
    scale = math.sqrt(float(second[0]))
    error = float(np.max(np.abs(a - a_check)))
    if error > 1e-11 * max(scale, 1e-300):
        warnings.warn(f"hermite_coefficients at q={q:.6g}: error bound {error / scale:.2e} relative to sqrt(E[phi^2])",
                      QuadratureWarning, stacklevel=2)
    return a[0]
