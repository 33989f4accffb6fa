"""rmt.d2_pieces: transforms of the continuous law of D^2 up to the real axis (issue 14, speed of every case).

Checked against things computed without it: the density of ``phi'(h)^2`` by change of variables (real roots by
brentq), high-precision quadrature (mpmath, split at the complex pole), finite differences, conjugate symmetry, and
the plain atomic sums where those are exact (far from the range of ``phi'^2``).
"""

from __future__ import annotations

import math

import numpy as np
import pytest
from scipy.optimize import brentq

from meanfield import get_activation
from rmt.d2_pieces import SERIES_TERMS, ZERO_COLUMN, d2_pieces, moment_tables, resolved_sums
from rmt.transforms import stieltjes_sums

SMOOTH = ["tanh", "erf", "sigmoid", "gelu", "swish", "sin", "softplus", "elu", "selu"]


def _sums(model, z):
    """``(M, M', M'', G, G', G'')``: :func:`resolved_sums` with its ``z``-scaled derivatives unscaled."""
    z = complex(z)
    m, zm1, zzm2, g, zg1, zzg2 = resolved_sums(z, model.law.values, model.law.weights, *model.arrays)
    return m, zm1 / z, zzm2 / (z * z), g, zg1 / z, zzg2 / (z * z)


def _density_of_d2(act, q: float, x: float) -> float:
    """Density of ``phi'(h)^2`` at ``x`` by change of variables: ``sum p(h_r) / |g'(h_r)|`` over the real roots of
    ``phi'(h) = +-sqrt(x)`` (each sign separately: the two roots next to a zero of ``phi'`` are 1e-5 apart)."""
    s = math.sqrt(q)
    h = np.linspace(-13.0 * s, 13.0 * s, 400_001)
    f = act.dphi(h)
    total = 0.0
    for target in (math.sqrt(x), -math.sqrt(x)):
        for i in np.nonzero(np.sign(f[:-1] - target) != np.sign(f[1:] - target))[0]:
            if any(h[i] <= k <= h[i + 1] for k in act.kinks):
                continue  # phi' jumps across the target at a kink (selu): not a root
            r = brentq(lambda t, c=target: float(act.dphi(np.array([t]))[0]) - c, h[i], h[i + 1], xtol=1e-300,
                       rtol=1e-15)
            slope = 2.0 * target * float(act.d2phi(np.array([r]))[0])
            total += math.exp(-0.5 * r * r / q) / math.sqrt(2.0 * math.pi * q) / abs(slope)
    return total


@pytest.mark.parametrize("name", SMOOTH)
@pytest.mark.parametrize("q", [0.05, 0.57, 4.0, 22.0, 30.0])
def test_boundary_value_is_the_density_of_d2(name, q):
    """``-Im G(x + i0) / pi`` is the density of ``D^2`` (change of variables), at quantiles of the law: 1e-9. (sin at
    q = 22 once hung: a log model on a panel whose ellipse held a zero of cos had 10^7 targets per evaluation.)"""
    act = get_activation(name)
    model = d2_pieces(act, q)
    d, w = model.law.values, model.law.weights
    order = np.argsort(d)
    cdf = np.cumsum(w[order])
    continuous = model.pan[:, 6] == 0
    lo, hi = model.pan[continuous, 10].min(), model.pan[continuous, 11].max()
    checked = 0
    for level in (0.02, 0.2, 0.5, 0.8, 0.98):
        k = min(int(np.searchsorted(cdf, level)), d.size - 2)
        x = 0.5 * float(d[order][k] + d[order][k + 1])  # between two atoms of the rule
        if not lo < x < hi or np.any(np.abs(d - x) <= 1e-12 * x):
            continue  # an atom of D^2 (elu's positive side), or outside the continuous range
        expected = _density_of_d2(act, q, x)
        if expected == 0.0:
            continue
        got = -_sums(model, x)[3].imag / math.pi
        assert got == pytest.approx(expected, rel=1e-9), (name, q, x)
        checked += 1
    assert checked >= 1


