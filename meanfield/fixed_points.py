"""Fixed points of the fully connected length and correlation maps, the critical line and depth scales.

Notation (Poole et al. 2016; Schoenholz et al. 2017; ``docs/formulas.md``): ``V(q) = E[phi(sqrt(q) z)^2]``,
``D(q) = E[phi'(sqrt(q) z)^2]``, ``V' = dV/dq`` (:mod:`meanfield.moments`), ``b_k(q) = a_k(q)^2`` the squared Hermite
coefficients (:mod:`meanfield.hermite`).

- ``q*``: the smallest stable fixed point of ``q -> sigma_w2 V(q) + sigma_b2`` (the one the map reaches from ``q = 0``),
  found by one bracketed, safeguarded Newton method, :func:`q_star_step`, written once and driven both by the scalar
  path (:func:`solve_q_star`, moments by quadrature) and by the Numba grid kernel (moments from Chebyshev tables).
- ``c*``: in the chaotic phase (``chi_1 > 1``) the root ``c* < 1`` of ``sigma_w2 (V - K(c)) = q* (1 - c)`` with the
  trivial root ``c = 1`` divided out (:func:`settle_c`, Mehler series; well conditioned up to the critical line); for
  kinked activations, whose series converge algebraically, by Price's theorem with the exact kernel of a
  piecewise-exponential phi' (:mod:`meanfield.piecewise`) or 2-D quadrature (:func:`price_correlation_fixed_point`);
  closed forms by :mod:`meanfield.closed_forms`. ``c* = 1`` otherwise.
  ``c*`` is solved whenever ``chi_1 > 1``, also inside the critical band ``|chi_1 - 1| <= CRITICAL_TOL`` (which only
  labels the phase), so ``chi_c < 1`` and ``xi_c > 0`` on both sides of the critical line.
- critical line: ``chi_1 = sigma_w2 D(q*) = 1`` at a *stable* ``q*`` (:func:`critical_sigma_w2`).
"""

from __future__ import annotations

import functools
import math
import warnings

import numba
import numpy as np

from .activations import Activation
from .closed_forms import closed_correlation_fixed_point
from .hermite import DEGREE_START, degree_schedule, hermite_rows
from .kernel_quadrature import kernel_quadrature
from .piecewise import piecewise_dphi_kernel
from .quadrature import gaussian_expectation
from .roots import brent_root

__all__ = [
    "CRITICAL_TOL",
    "C_TOL",
    "PHASES",
    "PRICE_DEGREES_EXACT",
    "Q_STAR_MAX",
    "FixedPointError",
    "NoFixedPointWarning",
    "correlation_fixed_point",
    "critical_point",
    "is_stable",
    "new_q_star_state",
    "critical_sigma_w2",
    "depth_scales",
    "phase_labels",
    "price_correlation_fixed_point",
    "price_interpolant",
    "price_kernel",
    "price_mean",
    "price_stretch",
    "q_star_step",
    "settle_c",
    "solve_q_star",
    "truncation_numerator",
]

#: Length fixed points beyond this are reported as ``inf`` (no finite fixed point).
Q_STAR_MAX = 1e12
#: ``|chi_1 - 1|`` at or below which a point is labelled critical (the label only; c* is still solved when chi_1 > 1).
CRITICAL_TOL = 1e-10
#: Target width of the rigorous bracket on c* from a truncated Mehler series (absolute, c in [0, 1]).
C_TOL = 1e-14
#: Relative Parseval tail ``dtail / (q D)`` at which a series counts as converged to the precision of its inputs.
TAIL_RTOL = 1e-15
#: Gauss-Legendre nodes of the Price-theorem integral in the 2-D quadrature route to ``c*``.
PRICE_NODES = 48
#: Degrees of the nested Chebyshev-Lobatto interpolants of the Price integrand (:func:`price_interpolant`).
PRICE_DEGREES = (16, 32, 64, 128)
#: Degrees of the Price interpolant when phi' is piecewise exponential (exact, cheap kernel values; large ``q`` needs
#: high degrees for the boundary layer of width ``1/sqrt(q)`` in ``u``).
PRICE_DEGREES_EXACT = (16, 32, 64, 128, 256, 512, 1024)
#: Relative size of the last Chebyshev coefficients at which the Price interpolant counts as converged.
PRICE_RTOL = 1e-13
#: Above this ``q*`` the correlation fixed point of the 2-D route is found by Newton's method on the correlation map
#: (a few kernel pairs) before trying the Price interpolant (about a hundred pairs, each costly at large ``q``).
PRICE_Q_MAX = 100.0
#: Most safeguarded Newton iterations for q* before FixedPointError.
NEWTON_MAX = 200

