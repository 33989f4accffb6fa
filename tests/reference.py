"""Slow, independent reference for fully connected mean-field quantities (adaptive scipy quadrature).

Written without any of :mod:`meanfield`'s numerics: activations are plain ``math`` functions defined here, 1-D
Gaussian expectations are ``scipy.integrate.quad`` over the real line split at the kinks, the correlation map is a
nested ``quad`` (inner over ``z2`` split at the kink it induces), fixed points are ``brentq`` roots. The chaotic
fixed point ``c*`` and ``1 - chi_c`` use the symmetric parametrisation of the two-point integrals (squared
differences, see :func:`half_square_difference`), which stays well conditioned next to the critical line.
Used by the tests and by ``benchmarks/bench_grid.py`` (imported by path).
"""

from __future__ import annotations

import math

import numpy as np
from scipy.integrate import quad
from scipy.optimize import brentq

EPSREL = 1e-13
EPSABS = 1e-15
_INV_SQRT_2PI = 1.0 / math.sqrt(2.0 * math.pi)


def _tanh_d2(x):
    t = math.tanh(x)
    return -2.0 * t * (1.0 - t * t)


#: name -> (phi, phi', phi'', kinks); formulas written out by hand, independently of meanfield.activations.
ACTIVATIONS = {
    "tanh": (math.tanh, lambda x: 1.0 - math.tanh(x) ** 2, _tanh_d2, ()),
    "erf": (math.erf, lambda x: 2.0 / math.sqrt(math.pi) * math.exp(-x * x),
            lambda x: -4.0 / math.sqrt(math.pi) * x * math.exp(-x * x), ()),
    "relu": (lambda x: x if x > 0 else 0.0, lambda x: 1.0 if x > 0 else 0.0, lambda x: 0.0, (0.0,)),
    "x*tanh(x)": (lambda x: x * math.tanh(x),
                  lambda x: math.tanh(x) + x * (1.0 - math.tanh(x) ** 2),
                  lambda x: 2.0 * (1.0 - math.tanh(x) ** 2) * (1.0 - x * math.tanh(x)), ()),
    "hard_tanh": (lambda x: min(max(x, -1.0), 1.0), lambda x: 1.0 if -1.0 < x < 1.0 else 0.0, lambda x: 0.0,
                  (-1.0, 1.0)),
}
#: name -> ((kink, jump of phi' there), ...): the Dirac masses of phi'' that the smooth ``d2phi`` above leaves out.
DIRAC = {"relu": ((0.0, 1.0),), "hard_tanh": ((-1.0, 1.0), (1.0, -1.0))}


def _tanh_diff(m, e):
    """``tanh(m + e) - tanh(m - e)`` without cancellation (plain difference, ~e^-600, where cosh would overflow)."""
    if abs(m) + abs(e) > 300.0:
        return math.tanh(m + e) - math.tanh(m - e)
    return math.sinh(2.0 * e) / (math.cosh(m + e) * math.cosh(m - e))


def _dtanh_diff(m, e):
    """``tanh'(m + e) - tanh'(m - e) = -(tanh(m + e) - tanh(m - e)) (tanh(m + e) + tanh(m - e))``."""
    return -_tanh_diff(m, e) * (math.tanh(m + e) + math.tanh(m - e))


_GL_X, _GL_W = (a.tolist() for a in np.polynomial.legendre.leggauss(12))


def _erf_diff(m, e):
    """``erf(m + e) - erf(m - e) = int_{m-e}^{m+e} (2/sqrt(pi)) exp(-x^2) dx`` (12-point Gauss-Legendre, exact to
    rounding for ``|e| <= 0.25``; beyond that a difference of ``erfc`` on the side away from the +-1 plateaus)."""
    if abs(e) > 0.25:
        return math.erfc(m - e) - math.erfc(m + e) if m >= 0.0 else math.erfc(-m - e) - math.erfc(-m + e)
    total = sum(w * math.exp(-((m + e * x) ** 2)) for x, w in zip(_GL_X, _GL_W, strict=True))
    return e * 2.0 / math.sqrt(math.pi) * total


