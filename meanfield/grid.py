"""The Numba grid solver: all fully connected quantities at many ``(sigma_w2, sigma_b2)`` points in parallel, from the
Chebyshev tables of :mod:`meanfield.tables` (functions of ``q`` only).

Each point runs the same algorithms as the scalar path: ``q*`` by :func:`meanfield.fixed_points.q_star_step` (the
one safeguarded Newton method), ``c*`` by :func:`meanfield.fixed_points.settle_c` on the Mehler series ``b_0..b_K``
(``b_k`` interpolated from the tables by :func:`meanfield.tables.table_rows`), accepted once the bracket from the
series' tail is narrower than ``c_tol`` (or the tail is at the tables' precision). Points that leave the tables, or
whose bracket stays wider up to the panel's full degree, are flagged for the scalar path.

Work is split into blocks of :data:`BLOCK` consecutive points. A block is solved in order by one thread, and each of
its chaotic points starts from the previous chaotic point's ``c*`` and bracket slope (:func:`correlation_point`): with
them the degree ``K`` is predicted from the running Parseval tails while the ``b_k`` are evaluated, so the series is
summed once at (close to) the smallest degree that settles, and Newton's method starts next to the root. Results
depend only on the block a point falls in, never on the thread or the number of threads. Threads take the next free
block from a shared counter (:func:`fetch_add`), so the load balances itself however the work is spread over the grid
(``sigma_w2``-major grids put the chaotic points at the end) and however busy the cores are.
"""

from __future__ import annotations

import math

import numba
import numpy as np
from numba import types
from numba.core import cgutils
from numba.extending import intrinsic

from .fixed_points import q_star_step, settle_c, truncation_numerator
from .tables import Q_SERIES_MIN, chebyshev_basis, locate, table_moments, table_rows

__all__ = [
    "BLOCK", "DEGREE_STEP", "DONE", "GRID_DEGREE_START", "LEFT_TABLE", "NEEDS_SCALAR", "PREDICT_MARGIN",
    "TABLE_TAIL_RTOL", "XI_C_SCALE", "correlation_point", "fetch_add", "solve_points",
]

#: Status codes in column 5 of :func:`solve_points`' output.
DONE, LEFT_TABLE, NEEDS_SCALAR = 0.0, 1.0, 2.0
#: Consecutive points solved in order by one thread (each chaotic point starting from the previous one's ``c*``).
BLOCK = 128
#: Series degree of a block's first ``c*`` attempt, before any ``c*`` or slope is known (then doubling).
GRID_DEGREE_START = 64
#: Granularity of the predicted series degree.
DEGREE_STEP = 16
#: The predicted degree is the first whose predicted bracket is below this fraction of ``c_tol``.
PREDICT_MARGIN = 0.5
#: Relative tail ``dtail / (q D)`` at which a grid point's series counts as converged to the tables' precision.
TABLE_TAIL_RTOL = 1e-13
#: Within ``1 - chi_c <`` this of the critical line the acceptance tolerances shrink in proportion to ``1 - chi_c``
#: (:func:`correlation_point`).
XI_C_SCALE = 1e-2


@intrinsic
def fetch_add(typingctx, counter, value):
    """Atomically add ``value`` to ``counter[0]`` (an int64 array) and return the previous value."""
    if not (isinstance(counter, types.Array) and counter.dtype == types.int64 and isinstance(value, types.Integer)):
        return None
    sig = types.int64(counter, value)

    def codegen(context, builder, signature, args):
        array_type, value_type = signature.args
        array = context.make_array(array_type)(context, builder, args[0])
        ptr = cgutils.get_item_pointer(context, builder, array_type, array, [context.get_constant(types.intp, 0)])
        step = context.cast(builder, args[1], value_type, types.int64)
        return builder.atomic_rmw("add", ptr, step, "seq_cst")

    return sig, codegen