PHASES = ("ordered", "chaotic", "critical")


class FixedPointError(ArithmeticError):
    """A requested fixed point (or critical point) does not exist or could not be found."""


class NoFixedPointWarning(RuntimeWarning):
    """No finite length fixed point ``q*`` exists at some points; they are reported as ``inf``."""


# ---------------------------------------------------------------------------------------------------------------------
# q*: one safeguarded Newton method, advanced one evaluation at a time
# ---------------------------------------------------------------------------------------------------------------------

#: Slots of the q* search state (a float64 array of length 5).
_STAGE, _LO, _HI, _Q, _COUNT = range(5)


def new_q_star_state() -> np.ndarray:
    """A fresh state for :func:`q_star_step`; the first evaluation is at ``q = 0``."""
    return np.zeros(5)


@numba.njit(cache=True)
def q_star_step(state, sw2, sb2, gq, gpq):
    """Advance the search for ``q*`` by one evaluation; return the next ``q`` to evaluate, or ``-1`` when done.

    The caller evaluates ``g(q) = sw2 V(q) + sb2 - q`` and ``g'(q) = sw2 V'(q) - 1`` at ``q = state[3]`` (0 first)
    and passes them in (``nan`` where ``V`` is unavailable, e.g. outside a table). On return ``-1`` the result is
    ``state[3]``: ``q*``, ``inf`` (no fixed point below :data:`Q_STAR_MAX`) or ``nan`` (``g`` unavailable, or Newton
    did not converge).

    Stages: 0, at ``q = 0`` (``g(0) = sb2 >= 0``; ``q* = 0`` if ``g(0) = 0`` and ``g'(0) <= 0``); 1, stepping up
    ``q -> q + max(g(q), q)`` until ``g(q) <= 0`` (the first crossing from above: the fixed point the map reaches from
    below); 2, safeguarded Newton inside the bracket ``[lo, hi]`` with ``g(lo) > 0 >= g(hi)``, bisecting whenever the
    Newton step leaves it, until the step is below 1e-15 relative.
    """
    stage = state[0]
    q = state[3]
    if stage == 0.0:
        state[1] = 0.0
        if gq <= 0.0:
            if gpq <= 0.0:
                state[3] = 0.0
                return -1.0
            state[3] = 1e-8
        else:
            state[3] = gq
        state[0] = 1.0
        return state[3]
    if stage == 1.0:
        if not math.isfinite(gq):
            state[3] = math.nan
            return -1.0
        if gq > 0.0:
            state[1] = q
            q = q + max(gq, q)
            if q > Q_STAR_MAX:
                state[3] = math.inf
                return -1.0
            state[3] = q
            return q
        state[2] = q
        state[0] = 2.0
    # stage 2: Newton at q with g(q), g'(q)
    if not math.isfinite(gq):
        state[3] = math.nan
        return -1.0
    if gq == 0.0:
        return -1.0
    if gq > 0.0:
        state[1] = q
    else:
        state[2] = q
    lo = state[1]
    hi = state[2]
    q_new = q - gq / gpq if gpq != 0.0 else math.inf
    if not (lo < q_new < hi):
        q_new = 0.5 * (lo + hi)
    state[3] = q_new
    if abs(q_new - q) <= 1e-15 * max(q, 1e-300) or hi - lo <= 4e-16 * hi:
        return -1.0
    state[4] += 1.0
    if state[4] > NEWTON_MAX:
        state[3] = math.nan
        return -1.0
    return q_new


#: Relative half-width of the bracket tried around a ``guess`` of :func:`solve_q_star` (the tables' q* is good to
#: about 1e-12; a bracket that does not hold falls back to the full search).
GUESS_RTOL = 1e-9


def solve_q_star(moments, sw2: float, sb2: float, guess: float | None = None) -> float:
    """``q*`` by :func:`q_star_step` with ``moments(q) -> (V, D, V')`` (a :class:`meanfield.moments.LengthMoments`).

    ``guess``: an approximation of ``q*`` *as found by the same search* (e.g. from the Chebyshev tables of
    :mod:`meanfield.grid`). If ``g(q) = sw2 V(q) + sb2 - q`` changes sign across ``guess (1 -+ GUESS_RTOL)``, the
    Newton stage starts inside that bracket (a few evaluations instead of the whole search from ``q = 0``); otherwise
    the full search runs. The bracket holds a root of ``g``; that it is the first crossing the search would find is
    taken from the guess's own search.

    Returns ``inf`` where there is no finite fixed point (``V`` overflowing counts as divergence); raises
    FixedPointError if the Newton iteration does not converge.
    """
    state = new_q_star_state()
    q = 0.0
    if guess is not None and math.isfinite(guess) and guess > 0.0:
        lo, hi = guess * (1.0 - GUESS_RTOL), guess * (1.0 + GUESS_RTOL)
        try:
            g_lo = sw2 * moments(lo)[0] + sb2 - lo
            g_hi = sw2 * moments(hi)[0] + sb2 - hi
        except FloatingPointError:
            g_lo = g_hi = math.nan
        if g_lo > 0.0 >= g_hi:
            state[:] = (2.0, lo, hi, guess, 0.0)
            q = guess
    while q >= 0.0:
        try:
            v, _, vp = moments(q)
        except FloatingPointError:  # E[phi^2] overflows: the length map diverges
            return math.inf
        q = q_star_step(state, sw2, sb2, sw2 * v + sb2 - q, sw2 * vp - 1.0)
    q = float(state[3])
    if math.isnan(q):
        raise FixedPointError(f"Newton iteration for q* did not converge at sigma_w2={sw2}, sigma_b2={sb2}")
    return q


