"""Chebyshev tables of the functions of q an activation needs, and the Numba grid solver that uses them.

Every fully connected quantity depends on ``(sigma_w2, sigma_b2)`` only through ``q*`` and ``c``. The functions of
``q`` -- ``V(q) = E[phi^2]``, ``D(q) = E[phi'^2]``, ``V'(q)`` and the squared Hermite coefficients ``b_k(q) = a_k(q)^2``
-- are computed once per activation by :mod:`meanfield.gaussian` at the nodes of piecewise Chebyshev interpolants in
``s = sqrt(q)`` (panels of width :data:`PANEL` in ``s``, :data:`DEGREE` + 1 nodes each), built lazily up to the largest
``q*`` a grid needs (at most :data:`S_MAX`\\ ^2). On each panel the Mehler series keeps ``K`` terms, ``K`` the smallest
degree with Parseval tail ``V - sum_k b_k <= 1e-16 V`` at the panel's largest ``q`` (at most :data:`K_TABLE`).

Each panel's interpolants are checked against direct quadrature at two off-node points when built (``max_error``
records the largest relative error of ``V, D, V'``; a warning is issued above 1e-12).

The Numba kernel solves every point in parallel (``prange``): ``q*`` by the same bracketed, safeguarded Newton method
as the scalar path, ``c*`` by :func:`settle_c` (Newton on the Mehler series with the trivial root ``c = 1`` divided out,
well conditioned up to the critical line) at degree 32, 128, 512, then the panel's ``K``, until the rigorous bracket
from the series' tail is narrower than the caller's ``c_tol``. Points that leave the table, or whose bracket stays
wider, are flagged and recomputed by the scalar path.
"""

from __future__ import annotations

import math
import warnings

import numba
import numpy as np

from .activations import Activation
from .gaussian import GL_NODES, Z_MAX, QuadratureWarning, _breakpoints, _rule_from_breaks

PANEL = 0.25
DEGREE = 15
S_MAX = 10.0
K_TABLE = 2048
TAIL_RTOL = 1e-15
#: Relative tail ``dtail / (q D)`` at which a grid point's series counts as converged to the tables' precision.
TABLE_TAIL_RTOL = 1e-13

_NODES = np.cos(np.pi * (np.arange(DEGREE + 1) + 0.5) / (DEGREE + 1))  # Chebyshev points of the first kind


def _cheb_coefficients(values: np.ndarray) -> np.ndarray:
    """Chebyshev coefficients (axis 0) from values at :data:`_NODES` (axis 0)."""
    n = DEGREE + 1
    theta = np.pi * (np.arange(n) + 0.5) / n
    basis = np.cos(np.outer(np.arange(n), theta))  # (j, node)
    coef = 2.0 / n * basis @ values
    coef[0] *= 0.5
    return coef


