"""Per-activation solver for fixed points of the fully connected length and correlation maps.

Everything depends on ``(sigma_w2, sigma_b2)`` only through ``q*`` and ``c``: the functions of ``q``
``V(q) = E[phi(sqrt(q) z)^2]``, ``D(q) = E[phi'(sqrt(q) z)^2]``, ``V'(q)`` and the Hermite coefficients ``a_k(q)``
come from :mod:`meanfield.gaussian` (or closed forms for erf, relu / leaky relu and linear). This module turns them into
``q*`` (safeguarded Newton on ``g(q) = sigma_w2 V(q) + sigma_b2 - q``, bracketed from below), ``c*`` (Newton on the
Mehler series with a rigorous Parseval tail bound, or 2-D quadrature when the series converges too slowly) and the
susceptibilities and depth scales.
"""

from __future__ import annotations

import math
import warnings
from functools import lru_cache

import numpy as np
from scipy.optimize import brentq

from .activations import Activation
from .gaussian import _kernel_quadrature, gaussian_expectation, hermite_coefficients

__all__ = ["CRITICAL_TOL", "Q_STAR_MAX", "FixedPointError", "NoFixedPointWarning", "Engine", "engine_for"]

#: Length fixed points beyond this are reported as ``inf`` (no finite fixed point).
Q_STAR_MAX = 1e12
#: ``|chi_1 - 1|`` at or below which a point counts as critical (c* = 1).
CRITICAL_TOL = 1e-10
#: Largest Mehler-series degree before switching to 2-D quadrature for the correlation map.
K_MAX = 4096
#: Gauss-Legendre nodes of the Price-theorem integral in the 2-D quadrature fallback for ``c*``.
PRICE_NODES = 48
#: Target bound on the truncation error of c* from the Mehler series (absolute, c in [0, 1]).
C_TOL = 1e-14
#: Point sets larger than this are solved through the Chebyshev tables and the Numba kernel.
GRID_THRESHOLD = 64

PHASES = ("ordered", "chaotic", "critical")


class FixedPointError(ArithmeticError):
    """A requested fixed point (or critical point) does not exist or could not be found."""


class NoFixedPointWarning(RuntimeWarning):
    """No finite length fixed point ``q*`` exists at some points; they are reported as ``inf``."""