# ---------------------------------------------------------------------------------------------------------------------
# c*: the Mehler series with the trivial root divided out
# ---------------------------------------------------------------------------------------------------------------------


@numba.njit(cache=True)
def divided_series(b, kmax, c):
    """``P1(c) = sum_{1<=j<kmax} c^(j-1) T_j``, ``P1'(c)`` and ``P1''(c) / 2``, with ``T_j = sum_{j<k<=kmax} b_k``
    (Horner, suffix sums accumulated on the way down). The truncated Mehler series with its trivial root divided out is
    ``P(c) = sum_k b_k (1 - c^k)/(1 - c) = T_0 + c P1(c)``; all coefficients are >= 0, so ``P1`` is increasing and
    convex on [0, 1] and is evaluated without cancellation. For ``c < 0.99`` the Horner sum starts at the first ``j``
    with ``c^j <= 1e-18 (1 - c)^2`` (the suffix sums above it are still accumulated): the terms left out are below
    rounding in ``P1`` and ``P1'`` (``P1''``, used only to bound Newton's error, may lose a little more)."""
    top = kmax - 1
    if 0.0 < c < 0.99:  # terms c^(j-1) T_j with c^j below 1e-18 (1 - c)^2 of T_1 <= P1 do not change P1 or P1'
        top = min(top, max(int(math.log(1e-18 * (1.0 - c) ** 2) / math.log(c)) + 1, 1))
    elif c == 0.0:
        top = min(top, 2)
    t = 0.0
    for k in range(kmax, top + 1, -1):
        t += b[k]
    p = 0.0
    dp = 0.0
    hdp = 0.0
    for j in range(top, 0, -1):
        t += b[j + 1]
        hdp = hdp * c + dp
        dp = dp * c + p
        p = p * c + t
    return p, dp, hdp