@pytest.mark.parametrize("name", SMOOTH)
def test_far_from_the_range_equals_the_atomic_sums(name):
    """Where the atoms are exact (far from the range of phi'^2) nothing is subtracted wrongly: 1e-13."""
    model = d2_pieces(name, 0.8)
    top = model.law.values.max()
    for z in (complex(3.0 * top + 1.0, 0.5), complex(-2.0 * top - 1.0, 0.1), complex(0.3 * top, 5.0 * top + 1.0)):
        got = resolved_sums(z, model.law.values, model.law.weights, *model.arrays)
        plain = stieltjes_sums(z, model.law.values, model.law.weights)
        for a, b in zip(got, plain, strict=True):
            assert abs(a - b) <= 1e-13 * abs(b) + 1e-300


@pytest.mark.parametrize("name", ["tanh", "gelu", "sin", "sigmoid"])
def test_conjugate_symmetry_and_derivatives(name):
    """``G(conj z) = conj G(z)``; ``M'``, ``M''``, ``G'``, ``G''`` match central differences near the real axis."""
    model = d2_pieces(name, 1.3)
    top = model.law.values.max()
    for x in (1e-4 * top, 0.3 * top, 0.9 * top):
        z = complex(x, 1e-3 * top)
        m, m1, m2, g, g1, g2 = _sums(model, z)
        mc, _, _, gc = _sums(model, z.conjugate())[:4]
        assert abs(gc - g.conjugate()) <= 1e-12 * abs(g)
        assert abs(mc - m.conjugate()) <= 1e-12 * abs(m)
        step = 3e-3 * z.imag  # (M is smooth to about 1e-11 relative: the subtraction's own accuracy)
        plus, minus = _sums(model, z + step), _sums(model, z - step)
        assert abs((plus[0] - minus[0]) / (2 * step) - m1) <= 1e-4 * abs(m1)
        assert abs((plus[1] - minus[1]) / (2 * step) - m2) <= 1e-4 * abs(m2)
        assert abs((plus[3] - minus[3]) / (2 * step) - g1) <= 1e-4 * abs(g1)
        assert abs((plus[4] - minus[4]) / (2 * step) - g2) <= 1e-4 * abs(g2)
        assert abs(z * g - 1.0 - m) <= 1e-10 * max(abs(m), 1.0)  # M = z G - 1


@pytest.mark.parametrize(("name", "q"), [("sin", 1.38), ("gelu", 1.3), ("swish", 2.0)])
def test_smooth_next_to_a_zero_of_phi_prime_at_tiny_z(name, q):
    """Where ``phi'`` has a zero the poles sit ``sqrt(z)`` from it; the residue once took ``phi'`` at the root from
    the model (absolute rounding 1e-17, relative to ``sqrt(z)``), which was 1e-7 noise in ``G`` at ``|z| = 1e-20``
    (sin, orthogonal, depth 8 stalled there). ``G`` and ``z G'`` must be smooth to rounding: a cubic in a relative
    perturbation of ``z`` fits them to 1e-12 at every scale."""
    model = d2_pieces(name, q)
    eps = np.linspace(-1e-6, 1e-6, 21)
    for scale in (1e-13, 1e-20, 1e-25, 1e-40):
        for z0 in (scale * complex(-1.0, 0.84), scale * complex(1.0, 0.3)):
            vals = np.array([resolved_sums(z0 * (1 + e), model.law.values, model.law.weights, *model.arrays)
                             for e in eps])
            for col in (3, 4):  # G, z G'
                v = vals[:, col]
                for part in (v.real, v.imag):
                    fit = np.polyval(np.polyfit(eps, part, 3), eps)
                    assert np.max(np.abs(part - fit)) <= 1e-12 * abs(v[10])


