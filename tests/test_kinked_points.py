"""Exact Price kernel of piecewise-exponential phi' (issue 10): the tilted bivariate normal orthant probabilities
against mpmath, the kernel against 2-D quadrature, and c*/chi_c of the exact route against the quadrature route."""

from __future__ import annotations

import math
import warnings

import mpmath as mp
import numpy as np
import pytest

import meanfield as mf
from meanfield import fixed_points as fp
from meanfield.bivariate import bivariate_normal_cdf, tilted_orthants
from meanfield.kernel_quadrature import kernel_quadrature
from meanfield.piecewise import check_pieces, piecewise_dphi_kernel
from meanfield.solver import solver_for

KINKED = ["relu", "leaky_relu(slope=0.1)", "hard_tanh", "elu", "elu(alpha=0.5)", "elu(alpha=2.5)", "selu"]


def mp_tilted(h1, h2, g1, g2, rho):
    """E[exp(g1 (x1 - h1) + g2 (x2 - h2)) 1{x1 < h1, x2 < h2}] by mpmath: x2 given x1 in closed form, x1 by
    tanh-sinh on panels graded around the conditional step."""
    mp.mp.dps = 30
    h1, h2, g1, g2, rho = map(mp.mpf, (h1, h2, g1, g2, rho))
    s = mp.sqrt(1 - rho**2)

    def inner(x1):
        m = rho * x1
        return (mp.exp(g1 * (x1 - h1) + g2 * (m - h2) + g2**2 * s**2 / 2 - x1**2 / 2) / mp.sqrt(2 * mp.pi)
                * mp.ncdf((h2 - m) / s - g2 * s))

    centre = (h2 - g2 * s * s) / rho if rho != 0 else h1
    pts = {h1}
    for k in range(40):
        for sign in (-1, 1):
            p = centre + sign * s * 2**k / abs(rho) if rho else h1
            if p < h1:
                pts.add(p)
    return float(mp.quad(inner, [-mp.inf, *sorted(pts)]))


def test_tilted_orthants_against_mpmath():
    rng = np.random.default_rng(7)
    for _ in range(40):
        h1, h2 = rng.normal(0, 3, 2)
        g1, g2 = rng.exponential(3, 2) * (rng.random(2) < 0.7)
        rho = rng.choice([1 - 10 ** rng.uniform(-12, -1), rng.uniform(0, 1), -1 + 10 ** rng.uniform(-12, -1),
                          rng.uniform(-1, 0)])
        value = float(tilted_orthants(h1, h2, g1, g2, rho))
        ref = mp_tilted(h1, h2, g1, g2, rho)
        if rho >= 0:  # full relative accuracy
            assert value == pytest.approx(ref, rel=1e-10, abs=1e-300), (h1, h2, g1, g2, rho)
        else:
            assert abs(value - ref) <= 1e-12, (h1, h2, g1, g2, rho)


def test_large_tilts_do_not_overflow():
    # the ELU negative-negative term at q up to 1e8: exp(q (1 + t)) Phi2(-sqrt(q)(1 + t), ...; t), in (0, 1]
    for q in (1e2, 1e4, 1e6, 1e8):
        root = math.sqrt(q)
        for t in (0.0, 0.5, 1 - 1e-6):
            value = float(tilted_orthants(0.0, 0.0, root, root, t))
            assert 0.0 < value <= 1.0
    # the relative limit ~ 1/(2 pi q sqrt(1 - t^2)) at t = 0 for large q (both tails independent: (erfcx/2)^2)
    q = 1e6
    ref = (0.5 * float(mp.erfc(mp.sqrt(q / 2)) * mp.exp(q / 2))) ** 2
    assert float(tilted_orthants(0.0, 0.0, math.sqrt(q), math.sqrt(q), 0.0)) == pytest.approx(ref, rel=1e-12)


def test_bivariate_cdf_against_scipy():
    from scipy.stats import multivariate_normal

    rng = np.random.default_rng(3)
    h = rng.normal(0, 1.5, (30, 2))
    rho = rng.uniform(-0.95, 0.95, 30)
    ours = bivariate_normal_cdf(h[:, 0], h[:, 1], rho)
    ref = [multivariate_normal([0, 0], [[1, r], [r, 1]]).cdf(x) for x, r in zip(h, rho, strict=True)]
    np.testing.assert_allclose(ours, ref, rtol=1e-6, atol=1e-8)  # scipy's own accuracy is the limit here
    assert float(bivariate_normal_cdf(0.0, 0.0, 0.5)) == pytest.approx(0.25 + math.asin(0.5) / (2 * math.pi), rel=1e-15)


@pytest.mark.parametrize("name", KINKED)
def test_pieces_reproduce_dphi(name):
    act = mf.get_activation(name)
    x = np.linspace(-5, 5, 201) + 0.013
    total = np.zeros_like(x)
    for lo, hi, amp, rate in check_pieces(act.dphi_pieces):
        total += np.where((x > lo) & (x < hi), amp * np.exp(rate * np.clip(x, -50, 50)), 0.0)
    np.testing.assert_allclose(total, act.dphi(x), rtol=1e-15, atol=1e-15)


def test_check_pieces_refuses_unbounded_and_empty():
    with pytest.raises(ValueError, match="unbounded"):
        check_pieces([(0.0, math.inf, 1.0, 1.0)])
    with pytest.raises(ValueError, match="lo < hi"):
        check_pieces([(1.0, 0.0, 1.0, 0.0)])