@numba.njit(cache=True)
def settle_c(b, kmax, q, sw2, sb2, chi1, qd, v, c0):
    """Chaotic fixed point ``c*`` of the correlation map from the Mehler series ``b_0..b_kmax`` (``b_k = a_k(q)^2``).

    ``sw2 (V - K(c)) = q (1 - c)`` has the trivial root ``c = 1``; dividing it out leaves
    ``H(c) = sw2 P(c) - q`` with ``P(c) = sum_j c^j T_j``, ``T_j = sum_{k>j} b_k``. With ``T_0 = V - b_0`` and
    ``q = sw2 V + sb2`` (``q`` is the length fixed point) this is ``H(c) = sw2 c P1(c) - (sb2 + sw2 b_0)``
    (:func:`divided_series`): no cancellation at ``c = 0`` (``c* = 0`` exactly for odd ``phi`` without bias, however
    small ``q``), increasing and convex with ``H(1) = q (chi_1 - 1) > 0``, slope ``O(q)`` up to the critical line
    (well conditioned, unlike the undivided form whose slope at ``c*`` is ``q (1 - chi_c)``). Degrees above ``kmax``
    add ``sw2 c sum_{k>kmax} b_k (1 - c^(k-1))/(1 - c)``, between 0 and ``sw2 min(dtail, R / (1 - c))`` with
    ``dtail = q D - sum_{k<=kmax} k b_k`` (``sum_k k b_k = q D``) and the Parseval remainder
    ``R = V - sum_{k<=kmax} b_k``: the roots with the tail at 0 and at that bound bracket the exact ``c*`` (the ``R``
    bound is the tight one far from the critical line, ``dtail`` next to it); ``c*`` is their midpoint.

    Returns ``(c*, 1 - chi_c, gap, dtail / (q D))``: ``gap`` is the larger of the bracket width on ``c*`` and the
    uncertainty of ``chi_c`` from the truncation (``nan`` where the truncated series has no root, i.e. more degrees are
    needed); the caller accepts the point when ``gap <= c_tol``, or when the series has converged to the precision of
    its inputs (``dtail / (q D)`` at rounding level). ``1 - chi_c`` is computed as
    ``(1 - chi_1) + sw2/q [(1 - c) sum_j c^j W_j + (tail of sum_k k b_k (1 - c^(k-1)))]`` with
    ``W_j = sum_{k>=j+2} k b_k`` and the tail taken as the midpoint of ``[dtail (1 - c^kmax), dtail]``: positive terms
    only, so it keeps its relative accuracy next to the critical line.
    """
    # one pass for the partial sums and P1(1) = sum_{1<=j<kmax} T_j (the suffix sums T_j are the running ``partial``;
    # the same additions in the same order as divided_series(b, kmax, 1.0))
    dpartial = 0.0
    partial = 0.0
    p1_at_1 = 0.0
    for k in range(kmax, 1, -1):
        dpartial += k * b[k]
        partial += b[k]
        p1_at_1 += partial
    if kmax >= 1:
        dpartial += b[1]
        partial += b[1]
    partial += b[0]
    if kmax < 1:
        return math.nan, math.nan, math.nan, math.nan
    offset = sb2 + sw2 * b[0]
    if sw2 * p1_at_1 <= offset:  # H(1) <= 0 for the truncated series: no root below 1 yet
        return math.nan, math.nan, math.nan, math.nan
    dtail = max(qd - dpartial, 0.0)
    lo = 0.0
    hi = 1.0
    c = min(max(c0, 0.0), 1.0)
    slope = 0.0
    ok = False
    last_step = math.inf
    for _ in range(200):
        p1, dp1, hdp1 = divided_series(b, kmax, c)
        h = sw2 * c * p1 - offset
        slope = p1 + c * dp1
        if h == 0.0:
            ok = True
            break
        if h > 0.0:
            hi = c
        else:
            lo = c
        c_new = c - h / (sw2 * slope) if slope > 0.0 else -1.0
        newton = lo <= c_new <= hi
        if not newton:
            c_new = 0.5 * (lo + hi)
        step = abs(c_new - c)
        # converged: step at a few ulps; or two small Newton steps that no longer shrink (h is at its rounding floor,
        # which puts the step below ~1e-15: a larger step that shrinks slowly is the start of the iteration, e.g.
        # towards c* = 0 from far); or a Newton step whose error bound H''/(2 H') step^2 (H'' = 2 sw2 (P1' + c P1''/2)
        # increases with c; taken twice, for the move to c_new) is below 1e-18
        if (step <= 4e-16 or hi - lo <= 4e-16
                or (newton and ((step >= 0.5 * last_step and step <= 1e-12)
                                or 2.0 * (dp1 + c * hdp1) * step * step <= 1e-18 * slope))):
            c = c_new
            ok = True
            break
        last_step = step if newton else math.inf
        c = c_new
    if not ok or slope <= 0.0:
        return math.nan, math.nan, math.nan, math.nan
    gap = truncation_numerator(c, qd, v, dpartial, partial) / slope
    c = max(c - 0.5 * gap, 0.0)
    w = 0.0
    s = 0.0
    for j in range(kmax - 2, -1, -1):
        w += (j + 2) * b[j + 2]
        s = s * c + w
    # the degrees above kmax add sum_{k>kmax} k b_k (1 - c^(k-1)), in [dtail (1 - c^kmax), dtail]: take the midpoint;
    # its half-width (in chi_c) joins the bracket width
    ck = c**kmax
    one_minus_chic = (1.0 - chi1) + sw2 / q * ((1.0 - c) * s + dtail * (1.0 - 0.5 * ck))
    gap = max(gap, sw2 / q * dtail * ck)
    return c, one_minus_chic, gap, dtail / qd


@numba.njit(cache=True)
def truncation_numerator(c, qd, v, dpartial, partial):
    """``c min(dtail, (R + 4e-16 V)/(1 - c)) + 4e-16 q D``, ``dtail = max(q D - dpartial, 0)``,
    ``R = max(V - partial, 0)``: the numerator of :func:`settle_c`'s bracket width at a degree ``K`` whose partial sums
    are ``dpartial = sum_{1<=k<=K} k b_k`` and ``partial = sum_{k<=K} b_k`` (its denominator is the slope of the
    divided series at the root, which hardly changes with ``K``: callers predict the bracket at other degrees from
    it)."""
    dtail = max(qd - dpartial, 0.0)
    bound = dtail
    if c < 1.0:
        bound = min(dtail, (max(v - partial, 0.0) + 4e-16 * v) / (1.0 - c))
    return c * bound + 4e-16 * qd


