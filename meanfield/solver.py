"""One mean-field solver per activation: composes the moments, fixed points, tables and grid kernel.

:func:`solver_for` keeps one :class:`MeanFieldSolver` per activation. Points go through the Numba grid kernel of
:mod:`meanfield.grid` on the Chebyshev tables of :mod:`meanfield.tables` when there are many of them (more than
:data:`GRID_THRESHOLD`) or when the tables already exist (in memory or in the disk cache; built-in activations always
use them), and through the scalar path (:meth:`MeanFieldSolver.point`: quadrature moments,
:mod:`meanfield.fixed_points`) otherwise; points the tables cannot settle go to the scalar path too.
"""

from __future__ import annotations

import math
from functools import lru_cache

import numba
import numpy as np

from .activations import Activation, builtin_activation_names
from .closed_forms import closed_form_kind
from .fixed_points import (
    C_TOL,
    correlation_fixed_point,
    critical_point,
    critical_sigma_w2,
    depth_scales,
    phase_labels,
    solve_q_star,
)
from .grid import DONE, LEFT_TABLE, NEEDS_SCALAR, solve_points
from .hermite import hermite_rows
from .moments import LengthMoments
from .tables import S_MAX, ChebyshevTables

__all__ = ["GRID_THRESHOLD", "KEYS", "MeanFieldSolver", "is_homogeneous", "solver_for"]

#: Point sets larger than this always go through the Chebyshev tables and the Numba kernel.
GRID_THRESHOLD = 64
#: Point sets up to this size run the Numba kernel on one thread (waking the thread pool costs more than it saves).
SERIAL_MAX = 256
#: Names of the quantities :meth:`MeanFieldSolver.solve` returns, in order.
KEYS = ("q_star", "c_star", "chi_1", "chi_c", "xi_q", "xi_c", "phase", "q_star_finite")


def is_homogeneous(act: Activation) -> bool:
    """Whether ``phi`` is positively homogeneous of degree 1 (``Activation.homogeneous``; relu, leaky relu, linear)."""
    flag = getattr(act, "homogeneous", None)
    if flag is None:
        flag = closed_form_kind(act) in ("linear", "leaky_relu")
    return bool(flag)


