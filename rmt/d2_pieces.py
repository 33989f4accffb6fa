"""The law of ``D^2 = diag(phi'(h)^2)``, ``h ~ N(0, q)``, with transforms exact up to the real axis.

A sum over quadrature atoms ``sum_i w_i / (z - d_i)`` is the Stieltjes transform of the continuous law of ``D^2`` only
while ``z`` stays farther from the range of ``phi'^2`` than the atoms are spaced (:mod:`rmt.transforms`). The Jacobian
spectrum needs it much closer: in the tails of ``J J^T`` the subordination point ``z`` comes within ``1e-10`` and less
of the real axis. This module removes that limit by singularity subtraction (product integration):

* ``h`` is cut into panels (the core's panels, :func:`meanfield.quadrature.breakpoints`, plus the kinks of ``phi``
  and the critical points of ``phi'``, bisected until the model is resolved), on which ``f = phi'`` is monotone and
  smooth; each panel has a degree-:data:`N_CHEB` Chebyshev model (first-kind points: no evaluation at a kink) of
  ``log |f|`` where ``f`` keeps its sign (relative accuracy in tails like ``exp(-h^2)``; the roots are then those of
  ``log |f| = log(+-sqrt(z)) + i pi j``) or of ``f`` itself where it has a zero, and an :data:`N_GL`-point
  Gauss-Legendre rule.
* On a panel ``[alpha, beta]`` the integrand of ``G(z) = int p(h) / (z - f(h)^2) dh`` has a pole at each root
  ``h_k`` of ``f(h) = +-sqrt(z)``; with ``c = p(h_k) / g'(h_k)`` (``g = f^2``), ``p / (z - g) - c / (h_k - h)`` is
  analytic there, so Gauss-Legendre integrates it to full precision, and ``int c / (h_k - h) dh`` is
  ``c (log(h_k - alpha) - log(h_k - beta))`` exactly. The panel's transform is therefore its plain atomic sum plus
  ``c E(h_k)``, ``E(h) = log(h - alpha) - log(h - beta) - sum_i omega_i / (h - h_i)`` (the rule's own error on the
  Cauchy kernel), for every root inside the Bernstein ellipse :data:`RHO` of the panel (farther roots leave an
  error below ``RHO^(-2 N_GL)``, 2e-10). As ``Im z -> 0+`` this gives the boundary value: principal value and
  ``-i pi`` times the density of ``D^2``.
* Roots are found by Newton on the Chebyshev model from an inverse-interpolation seed (and, next to a critical point
  of ``f``, from the two roots of its quadratic model, which coalesce there); panels whose ellipse cannot contain a
  root are skipped by a Rouche bound. ``G``, ``M = z G - 1`` and their first two ``z``-derivatives get the matching
  corrections (chain rule through ``h_k(z)``, ``dh_k/dz = 1 / g'(h_k)``).

Panels where ``phi'`` is constant (ReLU, hard tanh, the positive side of ELU) are atoms of ``D^2`` and get no
correction. Accuracy (about 1e-10 relative up to the real axis): ``tests/test_d2_pieces.py`` checks the boundary value
against the density of ``D^2`` by change of variables, values near the axis against mpmath, derivatives against
differences, and the atomic sums far from the range.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numba
import numpy as np

from meanfield import get_activation
from meanfield.quadrature import breakpoints, legendre_rule

from .transforms import D2Law, stieltjes_sums

__all__ = ["D2Pieces", "N_CHEB", "N_GL", "RHO", "ZERO_COLUMN", "d2_pieces", "moment_tables", "resolved_sums"]

#: Degree of the Chebyshev model of ``phi'`` on each panel.
N_CHEB = 32
#: Gauss-Legendre nodes per panel.
N_GL = 16
#: Roots of ``phi'(h) = +-sqrt(z)`` inside the Bernstein ellipse ``E_RHO`` of a panel are subtracted (a pole outside
#: it leaves a Gauss-Legendre error below ``RHO^(-2 N_GL)``, 2e-10 relative to that panel's share).
RHO = 2.0
#: ``|x - 1| + |x + 1|`` on the boundary of ``E_RHO`` (in the panel's variable ``x`` in ``[-1, 1]``).
ELLIPSE_SUM = RHO + 1.0 / RHO
#: A panel's model is accepted when its last Chebyshev coefficients are below this (relative to ``max |phi'|``).
CHEB_TOL = 2e-15
#: Most halvings of one panel (a ``phi'`` that is not smooth between its declared kinks stops there).
MAX_SPLITS = 10
#: Below this ``|phi'|`` the model is resolved to absolute accuracy (``phi'^2`` underflows below ``1e-300``).
FLOOR = 1e-150
#: Atoms with ``d <= SERIES_EPS |z|`` or ``d >= |z| / SERIES_EPS`` are summed by their series in ``d / z`` or ``z / d``
#: (:func:`_atomic_sums`): in the tails of ``J J^T``, where ``z -> 0``, nearly every atom.
SERIES_EPS = 1e-3
#: Terms kept of those series (truncation ``SERIES_EPS ** 7 = 1e-21`` relative).
SERIES_TERMS = 8
#: First-kind Chebyshev points on [-1, 1], ascending.
CHEB_X = -np.cos(np.pi * (np.arange(N_CHEB + 1) + 0.5) / (N_CHEB + 1))
_COS = np.cos(np.pi * np.outer(np.arange(N_CHEB + 1), np.arange(N_CHEB + 1)[::-1] + 0.5) / (N_CHEB + 1))
# columns of pan
(_MID, _HALF, _FMID, _RADIUS, _CRIT_LO, _CRIT_HI, _FLAT, _NCOEF, _LOG, _SIGN, _GMIN, _GMAX, _X0, _RINGMIN,
 _REACH, _PMAX, _END_F, _END_F2, _END_F3) = range(19)  # (_END_*: the model, its 2nd, 3rd x-derivatives at x = -1, 1)
#: Column of ``D2Pieces.pan`` with the zero ``x0`` of a plain panel's model (NaN: none, or not the only one in its
#: ellipse), from which :func:`resolved_sums` takes the roots next to it (:func:`_zero_expansions`).
ZERO_COLUMN = _X0
#: Taylor coefficients ``f^(j)(x0) / j!``, ``j = 0 .. TAYLOR``, at the zero ``x0`` of a plain panel's model start here.
_TAYLOR0 = 22
#: Degree of the Taylor expansion at a zero of ``phi'``; its roots of ``f = t`` are used within ``TAYLOR_REACH`` times
#: the distance from ``x0`` to the ellipse's boundary (a lower bound of its radius of convergence): truncation below
#: ``TAYLOR_REACH ** (TAYLOR + 1) = 1e-16``.
TAYLOR = 7
TAYLOR_REACH = 1e-2
#: The boundary of ``E_RHO`` (256 points), where the argument principle counts the zeros of ``phi'`` in a panel's
#: ellipse (:func:`_model_errors`).
_RING = 0.5 * (RHO * np.exp(2j * np.pi * np.arange(256) / 256) + np.exp(-2j * np.pi * np.arange(256) / 256) / RHO)
#: Columns of ``D2Pieces.pan``.
N_COLUMNS = _TAYLOR0 + TAYLOR + 1


@dataclass(frozen=True)
class D2Pieces:
    """Piecewise model of ``f = phi'`` on ``|h| <= 13 sqrt(q)`` (arrays for :func:`resolved_sums`).

    Attributes
    ----------
    law : D2Law
        The atoms ``phi'(h_i)^2`` at every panel's Gauss-Legendre nodes, with weights (merged where equal).
    pan : ndarray, shape (P, N_COLUMNS)
        Per panel: midpoint, half-width, the model at the midpoint, Rouche radius, critical-point flags at the two
        ends, flat flag (``phi'`` constant: an atom of ``D^2``), number of Chebyshev coefficients above rounding, log
        flag (the model is ``log |f|``, else ``f``), the sign of ``f``, min and max of ``phi'^2``.
    cheb : ndarray, shape (P, 4, N_CHEB + 1)
        Chebyshev coefficients of the model and of its first three derivatives in the panel variable ``x``.
    table : ndarray, shape (P, N_CHEB + 1)
        The model at :data:`CHEB_X` (Newton seeds).
    nodes, omega : ndarray, shape (P, N_GL)
        Gauss-Legendre nodes ``h_i`` and weights (in ``dh``, without the Gaussian density).
    gauss : ndarray, shape (2,)
        ``(q, c)``: the density of ``h`` is ``c exp(-h^2 / (2 q))`` (normalised so the atoms' weights sum to 1).
    series : ndarray, shape (N + 1, 2, SERIES_TERMS)
        Normalised moments of the atoms (:func:`moment_tables`) for the series sums of :func:`_atomic_sums`.
    """

    law: D2Law
    pan: np.ndarray
    cheb: np.ndarray
    table: np.ndarray
    nodes: np.ndarray
    omega: np.ndarray
    gauss: np.ndarray
    series: np.ndarray

    @property
    def arrays(self) -> tuple:
        """``(pan, cheb, table, nodes, omega, gauss, series)``: the arguments of :func:`resolved_sums` after the
        atoms."""
        return self.pan, self.cheb, self.table, self.nodes, self.omega, self.gauss, self.series

    @property
    def reaches_zero(self) -> bool:
        """True when the continuous part of ``D^2`` comes down to 0 (``phi'^2`` underflows in the tails, or ``phi'``
        has a zero): its free products with bounded laws then have no soft lower edge above 0 (a fraction
        ``P(D^2 <= eps)`` of their mass lies below ``eps`` times the norm of the rest)."""
        smooth = self.pan[:, _FLAT] == 0
        underflow = ~smooth & (self.pan[:, _GMAX] < 1e-290)  # next to smooth panels: phi'^2 decays through 1e-300
        plain = smooth & (self.pan[:, _LOG] == 0)  # models of phi' itself: a sign change is a zero of phi'
        crosses = np.any(np.sign(self.table[plain, :-1]) * np.sign(self.table[plain, 1:]) < 0)
        return bool(crosses or np.any(smooth & (self.pan[:, _GMIN] < 1e-250)) or (smooth.any() and underflow.any()))

    def in_continuous_range(self, x: float) -> bool:
        """True when ``x`` lies in the range of ``phi'^2`` over a panel where ``phi'`` is not constant (where the
        density of ``D^2`` is positive, so no real ``z`` solves the spectral equation)."""
        smooth = self.pan[:, _FLAT] == 0
        return bool(np.any(smooth & (self.pan[:, _GMIN] < x) & (x < self.pan[:, _GMAX])))


def _chebyshev_coefficients(values: np.ndarray) -> np.ndarray:
    """Coefficients (rows) of the degree-``N_CHEB`` interpolant through ``values`` at :data:`CHEB_X` (rows)."""
    coef = values @ _COS.T * (2.0 / (N_CHEB + 1))
    coef[:, 0] *= 0.5
    return coef


def _turns(on_ring: np.ndarray) -> np.ndarray:
    """Winding numbers about 0 of the closed curves in the rows of ``on_ring`` (values on :data:`_RING`): the number
    of zeros inside each panel's ellipse (argument principle)."""
    return np.angle(np.roll(on_ring, -1, axis=1) * np.conj(on_ring)).sum(axis=1) / (2.0 * np.pi)


def _model_errors(vals: np.ndarray):
    """Relative Chebyshev tails of the two models of ``f = phi'`` on each panel (rows of ``vals`` at :data:`CHEB_X`)
    and which to use: ``log |f|`` where ``f`` has no zero in the panel's ellipse (its relative accuracy holds however
    fast ``f`` decays: tanh, erf, sigmoid tails), else ``f`` itself (panels where ``phi'`` has a zero or comes close
    to one: gelu, swish, sin).

    Returns ``(f_ratio, log_ratio, log_mode)``; a sign-keeping panel whose ``|f|`` spans more than a factor 10 is
    resolved only by its log model."""
    size = np.max(np.abs(vals), axis=1)
    coef = _chebyshev_coefficients(vals)
    f_ratio = np.max(np.abs(coef[:, -3:]), axis=1) / np.maximum(size, FLOOR)
    keeps_sign = np.all(vals > 0, axis=1) | np.all(vals < 0, axis=1)
    if keeps_sign.any():
        # log |f| is analytic in the panel's ellipse only where f has no zero there (argument principle on its
        # boundary): sin at q = 22 had a zero of cos 2e-4 outside a panel, a log model with a Rouche radius of 3e7,
        # and 10^7 targets per evaluation
        # (counted only where |f| on the boundary stays within 1e-4 of its largest value: where it spans more, as in
        # erf's tails, the interpolant's phase there is its error, rho^32 times its last coefficients; such a panel is
        # far from any zero of phi')
        on_ring = np.polynomial.chebyshev.chebval(_RING, coef[keeps_sign].T)
        size_ring = np.abs(on_ring)
        conditioned = np.min(size_ring, axis=1) > 1e-4 * np.max(size_ring, axis=1)
        turns = _turns(on_ring)
        keeps_sign[np.nonzero(keeps_sign)[0][conditioned & (np.abs(turns) > 0.5)]] = False
    log_ratio = np.full(vals.shape[0], np.inf)
    if keeps_sign.any():
        logs = np.log(np.abs(vals[keeps_sign]))
        tail = np.max(np.abs(_chebyshev_coefficients(logs)[:, -3:]), axis=1)
        log_ratio[keeps_sign] = tail / np.maximum(1.0, np.max(np.abs(logs), axis=1))
    wide = keeps_sign & (np.min(np.abs(vals), axis=1) < 0.1 * size)
    f_ratio[wide] = np.inf
    return f_ratio, log_ratio, keeps_sign & (log_ratio <= np.maximum(f_ratio, CHEB_TOL))


def _critical_points(act, b: np.ndarray) -> np.ndarray:
    """Sign changes of ``phi''`` (critical points of ``phi'``) inside the panels ``b``, to rounding (bisection)."""
    t = np.linspace(0.0, 1.0, 65)[1:-1]
    h = b[:-1, None] + (b[1:] - b[:-1])[:, None] * t
    h = np.concatenate([h.ravel(), b[1:-1]])
    h.sort()
    v = np.asarray(act.d2phi(h), dtype=np.float64)
    exact = h[1:-1][(v[1:-1] == 0.0) & (v[:-2] * v[2:] < 0)]  # phi'' = 0 at a sample (tanh at 0)
    change = np.nonzero(v[:-1] * v[1:] < 0)[0]
    lo, hi, vlo = h[change], h[change + 1], v[change]
    for _ in range(60):
        mid = 0.5 * (lo + hi)
        vm = np.asarray(act.d2phi(mid), dtype=np.float64)
        left = vm * vlo > 0
        lo, vlo = np.where(left, mid, lo), np.where(left, vm, vlo)
        hi = np.where(left, hi, mid)
    return np.union1d(0.5 * (lo + hi), exact)


def _zero_expansions(coef: np.ndarray, table: np.ndarray, skip: np.ndarray):
    """Per panel: the zero ``x0`` of a plain model (``f`` itself) that is the only zero of ``f`` in the panel's ellipse
    (NaN where there is none, or more), ``min |f|`` on the ellipse's boundary, the largest ``|t - f(x0)|`` whose root
    the expansion gives (``TAYLOR_REACH |f'(x0)|`` times the distance from ``x0`` to the boundary), and the Taylor
    coefficients ``f^(j)(x0) / j!``, ``j = 0 .. TAYLOR`` (from the Chebyshev derivative series, as
    :func:`_model_derivs`).

    Next to such a zero (gelu, swish, sin in the tails of ``J J^T``, where ``z -> 0``) the root of ``f = t`` is the
    series reversion of this expansion: the only root inside, by Rouche's theorem, while ``|t| < min |f|`` on the
    boundary."""
    n_panels = coef.shape[0]
    x0 = np.full(n_panels, np.nan)
    ring_min = np.zeros(n_panels)
    reach = np.zeros(n_panels)
    taylor = np.zeros((n_panels, TAYLOR + 1))
    changes = np.sign(table[:, :-1]) * np.sign(table[:, 1:]) < 0
    cand = np.nonzero(~skip & (changes.sum(axis=1) == 1))[0]
    if cand.size:
        c = coef[cand]
        on_ring = np.polynomial.chebyshev.chebval(_RING, c.T)  # (K, 256)
        turns = _turns(on_ring)
        one = np.abs(np.abs(turns) - 1.0) <= 0.5  # exactly one zero inside
        cand, c, on_ring = cand[one], c[one], on_ring[one]
    if cand.size:
        t = table[cand]
        j = np.argmax(changes[cand], axis=1)
        rows = np.arange(cand.size)
        x = CHEB_X[j] - t[rows, j] * (CHEB_X[j + 1] - CHEB_X[j]) / (t[rows, j + 1] - t[rows, j])
        derivs = [c]
        for _ in range(TAYLOR):
            derivs.append(np.polynomial.chebyshev.chebder(derivs[-1], axis=1))
        for _ in range(50):
            step = (np.polynomial.chebyshev.chebval(x, c.T, tensor=False)
                    / np.polynomial.chebyshev.chebval(x, derivs[1].T, tensor=False))
            x = x - step
            if np.all(np.abs(step) <= 1e-16):
                break
        x0[cand] = x
        ring_min[cand] = np.min(np.abs(on_ring), axis=1)
        for order in range(TAYLOR + 1):
            value = np.polynomial.chebyshev.chebval(x, derivs[order].T, tensor=False)
            taylor[cand, order] = value / math.factorial(order)
        reach[cand] = TAYLOR_REACH * np.abs(taylor[cand, 1]) * np.min(np.abs(_RING[None, :] - x[:, None]), axis=1)
    return x0, ring_min, reach, taylor


def d2_pieces(activation, q: float) -> D2Pieces:
    """The law of ``D^2`` at pre-activation variance ``q > 0`` with its piecewise model (module docstring).

    Parameters
    ----------
    activation : str or meanfield.Activation
        Anything :func:`meanfield.get_activation` accepts.
    q : float
        Variance of ``h``, ``> 0``.
    """
    act = get_activation(activation)
    q = float(q)
    if not (math.isfinite(q) and q > 0):
        raise ValueError(f"q must be a finite variance > 0, got {q}")
    s = math.sqrt(q)
    b = breakpoints(q, act.kinks, oscillatory=act.oscillatory) * s
    crit = _critical_points(act, b)
    b = np.union1d(b, crit)
    b = b[np.concatenate([[True], np.diff(b) > 1e-12 * s])]
    lo, hi = b[:-1], b[1:]
    before = np.full(lo.size, np.inf)  # the parent's relative tail: a split that does not shrink it is rounding noise
    done_lo, done_hi, done_vals = [], [], []
    for level in range(MAX_SPLITS + 1):
        mid, half = 0.5 * (lo + hi), 0.5 * (hi - lo)
        vals = np.asarray(act.dphi((mid[:, None] + half[:, None] * CHEB_X).ravel()), dtype=np.float64)
        vals = vals.reshape(lo.size, N_CHEB + 1)
        if not np.all(np.isfinite(vals)):
            raise ValueError(f"phi' of activation {act.name!r} is not finite on |h| <= 13 sqrt(q) at q={q}")
        f_ratio, log_ratio, _ = _model_errors(vals)
        ratio = np.minimum(f_ratio, log_ratio)
        # resolved; or noise-limited (phi' evaluated with rounding noise above CHEB_TOL: halving gains nothing)
        good = (ratio <= CHEB_TOL) | (ratio > 0.25 * before)
        if level == MAX_SPLITS:
            good[:] = True
        done_lo.append(lo[good])
        done_hi.append(hi[good])
        done_vals.append(vals[good])
        bad = ~good
        if not bad.any():
            break
        lo, hi = np.concatenate([lo[bad], mid[bad]]), np.concatenate([mid[bad], hi[bad]])
        before = np.concatenate([ratio[bad], ratio[bad]])
    lo, hi = np.concatenate(done_lo), np.concatenate(done_hi)
    order = np.argsort(lo)
    lo, hi = lo[order], hi[order]
    vals = np.concatenate(done_vals)[order]
    f_ratio, log_ratio, log_mode = _model_errors(vals)
    # constant phi' (an atom of D^2), or phi'^2 below 1e-300 (underflowing: nothing to resolve)
    flat = (np.ptp(vals, axis=1) <= 1e-13 * np.max(np.abs(vals), axis=1)) | (np.max(np.abs(vals), axis=1) < FLOOR)
    log_mode &= ~flat
    sign = np.where(vals[:, N_CHEB // 2] < 0, -1.0, 1.0)
    with np.errstate(divide="ignore"):
        table = np.where(log_mode[:, None], np.log(np.abs(vals)), vals)
    table[~np.isfinite(table)] = 0.0  # (flat zero panels: never used)
    coef = _chebyshev_coefficients(table)
    mid, half = 0.5 * (lo + hi), 0.5 * (hi - lo)
    cheb = np.empty((lo.size, 4, N_CHEB + 1))
    cheb[:, 0] = coef
    for k in range(1, 4):
        cheb[:, k] = np.pad(np.polynomial.chebyshev.chebder(cheb[:, k - 1].T).T, ((0, 0), (0, 1)))
    # each panel's series is summed to its last coefficient above the rounding floor of the interpolant
    needed = np.abs(coef) > 1.5e-15 * np.max(np.abs(coef), axis=1, keepdims=True)
    length = np.maximum(N_CHEB + 1 - np.argmax(needed[:, ::-1], axis=1), 4)
    # Rouche bound: no root of model = target inside E_RHO when |target - model(0)| exceeds max |model - model(0)|
    # on its boundary
    on_ring = np.polynomial.chebyshev.chebval(_RING, coef.T)  # (P, 256)
    f_mid = np.polynomial.chebyshev.chebval(0.0, coef.T)
    radius = 1.05 * np.max(np.abs(on_ring - f_mid[:, None]), axis=1)
    near = 1e-10 * s
    crit_lo = np.array([np.any(np.abs(crit - x) <= near) for x in lo], dtype=bool)
    crit_hi = np.array([np.any(np.abs(crit - x) <= near) for x in hi], dtype=bool)
    x_gl, w_gl = legendre_rule(N_GL)
    nodes = mid[:, None] + half[:, None] * x_gl
    omega = half[:, None] * w_gl
    density = np.exp(-0.5 * nodes * nodes / q) / math.sqrt(2.0 * math.pi * q)
    weights = omega * density
    total = weights.sum()
    d = np.asarray(act.dphi(nodes.ravel()), dtype=np.float64).reshape(nodes.shape) ** 2
    g_table = vals**2
    x0, ring_min, reach, taylor = _zero_expansions(coef, table, flat | log_mode)
    ends = np.array([-1.0, 1.0])
    end_f, end_f2, end_f3 = (np.polynomial.chebyshev.chebval(ends, cheb[:, order].T) for order in (0, 2, 3))
    pc = 1.0 / (math.sqrt(2.0 * math.pi * q) * total)
    h_min = np.where((lo < 0) & (hi > 0), 0.0, np.minimum(np.abs(lo), np.abs(hi)))
    p_max = pc * np.exp(-0.5 * h_min * h_min / q)  # the largest density of h on the panel
    pan = np.column_stack([mid, half, f_mid, radius, crit_lo, crit_hi, flat, length, log_mode, sign,
                           np.minimum(g_table.min(axis=1), d.min(axis=1)),
                           np.maximum(g_table.max(axis=1), d.max(axis=1)), x0, ring_min, reach, p_max,
                           end_f[:, 0], end_f2[:, 0], end_f3[:, 0], end_f[:, 1], end_f2[:, 1], end_f3[:, 1],
                           taylor]).astype(np.float64)
    keep = weights.ravel() > 0
    law = D2Law(values=d.ravel()[keep], weights=(weights.ravel() / total)[keep], q=q, activation=act.name)
    law = law.merged()
    # panels by decreasing density of h: resolved_sums meets the large contributions first (its skip test)
    order = np.argsort(-p_max, kind="stable")
    return D2Pieces(law, *(np.ascontiguousarray(a[order]) for a in (pan, cheb, table, nodes, omega)),
                    np.array([q, pc]), moment_tables(law.values, law.weights))


@numba.njit(cache=True)
def moment_tables(d, w):
    """Normalised moments of the atoms ``d`` (ascending, ``>= 0``) with weights ``w``, shape
    ``(N + 1, 2, SERIES_TERMS)``: ``[k, 0, n] = sum_{i < k} w_i (d_i / d_{k-1})^n`` (the atoms below ``k``, scaled by
    the largest of them; 0 for ``n >= 1`` when that is 0) and ``[k, 1, n] = sum_{i >= k} w_i (d_k / d_i)^n`` (the
    atoms from ``k`` on, scaled by the smallest; unused when it is 0). Built by recurrences whose ratios are at most 1,
    so no power of an atom leaves float64 (gelu's atoms reach 5e-324)."""
    n_atoms = d.shape[0]
    if w.shape[0] != n_atoms:
        raise ValueError("moment_tables: d and w must have the same length")
    for k in range(n_atoms):
        if not d[k] >= 0.0 or (k > 0 and d[k] < d[k - 1]):
            raise ValueError("moment_tables: the atoms d must be >= 0 and ascending")
    out = np.zeros((n_atoms + 1, 2, SERIES_TERMS))
    acc = np.zeros(SERIES_TERMS)
    for k in range(n_atoms):
        if d[k] > 0:
            ratio = d[k - 1] / d[k] if k > 0 else 0.0
            scale = 1.0
            for n in range(SERIES_TERMS):
                acc[n] = acc[n] * scale + w[k]
                scale *= ratio
        else:
            acc[0] += w[k]
        out[k + 1, 0] = acc
    acc = np.zeros(SERIES_TERMS)
    for k in range(n_atoms - 1, -1, -1):
        if d[k] > 0:
            ratio = d[k] / d[k + 1] if k < n_atoms - 1 else 0.0
            scale = 1.0
            for n in range(SERIES_TERMS):
                acc[n] = acc[n] * scale + w[k]
                scale *= ratio
        out[k, 1] = acc
    return out


@numba.njit(cache=True)
def _atomic_sums(z, d, w, series):
    """:func:`rmt.transforms.stieltjes_sums` over the atoms ``d`` (ascending), ``w``, with the atoms far below
    ``|z|`` summed by the series ``1 / (z - d) = sum_n d^n / z^(n+1)`` and those far above by
    ``-sum_n z^n / d^(n+1)`` from :func:`moment_tables` (``series``; empty: every atom directly). In the tails of
    ``J J^T`` this leaves a handful of atoms to sum: gelu at ``q = 22`` has 773, half of them below ``1e-60``."""
    n_atoms = d.shape[0]
    if series.shape[0] != n_atoms + 1:
        return stieltjes_sums(z, d, w)
    az = abs(z)
    k1 = np.searchsorted(d, SERIES_EPS * az, side="right")
    k2 = max(k1, np.searchsorted(d, az / SERIES_EPS, side="left"))
    m, m1, m2, g0, g1, g2 = stieltjes_sums(z, d[k1:k2], w[k1:k2])
    if k1 > 0:  # d <= eps |z|: sigma = d_max / z, G = (1 / z) sum sigma^n P_n, M = sum_{n >= 1} sigma^n P_n
        p = series[k1, 0]
        sigma = d[k1 - 1] / z
        inv = 1.0 / z
        t = 1.0 + 0j
        for n in range(SERIES_TERMS):
            term = t * p[n]
            g0 += inv * term
            g1 -= (n + 1) * inv * term
            g2 += (n + 1) * (n + 2) * inv * term
            if n >= 1:
                m += term
                m1 -= n * term
                m2 += n * (n + 1) * term
            t *= sigma
    if k2 < n_atoms:  # d >= |z| / eps: rho = z / d_min, G = -(1 / d_min) sum rho^n S_{n+1}, M = -sum rho^n S_n
        s = series[k2, 1]
        rho = z / d[k2]
        inv = 1.0 / d[k2]
        t = 1.0 + 0j
        for n in range(SERIES_TERMS):
            m -= t * s[n]
            m1 -= n * t * s[n]
            m2 -= n * (n - 1) * t * s[n]
            if n + 1 < SERIES_TERMS:
                term = inv * t * s[n + 1]
                g0 -= term
                g1 -= n * term
                g2 -= n * (n - 1) * term
            t *= rho
    return m, m1, m2, g0, g1, g2


# --------------------------------------------------------------------------------------------------------------------
# numba kernels
# --------------------------------------------------------------------------------------------------------------------


@numba.njit(cache=True)
def _clenshaw2(c0, c1, x):
    """Two Chebyshev series (``f`` and ``f'``) at complex ``x`` in one pass."""
    b1 = 0j
    b2 = 0j
    e1 = 0j
    e2 = 0j
    x2 = 2.0 * x
    for k in range(c0.shape[0] - 1, 0, -1):
        b0 = x2 * b1 - b2 + c0[k]
        e0 = x2 * e1 - e2 + c1[k]
        b2 = b1
        b1 = b0
        e2 = e1
        e1 = e0
    return x * b1 - b2 + c0[0], x * e1 - e2 + c1[0]


@numba.njit(cache=True)
def _polish(s, c0, c1, x):
    """Newton on ``f(x) = s`` from ``x``; returns ``(x, converged)``. Steps are capped at 1; an iterate beyond
    ``|x| = 2`` (the ellipse lies within ``|x| <= 1.25``) is abandoned."""
    prev = 1.0
    for _ in range(30):
        f, fp = _clenshaw2(c0, c1, x)
        if fp == 0:
            return x, False
        dx = (f - s) / fp
        if abs(dx) > 1.0:
            dx = dx / abs(dx)
        x = x - dx
        if abs(x) > 2.0:
            return x, False
        if abs(dx) <= 1e-9:
            if abs(dx) <= 10.0 * prev * prev:
                return x, True  # converging quadratically: the error left is about dx^2
            f, fp = _clenshaw2(c0, c1, x)  # (slower convergence, next to a double root: one more step)
            if fp != 0:
                x = x - (f - s) / fp
            return x, True
        prev = abs(dx)
    return x, False


@numba.njit(cache=True)
def _add_root(x, roots, n):
    """Append ``x`` to ``roots[:n]`` when it lies inside the ellipse and is new; returns the new count."""
    if abs(x - 1.0) + abs(x + 1.0) > ELLIPSE_SUM:
        return n
    for j in range(n):
        if abs(roots[j] - x) <= 1e-9:
            return n
    if n < roots.shape[0]:
        roots[n] = x
        n += 1
    return n


@numba.njit(cache=True)
def _panel_roots(s, k, pan, cheb, table, roots):
    """Roots ``x`` of ``model(x) = s`` inside the ellipse of panel ``k`` (panel variable); returns their count.

    Newton starts from the inverse interpolation of ``Re s`` in the panel's table (and, at a critical end, from the
    two roots of the quadratic model there), so the roots found do not depend on earlier evaluations."""
    nc = int(pan[k, _NCOEF])
    c0 = cheb[k, 0, :nc]
    c1 = cheb[k, 1, :nc]
    t = table[k]
    n_t = t.shape[0]
    r = s.real
    near_end = 0 if abs(t[0] - r) <= abs(t[n_t - 1] - r) else 1
    x0 = CHEB_X[0] if near_end == 0 else CHEB_X[n_t - 1]
    crossed = False
    for j in range(n_t - 1):
        if (t[j] - r) * (t[j + 1] - r) <= 0.0 and t[j + 1] != t[j]:
            x0 = CHEB_X[j] + (r - t[j]) * (CHEB_X[j + 1] - CHEB_X[j]) / (t[j + 1] - t[j])
            crossed = True
            break
    n = 0
    if crossed or pan[k, _CRIT_LO + near_end] == 0.0:
        # (beyond the table's range next to a critical end, Newton from that end finds one of the two roots that
        # the end's own seeds below find: skipped)
        x, ok = _polish(s, c0, c1, complex(x0, 0.0))
        if ok:
            n = _add_root(x, roots, n)
    for end in range(2):
        if pan[k, _CRIT_LO + end] == 0.0:
            continue
        xe = -1.0 if end == 0 else 1.0
        a2 = 0.5 * pan[k, _END_F2 + 3 * end]
        if a2 == 0:
            continue
        a3 = pan[k, _END_F3 + 3 * end] / 6.0
        w = np.sqrt((s - pan[k, _END_F + 3 * end]) / a2)
        for sign in (1.0, -1.0):
            # the two roots of a2 y^2 + a3 y^3 = s - f(xe), to second order in w
            x, ok = _polish(s, c0, c1, xe + sign * w - 0.5 * a3 / a2 * w * w)
            if ok:
                n = _add_root(x, roots, n)
    return n


@numba.njit(cache=True)
def _root_correction(h, z, g1, g2, g3, k, pan, nodes, omega, q, pc):
    """``(K, z dK/dz, z^2 d2K/dz2)`` of the subtracted pole at the root ``h`` of panel ``k``; ``g1..g3`` are the
    derivatives of ``g = phi'^2`` there."""
    if g1 == 0:
        return 0j, 0j, 0j
    mid = pan[k, _MID]
    half = pan[k, _HALF]
    p = pc * np.exp(-0.5 * h * h / q)
    p1 = -h / q * p
    p2 = (h * h / (q * q) - 1.0 / q) * p
    alpha = mid - half
    beta = mid + half
    if h.imag == 0.0 and alpha < h.real < beta:
        # z on the real axis inside the range: the boundary value from Im z -> 0+ (Im h_k has the sign of g')
        side = 1.0 if g1.real > 0 else -1.0
        e0 = complex(math.log((h.real - alpha) / (beta - h.real)), -math.pi * side)
    else:
        e0 = np.log(h - alpha) - np.log(h - beta)
    ra = 1.0 / (h - alpha)
    rb = 1.0 / (h - beta)
    e1 = ra - rb
    e2 = rb * rb - ra * ra
    # minus the rule's sums of omega_i / (h - h_i)^(1, 2, 3), in real arithmetic (as rmt.transforms.stieltjes_sums)
    hr = h.real
    hi = h.imag
    hi2 = hi * hi
    s0r = s0i = s1r = s1i = s2r = s2i = 0.0
    for i in range(nodes.shape[1]):
        a = hr - nodes[k, i]
        den = a * a + hi2
        rr = a / den
        ri = -hi / den
        tr = omega[k, i] * rr
        ti = omega[k, i] * ri
        s0r += tr
        s0i += ti
        ur = tr * rr - ti * ri
        ui = tr * ri + ti * rr
        s1r += ur
        s1i += ui
        s2r += ur * rr - ui * ri
        s2i += ur * ri + ui * rr
    e0 -= complex(s0r, s0i)
    e1 += complex(s1r, s1i)
    e2 -= 2.0 * complex(s2r, s2i)
    # K = c e0 with c = p / g1 (dh/dz = 1 / g1): z K' = s (c e0)_h and z^2 K'' = s^2 ((c e0)_hh - (c e0)_h g2 / g1),
    # s = z / g1, written so that no intermediate leaves float64 (with z = -3e-250 at a zero of phi', g1 ~ sqrt(z) and
    # (g2 / g1)^2 / g1 was 1e375): s r2 = s g2 / g1 and s / g1 are O(1) in both models
    inv = 1.0 / g1
    s = z * inv
    si = s * inv
    r2 = g2 * inv
    sr2 = s * r2
    sr3 = s * g3 * inv
    a1 = s * p1 - p * sr2
    kk = p * inv * e0
    zk1 = a1 * inv * e0 + p * si * e1
    zzk2 = (si * (s * p2 - 2.0 * p1 * sr2 - p * sr3 + 2.0 * p * sr2 * r2) * e0 + 2.0 * si * a1 * e1 + s * si * p * e2
            - sr2 * zk1)
    return kk, zk1, zzk2


@numba.njit(cache=True)
def _model_derivs(x, k, pan, cheb):
    """The model and its first three derivatives in ``h`` at the panel variable ``x`` of panel ``k``."""
    half = pan[k, _HALF]
    nc = int(pan[k, _NCOEF])
    v0, v1 = _clenshaw2(cheb[k, 0, :nc], cheb[k, 1, :nc], x)
    v2, v3 = _clenshaw2(cheb[k, 2, :nc], cheb[k, 3, :nc], x)
    return v0, v1 / half, v2 / (half * half), v3 / (half * half * half)


@numba.njit(cache=True)
def _taylor_root(target, k, pan):
    """The root of ``f = target`` next to the zero ``x0`` of panel ``k`` (panel variable) from the Taylor expansion
    there (Newton on the polynomial from ``x0 + t / f'(x0)``), and the first three ``h``-derivatives of ``f`` at it
    (as :func:`_model_derivs`)."""
    a = pan[k, _TAYLOR0:_TAYLOR0 + TAYLOR + 1]
    y = (target - a[0]) / a[1]
    for _ in range(3):
        p = a[TAYLOR] + 0j
        dp = 0j
        for j in range(TAYLOR - 1, -1, -1):
            dp = dp * y + p
            p = p * y + a[j]
        y = y - (p - target) / dp
    p1 = 0j
    p2 = 0j
    p3 = 0j
    for j in range(TAYLOR, 0, -1):
        p1 = p1 * y + j * a[j]
        if j >= 2:
            p2 = p2 * y + j * (j - 1) * a[j]
        if j >= 3:
            p3 = p3 * y + j * (j - 1) * (j - 2) * a[j]
    half = pan[k, _HALF]
    return pan[k, _X0] + y, p1 / half, p2 / (half * half), p3 / (half * half * half)


@numba.njit(cache=True)
def _panel_correction(target, z, k, pan, cheb, table, nodes, omega, q, pc, roots):
    """Sum of ``(K, z K', z^2 K'')`` (:func:`_root_correction`) over the roots of ``model = target`` in panel ``k``; the
    derivatives of ``g = phi'^2`` at a root come from the model (``log |f|``: ``g = z`` there, so
    ``g' = 2 z l'``, ...; ``f``: ``g' = 2 f f'``, ...)."""
    kk = 0j
    k1 = 0j
    k2 = 0j
    shortcut = (pan[k, _X0] == pan[k, _X0] and abs(target) < pan[k, _RINGMIN]
                and abs(target - pan[k, _TAYLOR0]) <= pan[k, _REACH])
    if shortcut:  # next to the panel's one zero of f: its Taylor expansion (_zero_expansions)
        roots[0], f1, f2, f3 = _taylor_root(target, k, pan)
        n = 1
    else:
        n = _panel_roots(target, k, pan, cheb, table, roots)
    for i in range(n):
        if not shortcut:
            _, f1, f2, f3 = _model_derivs(roots[i], k, pan, cheb)
        if pan[k, _LOG] != 0.0:
            g1 = 2.0 * z * f1
            g2 = 2.0 * z * (2.0 * f1 * f1 + f2)
            g3 = 2.0 * z * (4.0 * f1 * f1 * f1 + 6.0 * f1 * f2 + f3)
        else:
            # f = target exactly at the root: the model's value there carries its absolute rounding (1e-17), which
            # relative to f = sqrt(z) -> 0 was 1e-7 noise in G at z = 1e-20 (sin, orthogonal, depth 8)
            g1 = 2.0 * target * f1
            g2 = 2.0 * (f1 * f1 + target * f2)
            g3 = 2.0 * (3.0 * f1 * f2 + target * f3)
        a, b, c = _root_correction(pan[k, _MID] + pan[k, _HALF] * roots[i], z, g1, g2, g3, k, pan, nodes, omega, q,
                                   pc)
        kk += a
        k1 += b
        k2 += c
    return kk, k1, k2


@numba.njit(cache=True)
def resolved_sums(z, d, w, pan, cheb, table, nodes, omega, gauss, series):
    """``(M, z M', z^2 M'', G, z G', z^2 G'')`` at complex ``z`` of the continuous law of ``D^2`` (module docstring):
    :func:`rmt.transforms.stieltjes_sums` over the atoms ``d``, ``w`` plus the subtracted poles of every panel."""
    m, m1, m2, g0, dg0, ddg0 = _atomic_sums(z, d, w, series)
    if pan.shape[0] == 0:
        return m, m1, m2, g0, dg0, ddg0
    sq = np.sqrt(complex(z))
    q = gauss[0]
    pc = gauss[1]
    kk = 0j
    k1 = 0j
    k2 = 0j
    roots = np.empty(6, dtype=np.complex128)
    size = abs(g0)
    for k in range(pan.shape[0]):
        if pan[k, _FLAT] != 0.0:
            continue
        # the panel's correction (its exact integral minus its rule) is at most 2 p_max width / dist, dist from z to
        # the panel's range of phi'^2 (and its z-derivatives at most |z| / dist times that): below 1e-17 of |G| it
        # is left out (sin at q = 3: the zeros and extrema of cos beyond |h| = 9 sqrt(q), where p < 1e-18)
        gl = pan[k, _GMIN]
        gh = pan[k, _GMAX]
        dx = gl - z.real if z.real < gl else (z.real - gh if z.real > gh else 0.0)
        dist = math.sqrt(dx * dx + z.imag * z.imag)
        if dist > 0.0 and 4.0 * pan[k, _PMAX] * pan[k, _HALF] * (1.0 + 2.0 * abs(z) / dist) <= 1e-17 * size * dist:
            continue
        centre = pan[k, _FMID]
        radius = pan[k, _RADIUS]
        if pan[k, _LOG] != 0.0:
            # f = sign exp(l): f = +-sqrt(z) at l = log(sign sqrt(z)) + i pi j for every integer j
            t0 = np.log(pan[k, _SIGN] * sq)
            if abs(t0.real - centre) > radius:
                continue
            j_lo = math.ceil((-radius - t0.imag) / math.pi)
            j_hi = math.floor((radius - t0.imag) / math.pi)
            targets = [t0 + complex(0.0, math.pi * j) for j in range(j_lo, j_hi + 1)]
        else:
            targets = [sq, -sq]
        for target in targets:
            if abs(target - centre) > radius:
                continue
            a, b, c = _panel_correction(target, z, k, pan, cheb, table, nodes, omega, q, pc, roots)
            kk += a
            k1 += b
            k2 += c
            size = max(size, abs(g0 + kk))
    # M = z G - W: M' = G + z G', M'' = 2 G' + z G'' (here scaled: z M', z^2 M'')
    zkk = z * kk
    return m + zkk, m1 + zkk + z * k1, m2 + 2.0 * z * k1 + z * k2, g0 + kk, dg0 + k1, ddg0 + k2