def _lobatto_coefficients(values: np.ndarray) -> np.ndarray:
    """Chebyshev coefficients of the interpolant through ``values`` at ``x_j = cos(pi j / n)``, ``j = 0..n``."""
    n = values.size - 1
    j = np.arange(n + 1)
    f = values.copy()
    f[0] *= 0.5
    f[-1] *= 0.5
    coef = 2.0 / n * np.cos(np.pi * np.outer(j, j) / n) @ f
    coef[0] *= 0.5
    coef[-1] *= 0.5
    return coef


def price_stretch(q: float) -> float:
    """Stretch ``A = asinh(sqrt(max(q, 1)))`` of the Price interpolant's variable: ``u = sinh(A v) / sinh(A)``,
    ``v`` in ``[0, 1]``, puts ``O(A)`` Chebyshev nodes into the boundary layer of width ``1/sqrt(q)`` in ``u``."""
    return math.asinh(math.sqrt(max(q, 1.0)))


def price_interpolant(act: Activation, q: float, exact: bool = True) -> np.ndarray | None:
    """Chebyshev coefficients (in ``x = 2v - 1``) of ``v -> E[phi'(u1) phi'(u2)]`` at correlation ``t = 1 - u^2``,
    ``u = sinh(A v) / sinh(A)`` (:func:`price_stretch`), ``v`` in ``[0, 1]`` (``u1, u2`` of variance ``q``), or None
    if it does not converge by the last degree of :data:`PRICE_DEGREES` (:data:`PRICE_DEGREES_EXACT`).

    In ``u`` the ``sqrt(1 - t)`` behaviour that kinks cause at ``t = 1`` is analytic, so the interpolant at nested
    Chebyshev-Lobatto points converges geometrically; the degree doubles until the last three coefficients are below
    :data:`PRICE_RTOL` of the values. At large ``q`` the kernel has a boundary layer of width ``1/sqrt(q)`` in ``u``;
    the stretch resolves it with ``O(log q)`` nodes. Kernel values are exact
    (:func:`meanfield.piecewise.piecewise_dphi_kernel`) when ``act.dphi_pieces`` is set and ``exact`` is true,
    otherwise from :func:`meanfield.kernel_quadrature.kernel_quadrature` of ``phi'`` (2-D quadrature).
    """
    pieces = act.dphi_pieces if exact else None
    stretch = price_stretch(q)
    values = np.empty(0)
    for n in PRICE_DEGREES_EXACT if pieces is not None else PRICE_DEGREES:
        x = np.cos(np.pi * np.arange(n + 1) / n)
        u = np.sinh(stretch * 0.5 * (x + 1.0)) / math.sinh(stretch)
        u[0] = 1.0
        u[-1] = 0.0
        new = np.arange(n + 1) if values.size == 0 else np.arange(1, n + 1, 2)
        t = 1.0 - u[new] ** 2
        if pieces is not None:
            fresh = piecewise_dphi_kernel(pieces, q, t, u[new] ** 2)
        else:
            qa = np.full(t.size, q)
            fresh = kernel_quadrature(act.dphi, act.dphi, act.kinks, qa, qa, q * t, oscillatory=act.oscillatory)
        full = np.empty(n + 1)
        if values.size == 0:
            full[:] = fresh
        else:
            full[0::2] = values
            full[1::2] = fresh
        values = full
        coef = _lobatto_coefficients(full)
        if np.max(np.abs(coef[-3:])) <= PRICE_RTOL * np.max(np.abs(full)):
            return coef
    return None


@numba.njit(cache=True)
def price_kernel(coef, stretch, u):
    """The Price interpolant (:func:`price_interpolant`, stretch ``A``) at ``u = sqrt(1 - t)`` (Clenshaw)."""
    x = 2.0 * math.asinh(u * math.sinh(stretch)) / stretch - 1.0
    b1 = 0.0
    b2 = 0.0
    for k in range(coef.size - 1, 0, -1):
        b1, b2 = 2.0 * x * b1 - b2 + coef[k], b1
    return x * b1 - b2 + coef[0]