@numba.njit(cache=True)
def _settles(c, inv_slope, sw2, q, qd, v, dsum, psum, k, gap_tol, tail_tol):
    """Whether :func:`settle_c` at degree ``k`` is predicted to accept, from ``c`` and ``1 / slope`` near the root:
    its ``gap`` (the bracket, :func:`meanfield.fixed_points.truncation_numerator` times ``1 / slope``, and the ``chi_c``
    term ``sw2/q dtail c^k``) at most ``gap_tol``, or the relative tail ``dtail / (q D)`` at most ``tail_tol``;
    ``dsum = sum_{1<=j<=k} j b_j``, ``psum = sum_{j<=k} b_j``."""
    dtail = max(qd - dsum, 0.0)
    if dtail <= tail_tol * qd:
        return True
    return (truncation_numerator(c, qd, v, dsum, psum) * inv_slope <= gap_tol
            and sw2 / q * dtail * c**k <= gap_tol)


@numba.njit(cache=True)
def _extend(bc, panel, basis, done, k, b, dsum, psum):
    """Evaluate ``b[done..k]`` (nothing if ``k < done``) and add them to the running sums ``dsum = sum_j j b_j``,
    ``psum = sum_j b_j``."""
    if k < done:
        return dsum, psum
    dk, pk = table_rows(bc, panel, basis, done, k, b)
    return dsum + dk, psum + pk


@numba.njit(cache=True)
def _first_guess(hint, q):
    """Starting ``c`` from the hint: linear extrapolation in ``q`` through the last two points when ``q`` lies
    ahead of them by at most twice their spacing (consecutive points along a grid line), else the last ``c*``."""
    c1, q1, c0, q0 = hint[0], hint[3], hint[4], hint[5]
    if math.isfinite(c0) and q1 != q0:
        r = (q - q1) / (q1 - q0)
        if 0.0 < r <= 2.0:
            return min(max(c1 + r * (c1 - c0), 0.0), 1.0)
    return c1


