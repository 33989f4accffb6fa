"""Limiting spectrum of ``J J^T`` for a deep network at its mean-field fixed point (free probability).

Pennington, Schoenholz, Ganguli (2017, 2018); paper 002 section 2.2; ``docs/formulas.md``
("Jacobian spectra", "From S-transforms to a density"). ``J = prod_{l=1}^L D^l W^l`` with ``D^l = diag(phi'(h^l))``,
``h^l ~ N(0, q*)``; S-transforms multiply, ``S_{JJ^T}(m) = (S_W(m) S_{D^2}(m))^L``.

Method. The density at ``lam`` solves ``1 + m = lam m S_{JJ^T}(m)`` jointly with ``M_{D^2}(z_D) = m``. Since
``M_{D^2}`` is an explicit sum over the core's quadrature nodes, ``m`` is eliminated: the one unknown is the
subordination point ``z = z_D`` and the equation is ``log lam = F(z)`` with

    F(z) = a log(1 + m) + (L - 1) log m + L log(sigma_w2 z),   m = M_{D^2}(z),
    a = 1 - L (orthogonal weights, S_W = 1/sigma_w2),   a = 1 (square Gaussian weights, S_W = 1/(sigma_w2 (1 + m))),

so depth enters only as a factor of the logs: stable from ``L = 1`` to ``10^4``. Modulo ``2 pi i`` the equation has
``L`` solutions ``e^{2 pi i k / L}`` apart (the L-th roots of one algebraic equation); the physical one is selected by
continuity from the upper edge, where every log is real: the logs of ``1 + m``, ``m`` and ``z`` are continued along
the path (each on the branch nearest its value at the previous point) and Newton solves ``F = u`` exactly on that
branch (with the residual taken modulo ``2 pi i`` the walk hopped between solutions at depth ``10^4``).
``1 + m`` is summed as ``z G_{D^2}(z)`` (no cancellation as ``m -> -1``).
Then ``G(lam) = (1 + m) / lam`` and the density is ``-Im G / pi = -Im m / (pi lam)``, on the branch ``Im z >= 0``.

Support. The upper edge is the first critical point ``F'(x) = 0`` met coming down the real axis from ``x = +inf``
(scanned down from ``10 (L + 1) max D^2``, 40 points a decade, then solved to machine precision). From there the
solution is continued downwards in ``u = log lam`` (adaptive steps, Newton with backtracking, the tangent predictor
in ``log z``, failed steps halved; a step that reaches the cut or drops the density by 1e3 is shortened). Either the
solution returns to the real axis at a second critical point (a soft lower edge, solved the same way), or the density
reaches ``lam -> 0`` (Gaussian weights have a hard edge at 0; activations like tanh, whose ``phi'^2`` comes arbitrarily
close to 0, give a tail in ``log lam``): the grid then stops where the estimated continuous mass below it is under
``tail_tol``, at ``lam = 1e-300``, where the density falls to the rounding level of ``M_{D^2}`` (``1e-13`` of its
peak), or where the subordination point reaches the real axis inside the range of the continuous part of ``D^2``
(the continuation along the cut is ill-conditioned: ELU, orthogonal, depth 30; tanh, orthogonal, depth 1e4, where
``D^2`` is 1e-10 thin there). The mass below the grid is reported as ``tail_mass`` (mass conservation: it includes
the grid's trapezoid error, about 1e-7 of the mass next to the square-root upper edge). A spectrum whose upper edge
lies below ``1e-300`` is one atom at 0 (with a warning). The density is computed on ``num`` points, clustered at
the soft edges, by continuation down from the upper edge; the grid is log-spaced when the support spans more than a
decade.

Resolution of ``D^2``. ``M_{D^2}`` is the transform of the continuous law however close ``z`` comes to the range of
``phi'^2`` (:mod:`rmt.d2_pieces`: the atomic sums plus the subtracted poles of a piecewise Chebyshev model of
``phi'``), so no quadrature refinement is needed anywhere; piecewise-constant ``phi'`` (ReLU, hard tanh) is exact as
atoms.

Atoms. ``P(phi'(h) = 0) > 0`` (ReLU, hard tanh) puts an atom of that mass at ``lam = 0`` (the atom of a free product
at 0 is the largest atom at 0 of its factors). A point-mass ``D^2 = d`` with orthogonal weights (linear networks)
makes ``J J^T = (sigma_w2 d)^L I``: one atom and no continuous part. At depth 1 with orthogonal weights
``J J^T = sigma_w2 D^2`` exactly, with no free-probability smoothing: its law is computed directly by change of
variables (``_pushforward_density``), with atoms where ``phi'`` is constant on an interval. Atoms are listed in
``JacobianSpectrum.atoms`` as ``(location, mass)`` pairs; ``density`` is the continuous part.

Accuracy. As accurate as the Newton solve (MP at depth 1: 3e-11 relative) and ``M_{D^2}`` (about 1e-10 relative up
to the real axis, tested against change of variables and mpmath in ``tests/test_d2_pieces.py``); against the
independent reference (``tests/spectrum_reference.py``: continuation from ``lam -> infinity`` and adaptive quadrature
of the continuous law) see ``tests/test_spectrum_accuracy.py``. A soft lower edge inside the range of a continuous
``phi'^2`` cannot exist (``M_{D^2}(x + i0)`` is complex there) and is not looked for. A lower edge on an atom of
``D^2`` (orthogonal weights, piecewise-constant ``phi'``: ``_atom_edge``) is an inverse-square-root divergence.

Speed. Stieltjes sums over the atoms are summed in real arithmetic (vectorised), over the merged law (equal atoms of
an even ``phi'^2`` once), with the atoms far below or above ``|z|`` summed by their series (in the tails nearly all);
each evaluation adds the poles of the few panels whose Bernstein ellipse can hold a root (Rouche bound), next to a
zero of ``phi'`` from its Taylor expansion; Newton takes its last step unevaluated once the convergence is
quadratic (error below ``1e-13 |z|``); the walk and the trace reuse ``F'`` and ``m`` of each Newton solution;
soft-edge probes run only where the density extrapolates to 0 within a few steps; the upper edge is solved by a
bracketed Newton (no scipy.optimize import on the cold path).
"""

from __future__ import annotations

import math
import warnings
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

import numba
import numpy as np

from meanfield import get_activation

from .checks import check_depth, check_positive, check_weights
from .layers import LayeredEquation, Layers, layered_laws, network_layers

if TYPE_CHECKING:  # pandas is imported where a frame is built (keeps `import rmt` light)
    import pandas as pd

from .d2_pieces import N_COLUMNS, SERIES_TERMS, D2Pieces, d2_pieces, resolved_sums
from .transforms import D2Law, d2_law, fixed_point_variance

__all__ = ["JacobianSpectrum", "jacobian_moments", "jacobian_spectrum"]

TWO_PI = 2.0 * math.pi
#: Lowest grid point: lam below this is not representable with a finite density in float64.
LOG_LAM_FLOOR = math.log(1e-300)
#: Highest representable upper edge (log of a float64 with room for the density's scale).
LOG_LAM_CEIL = math.log(1e300)
NEWTON_TOL = 1e-13
NEWTON_MAXIT = 60
#: A grid step that fails is split into at most 2**MAX_HALVINGS substeps before the point is given up (NaN, warned).
MAX_HALVINGS = 9
#: Points per decade of the downward scan for the upper edge (:func:`_upper_edge`).
EDGE_SCAN_PER_DECADE = 40
#: Relative residual of F at which Newton that stalls is accepted for continuous laws of D^2 (_Equation.loose_rel).
LOOSE_REL = 1e-9

# --------------------------------------------------------------------------------------------------------------------
# numba kernels
# --------------------------------------------------------------------------------------------------------------------


@numba.njit(cache=True)
def _branch_log(x, ref):
    """``log x`` on the branch whose imaginary part is nearest ``ref`` (continuation of the logarithm)."""
    v = np.log(x)
    return complex(v.real, v.imag + TWO_PI * round((ref - v.imag) / TWO_PI))


@numba.njit(cache=True)
def _f_branch(z, d, w, pan, cheb, table, nodes, omega, gauss, series, L, a, log_sw2, ref_p, ref_m, ref_z):
    """``(F, F', F'', m, m', arg p, arg m, arg z)`` at complex ``z``, the logs of ``p = 1 + m``, ``m`` and ``z`` taken
    on the branches nearest the arguments ``ref_*`` (those of the previous point of a continuation); ``d`` atoms of
    D^2, ``w`` weights, the rest its panels (:func:`rmt.d2_pieces.resolved_sums`)."""
    m, m1, m2, g0, g1, g2 = resolved_sums(z, d, w, pan, cheb, table, nodes, omega, gauss, series)  # (z, z^2 scaled)
    p = z * g0  # = 1 + m, without cancellation
    lp = _branch_log(p, ref_p)
    lm = _branch_log(m, ref_m)
    lz = _branch_log(z, ref_z)
    f = a * lp + (L - 1.0) * lm + L * (log_sw2 + lz)
    # log(1 + m) = log z + log G: its derivatives from G (in the tails 1 + m -> 0 and m'/(1 + m) ~ 1/z would cancel
    # against L/z: ELU/sin, orthogonal, depth 8 at lam = 1e-80 lost F' entirely); z F' and z^2 F'' are O(1)
    r1 = g1 / g0
    r2 = g2 / g0
    q1 = m1 / m
    f1 = ((a + L) + a * r1 + (L - 1.0) * q1) / z
    f2 = (-(a + L) + a * (r2 - r1 * r1) + (L - 1.0) * (m2 / m - q1 * q1)) / z / z
    return f, f1, f2, m, m1 / z, lp.imag, lm.imag, lz.imag


@numba.njit(cache=True)
def _f_derivs(z, d, w, pan, cheb, table, nodes, omega, gauss, series, L, a, log_sw2):
    """``(F, F', F'', m)`` at complex ``z`` with principal logarithms (:func:`_f_branch`)."""
    f, f1, f2, m, _, _, _, _ = _f_branch(z, d, w, pan, cheb, table, nodes, omega, gauss, series, L, a, log_sw2,
                                         0.0, 0.0, 0.0)
    return f, f1, f2, m