@numba.njit(cache=True)
def price_mean(coef, stretch, r, nodes, weights):
    """Mean of the Price interpolant (:func:`price_kernel`) over ``t`` in ``[1 - r^2, 1]``,
    ``int_0^r p(u) 2u du / r^2``, by Gauss-Legendre (``nodes``, ``weights`` on ``[0, 1]``) in the stretched variable:
    ``u = r g(s)``, ``g(s) = sinh(B s)/sinh(B)``, ``B = asinh(r sinh A)``, where the interpolant is smooth; the
    weight ``2 g g'`` has no cancellation as ``r -> 0`` (it tends to ``2 s``)."""
    big = math.asinh(r * math.sinh(stretch))
    vr = big / stretch
    sb = math.sinh(big)
    total = 0.0
    for i in range(nodes.size):
        sig = nodes[i]
        if big > 1e-8:
            g = math.sinh(big * sig) / sb
            dg = big * math.cosh(big * sig) / sb
        else:
            g = sig
            dg = 1.0
        x = 2.0 * vr * sig - 1.0
        b1 = 0.0
        b2 = 0.0
        for k in range(coef.size - 1, 0, -1):
            b1, b2 = 2.0 * x * b1 - b2 + coef[k], b1
        total += weights[i] * 2.0 * g * dg * (x * b1 - b2 + coef[0])
    return total


@functools.lru_cache(maxsize=16)
def _unit_legendre(n: int) -> tuple[np.ndarray, np.ndarray]:
    """Gauss-Legendre nodes and weights on ``[0, 1]`` (cached: the degrees used are few)."""
    x, w = np.polynomial.legendre.leggauss(n)
    return 0.5 * (x + 1.0), 0.5 * w