def _derf_diff(m, e):
    """``erf'(m + e) - erf'(m - e) = (2/sqrt(pi)) exp(-(m -+ e)^2) (+-) expm1(-+4 m e)`` (the non-overflowing sign)."""
    if m * e >= 0.0:
        return 2.0 / math.sqrt(math.pi) * math.exp(-((m - e) ** 2)) * math.expm1(-4.0 * m * e)
    return -2.0 / math.sqrt(math.pi) * math.exp(-((m + e) ** 2)) * math.expm1(4.0 * m * e)


#: name -> (phi(m + e) - phi(m - e), phi'(m + e) - phi'(m - e)) written to avoid cancellation where we can; the
#: others use the plain difference (only the symmetric two-point integrals below need these).
DIFFERENCES = {"tanh": (_tanh_diff, _dtanh_diff), "erf": (_erf_diff, _derf_diff)}


def _density(z: float) -> float:
    return math.exp(-0.5 * z * z) * _INV_SQRT_2PI


def _line_integral(f, cuts) -> float:
    """``int f(z) dz`` over the real line, split at the sorted points ``cuts``."""
    edges = [-math.inf, *sorted(cuts), math.inf]
    total = 0.0
    for a, b in zip(edges[:-1], edges[1:], strict=True):
        if a == b:
            continue
        total += quad(f, a, b, epsabs=EPSABS, epsrel=EPSREL, limit=400)[0]
    return total


def expect(g, q: float, kinks=()) -> float:
    """``E[g(sqrt(q) z)]``, ``z ~ N(0, 1)``."""
    if q == 0:
        return g(0.0)
    s = math.sqrt(q)
    cuts = [0.0, *(k / s for k in kinks)]
    return _line_integral(lambda z: g(s * z) * _density(z), cuts)


def two_point(f, g, q: float, c: float, kinks=()) -> float:
    """``E[f(u1) g(u2)]``, ``u1 = sqrt(q) z1``, ``u2 = sqrt(q) (c z1 + sqrt(1 - c^2) z2)`` (nested quad)."""
    s = math.sqrt(q)
    r = math.sqrt(max(1.0 - c * c, 0.0))

    def inner(z1):
        m = s * c * z1
        if r == 0.0:
            return g(m)
        cuts = [0.0, *((k - m) / (s * r) for k in kinks)]
        return _line_integral(lambda z2: g(m + s * r * z2) * _density(z2), cuts)

    cuts = [0.0, *(k / s for k in kinks)]
    if kinks and c != 0:
        cuts += [k / (s * c) for k in kinks]
    return _line_integral(lambda z1: f(s * z1) * inner(z1) * _density(z1), cuts)


def half_square_difference(name: str, f, df, q: float, c: float, kinks=()) -> float:
    """``E[(f(u1) - f(u2))^2] / 2`` for ``u1, u2`` of variance ``q`` and correlation ``c`` (nested quad).

    Symmetric parametrisation ``u1,2 = sqrt(q) (sqrt((1 + c)/2) x +- sqrt((1 - c)/2) y)``: the integrand is a square,
    so the result keeps its relative accuracy as ``c -> 1`` (for ``f = phi`` it equals ``V - K(c)``, for ``f = phi'``
    it equals ``D - E[phi'(u1) phi'(u2)]``, with no cancellation). ``df(m, e) = f(m + e) - f(m - e)``.
    """
    a = math.sqrt(q * (1.0 + c) / 2.0)
    b = math.sqrt(q * max(1.0 - c, 0.0) / 2.0)
    if b == 0.0:
        return 0.0
    diff = df if df is not None else (lambda m, e: f(m + e) - f(m - e))

    def inner(x):
        m = a * x
        cuts = [0.0, *((k - m) / b for k in kinks), *((m - k) / b for k in kinks)]
        return _line_integral(lambda y: diff(m, b * y) ** 2 * _density(y), cuts)

    cuts = [0.0, *(k / a for k in kinks)]
    return 0.5 * _line_integral(lambda x: inner(x) * _density(x), cuts)