@numba.njit(cache=True)
def _derivs_many(zs, d, w, pan, cheb, table, nodes, omega, gauss, series, L, a, log_sw2):
    """``F'`` and ``m`` at every point of ``zs`` (one compiled loop instead of a Python loop)."""
    f1s = np.empty(zs.shape[0], dtype=np.complex128)
    ms = np.empty(zs.shape[0], dtype=np.complex128)
    for j in range(zs.shape[0]):
        _, f1, _, m = _f_derivs(zs[j], d, w, pan, cheb, table, nodes, omega, gauss, series, L, a, log_sw2)
        f1s[j] = f1
        ms[j] = m
    return f1s, ms


@numba.njit(cache=True)
def _wrap(r):
    """``r`` with its imaginary part reduced to ``[-pi, pi)`` (F is defined modulo 2 pi i)."""
    return complex(r.real, r.imag - TWO_PI * math.floor((r.imag + math.pi) / TWO_PI))


@numba.njit(cache=True)
def _branch_at(z, d, w, pan, cheb, table, nodes, omega, gauss, series, L, a, log_sw2):
    """The branch of a continuation that starts at ``z`` (a real edge): ``(arg p, arg m, arg z, t)`` with principal
    arguments and ``t = Im F``, a multiple of ``2 pi`` there; the continuation then solves ``F = u + i t``."""
    f, _, _, _, _, ap, am, az = _f_branch(z, d, w, pan, cheb, table, nodes, omega, gauss, series, L, a, log_sw2,
                                          0.0, 0.0, 0.0)
    return ap, am, az, TWO_PI * round(f.imag / TWO_PI)


@numba.njit(cache=True)
def _tangent(z, du, f1, f2):
    """Predictor for ``F(z') = F(z) + du``: the Taylor expansion of ``log z`` in ``u`` to second order
    (``A = z F'``, ``dA / dlog z = A + z^2 F''``: ``dlog z = du / A - (dA / dlog z) du^2 / (2 A^3)``), exact to first
    order where ``F ~ c log z`` (the tails, where ``z`` falls exponentially in ``u`` and the tangent in ``z``
    overshoots: erf, Gaussian, depth 2 walked 749 steps); the second-order term is dropped where it is not small
    (next to an edge, ``A -> 0``), and steps in ``log z`` longer than 50 are shortened to 50."""
    if f1 == 0:
        return z
    a = z * f1
    t = du / a
    t2 = -0.5 * (a + z * z * f2) * t * t / a
    if abs(t2) <= 0.25 * abs(t) and t2 == t2:
        t += t2
    if abs(t) > 50.0:
        t *= 50.0 / abs(t)
    return z * np.exp(t)


@numba.njit(cache=True)
def _newton(u, z0, d, w, pan, cheb, table, nodes, omega, gauss, series, L, a, log_sw2, tol, maxit, loose_rel, bp, bm,
            bz, t):
    """Solve ``F(z) = u + i t`` from ``z0`` on the branch ``(bp, bm, bz)`` of the logs (:func:`_f_branch`), with
    backtracking on ``|residual|``; returns ``(z, converged, iterations, F'(z), F''(z), m(z), arg p, arg m,
    arg z)``. A Newton that stalls is accepted at the residual ``loose_rel (1 + |u| + L)`` (0: never).

    The branch is what keeps a deep continuation on its solution: ``F`` modulo ``2 pi i`` has ``L`` solutions
    ``e^{2 pi i k / L}`` apart (the L-th roots of one algebraic equation), and with ``L = 10^4`` the walk hopped
    between them (tanh, orthogonal)."""
    z = z0
    f, f1, f2, m, dm, ap, am, az = _f_branch(z, d, w, pan, cheb, table, nodes, omega, gauss, series, L, a, log_sw2,
                                             bp, bm, bz)
    target = complex(u, t)
    r = f - target
    floor = 4e-16 * (1.0 + abs(u) + abs(t) + abs(L))
    loose = max(loose_rel * (1.0 + abs(u) + abs(L)), 100.0 * floor)
    if abs(r) <= floor:
        return z, True, 0, f1, f2, m, ap, am, az
    for it in range(maxit):
        if f1 == 0:
            return z, False, it, f1, f2, m, ap, am, az
        if it >= 8 and abs(r) <= loose:
            return z, True, it, f1, f2, m, ap, am, az
        dz = -r / f1
        if abs(f2) * abs(dz) * abs(dz) <= 2.0 * tol * abs(z) * abs(f1):
            # quadratic convergence: the step leaves an error of about |F'' / 2F'| |dz|^2, below tol |z| -- take it
            # without evaluating there (m to first order; its error is of the same size)
            return z + dz, True, it + 1, f1, f2, m + dm * dz, ap, am, az
        step = 1.0
        found = False
        for _ in range(30):
            zn = z + step * dz
            fn, f1n, f2n, mn, dmn, apn, amn, azn = _f_branch(zn, d, w, pan, cheb, table, nodes, omega, gauss, series,
                                                             L, a, log_sw2, bp, bm, bz)
            rn = fn - target
            if abs(rn) < abs(r) or abs(rn) <= floor:
                found = True
                break
            if abs(r) <= loose:  # at the rounding level of F: no further decrease to look for
                break
            step *= 0.5
        if not found:
            return z, abs(r) <= loose, it, f1, f2, m, ap, am, az
        moved = abs(zn - z)
        z, f1, f2, r, m, dm, ap, am, az = zn, f1n, f2n, rn, mn, dmn, apn, amn, azn
        if moved <= tol * abs(z) or abs(r) <= floor:
            return z, True, it + 1, f1, f2, m, ap, am, az
    return z, False, maxit, f1, f2, m, ap, am, az


@numba.njit(cache=True)
def _trace(us, z0, u0, d, w, pan, cheb, table, nodes, omega, gauss, series, L, a, log_sw2, tol, maxit, max_halvings,
           loose_rel, bp, bm, bz, t):
    """Continuation along targets ``us`` from the solution ``z0`` at ``u0`` on the branch ``(bp, bm, bz, t)``
    (:func:`_newton`); returns ``(z, m, ok)``.

    Each target is reached from the previous solution with the tangent predictor (:func:`_tangent`); a failed step is
    split into 2, 4, ... substeps (at most ``2**max_halvings``). Solutions are reflected into ``Im z >= 0`` (with
    their branch: ``F(conj z) = conj F(z)``).
    """
    n = us.shape[0]
    out = np.empty(n, dtype=np.complex128)
    ms = np.empty(n, dtype=np.complex128)
    ok = np.ones(n, dtype=np.bool_)
    z_prev = z0
    u_prev = u0
    _, f1_prev, f2_prev, m_prev, _, _, _, _ = _f_branch(z0, d, w, pan, cheb, table, nodes, omega, gauss, series, L, a,
                                                  log_sw2, bp, bm, bz)
    br_prev = (bp, bm, bz, t)
    for j in range(n):
        target = us[j]
        nsub = 1
        success = False
        zc = z_prev
        f1c = f1_prev
        f2c = f2_prev
        mc = m_prev
        brc = br_prev
        while nsub <= (1 << max_halvings):
            zc = z_prev
            uc = u_prev
            f1c = f1_prev
            f2c = f2_prev
            brc = br_prev
            good = True
            for s in range(1, nsub + 1):
                us_ = u_prev + (target - u_prev) * s / nsub
                guess = _tangent(zc, us_ - uc, f1c, f2c)
                if guess.imag < 0:
                    guess = guess.conjugate()
                zs, conv, _, f1s, f2s, mc, ap, am, az = _newton(us_, guess, d, w, pan, cheb, table, nodes, omega, gauss,
                                                           series, L, a, log_sw2, tol, maxit, loose_rel, brc[0],
                                                           brc[1], brc[2], brc[3])
                if not conv:
                    good = False
                    break
                if zs.imag < 0:  # F(conj z) = conj F(z): the mirror image solves it too
                    zs, f1s, f2s, mc = zs.conjugate(), f1s.conjugate(), f2s.conjugate(), mc.conjugate()
                    brc = (-ap, -am, -az, -brc[3])
                else:
                    brc = (ap, am, az, brc[3])
                zc = zs
                f1c = f1s
                f2c = f2s
                uc = us_
            if good:
                success = True
                break
            nsub *= 2
        if success:
            out[j] = zc
            ms[j] = mc
            z_prev = zc
            f1_prev = f1c
            f2_prev = f2c
            m_prev = mc
            br_prev = brc
            u_prev = target
        else:
            ok[j] = False
            out[j] = z_prev
            ms[j] = m_prev
    return out, ms, ok


@numba.njit(cache=True)
def _real_critical_point(x0, lo, hi, d, w, pan, cheb, table, nodes, omega, gauss, series, L, a, log_sw2, tol, maxit):
    """Newton on ``F'(x) = 0`` along the real axis from ``x0``; returns ``(x, converged)``.

    With a finite bracket ``lo < hi`` (``F'`` of opposite signs at its ends) the iterate stays inside it: a step that
    leaves the bracket, or a flat ``F''``, is replaced by bisection, and the bracket shrinks around the sign change
    (a safeguarded Newton, as ``brentq`` without importing scipy.optimize). Without one (``lo = -inf`` or
    ``hi = inf``: a soft edge near ``x0``) steps are limited to half of ``|x|``."""
    bracketed = math.isfinite(lo) and math.isfinite(hi)
    g_lo = 0.0
    if bracketed:
        g_lo = _f_derivs(complex(lo, 0.0), d, w, pan, cheb, table, nodes, omega, gauss, series, L, a, log_sw2)[1].real
    x = x0
    for _ in range(maxit):
        _, f1, f2, _ = _f_derivs(complex(x, 0.0), d, w, pan, cheb, table, nodes, omega, gauss, series, L, a, log_sw2)
        g = f1.real
        if bracketed:
            if g == 0.0:
                return x, True
            if (g > 0.0) == (g_lo > 0.0):
                lo, g_lo = x, g
            else:
                hi = x
        if f2.real == 0 or not np.isfinite(f2.real):
            if not bracketed:
                return x, False
            x_new = 0.5 * (lo + hi)
        else:
            dx = -g / f2.real
            if not bracketed and x != 0 and abs(dx) > 0.5 * abs(x):
                dx = 0.5 * abs(x) * np.sign(dx)
            x_new = x + dx
            if bracketed and not lo < x_new < hi:
                x_new = 0.5 * (lo + hi)
        if abs(x_new - x) <= tol * abs(x_new) or (bracketed and hi - lo <= tol * abs(hi)):
            return x_new, True
        x = x_new
    return x, False