def price_correlation_fixed_point(act: Activation, moments, q: float, sw2: float, exact: bool = True
                                  ) -> tuple[float, float]:
    """``c*`` and ``chi_c`` from Price's theorem, without the trivial root ``c = 1``: the kernel ``E[phi' phi']``
    exact for piecewise-exponential phi' (``act.dphi_pieces``, unless ``exact`` is false), else by 2-D quadrature.

    By Price's theorem ``V - K(c) = q int_c^1 E[phi'(u1) phi'(u2)](t) dt`` (``u1, u2`` of variance ``q``,
    correlation ``t``), so ``c*`` is the root of ``F(c) = sw2 M(c) - 1`` with ``M(c)`` the mean of
    ``E[phi' phi'](t)`` over ``t`` in ``[c, 1]``: increasing, ``F(1) = chi_1 - 1 > 0``, slope ``O(1)`` up to the
    critical line. ``M`` is a Gauss-Legendre rule (at least :data:`PRICE_NODES` points) in the interpolant's stretched
    variable (:func:`price_mean`) applied to the interpolant of :func:`price_interpolant`; the root is found by
    Brent's method (:func:`meanfield.roots.brent_root`).

    With the exact kernel the interpolant is tried first at every ``q``. Where it does not converge (very large
    ``q``), Newton's method from ``c = 0`` on the undivided
    ``h(c) = sw2 (V - K(c)) - q (1 - c)`` (concave, ``h(0) <= 0``: the iterates increase monotonically to ``c*``;
    ``h'(c) = q (1 - chi_c(c))``), with ``K`` and ``E[phi' phi']`` by 2-D quadrature; it is well conditioned where
    ``1 - chi_c`` is not small, which is where such variances put ``c*``.

    Raises
    ------
    FixedPointError
        Neither route converges (a very large ``q*`` next to the critical line).
    """
    v, d, _ = moments(q)
    chi1 = sw2 * d
    exact = exact and act.dphi_pieces is not None
    if q > PRICE_Q_MAX and not exact:
        found = _newton_correlation_fixed_point(act, q, sw2, v)
        if found is not None:
            return found
    coef = price_interpolant(act, q, exact)
    if coef is not None:
        s, w = _unit_legendre(max(PRICE_NODES, coef.size // 2 + 8))  # exact to the degree used

        stretch = price_stretch(q)

        def f(r: float) -> float:  # F at c = 1 - r^2: solved in r, which next to the critical line is ~ chi_1 - 1
            return chi1 - 1.0 if r == 0.0 else sw2 * price_mean(coef, stretch, r, s, w) - 1.0

        # In c the root 1 - c* ~ (chi_1 - 1)^2 for kinked activations falls below double precision next to the
        # critical line (c* rounds to 1 and chi_c to chi_1 > 1); r = sqrt(1 - c*) stays resolved.
        r = 1.0 if f(1.0) >= 0.0 else brent_root(f, 0.0, 1.0, xtol=1e-40, rtol=8.9e-16, maxiter=1000)
        return 1.0 - r * r, sw2 * float(price_kernel(coef, stretch, r))
    found = None if q > PRICE_Q_MAX and not exact else _newton_correlation_fixed_point(act, q, sw2, v)
    if found is not None:
        return found
    raise FixedPointError(f"{act.name}: the correlation fixed point at q* = {q:.6g} (chi_1 = {chi1:.6g}) could not be "
                          "resolved: the Mehler series and the Price integral do not converge at this variance, and "
                          "Newton's method on the correlation map stalls next to the critical line")


def _newton_correlation_fixed_point(act: Activation, q: float, sw2: float, v: float) -> tuple[float, float] | None:
    """Newton's method for ``c*`` on ``h(c) = sw2 (V - K(c)) - q (1 - c)`` (see :func:`price_correlation_fixed_point`);
    None when it stalls (slope ``q (1 - chi_c)`` not positive, or 100 iterations)."""
    osc = act.oscillatory
    qa = np.full(1, q)
    c = 0.0
    for _ in range(100):
        cov = np.full(1, q * c)
        k = kernel_quadrature(act.phi, act.phi, act.kinks, qa, qa, cov, oscillatory=osc)[0]
        kd = kernel_quadrature(act.dphi, act.dphi, act.kinks, qa, qa, cov, oscillatory=osc)[0]
        h = sw2 * (v - k) - q * (1.0 - c)
        slope = q * (1.0 - sw2 * kd)
        if h >= 0.0:
            return c, sw2 * kd
        if slope <= 0.0:
            return None
        c_new = min(c - h / slope, 1.0)
        if c_new - c <= 1e-15:
            return c_new, sw2 * kd
        c = c_new
    return None


def correlation_fixed_point(act: Activation, moments, q: float, sw2: float, sb2: float) -> tuple[float, float]:
    """Chaotic fixed point ``(c*, chi_c)`` at ``q = q* > 0`` (the fixed point at ``(sw2, sb2)``) with
    ``chi_1 = sw2 D(q) > 1``.

    Without bias and with ``E[phi(u)] = 0`` (odd ``phi``) ``c* = 0`` exactly and ``chi_c = sw2 E[phi'(u)]^2``.
    Otherwise closed forms where :mod:`meanfield.closed_forms` has them; kinked activations by
    :func:`price_correlation_fixed_point`; smooth ones by :func:`settle_c` on the Hermite coefficients of
    :func:`meanfield.hermite.hermite_rows` at the degrees of :func:`meanfield.hermite.degree_schedule`, until the
    bracket is below :data:`C_TOL` (else the 2-D route).
    """
    v, d, _ = moments(q)
    chi1 = sw2 * d
    if sb2 == 0.0:  # c-map(0) = sw2 E[phi]^2 / q: c* = 0 exactly when E[phi(u)] = 0, and chi_c = sw2 E[phi'(u)]^2
        root = math.sqrt(q)
        means = gaussian_expectation(lambda z: np.stack([act.phi(root * z), act.dphi(root * z)], axis=-1), q,
                                     act.kinks, oscillatory=act.oscillatory)
        if abs(means[0]) <= 1e-14 * math.sqrt(v):
            return 0.0, sw2 * float(means[1]) ** 2
    closed = closed_correlation_fixed_point(act, q, sw2)
    if closed is not None:
        return closed
    if not act.kinks:
        c0 = 0.0
        variances = np.array([q])
        for kmax in degree_schedule(DEGREE_START):
            try:
                _, a = hermite_rows(act, variances, kmax)
            except FloatingPointError:
                break
            b = a[0] ** 2
            c, one_minus_chic, gap, rel_tail = settle_c(b, kmax, q, sw2, sb2, chi1, q * d, v, c0)
            if gap <= C_TOL or rel_tail <= TAIL_RTOL:  # bracket narrow, or the series converged to rounding
                return float(c), float(1.0 - one_minus_chic)
            if math.isfinite(c):
                c0 = c
    return price_correlation_fixed_point(act, moments, q, sw2)


# ---------------------------------------------------------------------------------------------------------------------
# Depth scales and phases
# ---------------------------------------------------------------------------------------------------------------------


def depth_scales(chi):
    """``-1/log|chi|`` elementwise (``log1p(|chi| - 1)`` near 1 for accuracy); ``inf`` at ``|chi| = 1``, ``0`` at
    ``chi = 0``, NaN for NaN (Schoenholz et al. 2017, Eqs. 6 and 9)."""
    a = np.abs(np.asarray(chi, dtype=np.float64))
    with np.errstate(divide="ignore", invalid="ignore"):
        log = np.where(a < 0.5, np.log(np.where(a > 0, a, 1.0)), np.log1p(a - 1.0))
        out = -1.0 / log
    out = np.where(a == 1.0, np.inf, out)
    return np.where(a == 0.0, 0.0, out)


def phase_labels(chi1) -> np.ndarray:
    """``"critical"`` where ``|chi_1 - 1| <= CRITICAL_TOL``, else ``"ordered"`` (chi_1 < 1) or ``"chaotic"``."""
    chi1 = np.asarray(chi1, dtype=np.float64)
    codes = np.where(np.abs(chi1 - 1.0) <= CRITICAL_TOL, 2, np.where(chi1 < 1.0, 0, 1))
    return _PHASE_NAMES[codes.reshape(-1)].reshape(codes.shape)


_PHASE_NAMES = np.array(["ordered", "chaotic", "critical"], dtype=object)


# ---------------------------------------------------------------------------------------------------------------------
# Critical line
# ---------------------------------------------------------------------------------------------------------------------

#: Geometric ladder of q on which the critical line's residual is scanned for sign changes (8 points per decade).
CRITICAL_LADDER = np.concatenate([[0.0], np.logspace(-10, 12, 177)])


def critical_point(moments, q: float) -> tuple[float, float]:
    """``(sigma_w2, sigma_b2) = (1/D(q), q - V(q)/D(q))``: where ``q`` is a fixed point with ``chi_1 = 1``
    (``sigma_b2`` may come out negative; ``sigma_w2 = inf`` if ``D(q) = 0``)."""
    v, d, _ = moments(q)
    if d <= 0.0:
        return math.inf, math.nan
    sw2 = 1.0 / d
    return sw2, q - sw2 * v


def is_stable(moments, q: float, sw2: float, sb2: float) -> tuple[bool, float]:
    """Whether ``q`` is the fixed point :func:`solve_q_star` finds at ``(sw2, sb2)`` (relative 1e-7), and that q*."""
    try:
        found = solve_q_star(moments, sw2, sb2)
    except FixedPointError:
        return False, math.nan
    return abs(found - q) <= 1e-7 * max(q, 1e-12), found


def critical_sigma_w2(name: str, moments, sb2: float, homogeneous: bool) -> tuple[float, float]:
    """Critical ``(sigma_w2, q*)`` at bias variance ``sb2``: ``chi_1 = 1`` at a stable ``q*``.

    Every critical point satisfies ``sigma_w2 = 1/D(q*)`` and ``sigma_b2 = q* - V(q*)/D(q*)``; the residual
    ``q -> critical_point(q)[1] - sb2`` is scanned on :data:`CRITICAL_LADDER`, each sign change refined by Brent's
    method (:func:`meanfield.roots.brent_root`), and the first root ``q`` that is the stable fixed point
    :func:`solve_q_star` finds at ``(1/D(q), sb2)`` is returned.
    Positively homogeneous activations (``V = D q``) are critical at ``sigma_w2 = 1/D`` for every ``q`` when
    ``sb2 = 0`` (``q* = 0``) and have no finite ``q*`` when ``sb2 > 0`` (``inf``, with a NoFixedPointWarning).

    Raises
    ------
    FixedPointError
        No ``q`` on the ladder has ``chi_1 = 1`` at ``sb2``, or every such ``q`` is an unstable fixed point (the map
        from below converges elsewhere, where ``chi_1 != 1``): the message names them.
    """
    if homogeneous:
        sw2 = 1.0 / moments(1.0)[1]
        if sb2 == 0.0:
            return sw2, 0.0
        warnings.warn(f"{name}: the critical line sigma_w2 = {sw2:g} has no finite fixed point q* for "
                      f"sigma_b2 = {sb2:g} > 0 (q* = inf)", NoFixedPointWarning, stacklevel=3)
        return sw2, math.inf

    def residual(q):
        return critical_point(moments, q)[1] - sb2

    unstable = []

    def accept(root: float):
        sw2 = critical_point(moments, root)[0]
        stable, found = is_stable(moments, root, sw2, sb2)
        if stable:
            return sw2, root
        unstable.append((root, sw2, found))
        return None

    prev_q, prev_r = 0.0, residual(0.0)
    if prev_r == 0.0:
        hit = accept(0.0)
        if hit:
            return hit
    for q in CRITICAL_LADDER[1:]:
        q = float(q)
        try:
            r = residual(q)
        except FloatingPointError:
            break
        if math.isfinite(r) and math.isfinite(prev_r) and prev_r != 0.0 and (r == 0.0 or (r > 0) != (prev_r > 0)):
            root = q if r == 0.0 else brent_root(residual, prev_q, q, xtol=1e-300, rtol=1e-15, maxiter=400)
            hit = accept(float(root))
            if hit:
                return hit
        prev_q, prev_r = q, r
    if unstable:
        detail = "; ".join(f"q = {q:.6g} at sigma_w2 = {w:.6g} (the length map from below reaches q* = {f:.6g})"
                           for q, w, f in unstable)
        raise FixedPointError(f"{name}: chi_1 = 1 at sigma_b2 = {sb2:g} only at unstable fixed points of the length "
                              f"map: {detail}; there is no critical point with a stable q* at this sigma_b2")
    raise FixedPointError(f"{name}: no point with chi_1 = 1 and a finite q* at sigma_b2 = {sb2:g}")
