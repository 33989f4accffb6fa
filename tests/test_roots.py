"""``meanfield.roots.brent_root`` against ``scipy.optimize.brentq`` and known roots."""

from __future__ import annotations

import math
import subprocess
import sys

import numpy as np
import pytest
from scipy.optimize import brentq

from meanfield.roots import RootNotBracketedError, brent_root


def test_random_polynomials_and_transcendental_functions_agree_with_scipy():
    rng = np.random.default_rng(3)
    for _ in range(300):
        kind = rng.integers(3)
        if kind == 0:
            roots = np.sort(rng.uniform(-5, 5, 3))
            scale = 10.0 ** rng.uniform(-8, 8)

            def f(x, roots=roots, scale=scale):
                return scale * (x - roots[0]) * (x - roots[1]) * (x - roots[2])

            a, b = 0.5 * (roots[0] + roots[1]), 0.5 * (roots[1] + roots[2])  # brackets roots[1] alone
        elif kind == 1:
            k, t = rng.uniform(0.1, 50), rng.uniform(-1, 1)

            def f(x, k=k, t=t):
                return math.tanh(k * x) - t

            a, b = -3.0, 3.0
        else:
            c = 10.0 ** rng.uniform(-12, 0)

            def f(x, c=c):
                return math.expm1(x) - c  # root log1p(c): tiny roots test the relative tolerance

            a, b = -1.0, 1.0
        for xtol, rtol in ((2e-12, 8.9e-16), (1e-300, 1e-15)):
            ours = brent_root(f, a, b, xtol=xtol, rtol=rtol, maxiter=400)
            ref = brentq(f, a, b, xtol=xtol, rtol=rtol, maxiter=400)
            assert abs(ours - ref) <= 2 * (xtol + rtol * abs(ref))
            assert f(ours) == 0.0 or abs(ours - ref) <= 2 * (xtol + rtol * abs(ref))


def test_exact_roots_and_ends():
    assert brent_root(lambda x: x - 0.25, 0.0, 1.0, xtol=1e-300, rtol=1e-15) == pytest.approx(0.25, rel=2e-15)
    assert brent_root(lambda x: x, 0.0, 1.0) == 0.0
    assert brent_root(lambda x: x - 1.0, 0.0, 1.0) == 1.0
    assert brent_root(lambda x: math.log1p(x) - 1e-20, -0.5, 1.0, xtol=1e-300) == pytest.approx(1e-20, rel=1e-14)


@pytest.mark.parametrize("f, a, b", [(lambda x: x * x + 1.0, -1.0, 1.0), (lambda x: math.nan, 0.0, 1.0)])
def test_no_bracket_is_an_error(f, a, b):
    with pytest.raises(RootNotBracketedError, match="bracket"):
        brent_root(f, a, b)


def test_bad_tolerances_are_rejected():
    with pytest.raises(ValueError, match="xtol"):
        brent_root(lambda x: x, -1.0, 1.0, xtol=0.0)
    with pytest.raises(ValueError, match="rtol"):
        brent_root(lambda x: x, -1.0, 1.0, rtol=1e-17)


def test_a_kinked_and_a_closed_form_point_do_not_import_scipy_optimize():
    """The cold ``point`` path stays free of ``scipy.optimize`` (0.2-0.3 s of import)."""
    code = ("import sys, meanfield\n"
            "meanfield.mean_field_point('hard_tanh', 2.0, 0.1)\n"
            "meanfield.mean_field_point('erf', 3.0, 0.1)\n"
            "print('scipy.optimize' in sys.modules)\n")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "False"