# --------------------------------------------------------------------------------------------------------------------
# the equation as a small object
# --------------------------------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class _Equation:
    d: np.ndarray
    w: np.ndarray
    pieces: tuple  # D2Pieces.arrays: the panels whose poles resolved_sums subtracts
    L: float
    a: float
    log_sw2: float
    model: D2Pieces | None = None

    @property
    def args(self):
        return (self.d, self.w, *self.pieces, self.L, self.a, self.log_sw2)

    def derivs(self, z: complex):
        return _f_derivs(complex(z), *self.args)

    def branch_at(self, x: float) -> tuple:
        """The branch of a continuation starting at the real edge ``x`` (:func:`_branch_at`)."""
        return _branch_at(complex(x), *self.args)

    def newton(self, u: float, z0: complex, branch: tuple):
        """``(z, converged, iterations, branch, F'(z), F''(z), m(z))`` of Newton on ``F(z) = u`` from ``z0`` on
        ``branch``; a solution below the real axis is reflected (with its branch)."""
        z, conv, its, f1, f2, m, ap, am, az = _newton(float(u), complex(z0), *self.args, NEWTON_TOL, NEWTON_MAXIT,
                                                      self.loose_rel, *branch)
        if z.imag < 0:
            return z.conjugate(), conv, its, (-ap, -am, -az, -branch[3]), f1.conjugate(), f2.conjugate(), m.conjugate()
        return z, conv, its, (ap, am, az, branch[3]), f1, f2, m

    @property
    def loose_rel(self) -> float:
        """Residual (relative) at which a stalled Newton is accepted: F of a continuous law of ``D^2`` is summed to
        about 1e-9 relative in the far tails (``z`` far below the spacing of the atoms near 0: sin, swish, orthogonal,
        depth 30 at ``lam = 1e-100``); atomic laws (piecewise-constant ``phi'``) are exact and get none (a stalled
        Newton there is the sign of an edge on an atom, ``_atom_edge``)."""
        return LOOSE_REL if self.model is not None else 0.0

    def in_continuous_range(self, x: float) -> bool:
        """Whether ``x`` is inside the range of the continuous part of ``D^2`` (no real solution there)."""
        return self.model is not None and self.model.in_continuous_range(x)

    def may_have_soft_lower_edge(self, x: float) -> bool:
        """False where no soft lower edge can be found near ``z = x``: inside the continuous range of ``D^2`` (no real
        solution), with square Gaussian weights (a free product with Marchenko-Pastur of ratio 1 reaches 0), or when
        the continuous part of ``D^2`` itself reaches 0 (:attr:`rmt.d2_pieces.D2Pieces.reaches_zero`: erf, gelu,
        sin; probing there cost 115 real Newton solves, 0.24 s, for erf, orthogonal, depth 3)."""
        if self.a == 1.0 or self.in_continuous_range(x):
            return False
        return self.model is None or not self.model.reaches_zero


def _make_equation(law: D2Law, sigma_w2: float, depth: int, weights: str) -> _Equation:
    """The spectral equation for the law of ``D^2``: resolved up to the real axis (:mod:`rmt.d2_pieces`) unless
    ``phi'`` is piecewise constant (the atoms are then exact)."""
    L = float(depth)
    a = 1.0 - L if weights == "orthogonal" else 1.0
    model = None
    if law.q > 0 and np.unique(law.values).size > 16:
        model = d2_pieces(law.activation, law.q)
        law = model.law
        pieces = model.arrays
    else:
        pieces = _NO_PIECES
    return _Equation(law.values, law.weights, pieces, L, a, math.log(sigma_w2), model)


_NO_PIECES = (np.zeros((0, N_COLUMNS)), np.zeros((0, 4, 1)), np.zeros((0, 1)), np.zeros((0, 1)), np.zeros((0, 1)),
              np.zeros(2), np.zeros((0, 2, SERIES_TERMS)))


# --------------------------------------------------------------------------------------------------------------------
# support
# --------------------------------------------------------------------------------------------------------------------


def _upper_edge(eq: _Equation) -> tuple[float, float]:
    """``(x_hi, u_hi)``: the first critical point of ``F`` on the real axis coming down from ``+inf``.

    Scanned downwards in ``x - max D^2`` on a log scale (:data:`EDGE_SCAN_PER_DECADE` points a decade, one decade at
    a time, from ``10 (L + 1)`` times ``max D^2`` above it, where ``F' > 0``: the edge sits near ``0.8 L`` times it at
    depth ``10^4``) to the first sign change of ``F'``, which is then solved by a bracketed Newton. Sign changes
    closer together than the scan's spacing (6%) are not resolved."""
    d_top = float(np.max(eq.d))
    top = math.log10(10.0 * (eq.L + 1.0))
    while top < 15.0 and not _derivs_many(np.array([complex(d_top * (1.0 + 10.0**top))]), *eq.args)[0][0].real > 0:
        top += 2.0
    bracket = None
    hi = top
    while bracket is None and hi > -12.0:
        lo = max(hi - 1.0, -12.0)
        xs = d_top + d_top * np.logspace(hi, lo, EDGE_SCAN_PER_DECADE + 1)  # descending
        f1s = _derivs_many(xs.astype(np.complex128), *eq.args)[0].real
        sign = np.sign(f1s)
        idx = np.nonzero((sign[:-1] != sign[1:]) & np.isfinite(f1s[:-1]) & np.isfinite(f1s[1:]))[0]
        if idx.size:
            bracket = (xs[idx[0] + 1], xs[idx[0]])
        hi = lo
    if bracket is None:
        # a purely atomic D^2 (piecewise-constant phi', e.g. hard tanh) with an atom of J J^T at the top: the
        # continuous part's upper edge is a critical point in the gap below the top value of D^2
        values = np.unique(eq.d[eq.d > 0])
        distinct = values[np.concatenate([[True], np.diff(values) > 1e-12 * values[1:]])]
        if distinct.size <= 16:
            lo_v = distinct[-2] if distinct.size > 1 else 0.0
            xs = lo_v + (d_top - lo_v) * (0.5 - 0.5 * np.cos(np.pi * np.linspace(0.0, 1.0, 3001)[1:-1]))
            f1s = _derivs_many(xs.astype(np.complex128), *eq.args)[0].real
            sign = np.sign(f1s)
            idx = np.nonzero((sign[:-1] != sign[1:]) & np.isfinite(f1s[:-1]) & np.isfinite(f1s[1:]))[0]
            if idx.size:
                bracket = (xs[idx[-1]], xs[idx[-1] + 1])
        if bracket is None:
            raise RuntimeError("no upper spectral edge found: F'(x) has no zero on the real axis above max phi'^2")
    x_hi, _ = _real_critical_point(0.5 * (bracket[0] + bracket[1]), bracket[0], bracket[1], *eq.args, 1e-15, 200)
    u_hi = eq.derivs(x_hi)[0].real
    # rounded outward by the rounding of F (a few ulp): the top grid point, whose density is 0, is never inside the
    # support (linear Gaussian depth 1: F(2) = log 4 came out 1 ulp low, where Marchenko-Pastur is 2e-9, not 0)
    return x_hi, u_hi + 4e-16 * max(1.0, abs(u_hi))


def _edge_start(eq: _Equation, x_e: float, u_e: float, u: float) -> complex:
    """Newton start at ``u`` next to the edge ``(x_e, u_e)``: ``F ~ u_e + F''(x_e) (z - x_e)^2 / 2``, ``Im z > 0``."""
    f2 = eq.derivs(x_e)[2].real
    if not f2 > 0.0:
        # F'' > 0 at an upper edge; an edge on an atom of D^2 (ReLU, orthogonal, depth 2: F is analytic there but
        # its sum cancels poles of size 1/(x - d)) loses F'' to rounding: take it just off the axis
        f2 = eq.derivs(complex(x_e, 1e-4 * abs(x_e)))[2].real
    root = np.sqrt(complex(2.0 * (u - u_e) / f2))
    return complex(x_e + root.real, abs(root.imag))


@dataclass
class _Support:
    u_hi: float
    x_hi: float
    u_lo: float
    x_lo: float | None  # None: no soft lower edge (the density reaches lam -> 0; grid cut at u_lo)


def _atom_edge(eq: _Equation, z: complex, u_new: float, u: float) -> tuple[float, float] | None:
    """``(d_i, u_e)`` when the walk at ``(u, z)`` is about to pass a lower edge that sits on an atom ``d_i`` of
    ``D^2``, else None.

    With orthogonal weights (``a = 1 - L``) ``F`` stays analytic at an atom of ``D^2`` (the poles of ``log m`` and
    ``log(1 + m)`` cancel) with ``F(d_i) = L log(sigma_w2 d_i)``: when ``D^2`` has atoms of positive mass
    (piecewise-constant ``phi'``: leaky ReLU, orthogonal, depth 2, whose law is that of ``A^{1/2} B A^{1/2}`` for
    free ``A, B`` with two atoms each) the solution runs into ``z = d_i`` as ``u -> u_e`` and the density diverges
    like an inverse square root there: an edge that is neither soft nor a tail. Detected when the step from ``u`` to
    ``u_new`` crosses ``u_e`` (no solution below it) with ``z`` close to ``d_i``.
    """
    if eq.a == 1.0 or eq.L < 2:
        return None
    i = int(np.argmin(np.abs(eq.d - z)))
    d_i = float(eq.d[i])
    if d_i <= 0.0 or abs(z - d_i) > 0.1 * d_i or np.count_nonzero(eq.d == d_i) < 3:
        return None  # an atom of D^2 of positive mass only (shared by several quadrature nodes), not a node
    u_e = eq.L * (eq.log_sw2 + math.log(d_i))
    return (d_i, u_e) if u_new < u_e < u else None