def test_scaled_derivatives_stay_finite_at_tiny_z():
    """``G ~ 1 / z`` for an atom at 0 (gelu at q = 22: ``phi'^2`` underflows in the left tail), so ``G'`` is beyond
    float64 below ``|z| = 1e-154``; the sums return ``z G'`` and ``z^2 G''`` (likewise for ``M``), which match
    differences in ``log z``: ``dG / dlog z = z G'`` and ``d^2 G / dlog z^2 = z G' + z^2 G''``."""
    model = d2_pieces("gelu", 22.0)
    for z in (complex(1e-160, 7e-162), complex(-3e-250, 2e-251), complex(5e-40, 1e-41)):
        got = resolved_sums(z, model.law.values, model.law.weights, *model.arrays)
        assert all(np.isfinite(v.real) and np.isfinite(v.imag) for v in got)
        m, zm1, zzm2, g, zg1, zzg2 = got
        assert abs(z * g - 1.0 - m) <= 1e-12  # M = z G - 1
        for e in (1e-4, 1e-3):  # (the second difference at the larger step: rounding / e^2)
            up, down = (resolved_sums(z * math.exp(s * e), model.law.values, model.law.weights, *model.arrays)
                        for s in (1, -1))
            for f, d1, d2 in ((g, zg1, zzg2), (m, zm1, zzm2)):
                i = 3 if f is g else 0
                if e == 1e-4:
                    assert abs((up[i] - down[i]) / (2 * e) - d1) <= 1e-6 * abs(d1) + 1e-12 * abs(f)
                else:
                    assert abs((up[i] - 2 * f + down[i]) / e**2 - (d1 + d2)) <= 1e-5 * abs(d1 + d2) + 1e-9 * abs(f)


@pytest.mark.parametrize("name", SMOOTH)
def test_series_sums_of_far_atoms_equal_the_direct_sums(name):
    """Atoms far below or far above ``|z|`` are summed by their series (:func:`rmt.d2_pieces.moment_tables`); over
    ``|z|`` from 1e-250 to 1e3 in every direction of the upper half plane the result equals the direct sum over every
    atom (an empty table) to 1e-13 of the scale of ``M`` (or ``G``), at a variance where ``phi'^2`` spans hundreds of
    decades."""
    rng = np.random.default_rng(7)
    for q in (0.5, 22.0):
        model = d2_pieces(name, q)
        direct = (*model.arrays[:-1], np.zeros((0, 2, SERIES_TERMS)))
        for _ in range(60):
            z = 10.0 ** rng.uniform(-250, 3) * np.exp(1j * rng.uniform(1e-3, math.pi - 1e-3))
            got = resolved_sums(z, model.law.values, model.law.weights, *model.arrays)
            want = resolved_sums(z, model.law.values, model.law.weights, *direct)
            for i, (a, b) in enumerate(zip(got, want, strict=True)):
                scale = abs(want[0]) if i < 3 else abs(want[3])  # (z M', z^2 M'' are on the scale of M; likewise G)
                assert abs(a - b) <= 1e-13 * (abs(b) + scale)


@pytest.mark.parametrize("name", ["gelu", "swish", "sin"])
@pytest.mark.parametrize("q", [0.3, 3.0, 22.0])
def test_roots_next_to_a_zero_from_the_taylor_expansion(name, q):
    """Next to the one zero of ``phi'`` in a panel's ellipse the roots of ``phi' = +-sqrt(z)`` come from the Taylor
    expansion there (no Newton on the Chebyshev model); with the expansions removed (``x0`` NaN) the general root
    search gives the same sums to 1e-12 of their scale, over ``|z|`` from 1e-40 to 3 in every direction."""
    model = d2_pieces(name, q)
    x0 = model.pan[:, ZERO_COLUMN]
    assert np.isfinite(x0).any()
    pan = model.pan.copy()
    pan[:, ZERO_COLUMN] = np.nan
    general = (pan, *model.arrays[1:])
    rng = np.random.default_rng(11)
    for _ in range(150):
        z = 10.0 ** rng.uniform(-40, 0.5) * np.exp(1j * rng.uniform(1e-3, math.pi - 1e-3))
        got = resolved_sums(z, model.law.values, model.law.weights, *model.arrays)
        want = resolved_sums(z, model.law.values, model.law.weights, *general)
        for i, (a, b) in enumerate(zip(got, want, strict=True)):
            scale = abs(want[0]) if i < 3 else abs(want[3])
            assert abs(a - b) <= 1e-12 * (abs(b) + scale)


