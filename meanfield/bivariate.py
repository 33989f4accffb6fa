"""Exponentially tilted bivariate normal orthant probabilities, and the bivariate normal CDF.

For ``(x1, x2)`` standard normal with correlation ``rho`` and rates ``g1, g2 >= 0``,

    ``L(h1, h2, g1, g2, rho) = E[exp(g1 (x1 - h1) + g2 (x2 - h2)) 1{x1 < h1, x2 < h2}]``

(a number in ``[0, 1]``; ``g = 0`` gives the CDF ``Phi2(h1, h2; rho)``). Completing the square,
``L = exp(M) Phi2(H1, H2; rho)`` with ``H = h - Sigma g`` and ``M = -g.h + g.Sigma g / 2``; at large rates ``exp(M)`` is
huge and ``Phi2`` a far tail, so neither is formed. Plackett's identity (Drezner & Wesolowsky 1990, Eq. 3; Genz 2004,
Eq. 1) ``Phi2(H; rho) = Phi(H1) Phi(H2) + (1/2 pi) int_0^asin(rho) exp(-E(theta)) dtheta``,
``E = (H1^2 + H2^2 - 2 H1 H2 sin theta) / (2 cos^2 theta)``, is used with the exponent written without cancellation:
``M - E(theta) = -h.Sigma^-1 h / 2 - (E(theta) - E(asin rho))``, the difference in closed form in ``rho - sin theta``.
For ``rho >= 0`` both parts are positive, so ``L`` has full relative accuracy even where ``Phi2`` underflows (``M``
in the thousands); for ``rho < 0`` the integral is subtracted (absolute accuracy about 1e-16 of the product term).
The integral is taken in ``delta = asin(rho) - theta`` (so layers next to ``asin(rho) ~ pi/2`` are resolved) by
Gauss-Legendre panels graded geometrically away from the integrand's single maximum (at
``sin theta = min(H1/H2, H2/H1)`` or an end), the smallest panel the width on which the exponent changes by 1, each
panel bisected until its estimate agrees with its two halves' to 1e-14 (or the exponent's rounding noise);
``Phi(H) exp(H^2/2) = erfcx(-H/sqrt 2)/2`` for ``H < 0``. Measured against mpmath (``tests/test_kinked_points.py``):
about 1e-14 relative for ``rho >= 0``, down to a few 1e-12 where ``1 - rho < 1e-10``; rates up to 2000 per standard
deviation (``q`` of 1e6 and more in :mod:`meanfield.piecewise`) keep 1e-11 relative. ``rho = +-1`` are the
one-dimensional limits.

Used by :mod:`meanfield.piecewise` for the exact two-point kernels of piecewise-exponential ``phi'`` (Price's theorem
route to the correlation fixed point).
"""

from __future__ import annotations

import math

import numba
import numpy as np

__all__ = ["bivariate_normal_cdf", "erfcx", "tilted_lower", "tilted_orthant", "tilted_orthants"]

#: Gauss-Legendre nodes per panel of the Plackett integral.
PANEL_NODES = 12
_GL_X, _GL_W = np.polynomial.legendre.leggauss(PANEL_NODES)
_SQRT2 = math.sqrt(2.0)
_INV_SQRT_PI = 1.0 / math.sqrt(math.pi)


@numba.njit(cache=True)
def erfcx(x):
    """Scaled complementary error function ``exp(x^2) erfc(x)`` (float; ``inf`` below about ``x = -26.6``).

    ``x^2`` is split as ``xh^2 + (2 xh + xl) xl`` with ``xh`` on a 1/4096 grid (``xh^2`` exact) so ``exp(x^2)`` keeps
    full relative accuracy; beyond ``x = 25`` the asymptotic series ``1/(x sqrt(pi)) sum (-1)^k (2k-1)!!/(2x^2)^k``
    (error below 1e-17 there)."""
    if x < 0.0:
        if x < -26.6:
            return math.inf
        return 2.0 * _exp_square(x) - erfcx(-x)
    if x < 25.0:
        return _exp_square(x) * math.erfc(x)
    inv = 1.0 / (2.0 * x * x)
    term = 1.0
    total = 1.0
    for k in range(1, 12):
        term *= -(2.0 * k - 1.0) * inv
        total += term
    return total * _INV_SQRT_PI / x