class Engine:
    """Mean-field solver for one activation (use :func:`engine_for`, which caches one per activation)."""

    def __init__(self, act: Activation):
        self.act = act
        self._moment_cache: dict[float, tuple[float, float, float]] = {}
        self._hermite_cache: dict[tuple[float, int], np.ndarray] = {}
        self._tables = None

    # -- functions of q ------------------------------------------------------------------------------------------------

    def moments(self, q: float) -> tuple[float, float, float]:
        """``(V(q), D(q), V'(q))``: ``E[phi^2]``, ``E[phi'^2]`` and ``dV/dq`` at ``h ~ N(0, q)``.

        ``V'(q) = E[z phi(sqrt(q) z) phi'(sqrt(q) z)] / sqrt(q)`` (differentiation under the integral; equals
        ``E[phi'^2] + E[phi phi'']`` by the heat equation, with Dirac masses of ``phi''`` at kinks included).
        """
        cached = self._moment_cache.get(q)
        if cached is not None:
            return cached
        act = self.act
        kind = act.closed_form
        if kind == "linear":
            out = (q, 1.0, 1.0)
        elif kind == "leaky_relu":
            m = (1.0 + act.params["slope"] ** 2) / 2.0
            out = (m * q, m, m)
        elif kind == "erf":
            out = (2.0 / math.pi * math.asin(2.0 * q / (1.0 + 2.0 * q)), 4.0 / math.pi / math.sqrt(1.0 + 4.0 * q),
                   4.0 / math.pi / ((1.0 + 2.0 * q) * math.sqrt(1.0 + 4.0 * q)))
        elif q == 0.0:
            tiny = np.array([-1e-300, 1e-300])
            d, d2 = act.dphi(tiny), act.d2phi(tiny)
            p0 = float(act.phi(0.0))
            out = (p0 * p0, float(np.mean(d * d)), float(np.mean(d * d) + p0 * np.mean(d2)))
        else:
            s = math.sqrt(q)

            def integrand(z):
                h = s * z
                p, d = act.phi(h), act.dphi(h)
                return np.stack([p * p, d * d, z * p * d / s], axis=-1)

            v, d, vp = gaussian_expectation(integrand, q, act.kinks, oscillatory=act.oscillatory)
            out = (float(v), float(d), float(vp))
        if len(self._moment_cache) > 100_000:
            self._moment_cache.clear()
        self._moment_cache[q] = out
        return out

    def second_moment(self, q: float) -> float:
        """``V(q) = E[phi(sqrt(q) z)^2]``."""
        return self.moments(q)[0]

    # -- length map ----------------------------------------------------------------------------------------------------

    def q_fixed_point(self, sw2: float, sb2: float) -> float:
        """Smallest stable fixed point of ``q -> sw2 V(q) + sb2``; ``inf`` if none below :data:`Q_STAR_MAX`."""

        def g(q):
            v, _, vp = self.moments(q)
            return sw2 * v + sb2 - q, sw2 * vp - 1.0

        g0, gp0 = g(0.0)
        if g0 <= 0.0:
            if gp0 <= 0.0:
                return 0.0
            lo, q = 0.0, 1e-8
        else:
            lo, q = 0.0, g0
        while True:
            try:
                gq, _ = g(q)
            except FloatingPointError:  # E[phi^2] overflows: the length map diverges
                return math.inf
            if gq <= 0.0:
                hi = q
                break
            lo = q
            q = q + max(gq, q)
            if q > Q_STAR_MAX:
                return math.inf
        # safeguarded Newton in [lo, hi] with g(lo) > 0 >= g(hi)
        q = hi
        for _ in range(200):
            gq, gpq = g(q)
            if gq == 0.0:
                return q
            if gq > 0:
                lo = q
            else:
                hi = q
            step = -gq / gpq if gpq != 0.0 else math.inf
            q_new = q + step
            if not (lo < q_new < hi) or not math.isfinite(q_new):
                q_new = 0.5 * (lo + hi)
            if abs(q_new - q) <= 1e-15 * max(q, 1e-300) or hi - lo <= 4e-16 * hi:
                return q_new
            q = q_new
        raise FixedPointError(f"{self.act.name}: Newton iteration for q* did not converge at sigma_w2={sw2}, "
                              f"sigma_b2={sb2}")

    # -- correlation map -----------------------------------------------------------------------------------------------

    def _closed_cmap(self, q: float):
        act = self.act
        kind = act.closed_form
        if kind == "linear":
            return lambda c: (q * c, q)
        if kind == "erf":
            r = 2.0 * q / (1.0 + 2.0 * q)
            return lambda c: (2.0 / math.pi * math.asin(r * c), 2.0 / math.pi * r / math.sqrt(1.0 - (r * c) ** 2))
        if kind == "leaky_relu":
            a = act.params["slope"]
            lin, ab = ((1.0 + a) / 2.0) ** 2 * q, ((1.0 - a) / 2.0) ** 2 * 2.0 * q / math.pi

            def f(c):
                c = min(c, 1.0)
                return lin * c + ab * (math.sqrt(max(1.0 - c * c, 0.0)) + c * math.asin(c)), lin + ab * math.asin(c)

            return f
        return None

    def hermite_squares(self, q: float, kmax: int) -> np.ndarray:
        """``a_k(q)^2`` for ``k = 0..kmax`` (cached)."""
        key = (q, kmax)
        b = self._hermite_cache.get(key)
        if b is None:
            b = hermite_coefficients(self.act, q, kmax) ** 2
            if len(self._hermite_cache) > 64:
                self._hermite_cache.clear()
            self._hermite_cache[key] = b
        return b

    def c_fixed_point(self, q: float, sw2: float, sb2: float) -> tuple[float, float]:
        """Chaotic-phase fixed point ``c* < 1`` of the correlation map and ``chi_c`` there, at ``q = q*``.

        Solves ``h(c) = sw2 (V - K(c)) - q (1 - c) = 0`` with ``K(c) = E[phi(u1) phi(u2)]`` (this uses
        ``q* = sw2 V + sb2``). ``K`` is a closed form (Newton on ``h``, concave with ``h(0) <= 0``, from ``c = 0``) or
        the Mehler series ``sum_k a_k^2 c^k``, solved by :func:`meanfield.tables.settle_c` with the trivial root
        ``c = 1`` divided out (well conditioned up to the critical line) and a rigorous bracket from the series' tail;
        the degree doubles from 128 until the bracket is below :data:`C_TOL`, else (and at once for activations with
        kinks, whose series converge algebraically) 2-D quadrature is used (:meth:`_c_fixed_point_2d`).
        """
        v = self.moments(q)[0]
        closed = self._closed_cmap(q)
        if self.act.closed_form == "erf":
            return _erf_c_fixed_point(q, sw2)
        if closed is not None:  # linear and leaky relu: chaotic only where q* is infinite
            c = _newton_c(closed, v, q, sw2)
            return c, sw2 * closed(c)[1] / q
        if self.act.kinks:  # a_k^2 decays algebraically: the series cannot reach C_TOL by degree K_MAX
            return self._c_fixed_point_2d(q, sw2)
        from . import tables

        d = self.moments(q)[1]
        chi1 = sw2 * d
        kmax, c0 = 128, 0.0
        while kmax <= K_MAX:
            b = self.hermite_squares(q, kmax)
            c, one_minus_chic, gap, rel_tail = tables.settle_c(b, kmax, q, sw2, chi1, q * d, c0)
            if gap <= C_TOL or rel_tail <= 1e-15:  # bracket narrow, or the series converged to rounding
                return c, 1.0 - one_minus_chic
            if math.isfinite(c):
                c0 = c
            kmax *= 2
        return self._c_fixed_point_2d(q, sw2)

    def _c_fixed_point_2d(self, q: float, sw2: float) -> tuple[float, float]:
        """``c*`` and ``chi_c`` from 2-D quadrature of the two-point kernels, without the trivial root ``c = 1``.

        By Price's theorem ``V - K(c) = q int_c^1 E[phi'(u1) phi'(u2)](t) dt`` (``u1, u2`` of variance ``q``,
        correlation ``t``), so ``c*`` is the root of ``F(c) = sw2 M(c) - 1`` with ``M(c)`` the mean of
        ``E[phi' phi'](t)`` over ``t`` in ``[c, 1]``: increasing, ``F(0) <= 0``, ``F(1) = chi_1 - 1 > 0``, slope
        ``O(1)`` up to the critical line (the undivided ``h(c)`` has slope ``q (1 - chi_c)`` there). ``M`` is a
        :data:`PRICE_NODES`-point Gauss-Legendre rule in ``s`` with ``t = 1 - (1 - c) s^2``, which makes the
        ``sqrt(1 - t)`` behaviour a kink causes at ``t = 1`` smooth; the root is found by ``brentq``.
        """
        act = self.act
        x, w = np.polynomial.legendre.leggauss(PRICE_NODES)
        s, w = 0.5 * (x + 1.0), w * 0.5 * (x + 1.0)  # rule for int_0^1 g(s) 2 s ds
        chi1 = sw2 * self.moments(q)[1]

        def kernel(t: np.ndarray) -> np.ndarray:
            qa = np.full(t.size, q)
            return _kernel_quadrature(act.dphi, act.dphi, act.kinks, qa, qa, q * t)

        def f(c: float) -> float:
            return chi1 - 1.0 if c == 1.0 else sw2 * float(np.sum(w * kernel(1.0 - (1.0 - c) * s * s))) - 1.0

        f0 = f(0.0)
        c = 0.0 if f0 >= 0.0 else brentq(f, 0.0, 1.0, xtol=1e-16, rtol=8.9e-16, maxiter=200)
        return c, sw2 * float(kernel(np.array([c]))[0])

    # -- one point -----------------------------------------------------------------------------------------------------

    def point(self, sw2: float, sb2: float) -> tuple:
        """``(q*, c*, chi_1, chi_c, xi_q, xi_c, phase, q_star_finite)`` at one point."""
        q = self.q_fixed_point(sw2, sb2)
        if not math.isfinite(q):
            return (math.inf, math.nan, math.nan, math.nan, math.nan, math.nan, "chaotic", False)
        v, d, vp = self.moments(q)
        chi1 = sw2 * d
        if abs(chi1 - 1.0) <= CRITICAL_TOL:
            ph = "critical"
        else:
            ph = "ordered" if chi1 < 1.0 else "chaotic"
        if ph == "chaotic" and q > 0.0:
            c, chic = self.c_fixed_point(q, sw2, sb2)
        else:
            c, chic = 1.0, chi1
        return (q, c, chi1, chic, depth_scale(sw2 * vp), depth_scale(chic), ph, True)

    def solve(self, sw2: np.ndarray, sb2: np.ndarray, progress: bool = False) -> dict[str, np.ndarray]:
        """All quantities at each of the paired points ``(sw2[i], sb2[i])``; dict of 1-D arrays.

        Up to :data:`GRID_THRESHOLD` points go through :meth:`point` one by one; larger sets through the Chebyshev
        tables and the parallel Numba kernel of :mod:`meanfield.tables`, with the points it cannot settle (``q*``
        beyond the tables, or a Mehler series too slow to bound ``c*``) sent back to :meth:`point`.
        """
        n = len(sw2)
        rows: dict[int, tuple] = {}
        todo = np.arange(n)
        out = np.full((n, 6), np.nan)
        if n > GRID_THRESHOLD:
            from . import tables

            if self._tables is None:
                self._tables = tables.Tables(self)
            tab = self._tables
            tab.ensure(4.0)
            status = np.ones(n)
            pending = np.arange(n)
            bar = _progress(None, n, progress)
            while pending.size:
                block = np.empty((pending.size, 6))
                tables.solve_grid(tab.moment_coef, tab.b_coef, tab.kmax, tab.s_hi, np.array(self.moments(0.0)),
                                  sw2[pending], sb2[pending],
                                  CRITICAL_TOL, C_TOL, block)
                out[pending] = block
                status[pending] = block[:, 5]
                if bar is not None:
                    bar.update(int(np.sum(block[:, 5] != 1.0)))
                pending = pending[block[:, 5] == 1.0]
                if pending.size == 0 or tab.s_hi >= tables.S_MAX:
                    break
                tab.ensure(min(4.0 * tab.s_hi**2, tables.S_MAX**2))
            if bar is not None:
                bar.update(int(pending.size))
                bar.close()
            todo = np.flatnonzero(status != 0.0)
        for i in todo:
            rows[int(i)] = self.point(float(sw2[i]), float(sb2[i]))
        q, c, chi1, chic, slope = (out[:, j] for j in range(5))
        phase = np.where(np.abs(chi1 - 1.0) <= CRITICAL_TOL, "critical", np.where(chi1 < 1.0, "ordered", "chaotic"))
        result = {
            "q_star": q, "c_star": c, "chi_1": chi1, "chi_c": chic,
            "xi_q": _depth_scales(slope), "xi_c": _depth_scales(chic),
            "phase": phase.astype(object), "q_star_finite": np.ones(n, dtype=bool),
        }
        names = ("q_star", "c_star", "chi_1", "chi_c", "xi_q", "xi_c", "phase", "q_star_finite")
        for i, row in rows.items():
            for name, value in zip(names, row, strict=True):
                result[name][i] = value
        return result

    # -- critical line -------------------------------------------------------------------------------------------------

    def critical_point(self, q: float) -> tuple[float, float]:
        """``(sigma_w2, sigma_b2)`` on the critical line with fixed point ``q`` (``sigma_b2`` may come out negative)."""
        v, d, _ = self.moments(q)
        if d <= 0.0:
            return math.inf, math.nan
        sw2 = 1.0 / d
        return sw2, q - sw2 * v

    def critical_sigma_w2(self, sb2: float) -> tuple[float, float]:
        """Critical ``(sigma_w2, q*)`` at bias variance ``sb2`` (see :func:`meanfield.critical_sigma_w2`)."""
        act = self.act
        if act.closed_form in ("linear", "leaky_relu"):
            sw2 = 1.0 / self.moments(1.0)[1]
            if sb2 == 0.0:
                return sw2, 0.0
            warnings.warn(f"{act.name}: the critical line sigma_w2 = {sw2:g} has no finite fixed point q* for "
                          f"sigma_b2 = {sb2:g} > 0 (q* = inf)", NoFixedPointWarning, stacklevel=3)
            return sw2, math.inf

        def residual(q):
            return self.critical_point(q)[1] - sb2

        r0 = residual(0.0)
        if r0 == 0.0:
            return self.critical_point(0.0)[0], 0.0
        ladder = np.concatenate([[0.0], np.logspace(-10, 12, 89)])
        prev_q, prev_r = 0.0, r0
        for q in ladder[1:]:
            r = residual(float(q))
            if math.isfinite(r) and (r == 0.0 or (r > 0) != (prev_r > 0)):
                root = brentq(residual, prev_q, float(q), xtol=1e-300, rtol=1e-15, maxiter=400) if r != 0.0 else q
                return self.critical_point(float(root))[0], float(root)
            prev_q, prev_r = float(q), r
        raise FixedPointError(f"{act.name}: no point with chi_1 = 1 and a finite q* at sigma_b2 = {sb2:g}")