def test_moment_tables_against_direct_moments():
    """``[k, 0, n] = sum_{i < k} w_i (d_i / d_{k-1})^n`` and ``[k, 1, n] = sum_{i >= k} w_i (d_k / d_i)^n``."""
    d = np.array([0.0, 0.0, 1e-300, 1e-5, 0.3, 0.3, 2.0])
    w = np.array([0.1, 0.05, 0.2, 0.15, 0.2, 0.1, 0.2])
    table = moment_tables(d, w)
    n = np.arange(SERIES_TERMS)
    for k in range(1, d.size + 1):
        top = d[k - 1]
        want = [w[:k].sum()] + [np.sum(w[:k] * (d[:k] / top) ** j) if top > 0 else 0.0 for j in n[1:]]
        np.testing.assert_allclose(table[k, 0], want, rtol=1e-14)
    for k in range(2, d.size):
        np.testing.assert_allclose(table[k, 1], [np.sum(w[k:] * (d[k] / d[k:]) ** j) for j in n], rtol=1e-14)
    for bad_d, bad_w in ((d[::-1].copy(), w), (np.array([-1.0, 1.0]), w[:2]), (np.array([np.nan, 1.0]), w[:2]),
                         (d, w[:3])):
        with pytest.raises(ValueError, match="moment_tables"):
            moment_tables(bad_d, bad_w)


def _mpmath_stieltjes(name: str, q: float, z: complex) -> complex:
    """``E[1 / (z - phi'(h)^2)]`` by mpmath, split at the complex poles (found by mpmath.findroot from the real
    roots of ``phi'^2 = Re z``) on scales down to ``Im`` of the pole."""
    mp = pytest.importorskip("mpmath")
    mp.mp.dps = 25
    dphi = {
        "tanh": lambda h: 1 / mp.cosh(h) ** 2,
        "sigmoid": lambda h: mp.exp(-h) / (1 + mp.exp(-h)) ** 2,
        "gelu": lambda h: mp.erfc(-h / mp.sqrt(2)) / 2 + h * mp.exp(-h * h / 2) / mp.sqrt(2 * mp.pi),
        "erf": lambda h: 2 / mp.sqrt(mp.pi) * mp.exp(-h * h),
        "sin": mp.cos,
    }[name]
    act = get_activation(name)
    s = math.sqrt(q)
    grid = np.linspace(-13 * s, 13 * s, 100_001)
    g = act.dphi(grid) ** 2 - z.real
    zz = mp.mpc(z.real, z.imag)
    points = {-13 * s, 13 * s}
    for i in np.nonzero(np.sign(g[:-1]) != np.sign(g[1:]))[0]:
        r = brentq(lambda t: float(act.dphi(np.array([t]))[0]) ** 2 - z.real, grid[i], grid[i + 1], xtol=1e-300,
                   rtol=1e-15)
        slope = float(mp.diff(lambda t: dphi(t) ** 2, r))
        pole = mp.findroot(lambda t: dphi(t) ** 2 - zz, mp.mpc(r, z.imag / slope))
        centre, width = float(mp.re(pole)), max(abs(float(mp.im(pole))), 1e-30)
        points.add(centre)
        for k in range(120):
            e = width * 10 ** (k / 3)
            if e > 2:
                break
            points.update((centre - e, centre + e))
    points = sorted(p for p in points if abs(p) <= 13 * s)
    return complex(mp.quad(lambda t: mp.npdf(t, 0, mp.sqrt(q)) / (zz - dphi(t) ** 2), points))