def _locate_support(eq: _Equation, mass: float, tail_tol: float) -> _Support:
    """Walk down from the upper edge in ``u = log lam`` to a soft lower edge or the tail cutoff.

    Returns the support; ``x_lo`` is None when there is no soft lower edge (grid cut at ``u_lo``).
    """
    first = True
    x_hi, u_hi = _upper_edge(eq)
    h = 1e-6 * max(1.0, abs(u_hi))
    u, z, f1, f2 = u_hi, complex(x_hi), 0j, 0j
    branch = eq.branch_at(x_hi)
    if u_hi < LOG_LAM_FLOOR:  # the whole spectrum is below float64 (reported as an atom at 0 by the caller)
        return _Support(u_hi, x_hi, u_hi, None)
    rho_prev = 0.0
    rho_max = 0.0
    while True:
        u_new = max(u - h, LOG_LAM_FLOOR)
        guess = _edge_start(eq, x_hi, u_hi, u_new) if first else _tangent(z, u_new - u, f1, f2)
        if guess.imag < 0:
            guess = guess.conjugate()
        z_new, conv, its, branch_new, f1_new, f2_new, m_new = eq.newton(u_new, guess, branch)
        rel_imag = z_new.imag / max(abs(z_new), 1e-300)
        # (the first step from the edge is judged by its imaginary part only: next to an atom of D^2 -- ELU, orthogonal
        # weights, depth 2, whose edge is 1e-9 above the atom -- the quadratic edge model is a poor predictor)
        jump = not first and abs(z_new - guess) > 0.5 * abs(z_new - z) + 1e-12 * abs(z)
        if not conv or (first and rel_imag < 1e-10) or jump:
            edge = None if first else _atom_edge(eq, z, u_new, u)
            if edge is not None:
                return _Support(u_hi, x_hi, edge[1], edge[0])
            h *= 0.5
            if h < 1e-14 * max(1.0, abs(u)):
                if not first:
                    # stalled down a tail (gelu at sigma_b2 = 0.5, Gaussian, depth 1 at lam = exp(-371)): the grid
                    # stops here and the rest is tail_mass (mass conservation)
                    warnings.warn(f"continuation of the Jacobian spectrum stalled at lam = exp({u:.6g}); the mass "
                                  "below is reported as tail_mass", RuntimeWarning, stacklevel=3)
                    return _Support(u_hi, x_hi, u, None)
                raise RuntimeError(f"continuation of the Jacobian spectrum stalled at lam = exp({u:.6g})")
            continue
        rho = -m_new.imag / math.pi  # density in log lam
        # the subordination point reached the real axis inside the range of the continuous part of D^2 (ELU,
        # orthogonal, depth 30; tanh, orthogonal, depth 1e4, where D^2 is 1e-10 thin there): the continuation along
        # the cut is ill-conditioned; what lies below is counted as tail_mass
        on_cut = rel_imag < 1e-9 and not first and eq.in_continuous_range(z_new.real)
        fell = not first and rel_imag >= 1e-9 and rho < 1e-3 * rho_prev  # (back on the axis: a soft edge, below)
        if (on_cut or fell) and h > 1e-4 * max(1.0, abs(u)):
            # reached the cut, or the density fell by over 1e3, in one long step: approach it in shorter ones
            # (tanh, orthogonal, depth 1e4 stepped from 40% of the peak density to 1e-15 in one step of 16, and the
            # grid failed below the fall)
            h *= 0.5
            continue
        if on_cut:
            return _Support(u_hi, x_hi, u, None)
        if rel_imag < 1e-9 and not first:
            # back on the real axis: we passed a soft lower edge between u_new and u; solve for it
            x_lo, ok = _real_critical_point(z.real, -math.inf, math.inf, *eq.args, 1e-15, 100)
            ok = ok and not np.any(eq.d == x_lo)
            u_lo = eq.derivs(x_lo)[0].real if ok else math.nan
            if not ok or not (u_new - 1e-9 <= u_lo <= u + 1e-9):
                h *= 0.5
                if h < 1e-14 * max(1.0, abs(u)):
                    raise RuntimeError(f"lower spectral edge not resolved near lam = exp({u:.6g})")
                continue
            return _Support(u_hi, x_hi, u_lo, x_lo)
        first = False
        rho_max = max(rho_max, rho)
        if rho < 1e-13 * rho_max:
            # the density is down at the rounding level of M_{D^2} (e.g. ELU, orthogonal, depth 30: the continuous
            # law of D^2 decays like a log-normal towards 0): what lies below is counted as tail_mass
            return _Support(u_hi, x_hi, u_new, None)
        # rho^2 falls linearly to 0 at a soft edge: extrapolated, where does it reach 0?
        reach = rho * rho * (u - u_new) / (rho_prev * rho_prev - rho * rho) if rho_prev > rho else math.inf
        if rho < 0.05 * rho_max and reach < 4 * h and eq.may_have_soft_lower_edge(z_new.real):
            # possibly next to a soft lower edge: try the real critical point near Re z (not in a tail, where
            # the density decays without reaching 0: every probe there failed, at up to 100 Newton steps each; and
            # not where no soft lower edge can be: _Equation.may_have_soft_lower_edge)
            x_lo, ok = _real_critical_point(z_new.real, -math.inf, math.inf, *eq.args, 1e-15, 100)
            if ok and not np.any(eq.d == x_lo):  # (Newton may stop on an atom, a pole of m)
                f_lo, _, f2_lo, _ = eq.derivs(x_lo)
                u_lo = f_lo.real
                predicted = 2.0 * (u_new - u_lo) / f2_lo.real if f2_lo.real != 0 else -1.0
                real_branch = abs(_wrap(f_lo - u_lo)) < 1e-8 * (1.0 + eq.L)
                if (real_branch and u_new - 4 * h <= u_lo < u_new and 0.25 < -predicted / z_new.imag**2 < 4.0
                        and not eq.in_continuous_range(x_lo)):
                    return _Support(u_hi, x_hi, u_lo, x_lo)
        kappa = (math.log(rho_prev) - math.log(rho)) / (u - u_new) if rho_prev > 0 and rho > 0 else 0.0
        small_tail = kappa > 0 and rho / kappa < tail_tol * mass
        if u_new <= LOG_LAM_FLOOR or small_tail:
            return _Support(u_hi, x_hi, u_new, None)
        u, z, rho_prev, branch, f1, f2 = u_new, z_new, rho, branch_new, f1_new, f2_new
        if its <= 5:
            h = min(2.0 * h, max(1e-6, 0.1 * (u_hi - u) + 0.5 * h))