def _erf_c_fixed_point(q: float, sw2: float) -> tuple[float, float]:
    """``(c*, chi_c)`` for ``phi = erf`` from its closed-form c-map with the trivial root ``c = 1`` divided out.

    ``K(c) = (2/pi) asin(r c)``, ``r = 2q/(1 + 2q)`` (Williams 1997). With ``A = 1 - r^2``, ``B = 1 - r^2 c^2``:
    ``(V - K(c))/(1 - c) = (2/pi) y asin(x)/x``, ``x = (1 - c) y``, ``y = r (1 + c)/(sqrt(B) + c sqrt(A))``
    (from ``asin a - asin b = asin(a sqrt(1 - b^2) - b sqrt(1 - a^2))``), increasing in ``c``; ``c*`` is the root of
    ``sw2 (V - K(c))/(1 - c) = q`` (``brentq``, well conditioned up to the critical line), and
    ``1 - chi_c = (1 - chi_1) + sw2/q (K'(1) - K'(c*))`` with
    ``K'(1) - K'(c) = (2/pi) r^3 (1 - c)(1 + c) / (sqrt(A) sqrt(B) (sqrt(A) + sqrt(B)))`` (no cancellation).
    """
    one_minus_r = 1.0 / (1.0 + 2.0 * q)
    r = 2.0 * q * one_minus_r
    sqrt_a = math.sqrt(one_minus_r * (1.0 + r))

    def divided(c: float) -> float:
        y = r * (1.0 + c) / (math.sqrt((1.0 - r * c) * (1.0 + r * c)) + c * sqrt_a)
        x = (1.0 - c) * y
        return 2.0 / math.pi * y * (math.asin(x) / x if x != 0.0 else 1.0)

    def f(c: float) -> float:
        return sw2 * divided(c) - q

    c = 0.0 if f(0.0) >= 0.0 else brentq(f, 0.0, 1.0, xtol=1e-16, rtol=8.9e-16, maxiter=200)
    sqrt_b = math.sqrt((1.0 - r * c) * (1.0 + r * c))
    chi1 = sw2 * 4.0 / math.pi / math.sqrt(1.0 + 4.0 * q)
    dk = 2.0 / math.pi * r**3 * (1.0 - c) * (1.0 + c) / (sqrt_a * sqrt_b * (sqrt_a + sqrt_b))
    return c, 1.0 - ((1.0 - chi1) + sw2 / q * dk)