@pytest.mark.parametrize("name", KINKED)
@pytest.mark.parametrize("q", [0.05, 1.0, 13.0])
def test_kernel_against_quadrature(name, q):
    act = mf.get_activation(name)
    u = np.array([0.0, 1e-3, 0.05, 0.3, 0.7, 0.95, 1.0])
    t = 1.0 - u**2
    exact = piecewise_dphi_kernel(act.dphi_pieces, q, t, u**2)
    qa = np.full(t.size, q)
    quad = kernel_quadrature(act.dphi, act.dphi, act.kinks, qa, qa, q * t, oscillatory=False)
    np.testing.assert_allclose(exact, quad, rtol=0, atol=2e-12)


def _chaotic_points(act):
    """(sw2, sb2) in the chaotic phase: random ones and ones next to the critical line (chi_1 - 1 = 1e-3, 1e-6)."""
    rng = np.random.default_rng(11)
    points = []
    while len(points) < 4:
        sw2, sb2 = math.exp(rng.uniform(math.log(0.5), math.log(4))), rng.choice([0.0, rng.uniform(0, 2)])
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", mf.NoFixedPointWarning)
            p = mf.mean_field_point(act, sw2, sb2)
        if p.q_star_finite and p.chi_1 > 1.0 and p.q_star > 0:
            points.append((sw2, sb2))
    return points


@pytest.mark.parametrize("name", ["hard_tanh", "elu", "elu(alpha=0.5)", "selu"])
def test_c_star_exact_route_matches_quadrature_route(name):
    act = mf.get_activation(name)
    solver = solver_for(act)
    for sw2, sb2 in _chaotic_points(act):
        q = mf.mean_field_point(act, sw2, sb2).q_star
        c_e, chi_e = fp.price_correlation_fixed_point(act, solver.moments, q, sw2, exact=True)
        c_q, chi_q = fp.price_correlation_fixed_point(act, solver.moments, q, sw2, exact=False)
        assert c_e == pytest.approx(c_q, rel=1e-9, abs=1e-12), (sw2, sb2)
        assert chi_e == pytest.approx(chi_q, rel=1e-9), (sw2, sb2)
        assert chi_e < 1.0


@pytest.mark.parametrize("name", ["hard_tanh", "elu", "selu"])
@pytest.mark.parametrize("excess", [1e-3, 1e-6, 1e-9])
def test_near_critical_xi_c_positive_and_agrees(name, excess):
    act = mf.get_activation(name)
    solver = solver_for(act)
    sb2 = 0.2
    sw2_c, _ = mf.critical_sigma_w2(act, sb2)
    # step sigma_w2 until chi_1 - 1 is about `excess`
    sw2 = sw2_c * (1 + excess)
    p = mf.mean_field_point(act, sw2, sb2)
    assert p.chi_1 > 1.0
    assert p.xi_c > 0 and math.isfinite(p.xi_c)
    assert p.chi_c < 1.0
    if excess >= 1e-6:  # the quadrature route resolves these too
        c_q, chi_q = fp.price_correlation_fixed_point(act, solver.moments, p.q_star, sw2, exact=False)
        assert p.c_star == pytest.approx(c_q, rel=1e-9, abs=1e-13)
        assert 1 - p.chi_c == pytest.approx(1 - chi_q, rel=1e-6)


def test_large_variance_point_is_fast_and_sane():
    act = mf.get_activation("elu")
    p = mf.mean_field_point(act, 1.99, 1.0)  # q* in the hundreds
    assert p.q_star > 100 and 0 < p.c_star < 1 and 0 < p.chi_c < 1


@pytest.mark.parametrize(("h1", "h2", "g1", "g2", "rho"), [
    (0.0, 0.0, 300.0, 300.0, 0.3), (0.0, 0.0, 300.0, 0.0, 1 - 1e-9), (0.05, -0.02, 1000.0, 999.0, 1 - 1e-12),
    (0.0, 0.0, 2000.0, 2000.0, 0.999), (0.1, 0.3, 50.0, 0.0, 0.9999),
])
def test_huge_tilts_against_mpmath(h1, h2, g1, g2, rho):
    assert float(tilted_orthants(h1, h2, g1, g2, rho)) == pytest.approx(mp_tilted(h1, h2, g1, g2, rho), rel=1e-11)


@pytest.mark.parametrize(("name", "sw2", "sb2"), [("elu", 1.99, 1.0), ("selu", 1.8, 0.5), ("elu(alpha=2.5)", 1.99, 0.7),
                                                 ("hard_tanh", 1e4, 0.3), ("hard_tanh", 1e6, 1.0)])
def test_large_variance_points_match_quadrature_newton_route(name, sw2, sb2):
    """q* from 1e2 to 1e6: the exact route against Newton's method on K(c) by 2-D quadrature (the old large-q route).
    At q ~ 1e6 both are limited by the kernel's absolute accuracy times sigma_w2: c* to about 1e-10 absolute."""
    act = mf.get_activation(name)
    solver = solver_for(act)
    p = mf.mean_field_point(act, sw2, sb2)
    assert p.q_star > 100.0
    c_q, chi_q = fp.price_correlation_fixed_point(act, solver.moments, p.q_star, sw2, exact=False)
    assert p.c_star == pytest.approx(c_q, rel=1e-9, abs=1e-9)
    assert p.chi_c == pytest.approx(chi_q, rel=1e-9)
    assert p.xi_c == pytest.approx(fp.depth_scales(chi_q)[()], rel=1e-8)


def test_erfcx_against_mpmath():
    from meanfield.bivariate import erfcx

    mp.mp.dps = 30
    for x in np.concatenate([np.linspace(-26, 30, 113), np.geomspace(1e-8, 1e8, 33)]):
        ref = float(mp.exp(mp.mpf(x) ** 2) * mp.erfc(mp.mpf(x)))
        assert erfcx(float(x)) == pytest.approx(ref, rel=1e-15), x