@numba.njit(cache=True)
def _exp_square(x):
    """``exp(x^2)`` to full relative accuracy (``x^2`` split into an exact head and a small tail)."""
    xa = abs(x)
    xh = math.floor(xa * 4096.0) / 4096.0
    xl = xa - xh
    return math.exp(xh * xh) * math.exp((2.0 * xh + xl) * xl)


@numba.njit(cache=True)
def _phi_scaled(h):
    """``Phi(h) exp(h^2/2)`` for ``h < 0`` (``erfcx(-h/sqrt 2)/2``)."""
    return 0.5 * erfcx(-h / _SQRT2)


@numba.njit(cache=True)
def tilted_lower(h, g):
    """``E[exp(g (x - h)) 1{x < h}]`` for ``x ~ N(0, 1)``, ``g >= 0`` (``= exp(-g h + g^2/2) Phi(h - g)``); 1 at
    ``h = +inf`` with ``g = 0``."""
    if h == math.inf:
        return 1.0 if g == 0.0 else math.nan
    if h == -math.inf:
        return 0.0
    w = h - g
    if w < 0.0:
        return _phi_scaled(w) * math.exp(-0.5 * h * h)
    return math.exp(-g * w - 0.5 * g * g) * 0.5 * math.erfc(-w / _SQRT2)


@numba.njit(cache=True)
def _exponent(delta, p):
    """``(M - E(theta), scale)`` of the Plackett integrand at ``theta = asin(rho) - delta``, in whichever of two exact
    forms has the smaller rounding error; ``scale`` is the size of the terms summed (the exponent's absolute error is
    about 1e-16 of it). The angle enters as its distance ``delta`` from ``asin(rho)``, so the boundary layers next to
    ``asin(rho) ~ pi/2`` (``rho -> 1``) are resolved below the spacing of doubles near ``pi/2``.

    ``p = (theta_r, H1, H2, rho, 1 - rho, 1 - rho^2, c0, e0, e0_scale)``. Form A:
    ``-c0 - (E(theta) - E(asin rho))``, the difference in closed form in ``rho - sin theta`` (accurate when the tilt is
    large; ``c0 = h.Sigma^-1 h / 2``). Form B: ``e0 - (E(theta) - E(0))`` with ``e0 = M - (H1^2 + H2^2)/2`` expanded in
    ``h`` and ``g`` (no ``1/(1 - rho^2)``: accurate when ``rho`` is next to 1 with ``h1 != h2``).
    """
    theta_r, h1, h2, rho, omr, c2r, c0, e0, e0_scale = p
    sr = math.sqrt(c2r)  # cos(asin(rho))
    sd = math.sin(delta)
    half = math.sin(0.5 * delta)
    diff = 2.0 * rho * half * half + sr * sd  # rho - sin(theta)
    r = rho - diff
    c2 = (sr * math.cos(delta) + rho * sd) ** 2  # cos(theta)^2
    one_minus_r = omr + diff
    d = h1 - h2
    b = -(r + rho) * d * d + 2.0 * h1 * h2 * one_minus_r * omr
    excess_r = 0.5 * diff * b / (c2 * c2r)
    scale_a = c0 + 0.5 * abs(diff) * ((abs(r) + abs(rho)) * d * d + 2.0 * abs(h1 * h2) * one_minus_r * omr) / (c2 * c2r)
    excess_0 = 0.5 * r * (r * (h1 * h1 + h2 * h2) - 2.0 * h1 * h2) / c2
    scale_b = e0_scale + 0.5 * abs(r) * (abs(r) * (h1 * h1 + h2 * h2) + 2.0 * abs(h1 * h2)) / c2
    if scale_a <= scale_b:
        return -c0 - excess_r, scale_a
    return e0 - excess_0, scale_b