def _newton_c(kernel, v: float, q: float, sw2: float) -> float:
    """Root in [0, 1) of the concave ``h(c) = sw2 (v - K(c)) - q (1 - c)`` by Newton from ``c = 0``."""
    c = 0.0
    for _ in range(200):
        k0, k1 = kernel(c)
        h = sw2 * (v - k0) - q * (1.0 - c)
        if h >= 0.0:
            return c
        hp = q - sw2 * k1
        if hp <= 0.0:
            raise FixedPointError("correlation map: Newton lost monotonicity (no chaotic fixed point c* < 1)")
        c_new = min(c - h / hp, 1.0)
        if c_new - c <= 1e-16:
            return c_new
        c = c_new
    raise FixedPointError("correlation map: Newton iteration for c* did not converge")


def depth_scale(chi: float) -> float:
    """``-1/log|chi|`` computed as ``-1/log1p(|chi| - 1)``; ``inf`` at ``|chi| = 1``, ``0`` at ``chi = 0``."""
    a = abs(chi)
    if a == 0.0:
        return 0.0
    if a == 1.0:
        return math.inf
    return -1.0 / math.log1p(a - 1.0)


def _depth_scales(chi: np.ndarray) -> np.ndarray:
    """Vectorised :func:`depth_scale`."""
    a = np.abs(chi)
    with np.errstate(divide="ignore", invalid="ignore"):
        out = -1.0 / np.log1p(a - 1.0)
    out = np.where(a == 1.0, np.inf, out)
    return np.where(a == 0.0, 0.0, out)


def _progress(iterable, total: int, enabled: bool):
    if not enabled:
        return iterable
    from tqdm.auto import tqdm

    return tqdm(iterable, total=total, unit="pt", mininterval=0.5)


@lru_cache(maxsize=64)
def _engine_cached(name: str, act_id: int, act: Activation) -> Engine:
    return Engine(act)


def engine_for(act: Activation) -> Engine:
    """The cached :class:`Engine` of an activation."""
    return _engine_cached(act.name, id(act), act)