@numba.njit(cache=True)
def correlation_point(bc, panel, basis, kfull, q, sw2, sb2, chi1, qd, v, c_tol, hint, b):
    """``(c*, 1 - chi_c, ok)`` at one chaotic point from the panel's series (at most degree ``kfull``): the fixed
    point of the correlation map (Schoenholz et al. 2017, Eq. 5) in its Mehler form (``docs/formulas.md``) by
    :func:`meanfield.fixed_points.settle_c`, and ``chi_c`` its slope there.

    ``hint = (c*, 1/slope, 1 - chi_c, q*, c*', q*')`` of the last chaotic point solved nearby and ``(c*', q*')`` of the
    one before (``nan`` when unknown) is updated in place. With a hint the ``b_k`` are evaluated :data:`DEGREE_STEP`
    at a time into ``b`` until :func:`_settles` predicts acceptance with :data:`PREDICT_MARGIN` to spare, and
    :func:`settle_c` runs there from :func:`_first_guess`; without one, first at :data:`GRID_DEGREE_START` from
    ``c = 0``. A degree that does not settle gives a fresh hint and the prediction continues above it (doubling while
    the truncated series has no root).

    Acceptance is :func:`settle_c`'s own bracket, whatever the prediction said: ``gap <= c_tol s`` or
    ``dtail / (q D) <=`` :data:`TABLE_TAIL_RTOL` ``s`` with ``s = min(1, (1 - chi_c) /`` :data:`XI_C_SCALE` ``)``, so
    that ``xi_c``, whose relative condition number is ``~ 1/(1 - chi_c)``, keeps its accuracy next to the critical
    line; at the full degree ``kfull``, ``s = 1`` (the scalar path's criterion).
    """
    done = 0  # b[0..done-1] evaluated and summed into dsum, psum
    dsum = 0.0
    psum = 0.0
    kmax = 0
    predict = math.isfinite(hint[0]) and hint[1] > 0.0
    c_start = _first_guess(hint, q) if predict else 0.0
    c_last = hint[0]
    q_last = hint[3]
    while True:
        c_h = hint[0]
        inv_h = hint[1]
        scale = min(max(hint[2] / XI_C_SCALE, 0.0), 1.0) if math.isfinite(hint[2]) else 1.0
        if predict:
            k = kmax
            while k < kfull:
                k = min((k // DEGREE_STEP + 1) * DEGREE_STEP, kfull)
                dsum, psum = _extend(bc, panel, basis, done, k, b, dsum, psum)
                done = max(done, k + 1)
                if _settles(c_h, inv_h, sw2, q, qd, v, dsum, psum, k, PREDICT_MARGIN * scale * c_tol,
                            PREDICT_MARGIN * scale * TABLE_TAIL_RTOL):
                    break
        else:
            k = min(GRID_DEGREE_START if kmax == 0 else 2 * kmax, kfull)
            dsum, psum = _extend(bc, panel, basis, done, k, b, dsum, psum)
            done = max(done, k + 1)
        kmax = k
        c, one_minus_chic, gap, rel_tail = settle_c(b, kmax, q, sw2, sb2, chi1, qd, v, c_start)
        if not math.isnan(c):
            num = truncation_numerator(c, qd, v, dsum, psum)  # dsum, psum are the sums of b[0..kmax]
            if num > 0.0 and math.isfinite(num):
                hint[0] = c
                hint[1] = gap / num
                hint[2] = one_minus_chic
                hint[3] = q
                hint[4] = c_last
                hint[5] = q_last
                scale = min(max(one_minus_chic / XI_C_SCALE, 0.0), 1.0)
                predict = True
                c_start = c
        if kmax >= kfull:
            return c, one_minus_chic, gap <= c_tol or rel_tail <= TABLE_TAIL_RTOL
        if not math.isnan(c) and (gap <= scale * c_tol or rel_tail <= scale * TABLE_TAIL_RTOL):
            return c, one_minus_chic, True


@numba.njit(cache=True)
def _solve_block(mc, bc, kmaxs, s_hi, m0, sw2, sb2, c_tol, with_c, out, start, stop, state, basis, b, hint):
    """:func:`solve_points` for points ``start..stop-1``, in order (scratch arrays passed in)."""
    hint[:] = math.nan
    for p in range(start, stop):
        a = sw2[p]
        bb = sb2[p]
        state[:] = 0.0
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
        chebyshev_basis(t, basis)
        c, one_minus_chic, ok = correlation_point(bc, i, basis, kfull, q, a, bb, chi1, q * d, v, c_tol, hint, b)
        if not ok:
            out[p, 5] = NEEDS_SCALAR
            continue
        out[p, 1] = c
        out[p, 3] = 1.0 - one_minus_chic


@numba.njit(parallel=True, cache=True)
def solve_points(mc, bc, kmaxs, s_hi, m0, sw2, sb2, c_tol, with_c, out, workers):
    """Fill ``out[p] = (q*, c*, chi_1, chi_c, sigma_w2 V'(q*), status)`` for the paired points ``(sw2[p], sb2[p])``.

    Status :data:`DONE`, :data:`LEFT_TABLE` (``q*`` beyond the tables) or :data:`NEEDS_SCALAR` (the series cannot
    bound ``c*``, or ``q* <`` :data:`meanfield.tables.Q_SERIES_MIN`); the last two go to the scalar path. Without
    ``with_c`` only columns 0 and 5 are filled (``q*`` alone). ``c*`` is solved wherever ``chi_1 > 1`` and ``q* > 0``.
    Blocks of :data:`BLOCK` points go to whichever of ``workers`` loops is free (module docstring); pass at least the
    number of threads (``numba.get_num_threads()``; more cost nothing: a loop that finds no block left returns).
    """
    n = sw2.size
    blocks = (n + BLOCK - 1) // BLOCK
    counter = np.zeros(1, dtype=np.int64)
    for _ in numba.prange(max(min(workers, blocks), 1)):
        state = np.empty(5)
        basis = np.empty(bc.shape[2])
        b = np.empty(bc.shape[1])
        hint = np.empty(6)
        while True:
            block = fetch_add(counter, 1)
            if block >= blocks:
                break
            _solve_block(mc, bc, kmaxs, s_hi, m0, sw2, sb2, c_tol, with_c, out, block * BLOCK,
                         min(n, (block + 1) * BLOCK), state, basis, b, hint)