@numba.njit(cache=True)
def _panel(a, b, p, gl_x, gl_w):
    """Gauss-Legendre estimate on one panel (in ``delta``) and the largest exponent scale at its nodes (its rounding
    noise)."""
    mid = 0.5 * (a + b)
    half = 0.5 * abs(b - a)
    part = 0.0
    noise = 0.0
    for i in range(gl_x.size):
        e, scale = _exponent(mid + half * gl_x[i], p)
        part += gl_w[i] * math.exp(e)
        noise = max(noise, scale)
    return part * half, noise


@numba.njit(cache=True)
def _adaptive_panel(a, b, p, gl_x, gl_w, scale):
    """``int exp(M - E)`` over the panel between ``a`` and ``b`` (in ``delta``), bisected until the Gauss-Legendre
    estimate of each piece agrees with that of its two halves to 1e-14 relative (or the rounding noise of the
    exponent there, if larger) or 1e-17 of ``scale`` (the integral so far); at most 20 levels and 4000 pieces."""
    total = 0.0
    count = 0
    stack_a = np.empty(64)
    stack_b = np.empty(64)
    stack_v = np.empty(64)
    stack_d = np.empty(64, dtype=np.int64)
    stack_a[0], stack_b[0], stack_v[0], stack_d[0] = a, b, _panel(a, b, p, gl_x, gl_w)[0], 0
    n = 1
    while n > 0:
        n -= 1
        lo, hi, whole, depth = stack_a[n], stack_b[n], stack_v[n], stack_d[n]
        mid = 0.5 * (lo + hi)
        left, noise_l = _panel(lo, mid, p, gl_x, gl_w)
        right, noise_r = _panel(mid, hi, p, gl_x, gl_w)
        count += 1
        rtol = max(1e-14, 8e-16 * max(noise_l, noise_r))
        if abs(left + right - whole) <= rtol * (left + right) + 1e-17 * scale or depth >= 20 or count >= 4000:
            total += left + right
            continue
        stack_a[n], stack_b[n], stack_v[n], stack_d[n] = lo, mid, left, depth + 1
        stack_a[n + 1], stack_b[n + 1], stack_v[n + 1], stack_d[n + 1] = mid, hi, right, depth + 1
        n += 2
    return total