# --------------------------------------------------------------------------------------------------------------------
# public API
# --------------------------------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class JacobianSpectrum:
    """Limiting spectral law of ``J J^T`` (eigenvalues ``lam``, the squared singular values of ``J``).

    Attributes
    ----------
    lam : ndarray, shape (num,)
        Grid on the support of the continuous part, increasing (empty when there is none).
    density : ndarray, shape (num,)
        Density of the continuous part per unit ``lam`` (0 at soft edges); it integrates to ``1 - sum of atom masses
        - tail_mass``.
    support : tuple of float
        ``(lo, hi)`` of the continuous part; ``lo = 0.0`` when the density reaches ``lam -> 0`` (no soft lower edge).
    mean, variance : float
        Of the whole law (atoms included), exact from :func:`jacobian_moments`.
    atoms : tuple of (float, float)
        ``(location, mass)`` of each point mass: linear networks with orthogonal weights are ``((sigma_w2^L, 1.0),)``
        (``lam`` and ``density`` empty); ReLU-like activations have ``(0.0, P(phi'(h) = 0))``.
    tail_mass : float
        Estimated continuous mass below ``lam[0]`` when ``lo = 0`` (the grid stops where it falls under ``tail_tol``,
        or at ``lam = 1e-300``: deep Gaussian networks keep much of their mass below that); 0 with a soft lower edge.
    q_star : float
        The fixed point ``q*`` used; NaN for positively homogeneous activations (evaluated at ``q = 1``, on which
        their spectrum does not depend) and for layered networks (per-layer ``q`` in ``params["q"]``).
    """

    lam: np.ndarray
    density: np.ndarray
    support: tuple[float, float]
    mean: float
    variance: float
    atoms: tuple[tuple[float, float], ...] = ()
    tail_mass: float = 0.0
    q_star: float = math.nan
    params: dict = field(default_factory=dict)

    def to_frame(self) -> pd.DataFrame:
        """``DataFrame`` with columns ``lam``, ``density``; atoms, support, mean and variance in ``attrs``."""
        import pandas as pd  # noqa: PLC0415 (lazy: keeps `import rmt` light)

        frame = pd.DataFrame({"lam": self.lam, "density": self.density})
        frame.attrs.update(
            atoms=list(self.atoms), support=list(self.support), mean=self.mean, variance=self.variance,
            tail_mass=self.tail_mass, q_star=self.q_star, **self.params,
        )
        return frame

    def cdf(self, x: np.ndarray | float, left: bool = False) -> np.ndarray:
        """``F(x) = P(lam <= x)`` of the whole law (``P(lam < x)`` with ``left=True``), atoms included.

        Continuous part: cumulative trapezoid of the density in ``log lam`` on the grid (interpolated linearly in
        ``log lam``, consistently with :meth:`quantile`), plus ``tail_mass`` (the
        continuous mass below ``lam[0]``, counted from ``lam[0]`` on; below ``lam[0]`` only the atoms are counted).
        Shape of ``x``.
        """
        x = np.asarray(x, dtype=np.float64)
        out = np.zeros(x.shape)
        for loc, mass in self.atoms:
            out = out + np.where((x > loc) if left else (x >= loc), mass, 0.0)
        if self.lam.size:
            cum = self.tail_mass + _integral_log(self.lam, self.density)
            with np.errstate(divide="ignore", invalid="ignore"):
                log_x = np.log(np.where(x > 0, x, np.nan))
            inside = np.interp(np.nan_to_num(log_x, nan=-np.inf), np.log(self.lam), cum, left=0.0, right=cum[-1])
            out = out + np.where(x >= self.lam[0], inside, 0.0)
        return np.minimum(out, 1.0)

    def quantile(self, p: np.ndarray | float) -> np.ndarray:
        """Quantile function ``F^{-1}(p) = inf {x : F(x) >= p}`` of the law of ``lam`` (atoms included).

        Inside the grid the cumulative mass is inverted with linear interpolation in ``log lam`` (the density is
        resolved in ``log lam``); levels that fall on an atom return its location; levels inside ``tail_mass`` (below
        the grid) return ``lam[0]`` (an upper bound), and levels above the total mass the grid carries return the upper
        edge.

        Parameters
        ----------
        p : array_like
            Levels in ``[0, 1]`` (any shape).
        """
        p = np.asarray(p, dtype=np.float64)
        if np.any(~np.isfinite(p)) or np.any((p < 0) | (p > 1)):
            raise ValueError("p must hold probabilities in [0, 1]")
        # F as a monotone sequence of (x, F(x-), F(x)) knots: atoms and grid points
        xs, lo, hi = [], [], []
        for loc, _ in self.atoms:
            xs.append(loc)
        if self.lam.size:
            xs.extend(self.lam.tolist())
        xs = np.unique(np.asarray(xs, dtype=np.float64))
        lo = self.cdf(xs, left=True)
        hi = self.cdf(xs)
        out = np.empty(p.shape)
        flat_p, flat = p.ravel(), out.ravel()
        for n, level in enumerate(flat_p):
            k = int(np.searchsorted(hi, level, side="left"))  # first knot with F(x_k) >= level
            if k >= xs.size:
                flat[n] = xs[-1]
                continue
            if level > lo[k] or k == 0 or xs[k] in {a for a, _ in self.atoms}:
                flat[n] = xs[k]  # reached at x_k itself (an atom, or the first knot)
                continue
            # between knots k-1 and k: F is continuous there, interpolate in log lam
            f0, f1, x0, x1 = hi[k - 1], lo[k], xs[k - 1], xs[k]
            t = 0.0 if f1 <= f0 else (level - f0) / (f1 - f0)
            flat[n] = math.exp(math.log(x0) + t * (math.log(x1) - math.log(x0))) if x0 > 0 else x0 + t * (x1 - x0)
        return out

    @property
    def quantile_ratio(self) -> float:
        """``s_99 / s_1``: ratio of the 99% and 1% quantiles of the singular values ``s = sqrt(lam)`` of ``J``.

        A robust condition number: 1 for an isometry, ``inf`` when more than 1% of the mass sits at ``lam = 0``.
        """
        lo, hi = self.quantile([0.01, 0.99])
        return math.inf if lo <= 0 else float(math.sqrt(hi / lo))

    @property
    def isometry_fraction(self) -> float:
        """Fraction of the singular values ``s`` of ``J`` within a factor 2 of 1: ``P(1/2 <= s <= 2)``,
        i.e. ``P(1/4 <= lam <= 4)``; 1 for an exact isometry."""
        return float(self.cdf(4.0) - self.cdf(0.25, left=True))

    def summary(self) -> dict:
        """Near-isometry summaries: ``quantile_ratio``, ``isometry_fraction``, the 1% and 99% quantiles of ``s``."""
        s01, s99 = np.sqrt(self.quantile([0.01, 0.99]))
        return {"quantile_ratio": self.quantile_ratio, "isometry_fraction": self.isometry_fraction,
                "s_q01": float(s01), "s_q99": float(s99)}

    def ks_distance(self, samples: np.ndarray | pd.Series | pd.DataFrame, zero=None,
                    threshold: float | None = None) -> float:
        """Kolmogorov-Smirnov distance ``sup_x |F_emp(x) - F(x)|`` between sampled eigenvalues and this law.

        ``F`` includes the atoms (its jump at an atom is the atom's mass), ``F_emp`` counts every sample. Sampled
        eigenvalues that are 0 in exact arithmetic (the atom at 0: ``J`` rank deficient) come out as rounding noise,
        which at depth overlaps with genuinely tiny eigenvalues of the continuous part (ReLU at depth 20: both below
        ``1e-50``). Two honest ways to compare them:

        * ``zero`` given (a boolean mask, or the number of exact zeros; read from the ``zero`` column when a
          :func:`rmt.sample_jacobian_spectrum` frame is passed): those samples are set to exactly 0 (they are the
          atom), the others compared as they are, over all ``x``.
        * otherwise, below a rounding threshold ``t`` samples cannot be told apart, but ``F_emp(x)`` for ``x >= t``
          counts every sample whose true value is ``<= x`` whether it belongs to the atom or to the continuous part
          (rounding moves no sample across ``x``), and so does ``F(x) = atom + F_continuous(x)``. The supremum is taken
          over ``x >= t`` (at each sample and just below it, and at ``t``): no sample is attributed to the atom, and
          the distance is exact on the resolved range. Default ``t = 1e-9`` times the largest scale of the law
          (the upper edge or the largest atom); pass ``threshold`` to change it (``0`` compares everywhere).

        Samples within ``1e-9`` times that scale of an atom away from 0 are taken to sit on it (rounding).

        Below ``lam[0]`` (when the density reaches ``lam -> 0``) only the mass ``tail_mass`` is known; the sup starts
        at ``max(t, lam[0])`` and compares the empirical fraction below that point with ``F`` there.
        """
        if hasattr(samples, "columns") and "lam" in samples.columns:  # a DataFrame of sampled eigenvalues
            if zero is None and "zero" in samples:
                zero = samples["zero"].to_numpy()
            samples = samples["lam"]
        values = np.asarray(samples, dtype=np.float64).ravel().copy()
        n = values.size
        if n == 0:
            raise ValueError("samples must not be empty")
        if not np.all(np.isfinite(values)):
            raise ValueError("samples must be finite")
        if zero is not None:
            if np.ndim(zero) == 0:
                count = int(zero)
                if not 0 <= count <= n:
                    raise ValueError(f"zero must be a count in [0, {n}] or a boolean mask, got {zero!r}")
                values.sort()
                values[:count] = 0.0
            else:
                mask = np.asarray(zero, dtype=bool).ravel()
                if mask.size != n:
                    raise ValueError(f"zero mask has {mask.size} entries for {n} samples")
                values[mask] = 0.0
            t = 0.0 if threshold is None else float(threshold)
        elif threshold is None:
            t = 1e-9 * max([abs(self.support[1])] + [abs(loc) for loc, _ in self.atoms])
        else:
            t = float(threshold)
        if not math.isfinite(t) or t < 0:
            raise ValueError(f"threshold must be a finite number >= 0, got {threshold!r}")
        scale = max([abs(self.support[1])] + [abs(loc) for loc, _ in self.atoms])
        for loc, _ in self.atoms:
            if loc != 0.0:  # rounding around an atom away from 0 (e.g. linear orthogonal networks)
                values[np.abs(values - loc) <= 1e-9 * scale] = loc
        values.sort()
        start = max(t, float(self.lam[0])) if self.lam.size and self.tail_mass > 0 else t
        x = values[values >= start]
        gaps = [0.0]
        if start > 0:  # the unresolved part [0, start): compared only through its total mass
            gaps.append(abs((n - x.size) / n - float(self.cdf(start, left=True))))
        if x.size:
            emp_right = np.searchsorted(values, x, side="right") / n
            emp_left = np.searchsorted(values, x, side="left") / n
            gaps.append(float(np.max(np.abs(emp_right - self.cdf(x)))))
            gaps.append(float(np.max(np.abs(emp_left - self.cdf(x, left=True)))))
        return float(max(gaps))


def _series_mul(x: np.ndarray, y: np.ndarray) -> np.ndarray:
    return np.convolve(x, y)[: len(x)]


def _series_revert(coef: np.ndarray) -> np.ndarray:
    """Compositional inverse of ``f(x) = sum_{j>=1} coef[j] x^j`` (``coef[0] = 0``, ``coef[1] != 0``), same order.

    Lagrange inversion: ``[y^n] f^{-1}(y) = (1/n) [x^{n-1}] (x / f(x))^n``.
    """
    n = len(coef)
    g = coef[1:]  # f(x)/x
    inv = np.zeros(n - 1)  # x / f(x) as a series
    inv[0] = 1.0 / g[0]
    for j in range(1, n - 1):
        inv[j] = -np.dot(g[1 : j + 1], inv[j - 1 :: -1][:j]) / g[0]
    out = np.zeros(n)
    power = np.zeros(n - 1)
    power[0] = 1.0
    for k in range(1, n):
        power = _series_mul(power, inv)
        out[k] = power[k - 1] / k
    return out


def _series_log1p(t: np.ndarray) -> np.ndarray:
    """``log(1 + t(x))`` for a series with ``t[0] = 0``."""
    out = np.zeros_like(t)
    power = np.zeros_like(t)
    power[0] = 1.0
    for j in range(1, len(t)):
        power = _series_mul(power, t)
        out += (-1.0) ** (j + 1) * power / j
    return out


def _series_exp(t: np.ndarray) -> np.ndarray:
    """``exp(t(x))`` for a series with ``t[0] = 0``."""
    out = np.zeros_like(t)
    out[0] = 1.0
    term = out.copy()
    for j in range(1, len(t)):
        term = _series_mul(term, t) / j
        out += term
    return out


