"""Slow, independent reference for fully connected mean-field quantities (adaptive scipy quadrature).

Written without any of :mod:`meanfield`'s numerics: activations are plain ``math`` functions defined here, 1-D
Gaussian expectations are ``scipy.integrate.quad`` over the real line split at the kinks, the correlation map is a
nested ``quad`` (inner over ``z2`` split at the kink it induces), fixed points are ``brentq`` roots. Used by the tests
and by ``benchmarks/bench_grid.py`` (imported by path).
"""

from __future__ import annotations

import math

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
}


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
    slope_q = chi1 + sw2 * expect(lambda h: phi(h) * d2phi(h), q, kinks)
    out = {"q_star": q, "chi_1": chi1, "xi_q": -1.0 / math.log(abs(slope_q))}
    if chi1 <= 1.0 or q == 0.0:
        c, chic = 1.0, chi1
    else:
        def f(c):
            return (sw2 * two_point(phi, phi, q, c, kinks) + sb2) / q - c

        hi = 1.0 - 0.1
        while f(hi) >= 0:
            hi = 1.0 - (1.0 - hi) / 10.0
            if 1.0 - hi < 1e-12:
                raise ArithmeticError("reference: c* too close to 1 to bracket")
        f0 = f(0.0)
        c = 0.0 if f0 == 0.0 else brentq(f, 0.0, hi, xtol=1e-15, rtol=1e-14, maxiter=200)
        chic = sw2 * two_point(dphi, dphi, q, c, kinks)
    out.update(c_star=c, chi_c=chic, xi_c=-1.0 / math.log(chic))
    return out