class MeanFieldSolver:
    """Fully connected mean-field quantities for one activation (use :func:`solver_for`)."""

    def __init__(self, act: Activation):
        self.act = act
        self.moments = LengthMoments(act)
        self.homogeneous = is_homogeneous(act)
        self._tables: ChebyshevTables | None = None
        self._builtin = act.name.split("(")[0] in builtin_activation_names()

    # -- tables ------------------------------------------------------------------------------------------------------

    def _squares(self, q_nodes: np.ndarray, kmax: int) -> np.ndarray:
        order = np.argsort(q_nodes)
        _, a = hermite_rows(self.act, q_nodes[order], kmax)
        out = np.empty_like(a)
        out[order] = a * a
        return out

    def tables(self) -> ChebyshevTables:
        """The activation's Chebyshev tables (loaded from the disk cache when there)."""
        if self._tables is None:
            squares = None if self.act.kinks else self._squares
            self._tables = ChebyshevTables(self.moments, squares, key="fc:" + self.act.name)
        return self._tables

    def _use_tables(self, n: int) -> bool:
        if closed_form_kind(self.act) is not None or self.homogeneous:
            return False
        return n > GRID_THRESHOLD or self._builtin or self.tables().kmax.size > 0

    # -- points ------------------------------------------------------------------------------------------------------

    def point(self, sw2: float, sb2: float, q_only: bool = False, q_guess: float | None = None) -> tuple:
        """``(q*, c*, chi_1, chi_c, xi_q, xi_c, phase, q_star_finite)`` at one point by the scalar path.

        With ``q_only`` only ``q*`` is solved (the rest NaN). Positively homogeneous activations without a finite
        ``q*`` still get ``chi_1 = sw2 D`` (independent of ``q``) and their phase. ``q_guess``: ``q*`` from the
        tables, polished by :func:`meanfield.fixed_points.solve_q_star` instead of a search from ``q = 0``.
        """
        q = solve_q_star(self.moments, sw2, sb2, guess=q_guess)
        nan = math.nan
        if q_only:
            return (q, nan, nan, nan, nan, nan, None, math.isfinite(q))
        if not math.isfinite(q):
            chi1 = sw2 * self.moments(1.0)[1] if self.homogeneous else nan
            label = phase_labels(chi1)[()] if self.homogeneous else "chaotic"
            return (math.inf, nan, chi1, nan, nan, nan, label, False)
        _, d, vp = self.moments(q)
        chi1 = sw2 * d
        if chi1 > 1.0 and q > 0.0:
            c, chic = correlation_fixed_point(self.act, self.moments, q, sw2, sb2)
        else:
            c, chic = 1.0, chi1
        xi_q, xi_c = depth_scales([sw2 * vp, chic])
        return (q, c, chi1, chic, float(xi_q), float(xi_c), phase_labels(chi1)[()], True)

    def solve(self, sw2: np.ndarray, sb2: np.ndarray, progress: bool = False, q_only: bool = False
              ) -> dict[str, np.ndarray]:
        """All quantities at each of the paired points ``(sw2[i], sb2[i])``; dict of 1-D arrays keyed by :data:`KEYS`.

        With ``q_only`` only ``q_star`` and ``q_star_finite`` are meaningful (no correlation fixed point is solved).
        """
        sw2 = np.ascontiguousarray(sw2, dtype=np.float64)
        sb2 = np.ascontiguousarray(sb2, dtype=np.float64)
        n = len(sw2)
        out = np.full((n, 6), np.nan)
        todo = np.arange(n)
        if n and (n > GRID_THRESHOLD or not q_only) and self._use_tables(n):  # a few q* alone: the scalar path
            tab = self.tables()
            tab.ensure(4.0)
            status = np.full(n, LEFT_TABLE)
            pending = np.arange(n)
            bar = _progress(n, progress)
            m0 = np.array(self.moments(0.0))
            while pending.size:
                everything = pending.size == n  # the first pass writes straight into out
                block = out if everything else np.full((pending.size, 6), np.nan)
                threads = numba.get_num_threads()
                if pending.size <= SERIAL_MAX:
                    numba.set_num_threads(1)
                try:
                    solve_points(tab.moment_coef, tab.b_coef, tab.kmax, tab.s_hi, m0,
                                 sw2 if everything else sw2[pending], sb2 if everything else sb2[pending], C_TOL,
                                 not q_only, block, numba.get_num_threads())
                finally:
                    numba.set_num_threads(threads)
                if not everything:
                    out[pending] = block
                status[pending] = block[:, 5]
                if bar is not None:
                    bar.update(int(np.sum(block[:, 5] != LEFT_TABLE)))
                pending = pending[block[:, 5] == LEFT_TABLE]
                if pending.size == 0 or tab.s_hi >= S_MAX:
                    break
                tab.ensure(min(4.0 * tab.s_hi**2, S_MAX**2))
            if bar is not None:
                bar.update(int(pending.size))
                bar.close()
            todo = np.flatnonzero(status != DONE)
        result = {
            "q_star": out[:, 0], "c_star": out[:, 1], "chi_1": out[:, 2], "chi_c": out[:, 3],
            "xi_q": depth_scales(out[:, 4]), "xi_c": depth_scales(out[:, 3]),
            "phase": phase_labels(out[:, 2]), "q_star_finite": np.ones(n, dtype=bool),
        }
        for i in todo:
            guess = float(out[i, 0]) if out[i, 5] == NEEDS_SCALAR else None  # q* from the tables, c* not settled
            row = self.point(float(sw2[i]), float(sb2[i]), q_only=q_only, q_guess=guess)
            for name, value in zip(KEYS, row, strict=True):
                result[name][i] = value
        return result

    # -- critical line -----------------------------------------------------------------------------------------------

    def critical_point(self, q: float) -> tuple[float, float]:
        """``(sigma_w2, sigma_b2)`` with ``chi_1 = 1`` at fixed point ``q`` (``sigma_b2`` may come out negative)."""
        return critical_point(self.moments, q)

    def critical_sigma_w2(self, sb2: float) -> tuple[float, float]:
        """Critical ``(sigma_w2, q*)`` at a stable ``q*`` (see :func:`meanfield.fixed_points.critical_sigma_w2`)."""
        return critical_sigma_w2(self.act.name, self.moments, sb2, self.homogeneous)


def _progress(total: int, enabled: bool):
    if not enabled:
        return None
    from tqdm.auto import tqdm

    return tqdm(total=total, unit="pt", mininterval=0.5)


@lru_cache(maxsize=64)
def _solver_cached(name: str, act_id: int, act: Activation) -> MeanFieldSolver:
    return MeanFieldSolver(act)


def solver_for(act: Activation) -> MeanFieldSolver:
    """The cached :class:`MeanFieldSolver` of an activation."""
    return _solver_cached(act.name, id(act), act)