@numba.njit(cache=True)
def _plackett(p, gl_x, gl_w):
    """``(1/2 pi) int_0^asin(rho) exp(M - E(theta)) dtheta`` (signed: negative for ``rho < 0``); ``p`` as in
    :func:`_exponent`."""
    theta_r, big1, big2, rho = p[0], p[1], p[2], p[3]
    if theta_r == 0.0:
        return 0.0
    lo = min(0.0, theta_r)
    hi = max(0.0, theta_r)
    # E(sin theta) has its single minimum at r = min(H1/H2, H2/H1) (H1 H2 > 0) or the ratio in [-1, 0) (H1 H2 < 0):
    # E'(r) = -(r H1 - H2)(r H2 - H1)/(1 - r^2)^2; at theta = 0 when H1 H2 = 0. In delta = asin(rho) - theta (the
    # same range [lo, hi]): acos(ratio) - acos(rho) with acos(x) = 2 asin(sqrt((1 - x)/2)), 1 - ratio from H1 - H2
    # (and its mirror for negative ratios), so a peak next to asin(rho) ~ pi/2 keeps its distance from it.
    peak = theta_r
    big = max(abs(big1), abs(big2))
    omr = p[4]
    if big1 * big2 > 0.0:
        peak = 2.0 * (math.asin(math.sqrt(0.5 * abs(big1 - big2) / big)) - math.asin(math.sqrt(0.5 * omr)))
    elif big1 * big2 < 0.0:
        peak = 2.0 * (math.asin(math.sqrt(0.5 * (2.0 - omr))) - math.asin(math.sqrt(0.5 * abs(big1 + big2) / big)))
    peak = min(max(peak, lo), hi)
    e_peak = _exponent(peak, p)[0]
    total = 0.0
    for side in range(2):
        end = lo if side == 0 else hi
        length = abs(end - peak)
        if length == 0.0:
            continue
        sign = -1.0 if side == 0 else 1.0
        # smallest panel: where the exponent has fallen by about 1 from the peak (halving from the whole side)
        w = length
        for _ in range(80):
            if abs(_exponent(peak + sign * w, p)[0] - e_peak) <= 1.0:
                break
            w *= 0.5
        a = 0.0
        b = w
        while True:
            total += _adaptive_panel(peak + sign * a, peak + sign * b, p, gl_x, gl_w, total)
            if b >= length:
                break
            # the integrand decreases away from the peak: the rest is below (length - b) f(b)
            if (length - b) * math.exp(_exponent(peak + sign * b, p)[0]) <= 1e-17 * total:
                break
            a = b
            b = min(2.0 * b, length)
    total /= 2.0 * math.pi
    return total if rho > 0.0 else -total


@numba.njit(cache=True)
def _tilted_orthant(h1, h2, g1, g2, rho, omr, gl_x, gl_w):
    if h1 == -math.inf or h2 == -math.inf:
        return 0.0
    if h1 == math.inf:
        return tilted_lower(h2, g2) if g1 == 0.0 else math.nan
    if h2 == math.inf:
        return tilted_lower(h1, g1) if g2 == 0.0 else math.nan
    if omr == 0.0:  # rho = 1: x2 = x1
        if h1 <= h2:
            return math.exp(-g2 * (h2 - h1)) * tilted_lower(h1, g1 + g2)
        return math.exp(-g1 * (h1 - h2)) * tilted_lower(h2, g1 + g2)
    if omr == 2.0:  # rho = -1: x2 = -x1, the interval -h2 < x1 < h1
        if h1 + h2 <= 0.0:
            return 0.0
        g = g1 - g2
        if g >= 0.0:  # exp(g x1) bounded by exp(g h1) on the interval
            scale = math.exp(-g2 * (h1 + h2))
            return scale * (tilted_lower(h1, g) - math.exp(-g * (h1 + h2)) * tilted_lower(-h2, g))
        scale = math.exp(-g1 * (h1 + h2))  # in y = -x1: -h1 < y < h2 with rate -g
        return scale * (tilted_lower(h2, -g) - math.exp(g * (h1 + h2)) * tilted_lower(-h1, -g))
    c2r = omr * (2.0 - omr)
    big1 = h1 - (g1 + rho * g2)
    big2 = h2 - (rho * g1 + g2)
    c0 = 0.5 * ((h1 - h2) ** 2 + 2.0 * h1 * h2 * omr) / c2r  # h.Sigma^-1 h / 2 = M - E(asin rho)
    # e0 = M - (H1^2 + H2^2)/2 expanded in h and g, and the size of its terms (its rounding scale)
    t1 = 0.5 * (h1 * h1 + h2 * h2)
    t2 = rho * (h1 * g2 + h2 * g1)
    t3 = 0.5 * rho * (rho * (g1 * g1 + g2 * g2) + 2.0 * g1 * g2)
    e0 = -t1 + t2 - t3
    e0_scale = t1 + abs(t2) + abs(t3)
    p = (math.atan2(rho, math.sqrt(c2r)), big1, big2, rho, omr, c2r, c0, e0, e0_scale)
    # the product term exp(M) Phi(H1) Phi(H2) = exp(M - (H1^2 + H2^2)/2) prod Phi(H) exp(H^2/2)
    e_prod = _exponent(p[0], p)[0]  # at theta = 0
    prod = 1.0
    for big in (big1, big2):
        if big < 0.0:
            prod *= _phi_scaled(big)
        else:
            e_prod += 0.5 * big * big
            prod *= 0.5 * math.erfc(-big / _SQRT2)
    product = prod * math.exp(e_prod) if prod > 0.0 else 0.0
    value = product + _plackett(p, gl_x, gl_w)
    return min(max(value, 0.0), 1.0)


