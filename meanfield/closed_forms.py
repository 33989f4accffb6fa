"""Closed-form Gaussian integrals of the activations that have them: one table per activation, used by the two-point
kernel, the length map and the correlation fixed point alike.

For ``(h1, h2) ~ N(0, [[q1, q12], [q12, q2]])`` and ``u1, u2`` of equal variance ``q`` and correlation ``c``:

- erf (Williams 1997): ``E[erf(h1) erf(h2)] = (2/pi) asin(2 q12 / sqrt((1 + 2 q1)(1 + 2 q2)))``;
  ``V(q) = (2/pi) asin(2q/(1 + 2q))``, ``D(q) = (4/pi) / sqrt(1 + 4q)``, ``V'(q) = (4/pi) / ((1 + 2q) sqrt(1 + 4q))``.
- relu / leaky relu (arc-cosine kernel, Cho & Saul 2009): ``phi = (1+a)/2 x + (1-a)/2 |x|`` and
  ``E[|h1||h2|] = (2/pi) sqrt(q1 q2) (sqrt(1 - c^2) + c asin c)``; ``V = D q``, ``D = V' = (1 + a^2)/2``.
- linear: ``E[h1 h2] = q12``; ``V = q``, ``D = V' = 1``.
- sin: ``E[sin h1 sin h2] = (exp(-(q1 + q2 - 2 q12)/2) - exp(-(q1 + q2 + 2 q12)/2)) / 2`` (from
  ``E[cos(h1 -+ h2)] = exp(-Var(h1 -+ h2)/2)``); ``V = -expm1(-2q)/2``, ``D = (1 + exp(-2q))/2``, ``V' = exp(-2q)``.

The positively homogeneous ones (relu, leaky relu, linear) have no chaotic fixed point with finite ``q*``, so only erf
and sin need the correlation fixed point, solved here with the trivial root ``c = 1`` divided out (well conditioned up
to the critical line; Schoenholz et al. 2017, Eq. 5).
"""

from __future__ import annotations

import math

import numpy as np

from .activations import Activation
from .roots import brent_root

__all__ = ["closed_form_kind", "closed_kernel", "closed_moments", "closed_correlation_fixed_point"]

#: Built-in activations whose closed forms are keyed by name (the Activation carries no ``closed_form`` tag for them).
_BY_NAME = {"sin": "sin"}


def closed_form_kind(act: Activation) -> str | None:
    """``"erf"``, ``"leaky_relu"``, ``"linear"``, ``"sin"`` or None: which table of this module applies."""
    return act.closed_form or _BY_NAME.get(act.name)


def _correlations(q1, q2, q12):
    root = np.sqrt(q1 * q2)
    with np.errstate(invalid="ignore", divide="ignore"):
        return root, np.where(root > 0, np.clip(q12 / np.where(root > 0, root, 1.0), -1.0, 1.0), 0.0)


def closed_kernel(act: Activation, q1, q2, q12):
    """Closed-form ``E[phi(h1) phi(h2)]`` (arrays broadcast), or None where the activation has none."""
    kind = closed_form_kind(act)
    if kind == "linear":
        return q12 + 0.0 * (q1 + q2)
    if kind == "erf":
        return 2.0 / math.pi * np.arcsin(np.clip(2.0 * q12 / np.sqrt((1.0 + 2.0 * q1) * (1.0 + 2.0 * q2)), -1, 1))
    if kind == "leaky_relu":
        a = act.params["slope"]
        root, c = _correlations(q1, q2, q12)
        abs_part = 2.0 / math.pi * root * (np.sqrt(1.0 - c * c) + c * np.arcsin(c))
        return ((1.0 + a) / 2.0) ** 2 * q12 + ((1.0 - a) / 2.0) ** 2 * abs_part
    if kind == "sin":
        s = q1 + q2
        return 0.5 * (np.exp(-0.5 * (s - 2.0 * q12)) - np.exp(-0.5 * (s + 2.0 * q12)))
    return None