def _moments_from_law(law: D2Law, sigma_w2: float, depth: int, weights: str, k: int) -> np.ndarray:
    """Moments ``E[lam^j]``, ``j = 1..k``, of ``J J^T`` by series inversion of the S-transform (jacobian_moments)."""
    n = k + 1
    mu = np.concatenate([[0.0], law.moments(k)])  # psi_D(x) = M_D(1/x) = sum_j mu_j x^j
    chi_d = _series_revert(mu)  # chi_D = psi_D^{-1}; M_D^{-1}(m) = 1 / chi_D(m)
    s_d = _series_mul(np.concatenate([chi_d[1:], [0.0]]), np.r_[1.0, 1.0, np.zeros(n - 2)])  # (1 + m) chi_D(m) / m
    if weights == "gaussian":
        s_w = (-1.0) ** np.arange(n)  # sigma_w2 * S_W = 1 / (1 + m)
    else:
        s_w = np.r_[1.0, np.zeros(n - 1)]
    t = _series_mul(s_w, s_d)
    t = t / t[0]  # t[0] = 1 / mu_1
    t[0] = 0.0
    s_j = _series_exp(depth * _series_log1p(t))  # S_{JJ^T} / (sigma_w2 mu_1)^{-L}: the law with mean 1
    chi_j = np.concatenate([[0.0], _series_mul(s_j, (-1.0) ** np.arange(n))[: n - 1]])  # m S(m) / (1 + m)
    psi_j = _series_revert(chi_j)
    log_chi = math.log(sigma_w2 * mu[1])
    scale = np.arange(1, n) * depth * log_chi
    if np.any(scale > 709.0):
        warnings.warn(
            f"moments of J J^T overflow float64 (chi^L = exp({depth * log_chi:.4g})); returning inf", RuntimeWarning,
            stacklevel=3,
        )
    with np.errstate(over="ignore"):
        return psi_j[1:] * np.exp(scale)


def jacobian_moments(activation, sigma_w2: float, sigma_b2: float, depth: int, weights: str = "orthogonal",
                     k: int = 4) -> np.ndarray:
    """First ``k`` moments ``m_j = E[lam^j]`` of the limiting spectral law of ``J J^T``, ``j = 1..k``.

    Exact series inversion of ``S_{JJ^T}(m) = (S_W(m) S_{D^2}(m))^L`` (Pennington et al. 2018): with
    ``psi_D(x) = M_{D^2}(1/x) = sum mu_j x^j`` (``mu_j = E[phi'(h)^(2j)]`` from the core's quadrature at ``q*``),
    ``S_{D^2}(m) = (1 + m) psi_D^{-1}(m) / m``; then ``psi_J^{-1}(m) = m S_{JJ^T}(m) / (1 + m)`` and the moments are
    the coefficients of ``psi_J``. The power ``L`` is taken as ``exp(L log(.))`` of series normalised to mean 1, so
    depth only scales coefficients. Closed forms it reproduces: ``m_1 = chi^L`` with ``chi = sigma_w2 mu_1``; at
    criticality ``m_2 - m_1^2 = L (mu_2 / mu_1^2 - 1 - s_1)``, ``s_1 = -1`` Gaussian, ``0`` orthogonal; linear
    Gaussian networks give the Fuss-Catalan numbers ``binom((L+1) j, j) / (L j + 1)``.

    Parameters
    ----------
    activation : str or meanfield.Activation
    sigma_w2, sigma_b2 : float
        Weight and bias variances (``q*`` is the core's fixed point for them).
    depth : int
        Number of layers ``L >= 1``.
    weights : {"orthogonal", "gaussian"}
        Haar orthogonal or i.i.d. Gaussian square weight matrices.
    k : int
        Number of moments, 1 to 30.

    Returns
    -------
    ndarray, shape (k,)
        ``[m_1, ..., m_k]``; ``inf`` (with a ``RuntimeWarning``) where ``chi^(L j)`` overflows float64.
    """
    weights = check_weights(weights)
    depth = check_depth(depth)
    if isinstance(k, bool) or not isinstance(k, (int, np.integer)) or not 1 <= k <= 30:
        raise ValueError(f"k must be an integer from 1 to 30, got {k!r}")
    q, _ = fixed_point_variance(activation, sigma_w2, sigma_b2)
    return _moments_from_law(d2_law(activation, q), float(sigma_w2), depth, weights, int(k))


def _grid(lo: float, hi: float, num: int, soft_lo: bool) -> np.ndarray:
    """``num`` increasing points on ``[lo, hi]``, clustered at ``hi`` (and at ``lo`` when it is a soft edge)."""
    j = np.arange(num) / (num - 1)
    t = 0.5 * (1.0 - np.cos(np.pi * j)) if soft_lo else np.sin(0.5 * np.pi * j)
    out = lo + (hi - lo) * t
    out[0], out[-1] = lo, hi
    return out


def jacobian_spectrum(activation, sigma_w2, sigma_b2, depth: int, weights: str = "orthogonal",
                      num: int = 2000, tail_tol: float = 1e-10, widths=None) -> JacobianSpectrum:
    """Limiting density of the eigenvalues ``lam`` of ``J J^T`` for a deep network at its fixed point ``q*``.

    See the module docstring for the method, the support and atoms, and the accuracy.

    Positively homogeneous activations (ReLU, leaky ReLU, linear) need no fixed point: their ``D^2`` has the same law
    at every ``q`` (:func:`rmt.fixed_point_variance`); ``q_star`` is then NaN.

    Parameters
    ----------
    activation : str, meanfield.Activation, or a sequence of ``depth`` of them
        Anything :func:`meanfield.get_activation` accepts (a sequence: one per layer, see :mod:`rmt.layers`).
    sigma_w2, sigma_b2 : float or sequence of ``depth`` floats
        Weight and bias variances; ``sigma_w2 > 0``, ``sigma_b2 >= 0``; ``q*`` must be finite unless the activation
        is positively homogeneous.
    depth : int
        Number of layers, 1 to 10^4 tested (any ``L >= 1`` accepted).
    weights : {"orthogonal", "gaussian"}
        Haar orthogonal (times ``sqrt(sigma_w2)``) or i.i.d. ``N(0, sigma_w2 / N)`` square weights.
    num : int
        Number of grid points (>= 16).
    tail_tol : float
        Continuous mass allowed below the grid when the density reaches ``lam -> 0``.
    widths : sequence of ``depth + 1`` positive numbers, optional
        Layer widths ``n_0 .. n_L`` (rectangular layers; only ratios matter). Non-uniform layers are solved by the
        rectangular free multiplicative convolution of :mod:`rmt.layers` (the law of ``J J^T``, output side).

    Returns
    -------
    JacobianSpectrum

    Raises
    ------
    ValueError
        Bad arguments; no finite ``q*`` (non-homogeneous activations).
    OverflowError
        The spectrum lies beyond the float64 range (e.g. ``chi^L`` for huge depth); the moments are inf then.
    RuntimeError
        If the continuation cannot locate the support. Grid points where Newton fails even after step halving give
        a ``RuntimeWarning`` and NaN density there.
    """
    weights = check_weights(weights)
    depth = check_depth(depth)
    if isinstance(num, bool) or not isinstance(num, (int, np.integer)) or num < 16:
        raise ValueError(f"num must be an integer >= 16, got {num!r}")
    tail_tol = check_positive(tail_tol, "tail_tol")
    if widths is not None or any(isinstance(v, (list, tuple, np.ndarray)) for v in (activation, sigma_w2, sigma_b2)):
        layers = network_layers(activation, sigma_w2, sigma_b2, depth, weights, widths)
        if not layers.uniform:
            return _layered_spectrum(layers, int(num), tail_tol)
        activation, sigma_w2, sigma_b2 = layers.activations[0], layers.sigma_w2[0], layers.sigma_b2[0]
    q, homogeneous = fixed_point_variance(activation, sigma_w2, sigma_b2)
    q_reported = math.nan if homogeneous else q
    sigma_w2 = float(sigma_w2)
    law = d2_law(activation, q)
    moments = _moments_from_law(law, sigma_w2, depth, weights, 2)
    mean = float(moments[0])
    variance = math.inf if math.isinf(moments[1]) else float(moments[1] - moments[0] ** 2)
    params = dict(activation=law.activation, sigma_w2=sigma_w2, sigma_b2=float(sigma_b2), depth=depth,
                  weights=weights, q=q)
    zero = law.zero_mass
    atoms: list[tuple[float, float]] = [(0.0, zero)] if zero > 0 else []
    positive = law.values > 0
    if not positive.any():
        raise ValueError(f"phi' vanishes almost surely for {law.activation!r} at q={q}: J = 0")
    if weights == "orthogonal" and np.ptp(law.values[positive]) <= 1e-12 * law.values[positive].max() and zero == 0:
        _check_representable(depth * math.log(sigma_w2 * law.values[0]), depth, mean)
        location = math.exp(depth * math.log(sigma_w2 * law.values[0]))
        empty = np.zeros(0)
        return JacobianSpectrum(empty, empty, (location, location), mean, variance, ((location, 1.0),), 0.0,
                                q_reported, params)
    if weights == "orthogonal" and depth == 1:
        lam, density, atoms_1, tail_1 = _pushforward_density(activation, q, sigma_w2, law, num)
        ends = (lam[0], lam[-1]) if lam.size else (min(a for a, _ in atoms_1), max(a for a, _ in atoms_1))
        lo = 0.0 if tail_1 > 0 else float(ends[0])  # continuous mass below the float64 range: lo = 0, as deeper
        return JacobianSpectrum(lam, density, (lo, float(ends[1])), mean, variance, atoms_1, tail_1,
                                q_reported, params)
    # atoms of D^2 at 0 enter 1 + m = z G_{D^2}(z) through their weights and m not at all
    mass = 1.0 - zero
    if weights == "orthogonal":
        # a product of L free copies of sigma_w2 D^2 keeps an atom at the top, (sigma_w2 d_top)^L, of mass
        # max(0, 1 - L P(D^2 < d_top)) (free projections: the ranges of L subspaces of codimension p meet in
        # codimension L p) when D^2 has an atom at its top value (piecewise-constant phi', e.g. hard tanh)
        d_top = float(law.values.max())
        at_top = np.abs(law.values - d_top) <= 1e-12 * d_top
        top_mass = max(0.0, 1.0 - depth * (1.0 - float(law.weights[at_top].sum()))) if at_top.sum() > 2 else 0.0
        if top_mass > 1e-12:
            _check_representable(depth * math.log(sigma_w2 * d_top), depth, mean)
            atoms.append((math.exp(depth * math.log(sigma_w2 * d_top)), top_mass))
            mass -= top_mass
    eq = _make_equation(law, sigma_w2, depth, weights)
    support = _locate_support(eq, mass, tail_tol)
    _check_representable(support.u_hi, depth, mean)
    if support.u_hi < LOG_LAM_FLOOR:  # (warned) every eigenvalue underflows: one atom at 0
        empty = np.zeros(0)
        return JacobianSpectrum(empty, empty, (0.0, 0.0), mean, variance, ((0.0, 1.0),), 0.0, q_reported, params)
    lam, density, ok, tail_mass = _density_and_tail(eq, support, num, mass)
    if not ok.all():
        bad = lam[~ok]
        warnings.warn(
            f"Newton failed at {bad.size} of {num} grid points (first lam={bad[0]:.6g}); density set to NaN there",
            RuntimeWarning, stacklevel=2,
        )
        density[~ok] = np.nan
    lo = float(lam[0]) if support.x_lo is not None else 0.0
    return JacobianSpectrum(lam, density, (lo, float(lam[-1])), mean, variance, tuple(atoms), tail_mass, q_reported,
                            params)


