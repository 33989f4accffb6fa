"""Bracketed root finding for the scalar paths, without importing :mod:`scipy.optimize`.

``scipy.optimize`` takes 0.2-0.3 s to import (it builds docstrings of hundreds of functions), a third of the cold
``python -m meanfield point`` budget, and the core needs only a bracketed scalar root. :func:`brent_root` is Brent's
method (R. P. Brent, *Algorithms for Minimization without Derivatives*, 1973, ch. 4: inverse quadratic interpolation
and secant steps, bisection whenever they do not shrink the bracket fast enough) with the stopping rule of
``scipy.optimize.brentq``: stop when half the bracket is below ``(xtol + rtol |x|) / 2``. Tests compare it with
``scipy.optimize.brentq`` on random functions and brackets.
"""

from __future__ import annotations

import math
from collections.abc import Callable

__all__ = ["RootNotBracketedError", "brent_root"]


class RootNotBracketedError(ValueError):
    """``f(a)`` and ``f(b)`` have the same sign, or Brent's method did not converge in ``maxiter`` steps."""


def brent_root(f: Callable[[float], float], a: float, b: float, xtol: float = 2e-12, rtol: float = 8.9e-16,
               maxiter: int = 100) -> float:
    """A root of ``f`` in ``[a, b]`` where ``f(a)`` and ``f(b)`` differ in sign (Brent 1973).

    Parameters
    ----------
    f : callable
        Scalar function of a float, continuous on ``[a, b]``.
    a, b : float
        The bracket; ``f(a) f(b) <= 0``.
    xtol, rtol : float
        Absolute and relative tolerance: the returned ``x`` is within ``xtol + rtol |x|`` of a sign change of ``f``
        (``rtol`` not below ``4 eps``, as in ``scipy.optimize.brentq``).
    maxiter : int
        Most function evaluations after the two at the ends.

    Returns
    -------
    float

    Raises
    ------
    RootNotBracketedError
        ``f(a)`` and ``f(b)`` have the same sign (or one is NaN), or no convergence in ``maxiter`` steps.
    """
    if xtol <= 0.0 or rtol < 4.0 * 2.220446049250313e-16:
        raise ValueError(f"xtol must be > 0 and rtol >= 4 eps, got xtol={xtol}, rtol={rtol}")
    x_pre, x_cur = float(a), float(b)
    f_pre, f_cur = float(f(x_pre)), float(f(x_cur))
    if f_pre == 0.0:
        return x_pre
    if f_cur == 0.0:
        return x_cur
    if not (f_pre * f_cur < 0.0):
        raise RootNotBracketedError(f"f(a) = {f_pre:g} and f(b) = {f_cur:g} do not bracket a root in [{a:g}, {b:g}]")
    x_blk = f_blk = s_pre = s_cur = 0.0
    for _ in range(maxiter):
        if f_pre != 0.0 and f_cur != 0.0 and math.copysign(1.0, f_pre) != math.copysign(1.0, f_cur):
            x_blk, f_blk = x_pre, f_pre  # the contrapoint: the bracket is [x_cur, x_blk]
            s_pre = s_cur = x_cur - x_pre
        if abs(f_blk) < abs(f_cur):  # x_cur is the best estimate so far
            x_pre, x_cur, x_blk = x_cur, x_blk, x_cur
            f_pre, f_cur, f_blk = f_cur, f_blk, f_cur
        delta = 0.5 * (xtol + rtol * abs(x_cur))
        s_bis = 0.5 * (x_blk - x_cur)
        if f_cur == 0.0 or abs(s_bis) < delta:
            return x_cur
        if abs(s_pre) > delta and abs(f_cur) < abs(f_pre):
            if x_pre == x_blk:  # secant
                s_try = -f_cur * (x_cur - x_pre) / (f_cur - f_pre)
            else:  # inverse quadratic interpolation
                d_pre = (f_pre - f_cur) / (x_pre - x_cur)
                d_blk = (f_blk - f_cur) / (x_blk - x_cur)
                s_try = -f_cur * (f_blk * d_blk - f_pre * d_pre) / (d_blk * d_pre * (f_blk - f_pre))
            if 2.0 * abs(s_try) < min(abs(s_pre), 3.0 * abs(s_bis) - delta):  # accept the interpolation step
                s_pre, s_cur = s_cur, s_try
            else:
                s_pre = s_cur = s_bis
        else:
            s_pre = s_cur = s_bis
        x_pre, f_pre = x_cur, f_cur
        x_cur += s_cur if abs(s_cur) > delta else math.copysign(delta, s_bis)
        f_cur = float(f(x_cur))
        if math.isnan(f_cur):
            raise RootNotBracketedError(f"f is NaN at x = {x_cur:g} inside the bracket [{a:g}, {b:g}]")
    raise RootNotBracketedError(f"Brent's method did not converge in {maxiter} iterations on [{a:g}, {b:g}]")