def closed_moments(act: Activation, q: float) -> tuple[float, float, float] | None:
    """``(V(q), D(q), V'(q))`` = ``(E[phi^2], E[phi'^2], dV/dq)`` at ``h ~ N(0, q)`` in closed form, or None."""
    kind = closed_form_kind(act)
    if kind == "linear":
        return q, 1.0, 1.0
    if kind == "leaky_relu":
        m = (1.0 + act.params["slope"] ** 2) / 2.0
        return m * q, m, m
    if kind == "erf":
        return (2.0 / math.pi * math.asin(2.0 * q / (1.0 + 2.0 * q)), 4.0 / math.pi / math.sqrt(1.0 + 4.0 * q),
                4.0 / math.pi / ((1.0 + 2.0 * q) * math.sqrt(1.0 + 4.0 * q)))
    if kind == "sin":
        e = math.exp(-2.0 * q)
        return -0.5 * math.expm1(-2.0 * q), 0.5 * (1.0 + e), e
    return None


def closed_correlation_fixed_point(act: Activation, q: float, sw2: float) -> tuple[float, float] | None:
    """Chaotic fixed point ``(c*, chi_c)`` of the correlation map at ``q = q*`` in closed form, or None.

    ``c*`` is the root in ``[0, 1)`` of ``sw2 (V - K(c))/(1 - c) = q`` (``K(c)`` the kernel at equal variances ``q``;
    this uses ``q* = sw2 V + sigma_b2``), increasing in ``c``; ``1 - chi_c = (1 - chi_1) + sw2/q (K'(1) - K'(c*))``
    with the last difference written without cancellation, so ``chi_c < 1`` keeps its relative accuracy next to the
    critical line.

    - erf: ``r = 2q/(1 + 2q)``, ``A = 1 - r^2``, ``B = 1 - r^2 c^2``; ``(V - K(c))/(1 - c) = (2/pi) y asin(x)/x`` with
      ``x = (1 - c) y``, ``y = r (1 + c)/(sqrt(B) + c sqrt(A))``, and
      ``K'(1) - K'(c) = (2/pi) r^3 (1 - c)(1 + c) / (sqrt(A) sqrt(B) (sqrt(A) + sqrt(B)))``.
    - sin: with ``d = 1 - c``, ``(V - K(c))/d = (-expm1(-q d) + exp(-2q) expm1(q d)) / (2 d)`` and
      ``K'(1) - K'(c) = q exp(-q) (cosh q - cosh(q c)) = 2 q exp(-q) sinh(q (1 + c)/2) sinh(q d/2)``.
    """
    kind = closed_form_kind(act)
    if kind == "erf":
        one_minus_r = 1.0 / (1.0 + 2.0 * q)
        r = 2.0 * q * one_minus_r
        sqrt_a = math.sqrt(one_minus_r * (1.0 + r))

        def divided(c: float) -> float:
            y = r * (1.0 + c) / (math.sqrt((1.0 - r * c) * (1.0 + r * c)) + c * sqrt_a)
            x = (1.0 - c) * y
            return 2.0 / math.pi * y * (math.asin(x) / x if x != 0.0 else 1.0)

        def gap(c: float) -> float:
            sqrt_b = math.sqrt((1.0 - r * c) * (1.0 + r * c))
            return 2.0 / math.pi * r**3 * (1.0 - c) * (1.0 + c) / (sqrt_a * sqrt_b * (sqrt_a + sqrt_b))

        chi1 = sw2 * 4.0 / math.pi / math.sqrt(1.0 + 4.0 * q)
    elif kind == "sin":
        e2 = math.exp(-2.0 * q)

        def divided(c: float) -> float:
            d = 1.0 - c
            if d == 0.0:
                return q * 0.5 * (1.0 + e2)
            # exp(-2q) expm1(q d) as exp(q d - 2q) (-expm1(-q d)): no cancellation at small d, no overflow
            return 0.5 * (-math.expm1(-q * d)) * (1.0 + math.exp(q * d - 2.0 * q)) / d

        def gap(c: float) -> float:
            # q e^{-q} (cosh q - cosh qc) = 2 q e^{-q} sinh(q(1+c)/2) sinh(q(1-c)/2), in logs against overflow
            a, b = 0.5 * q * (1.0 + c), 0.5 * q * (1.0 - c)
            if b == 0.0:
                return 0.0
            return q * (-math.expm1(-2.0 * a)) * (-math.expm1(-2.0 * b)) * 0.5 * math.exp(a + b - q)

        chi1 = sw2 * 0.5 * (1.0 + e2)
    else:
        return None

    def f(c: float) -> float:
        return sw2 * divided(c) - q

    c = 0.0 if f(0.0) >= 0.0 else brent_root(f, 0.0, 1.0, xtol=1e-16, rtol=8.9e-16, maxiter=200)
    return c, 1.0 - ((1.0 - chi1) + sw2 / q * gap(c))