def _check_representable(log_edge: float, depth: int, mean: float) -> None:
    """Raise ``OverflowError`` with a clear message when the upper edge ``exp(log_edge)`` is beyond float64."""
    if log_edge > LOG_LAM_CEIL:
        raise OverflowError(
            f"the spectrum of J J^T lies beyond the float64 range at depth {depth}: its upper edge is "
            f"exp({log_edge:.6g}) (mean {mean:.6g}); use a smaller depth"
        )
    if log_edge < LOG_LAM_FLOOR:
        warnings.warn(
            f"the spectrum of J J^T lies below the float64 range at depth {depth}: its upper edge is "
            f"exp({log_edge:.6g}); eigenvalues are reported as 0", RuntimeWarning, stacklevel=3,
        )


def _pushforward_density(activation, q: float, sigma_w2: float, law: D2Law, num: int):
    """Law of ``sigma_w2 phi'(h)^2``, ``h ~ N(0, q)``: ``J J^T`` at depth 1 with orthogonal weights (no free smoothing).

    Atoms: values of ``phi'^2`` taken on intervals (shared by more than two quadrature nodes: ReLU, hard tanh), with
    their quadrature mass. Continuous part: change of variables, ``rho(y) = sum pdf(h) / |d y / d h|`` over the roots
    ``h`` of ``sigma_w2 phi'(h)^2 = y``, found on each monotone piece of ``phi'^2`` over ``|h| <= 13 sqrt(q)`` (the
    core's range) by interpolation and three Newton steps. The density diverges (integrably) where ``d y / d h = 0``
    inside the range (``h = 0`` for tanh), so the grid has Chebyshev interior points only. Where ``sigma_w2 phi'^2``
    falls below ``1e-300`` (the grid floor of deeper networks; it underflows to 0 in the far tails of tanh, erf,
    sigmoid at large ``q*``) its mass is returned as ``tail_mass`` (continuous mass below the grid), not as an atom.

    Returns ``(lam, density, atoms, tail_mass)``.
    """
    act = get_activation(activation)
    floor = math.exp(LOG_LAM_FLOOR)
    genuine_zero = law.zero_mass > 0 and _vanishes_next_to_a_kink(act)
    below = sigma_w2 * law.values < floor
    if genuine_zero:
        below &= law.values != 0.0
    # phi'^2 below the float64 range (underflowing to 0: tanh, erf, sigmoid at large q*): continuous mass below the
    # grid, as for deeper networks -- not an atom (phi' is not 0 on an interval there)
    tail_mass = float(law.weights[below].sum())
    values = np.sort(law.values[~below])
    new_group = np.concatenate([[True], np.diff(values) > 1e-12 * np.abs(values[1:])])
    starts = np.nonzero(new_group)[0]
    counts = np.diff(np.concatenate([starts, [values.size]]))
    atoms = []
    for start, count in zip(starts, counts, strict=True):
        if count > 2 or q == 0.0:  # at q = 0 the law is phi'(0-)^2, phi'(0+)^2 with probability 1/2 each
            value = values[start]
            mass = float(law.weights[~below & (np.abs(law.values - value) <= 1e-12 * abs(value))].sum())
            atoms.append((float(sigma_w2 * value), mass))
    s = math.sqrt(q)
    h = np.union1d(np.linspace(-13.0 * s, 13.0 * s, 20001), [k for k in act.kinks if abs(k) < 13.0 * s])
    y = sigma_w2 * act.dphi(h) ** 2
    slope = np.sign(np.diff(y))
    at_kink = np.isin(h, act.kinks)
    slope[at_kink[:-1] | at_kink[1:]] = 0  # phi' jumps at a kink: not part of the continuous law
    unrepresented = ~(y >= floor)
    slope[unrepresented[:-1] | unrepresented[1:]] = 0  # below the float64 range: in tail_mass
    moving = slope != 0
    if q == 0.0 or not moving.any():  # piecewise-constant phi': atoms only
        return np.zeros(0), np.zeros(0), tuple(atoms), tail_mass
    lo, hi = float(y[:-1][moving].min()), float(y[1:][moving].max())
    lo = min(lo, float(y[1:][moving].min()))
    hi = max(hi, float(y[:-1][moving].max()))
    t = 0.5 * (1.0 - np.cos(np.pi * (np.arange(num) + 0.5) / num))
    lam = np.exp(math.log(lo) + (math.log(hi) - math.log(lo)) * t) if hi > 10.0 * lo else lo + (hi - lo) * t
    density = np.zeros(num)
    # split into maximal monotone pieces of y(h)
    breaks = np.nonzero(np.diff(slope) != 0)[0] + 1
    for seg in np.split(np.arange(slope.size), breaks):
        if slope[seg[0]] == 0:
            continue
        h_piece, y_piece = h[seg[0] : seg[-1] + 2], y[seg[0] : seg[-1] + 2]
        order = np.argsort(y_piece)
        inside = (lam > y_piece.min()) & (lam < y_piece.max())
        if not inside.any():
            continue
        root = np.interp(lam[inside], y_piece[order], h_piece[order])
        for _ in range(3):
            dy = 2.0 * sigma_w2 * act.dphi(root) * act.d2phi(root)
            step = np.where(dy != 0, (sigma_w2 * act.dphi(root) ** 2 - lam[inside]) / np.where(dy != 0, dy, 1.0), 0.0)
            root = np.clip(root - step, h_piece.min(), h_piece.max())
        dy = np.abs(2.0 * sigma_w2 * act.dphi(root) * act.d2phi(root))
        pdf = np.exp(-0.5 * root**2 / q) / math.sqrt(2.0 * math.pi * q)
        density[inside] += np.where(dy > 0, pdf / np.where(dy > 0, dy, 1.0), 0.0)
    return lam, density, tuple(atoms), tail_mass


def _vanishes_next_to_a_kink(act) -> bool:
    """True when ``phi'`` is exactly 0 on an interval ending at a kink (ReLU, hard tanh): a genuine atom of ``D^2``
    at 0, unlike zeros of ``phi'^2`` that only underflow float64 in the tails of smooth activations."""
    for k in act.kinks:
        for side in (-1.0, 1.0):
            if float(act.dphi(np.array([k + side * 1e-3 * max(1.0, abs(k))]))[0]) == 0.0:
                return True
    return False