@numba.njit(cache=True)
def _tilted_orthants(h1, h2, g1, g2, rho, omr, gl_x, gl_w, out):
    for i in range(out.size):
        out[i] = _tilted_orthant(h1[i], h2[i], g1[i], g2[i], rho[i], omr[i], gl_x, gl_w)


def tilted_orthants(h1, h2, g1, g2, rho, one_minus_rho=None) -> np.ndarray:
    """``E[exp(g1 (x1 - h1) + g2 (x2 - h2)) 1{x1 < h1, x2 < h2}]`` elementwise (arrays broadcast).

    Parameters
    ----------
    h1, h2 : array_like
        Upper limits, in standard deviations; ``+inf`` (with the matching rate 0) for no limit, ``-inf`` for an empty
        orthant.
    g1, g2 : array_like
        Rates ``>= 0`` (per standard deviation).
    rho : array_like
        Correlation in ``[-1, 1]``.
    one_minus_rho : array_like, optional
        ``1 - rho`` to full relative accuracy (pass it when ``rho`` is close to 1 and ``1 - rho`` is known better than
        ``rho``); defaults to ``1 - rho``.

    Returns
    -------
    ndarray
        Values in ``[0, 1]`` (NaN where a rate is positive with an infinite limit).
    """
    rho = np.asarray(rho, dtype=np.float64)
    omr = 1.0 - rho if one_minus_rho is None else np.asarray(one_minus_rho, dtype=np.float64)
    arrays = np.broadcast_arrays(*(np.asarray(v, dtype=np.float64) for v in (h1, h2, g1, g2, rho, omr)))
    h1, h2, g1, g2, rho, omr = (np.ascontiguousarray(a).ravel() for a in arrays)
    if np.any(~(np.abs(rho) <= 1.0)) or np.any(~((omr >= 0.0) & (omr <= 2.0))):
        raise ValueError("tilted_orthants: rho must lie in [-1, 1] (and one_minus_rho in [0, 2])")
    if np.any(~(g1 >= 0.0)) or np.any(~(g2 >= 0.0)) or not (np.all(np.isfinite(g1)) and np.all(np.isfinite(g2))):
        raise ValueError("tilted_orthants: the rates g1, g2 must be finite and >= 0")
    if np.any(np.isnan(h1)) or np.any(np.isnan(h2)):
        raise ValueError("tilted_orthants: the limits h1, h2 must not be NaN")
    out = np.empty(h1.size)
    _tilted_orthants(h1, h2, g1, g2, rho, omr, _GL_X, _GL_W, out)
    return out.reshape(arrays[0].shape)


def tilted_orthant(h1: float, h2: float, g1: float, g2: float, rho: float, one_minus_rho: float | None = None
                   ) -> float:
    """Scalar :func:`tilted_orthants`."""
    return float(tilted_orthants(h1, h2, g1, g2, rho, one_minus_rho))


def bivariate_normal_cdf(h1, h2, rho) -> np.ndarray:
    """``Phi2(h1, h2; rho) = P(x1 < h1, x2 < h2)`` for standard normals with correlation ``rho`` (arrays broadcast):
    :func:`tilted_orthants` with zero rates (relative accuracy about 1e-14 for ``rho >= 0``, absolute about 1e-15
    otherwise)."""
    return tilted_orthants(h1, h2, 0.0, 0.0, rho)
