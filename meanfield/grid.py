"""The Numba grid solver: all fully connected quantities at many ``(sigma_w2, sigma_b2)`` points in parallel, from the
Chebyshev tables of :mod:`meanfield.tables` (functions of ``q`` only).

Each point runs the same algorithms as the scalar path: ``q*`` by :func:`meanfield.fixed_points.q_star_step` (the
one safeguarded Newton method), ``c*`` by :func:`meanfield.fixed_points.settle_c` from degree
:data:`GRID_DEGREE_START`, doubling up to the panel's ``K``, until the bracket from the series' tail is narrower than
``c_tol`` (``b_k`` are interpolated only to the Chebyshev length that their size needs,
:attr:`meanfield.tables.ChebyshevTables.b_lengths`). Points that leave the tables, or whose bracket stays wider, are
flagged for the scalar path.
"""

from __future__ import annotations

import math

import numba
import numpy as np

from .fixed_points import q_star_step, settle_c, truncation_numerator
from .tables import Q_SERIES_MIN, locate, table_moments, table_row

__all__ = ["DONE", "GRID_DEGREE_START", "LEFT_TABLE", "NEEDS_SCALAR", "TABLE_TAIL_RTOL", "solve_points"]

#: Status codes in column 5 of :func:`solve_points`' output.
DONE, LEFT_TABLE, NEEDS_SCALAR = 0.0, 1.0, 2.0
#: First series degree the grid kernel tries for c* (then doubling to the panel's degree).
GRID_DEGREE_START = 64
#: A degree whose predicted bracket width exceeds this many times ``c_tol`` is skipped (the next one is tried).
SKIP_FACTOR = 100.0
#: Relative tail ``dtail / (q D)`` at which a grid point's series counts as converged to the tables' precision.
TABLE_TAIL_RTOL = 1e-13


@numba.njit(parallel=True, cache=True)
def solve_points(mc, bc, blen, kmaxs, s_hi, m0, sw2, sb2, c_tol, with_c, out):
    """Fill ``out[p] = (q*, c*, chi_1, chi_c, sigma_w2 V'(q*), status)`` for the paired points ``(sw2[p], sb2[p])``.

    Status :data:`DONE`, :data:`LEFT_TABLE` (``q*`` beyond the tables) or :data:`NEEDS_SCALAR` (the series cannot
    bound ``c*``, or ``q* <`` :data:`meanfield.tables.Q_SERIES_MIN`); the last two go to the scalar path. Without
    ``with_c`` only columns 0 and 5 are filled (``q*`` alone). ``c*`` is solved wherever ``chi_1 > 1`` and ``q* > 0``.
    """
    n = sw2.size
    for p in numba.prange(n):
        a = sw2[p]
        bb = sb2[p]
        state = np.zeros(5)
        q = 0.0
        while q >= 0.0:
            v, d, vp = table_moments(mc, s_hi, q, m0)
            q = q_star_step(state, a, bb, a * v + bb - q, a * vp - 1.0)
        q = state[3]
        if not math.isfinite(q):
            out[p, 5] = LEFT_TABLE
            continue
        out[p, 5] = DONE
        out[p, 0] = q
        if not with_c:
            continue
        v, d, vp = table_moments(mc, s_hi, q, m0)
        chi1 = a * d
        out[p, 2] = chi1
        out[p, 4] = a * vp
        if chi1 <= 1.0 or q == 0.0:
            out[p, 1] = 1.0
            out[p, 3] = chi1
            continue
        i, t = locate(q, s_hi)
        kfull = kmaxs[i]
        if kfull == 0 or q < Q_SERIES_MIN:
            out[p, 5] = NEEDS_SCALAR
            continue
        b = np.empty(kfull + 1)
        done = 0
        kmax = min(kfull, GRID_DEGREE_START)
        c = 0.0
        ok = False
        c_new = math.nan
        one_minus_chic = math.nan
        gap_prev = math.nan
        num_prev = math.nan
        while True:
            for k in range(done, kmax + 1):
                b[k] = max(table_row(bc, blen, i, k, t), 0.0)
            done = kmax + 1
            if kmax < kfull and gap_prev > 0.0 and num_prev > 0.0:
                # predicted bracket width at this degree (the slope hardly changes): skip degrees that cannot settle
                if gap_prev * truncation_numerator(b, kmax, q * d, v, c) / num_prev > SKIP_FACTOR * c_tol:
                    kmax = min(2 * kmax, kfull)
                    continue
            c_new, one_minus_chic, gap, rel_tail = settle_c(b, kmax, q, a, bb, chi1, q * d, v, c)
            ok = gap <= c_tol or rel_tail <= TABLE_TAIL_RTOL
            if ok or kmax == kfull:
                break
            if not math.isnan(c_new):
                c = c_new
                gap_prev = gap
                num_prev = truncation_numerator(b, kmax, q * d, v, c)
            kmax = min(2 * kmax, kfull)
        if not ok:
            out[p, 5] = NEEDS_SCALAR
            continue
        out[p, 1] = c_new
        out[p, 3] = 1.0 - one_minus_chic