def q_star(name: str, sw2: float, sb2: float) -> float:
    """Fixed point of ``q -> sw2 E[phi^2] + sb2`` by brentq (bracketed by iterating the map from 0)."""
    phi, _, _, kinks = ACTIVATIONS[name]

    def g(q):
        return sw2 * expect(lambda h: phi(h) ** 2, q, kinks) + sb2 - q

    _, dphi, d2phi, _ = ACTIVATIONS[name]
    slope0 = 0.5 * (dphi(1e-300) ** 2 + dphi(-1e-300) ** 2) + phi(0.0) * d2phi(0.0)  # dV/dq at q = 0 (one-sided mean)
    lo = 0.0
    if g(0.0) <= 0 and sw2 * slope0 <= 1.0:
        return 0.0  # q = 0 is a stable fixed point
    hi = max(sb2, 1e-3)
    while g(hi) > 0:
        lo, hi = hi, 2.0 * hi
        if hi > 1e8:
            return math.inf
    return brentq(g, lo, hi, xtol=1e-300, rtol=1e-15, maxiter=500)


def point(name: str, sw2: float, sb2: float) -> dict[str, float]:
    """``q_star, c_star, chi_1, chi_c, xi_q, xi_c`` at one point, from scratch."""
    phi, dphi, d2phi, kinks = ACTIVATIONS[name]
    q = q_star(name, sw2, sb2)
    chi1 = sw2 * expect(lambda h: dphi(h) ** 2, q, kinks)
    dirac = sum(phi(k) * jump * _density(k / math.sqrt(q)) / math.sqrt(q) for k, jump in DIRAC.get(name, ()))
    slope_q = chi1 + sw2 * (expect(lambda h: phi(h) * d2phi(h), q, kinks) + dirac)  # dV/dq = E[phi'^2 + phi phi'']
    out = {"q_star": q, "chi_1": chi1, "xi_q": -1.0 / math.log(abs(slope_q))}
    if chi1 <= 1.0 or q == 0.0:
        c, chic = 1.0, chi1
        out.update(c_star=c, chi_c=chic, xi_c=-1.0 / math.log(chic))
        return out
    diff, ddiff = DIFFERENCES.get(name, (None, None))

    def f(c):
        # sw2 (V - K(c)) - q (1 - c) divided by (1 - c): the trivial root c = 1 removed, increasing in c; at c = 1 it
        # tends to q (chi_1 - 1) > 0 (Price's theorem: (V - K(c)) / (1 - c) = q * mean of E[phi' phi'] over [c, 1])
        return sw2 * half_square_difference(name, phi, diff, q, c, kinks) / (1.0 - c) - q

    hi = 1.0 - 0.1
    while f(hi) <= 0:
        hi = 1.0 - (1.0 - hi) / 10.0
        if 1.0 - hi < 1e-12:
            raise ArithmeticError("reference: c* too close to 1 to bracket")
    f0 = f(0.0)
    c = 0.0 if f0 >= 0.0 else brentq(f, 0.0, hi, xtol=1e-17, rtol=8.9e-16, maxiter=200)
    # 1 - chi_c = (1 - chi_1) + sw2 (D - E[phi'(u1) phi'(u2)]), the second term a square integral (no cancellation)
    one_minus_chic = (1.0 - chi1) + sw2 * half_square_difference(name, dphi, ddiff, q, c, kinks)
    out.update(c_star=c, chi_c=1.0 - one_minus_chic, xi_c=-1.0 / math.log1p(-one_minus_chic))
    return out