@pytest.mark.parametrize(("name", "q", "x_rel", "y_rel"), [
    ("tanh", 0.57, 0.3, 1e-12),
    ("tanh", 0.57, 0.999, 1e-9),  # next to the top of the range (roots coalescing at h = 0)
    ("gelu", 1.5, 1e-4, 1e-5),  # next to the zero of phi' (mpmath itself is not reliable closer to the axis there)
    ("sigmoid", 45.7, 1e-6, 1e-6),  # far tail (log model)
    ("erf", 1.77, 1e-20, 1e-8),  # deep tail, z ~ 1e-20
    ("sin", 3.0, 0.5, 1e-3),  # many zeros and extrema of cos, the far ones' corrections left out (p < 1e-18)
])
def test_near_the_real_axis_matches_mpmath(name, q, x_rel, y_rel):
    model = d2_pieces(name, q)
    top = float(model.law.values.max())
    z = complex(x_rel * top, y_rel * top * x_rel)
    got = _sums(model, z)[3]
    assert got == pytest.approx(_mpmath_stieltjes(name, q, z), rel=1e-9)


def test_above_the_top_of_sins_range_matches_a_fine_rule():
    """Just above the top of sin's range (``z = 1.002 + 1e-4 i`` times it, q = 3) every extremum of cos puts two poles
    next to the axis; 0.002 from the range a plain composite Gauss-Legendre sum on 800000 nodes (spacing 6e-5, the
    peaks 0.045 wide) is exact to rounding. The corrections agree with it to 1e-9 (mpmath's quad, split only at real
    roots, misses those peaks)."""
    q = 3.0
    model = d2_pieces("sin", q)
    top = float(model.law.values.max())
    s = math.sqrt(q)
    x, w = np.polynomial.legendre.leggauss(40)
    edges = np.linspace(-13 * s, 13 * s, 20001)
    half = 0.5 * (edges[1] - edges[0])
    h = (0.5 * (edges[:-1] + edges[1:])[:, None] + half * x).ravel()
    weights = np.tile(half * w, edges.size - 1) * np.exp(-0.5 * h * h / q) / math.sqrt(2 * math.pi * q)
    for z in (complex(1.002 * top, 1e-4 * top), complex(1.05 * top, 1e-3), complex(0.98 * top, 0.01)):
        assert _sums(model, z)[3] == pytest.approx(np.sum(weights / (z - np.cos(h) ** 2)), rel=1e-9)


def test_panels_stay_few_at_large_variance():
    """Steep or underflowing tails (gelu, sigmoid at large q) do not split panels without end."""
    for name, q in (("gelu", 22.0), ("sigmoid", 46.0), ("tanh", 100.0), ("erf", 50.0)):
        assert d2_pieces(name, q).pan.shape[0] < 400


def test_bad_variance_is_rejected():
    for q in (0.0, -1.0, math.nan, math.inf):
        with pytest.raises(ValueError, match="q must be"):
            d2_pieces("tanh", q)


@pytest.mark.parametrize(("name", "q", "expected"), [
    ("erf", 1.77, True),  # phi'^2 underflows in the tails
    ("sin", 0.55, True),  # phi' has zeros
    ("gelu", 0.09, True),
    ("swish", 1.09, True),
    ("tanh", 0.05, False),  # phi'^2 >= 1e-4 over |h| <= 13 sqrt(q): the law of the solver stays away from 0
    ("sigmoid", 45.7, False),
])
def test_reaches_zero(name, q, expected):
    """Where the continuous part of D^2 comes down to 0 the spectrum solver does not probe for soft lower edges."""
    assert d2_pieces(name, q).reaches_zero is expected