def _trace_from_edge(eq: _Equation, x_e: float, u_e: float,
                     targets: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Solutions ``z`` (``Im z >= 0``) at ``targets`` (moving away from the soft edge ``(x_e, u_e)``), ``m(z)`` there,
    and ok flags."""
    branch = eq.branch_at(x_e)
    z1, conv, _, branch1, _, _, m1 = eq.newton(targets[0], _edge_start(eq, x_e, u_e, targets[0]), branch)
    if not conv:
        return _trace(targets, complex(x_e), u_e, *eq.args, NEWTON_TOL, NEWTON_MAXIT, MAX_HALVINGS, eq.loose_rel,
                      *branch)
    zs, ms, oks = _trace(targets[1:], z1, targets[0], *eq.args, NEWTON_TOL, NEWTON_MAXIT, MAX_HALVINGS,
                         eq.loose_rel, *branch1)
    return np.concatenate([[z1], zs]), np.concatenate([[m1], ms]), np.concatenate([[True], oks])


def _density_on_grid(eq: _Equation, support: _Support, num: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """``(lam, density, ok)`` on ``num`` points of the support by continuation down from the upper edge."""
    soft_lo = support.x_lo is not None
    lo, hi = math.exp(support.u_lo), math.exp(support.u_hi)
    if (not soft_lo) or hi > 10.0 * lo:
        u_grid = _grid(support.u_lo, support.u_hi, num, soft_lo)
    else:
        u_grid = np.log(_grid(lo, hi, num, soft_lo))
        u_grid[0], u_grid[-1] = support.u_lo, support.u_hi
    z = np.empty(num, dtype=np.complex128)
    m = np.empty(num, dtype=np.complex128)
    ok = np.ones(num, dtype=bool)
    z[-1] = support.x_hi
    if soft_lo:
        z[0] = support.x_lo
    inner = np.arange(1 if soft_lo else 0, num - 1)[::-1]  # from the top down
    if inner.size:
        z[inner], m[inner], ok[inner] = _trace_from_edge(eq, support.x_hi, support.u_hi, u_grid[inner])
    m[-1] = eq.derivs(z[-1])[3]
    if soft_lo:
        m[0] = 0.0  # density 0 at a soft edge (and x_lo may be an atom of D^2, a pole of m: _atom_edge)
    lam = np.exp(u_grid)
    density = np.maximum(-m.imag, 0.0) / (math.pi * lam)
    density[-1] = 0.0
    if soft_lo:
        density[0] = 0.0
    return lam, density, ok


def _density_and_tail(eq: _Equation, support: _Support, num: int, mass: float):
    """``(lam, density, ok, tail_mass)``: :func:`_density_on_grid` and the continuous mass below the grid (mass
    conservation: what the grid does not carry lies below it; 0 with a soft lower edge)."""
    lam, density, ok = _density_on_grid(eq, support, num)
    soft_lo = support.x_lo is not None
    tail_mass = 0.0 if soft_lo else max(0.0, mass - _integral_log(lam, np.where(ok, density, 0.0))[-1])
    return lam, density, ok, tail_mass


def _integral_log(lam: np.ndarray, density: np.ndarray) -> np.ndarray:
    """Cumulative trapezoid of ``density`` over ``lam`` taken in ``log lam`` (exact for log grids, fine for others)."""
    f = density * lam
    steps = 0.5 * (f[1:] + f[:-1]) * np.diff(np.log(lam))
    return np.concatenate([[0.0], np.cumsum(steps)])


# --------------------------------------------------------------------------------------------------------------------
# layered networks: rectangular layers, per-layer parameters (rmt.layers)
# --------------------------------------------------------------------------------------------------------------------


def _layered_newton(eq: LayeredEquation, u: float, m0: complex, z0: np.ndarray):
    """Solve ``log Z_J(m) = u`` from ``(m0, z0)``; returns ``(m, z, converged)``."""
    return eq.newton(u, m0, z0, NEWTON_TOL, NEWTON_MAXIT)


def _layered_spectrum(layers: Layers, num: int, tail_tol: float) -> JacobianSpectrum:
    """The law of ``J J^T`` (output side) for a :class:`rmt.layers.Layers` description (see :mod:`rmt.layers`)."""
    laws = layered_laws(layers)
    n = layers.widths
    zero_mass = np.array([law.zero_mass for law in laws])
    rank = min(n[0], float(np.min(n[1:] * (1.0 - zero_mass))))
    atom0 = max(0.0, 1.0 - rank / n[-1])
    mass = 1.0 - atom0
    k = np.ones(layers.depth) if layers.weights == "gaussian" else np.minimum(1.0, n[:-1] / n[1:])
    mu1 = np.array([law.moments(1)[0] for law in laws])
    log_mean = float(np.sum(np.log(layers.sigma_w2 * k * mu1)))
    _check_representable(log_mean, layers.depth, math.exp(min(log_mean, 700.0)))
    eq = LayeredEquation(layers, laws)
    # upper edge: first zero of F'(m) on the real axis, m from 0+ upwards (lam from +inf downwards)
    ms = np.logspace(-12, 10, 900)
    z = eq.solve_z(ms[0])
    f1s, zs = [], []
    for mi in ms:
        z = eq.solve_z(mi, z)
        if z is None:
            break
        zs.append(z)
        f1s.append(eq.derivs(mi, z)[1].real)
    f1s = np.array(f1s)
    cross = np.nonzero((f1s[:-1] < 0) & (f1s[1:] >= 0))[0]
    if cross.size == 0:
        raise RuntimeError("no upper spectral edge found for these layers (F'(m) has no zero for real m > 0)")
    i = int(cross[0])
    lo_m, hi_m, z_lo = ms[i], ms[i + 1], zs[i]
    for _ in range(200):  # bisection on F'(m) = 0 (z continued from the lower end)
        mid = 0.5 * (lo_m + hi_m)
        z_mid = eq.solve_z(mid, z_lo)
        if eq.derivs(mid, z_mid)[1].real < 0:
            lo_m, z_lo = mid, z_mid
        else:
            hi_m = mid
        if hi_m - lo_m <= 1e-15 * hi_m:
            break
    m_e = 0.5 * (lo_m + hi_m)
    z_e = eq.solve_z(m_e, z_lo)
    f_e, _, f2_e = eq.derivs(m_e, z_e)
    u_hi = f_e.real
    _check_representable(u_hi, layers.depth, math.exp(min(log_mean, 700.0)))

    def start_near_edge(u):
        return complex(m_e, -math.sqrt(max(2.0 * (u_hi - u) / max(f2_e.real, 1e-300), 0.0)))

    # walk down in u = log lam to a soft lower edge, the tail cutoff or the float64 floor
    h = 1e-6 * max(1.0, abs(u_hi))
    u, m, zc = u_hi, complex(m_e), z_e
    walk = [(u_hi, complex(m_e), z_e)]
    rho_prev = rho_max = 0.0
    first = True
    u_lo, soft = None, False
    while True:
        u_new = max(u - h, LOG_LAM_FLOOR)
        guess = start_near_edge(u_new) if first else m + (u_new - u) / eq.derivs(m, zc)[1]
        if guess.imag > 0:
            guess = guess.conjugate()
        m_new, z_new, conv = _layered_newton(eq, u_new, guess, zc)
        if m_new.imag > 0:
            m_new, z_new = m_new.conjugate(), np.conj(z_new)
        jump = abs(m_new - guess) > 0.5 * abs(m_new - m) + 1e-12 * abs(m)
        rel_imag = -m_new.imag / max(abs(m_new), 1e-300)
        if not conv or jump or (first and rel_imag < 1e-10):
            h *= 0.5
            if h < 1e-14 * max(1.0, abs(u)):
                raise RuntimeError(f"continuation of the layered Jacobian spectrum stalled at lam = exp({u:.6g})")
            continue
        if rel_imag < 1e-9 and not first:
            # back on the real axis: a soft lower edge between u_new and u; solve F'(m) = 0 for real m
            u_lo, soft = u, True
            m_r, z_r = complex(m_new.real), np.real(z_new).astype(np.complex128)
            for _ in range(100):
                z_try = eq.solve_z(m_r, z_r)
                if z_try is None:
                    break
                z_r = z_try
                _, f1_r, f2_r = eq.derivs(m_r, z_r)
                if f2_r.real == 0 or not math.isfinite(f2_r.real):
                    break
                step = -f1_r.real / f2_r.real
                m_r = complex(m_r.real + step)
                if abs(step) <= 1e-15 * abs(m_r):
                    z_r = eq.solve_z(m_r, z_r)
                    u_edge = eq.derivs(m_r, z_r)[0].real if z_r is not None else math.nan
                    if u_new - 1e-9 <= u_edge <= u + 1e-9:
                        u_lo = u_edge
                    break
            break
        first = False
        rho = -m_new.imag / math.pi
        rho_max = max(rho_max, rho)
        kappa = (math.log(rho_prev) - math.log(rho)) / (u - u_new) if rho_prev > 0 and rho > 0 else 0.0
        walk.append((u_new, m_new, z_new))
        if u_new <= LOG_LAM_FLOOR or (kappa > 0 and rho / kappa < tail_tol * mass):
            u_lo = u_new
            break
        u, m, zc, rho_prev = u_new, m_new, z_new, rho
        h = min(2.0 * h, max(1e-6, 0.05 * (u_hi - u) + 0.5 * h))
    # density on the grid by continuation from the walk's nearest point above each grid point
    lo_lam, hi_lam = math.exp(u_lo), math.exp(u_hi)
    if (not soft) or hi_lam > 10.0 * lo_lam:
        u_grid = _grid(u_lo, u_hi, num, soft)
    else:
        u_grid = np.log(_grid(lo_lam, hi_lam, num, soft))
        u_grid[0], u_grid[-1] = u_lo, u_hi
    density_log = np.zeros(num)
    ok = np.ones(num, dtype=bool)
    u_prev, m_prev, z_prev = u_hi, complex(m_e), z_e
    for j in range(num - 2, -1, -1):
        target = u_grid[j]
        nsub, done = 1, False
        while nsub <= 1 << 10 and not done:
            uc, mc, zc = u_prev, m_prev, z_prev
            done = True
            for step in range(1, nsub + 1):
                us = u_prev + (target - u_prev) * step / nsub
                guess = start_near_edge(us) if uc == u_hi else mc + (us - uc) / eq.derivs(mc, zc)[1]
                if guess.imag > 0:
                    guess = guess.conjugate()
                z_guess = eq.solve_z(guess, zc)
                if z_guess is None:
                    done = False
                    break
                mc_new, zc_new, conv = _layered_newton(eq, us, guess, z_guess)
                if not conv:
                    done = False
                    break
                if mc_new.imag > 0:
                    mc_new, zc_new = mc_new.conjugate(), np.conj(zc_new)
                uc, mc, zc = us, mc_new, zc_new
            nsub *= 2
        if done:
            u_prev, m_prev, z_prev = target, mc, zc
            density_log[j] = max(-mc.imag, 0.0) / math.pi
        else:
            ok[j] = False
    if soft:
        density_log[0] = 0.0
    lam = np.exp(u_grid)
    density = density_log / lam
    tail_mass = 0.0 if soft else max(0.0, mass - _integral_log(lam, density)[-1])
    if not ok.all():
        warnings.warn(f"Newton failed at {int(np.sum(~ok))} of {num} grid points; density set to NaN there",
                      RuntimeWarning, stacklevel=3)
        density[~ok] = np.nan
    atoms = ((0.0, atom0),) if atom0 > 0 else ()
    good = np.isfinite(density)
    f = np.where(good, density * lam, 0.0)
    grid_m1 = float(np.trapezoid(f * lam, u_grid))
    grid_m2 = float(np.trapezoid(f * lam**2, u_grid))
    mean = math.exp(log_mean)
    variance = grid_m2 - grid_m1**2  # from the grid (the exact series is for square layers)
    params = dict(activation=[a.name for a in layers.activations], sigma_w2=layers.sigma_w2.tolist(),
                  sigma_b2=layers.sigma_b2.tolist(), depth=layers.depth, weights=layers.weights,
                  widths=layers.widths.tolist(), q=layers.q.tolist())
    lo = float(lam[0]) if soft else 0.0
    return JacobianSpectrum(lam, density, (lo, float(lam[-1])), mean, variance, atoms, tail_mass, math.nan, params)