class Tables:
    """Piecewise Chebyshev interpolants in ``s = sqrt(q)`` for one activation (built lazily, panel by panel)."""

    def __init__(self, engine):
        self.engine = engine
        self.act: Activation = engine.act
        self.moment_coef = np.zeros((0, DEGREE + 1, 3))  # (panel, j, [V, D, V'])
        self.b_coef = np.zeros((0, 1, DEGREE + 1))  # (panel, k, j)
        self.kmax = np.zeros(0, dtype=np.int64)
        self.max_error = 0.0

    @property
    def s_hi(self) -> float:
        return PANEL * self.kmax.size

    def ensure(self, q_needed: float) -> None:
        """Build panels until the table covers ``q <= q_needed`` (capped at ``S_MAX^2``)."""
        s_needed = min(math.sqrt(max(q_needed, 0.0)), S_MAX)
        while self.s_hi < s_needed + 1e-12:
            self._add_panel()

    def _add_panel(self) -> None:
        i = self.kmax.size
        lo, hi = i * PANEL, (i + 1) * PANEL
        s_nodes = 0.5 * (lo + hi) + 0.5 * (hi - lo) * _NODES
        q_nodes = s_nodes**2
        moments = np.array([self.engine.moments(float(q)) for q in q_nodes])
        v_hi = self.engine.moments(hi * hi)[0]
        kmax = self._panel_kmax(hi * hi, v_hi)
        b = self._hermite_squares(q_nodes, kmax)
        mc = _cheb_coefficients(moments)
        bc = _cheb_coefficients(b)
        # self-check against direct quadrature at two off-node points
        for t in (-0.37, 0.81):
            s = 0.5 * (lo + hi) + 0.5 * (hi - lo) * t
            direct = np.array(self.engine.moments(s * s))
            approx = np.polynomial.chebyshev.chebval(t, mc)
            err = float(np.max(np.abs(approx - direct) / np.maximum(np.abs(direct), 1e-300)))
            self.max_error = max(self.max_error, err)
            if err > 1e-12:
                warnings.warn(f"{self.act.name}: Chebyshev table error {err:.1e} at q={s * s:.4g}", QuadratureWarning,
                              stacklevel=3)
        width = max(self.b_coef.shape[1], kmax + 1)
        self.b_coef = _pad(self.b_coef, width)
        self.moment_coef = np.concatenate([self.moment_coef, mc[None]])
        self.b_coef = np.concatenate([self.b_coef, _pad(bc.T[None], width)])
        self.kmax = np.append(self.kmax, kmax)

    def _panel_kmax(self, q: float, v: float) -> int:
        if self.act.closed_form is not None:
            return 0  # the correlation map is used in closed form
        kmax = 64
        while kmax < K_TABLE:
            b = self._hermite_squares(np.array([q]), kmax)[0]
            if v - b.sum() <= TAIL_RTOL * v or b[kmax // 2:].sum() <= 1e-3 * TAIL_RTOL * v:
                break
            kmax *= 2
        return min(kmax, K_TABLE)

    def _hermite_squares(self, q_nodes: np.ndarray, kmax: int) -> np.ndarray:
        """``a_k(q)^2`` at several ``q`` (rows) sharing one quadrature rule (the finest the largest ``q`` needs)."""
        act = self.act
        qmax = float(q_nodes.max())
        if qmax == 0.0 or kmax == 0:
            out = np.zeros((q_nodes.size, kmax + 1))
            out[:, 0] = [float(act.phi(0.0)) ** 2 if q == 0 else np.nan for q in q_nodes]
            if np.isnan(out).any():
                out[:, 0] = [self.engine.moments(float(q))[0] for q in q_nodes]
            return out
        z, w = _rule_from_breaks(_breakpoints(qmax, act.kinks, Z_MAX + 2.0, kmax, act.oscillatory), GL_NODES)
        if act.kinks:
            # kinks sit at different z for each q: add all their panel boundaries to one shared rule
            extra = np.concatenate([np.asarray(act.kinks) / math.sqrt(q) for q in q_nodes if q > 0])
            b = np.union1d(_breakpoints(qmax, act.kinks, Z_MAX + 2.0, kmax, act.oscillatory),
                           extra[np.abs(extra) < Z_MAX + 2.0])
            z, w = _rule_from_breaks(b, GL_NODES)
        f = act.phi(np.sqrt(q_nodes)[:, None] * z[None, :]) * w[None, :]
        coef = np.empty((q_nodes.size, kmax + 1))
        prev = np.ones_like(z)
        coef[:, 0] = f.sum(axis=1)
        if kmax >= 1:
            cur = z.copy()
            coef[:, 1] = f @ cur
            for k in range(1, kmax):
                prev, cur = cur, (z * cur - math.sqrt(k) * prev) / math.sqrt(k + 1)
                coef[:, k + 1] = f @ cur
        return coef**2


def _pad(a: np.ndarray, width: int) -> np.ndarray:
    """Zero-pad axis 1 (the Hermite degree) to ``width``."""
    if a.shape[1] >= width:
        return a
    out = np.zeros((a.shape[0], width, a.shape[2]))
    out[:, : a.shape[1]] = a
    return out


# ---------------------------------------------------------------------------------------------------------------------
# Numba kernels
# ---------------------------------------------------------------------------------------------------------------------


@numba.njit(cache=True)
def _cheb(coef, panel, t, col):
    """Clenshaw evaluation of the Chebyshev series ``coef[panel, :, col]`` at ``t`` in [-1, 1]."""
    b1 = 0.0
    b2 = 0.0
    for j in range(coef.shape[1] - 1, 0, -1):
        b1, b2 = 2.0 * t * b1 - b2 + coef[panel, j, col], b1
    return t * b1 - b2 + coef[panel, 0, col]


@numba.njit(cache=True)
def _cheb_row(coef, panel, k, t):
    """Clenshaw evaluation of ``coef[panel, k, :]`` (contiguous) at ``t``."""
    b1 = 0.0
    b2 = 0.0
    for j in range(coef.shape[2] - 1, 0, -1):
        b1, b2 = 2.0 * t * b1 - b2 + coef[panel, k, j], b1
    return t * b1 - b2 + coef[panel, k, 0]


@numba.njit(cache=True)
def _locate(q, s_hi):
    s = math.sqrt(q)
    if s >= s_hi:
        return -1, 0.0
    i = int(s / PANEL)
    t = 2.0 * (s - i * PANEL) / PANEL - 1.0
    return i, t


@numba.njit(cache=True)
def _g(mc, s_hi, sw2, sb2, q, m0):
    if q == 0.0:  # exact values at q = 0 (the interpolant is only accurate to rounding there)
        return sw2 * m0[0] + sb2, sw2 * m0[2] - 1.0, m0[0], m0[1], m0[2]
    i, t = _locate(q, s_hi)
    if i < 0:
        return math.nan, math.nan, math.nan, math.nan, math.nan
    v = _cheb(mc, i, t, 0)
    d = _cheb(mc, i, t, 1)
    vp = _cheb(mc, i, t, 2)
    return sw2 * v + sb2 - q, sw2 * vp - 1.0, v, d, vp


@numba.njit(cache=True)
def _q_star(mc, s_hi, sw2, sb2, m0):
    """Mirror of Engine.q_fixed_point on the tables; returns nan if the table is left (caller falls back)."""
    g0, gp0, _, _, _ = _g(mc, s_hi, sw2, sb2, 0.0, m0)
    if g0 <= 0.0:
        if gp0 <= 0.0:
            return 0.0
        lo = 0.0
        q = 1e-8
    else:
        lo = 0.0
        q = g0
    hi = 0.0
    while True:
        gq, _, _, _, _ = _g(mc, s_hi, sw2, sb2, q, m0)
        if math.isnan(gq):
            return math.nan
        if gq <= 0.0:
            hi = q
            break
        lo = q
        q = q + max(gq, q)
    q = hi
    for _ in range(200):
        gq, gpq, _, _, _ = _g(mc, s_hi, sw2, sb2, q, m0)
        if gq == 0.0:
            return q
        if gq > 0.0:
            lo = q
        else:
            hi = q
        q_new = q - gq / gpq if gpq != 0.0 else math.inf
        if not (lo < q_new < hi):
            q_new = 0.5 * (lo + hi)
        if abs(q_new - q) <= 1e-15 * max(q, 1e-300) or hi - lo <= 4e-16 * hi:
            return q_new
        q = q_new
    return math.nan


@numba.njit(cache=True)
def _divided_series(b, kmax, c):
    """``P(c) = sum_{j<kmax} c^j T_j`` and ``P'(c)``, ``T_j = sum_{j<k<=kmax} b_k`` (Horner, suffix sums accumulated
    on the way down): the truncated Mehler series with its trivial root divided out, ``sum_k b_k (1 - c^k) / (1 - c)``.
    All coefficients are >= 0, so ``P`` is increasing and convex on [0, 1] and is evaluated without cancellation."""
    t = 0.0
    p = 0.0
    dp = 0.0
    for j in range(kmax - 1, -1, -1):
        t += b[j + 1]
        dp = dp * c + p
        p = p * c + t
    return p, dp


@numba.njit(cache=True)
def settle_c(b, kmax, q, sw2, chi1, qd, c0):
    """Chaotic fixed point ``c*`` of the correlation map from the Mehler series ``b_0..b_kmax`` (``b_k = a_k(q)^2``).

    ``sw2 (V - K(c)) = q (1 - c)`` has the trivial root ``c = 1``; dividing it out leaves
    ``H(c) = sw2 sum_j c^j T_j - q`` with ``T_j = sum_{k>j} b_k``, increasing and convex with ``H(0) <= 0`` and
    ``H(1) = q (chi_1 - 1) > 0``, whose slope stays ``O(q)`` up to the critical line (well conditioned, unlike the
    undivided form whose slope at ``c*`` is ``q (1 - chi_c)``). Degrees above ``kmax`` add
    ``sum_{k>kmax} b_k (1 - c^k)/(1 - c)``, between 0 and ``dtail = q D - sum_{k<=kmax} k b_k`` (``sum_k k b_k = q D``):
    the root with the tail set to 0 and to ``dtail`` bracket the exact ``c*``; ``c*`` is their midpoint.

    Returns ``(c*, 1 - chi_c, gap, dtail / (q D))``: ``gap`` is the bracket width (``nan`` where the truncated series
    has no root, i.e. more degrees are needed); the caller accepts the point when ``gap <= c_tol``, or when the series
    has converged to the precision of its inputs (``dtail / (q D)`` at rounding level: the bracket then only reflects
    that precision, e.g. ``c* = 0`` at ``sigma_b2 = 0`` for odd ``phi`` where the slope ``sw2 T_1`` is tiny at small
    ``q``). ``1 - chi_c`` is computed as
    ``(1 - chi_1) + sw2/q [(1 - c) sum_j c^j W_j + (tail of sum_k k b_k (1 - c^(k-1)), midpoint of [0, dtail])]``
    with ``W_j = sum_{k>=j+2} k b_k``: positive terms only, so it keeps its relative accuracy next to the critical line.
    """
    dpartial = 0.0
    for k in range(kmax, 0, -1):
        dpartial += k * b[k]
    if sw2 * dpartial <= q:  # H(1) <= 0 for the truncated series: no root below 1 yet
        return math.nan, math.nan, math.nan, math.nan
    dtail = max(qd - dpartial, 0.0)
    lo = 0.0
    hi = 1.0
    c = min(max(c0, 0.0), 1.0)
    slope = 0.0
    ok = False
    last_step = math.inf
    for _ in range(200):
        p, dp = _divided_series(b, kmax, c)
        h = sw2 * p - q
        slope = dp
        if h == 0.0:
            ok = True
            break
        if h > 0.0:
            hi = c
        else:
            lo = c
        c_new = c - h / (sw2 * dp) if dp > 0.0 else -1.0
        newton = lo <= c_new <= hi
        if not newton:
            c_new = 0.5 * (lo + hi)
        step = abs(c_new - c)
        # converged: step at a few ulps, or two Newton steps that no longer shrink (h is at its rounding floor; Newton
        # then alternates between neighbours of the root)
        if step <= 4e-16 or hi - lo <= 4e-16 or (newton and step >= 0.5 * last_step):
            c = c_new
            ok = True
            break
        last_step = step if newton else math.inf
        c = c_new
    if not ok or slope <= 0.0:
        return math.nan, math.nan, math.nan, math.nan
    gap = (dtail + 4e-16 * qd) / slope
    c = max(c - 0.5 * gap, 0.0)
    w = 0.0
    s = 0.0
    for j in range(kmax - 2, -1, -1):
        w += (j + 2) * b[j + 2]
        s = s * c + w
    one_minus_chic = (1.0 - chi1) + sw2 / q * ((1.0 - c) * s + 0.5 * dtail)
    return c, one_minus_chic, gap, dtail / qd


@numba.njit(parallel=True, cache=True)
def solve_grid(mc, bc, kmaxs, s_hi, m0, sw2, sb2, critical_tol, c_tol, out):
    """Fill ``out[p] = (q*, c*, chi_1, chi_c, sigma_w2 V'(q*), status)``; status 0 done, 1 left the table,
    2 the Mehler series cannot bound c* (both go to the scalar path)."""
    n = sw2.size
    for p in numba.prange(n):
        a = sw2[p]
        bb = sb2[p]
        q = _q_star(mc, s_hi, a, bb, m0)
        if math.isnan(q):
            out[p, 5] = 1.0
            continue
        _, _, _, d, vp = _g(mc, s_hi, a, bb, q, m0)
        chi1 = a * d
        out[p, 0] = q
        out[p, 2] = chi1
        out[p, 4] = a * vp
        out[p, 5] = 0.0
        if chi1 <= 1.0 + critical_tol or q == 0.0:
            out[p, 1] = 1.0
            out[p, 3] = chi1
            continue
        i, t = _locate(q, s_hi)
        kfull = kmaxs[i]
        if kfull == 0:
            out[p, 5] = 2.0
            continue
        b = np.empty(kfull + 1)
        done = 0
        kmax = min(kfull, 32)
        c = 0.0
        ok = False
        while True:
            for k in range(done, kmax + 1):
                b[k] = max(_cheb_row(bc, i, k, t), 0.0)
            done = kmax + 1
            c_new, one_minus_chic, gap, rel_tail = settle_c(b, kmax, q, a, chi1, q * d, c)
            ok = gap <= c_tol or rel_tail <= TABLE_TAIL_RTOL
            if ok or kmax == kfull:
                break
            if not math.isnan(c_new):
                c = c_new
            kmax = min(4 * kmax, kfull)
        if not ok:
            out[p, 5] = 2.0
            continue
        out[p, 1] = c_new
        out[p, 3] = 1.0 - one_minus_chic
