"""Jacobian spectra where the numerics are delicate: phi'^2 below the float64 range at depth 1, piecewise-constant
phi' at depth 2 (issue 14 leftovers). Checked against i.i.d. draws, mass conservation and the exact moments."""

import math
import warnings

import numpy as np
import pytest
from scipy import special
from spectrum_reference import ReferenceSpectrum

import meanfield
from rmt import jacobian_moments, jacobian_spectrum


def _grid_mass_and_mean(result):
    """(mass, mean) of the law from its grid (trapezoid in log lam), atoms and tail_mass."""
    u = np.log(result.lam)
    f = result.density * result.lam
    mass = np.trapezoid(f, u) + sum(m for _, m in result.atoms) + result.tail_mass
    mean = np.trapezoid(f * result.lam, u) + sum(m * x for x, m in result.atoms)
    return mass, mean


def _phi_prime_squared(name, h):
    """phi'(h)^2 written independently of meanfield (stable in the tails)."""
    if name == "tanh":
        return 1.0 / np.cosh(h) ** 4
    if name == "erf":
        return 4.0 / math.pi * np.exp(-2.0 * h * h)
    if name == "sigmoid":
        s = special.expit(h)
        return (s * special.expit(-h)) ** 2
    raise ValueError(name)


@pytest.mark.parametrize("name", ["tanh", "erf", "sigmoid"])
@pytest.mark.parametrize(("sigma_w2", "sigma_b2"), [(1.0, 2.0), (4.0, 5.0), (4.0, 0.5)])
def test_depth_one_orthogonal_with_phi_prime_below_float_range(name, sigma_w2, sigma_b2):
    # large q*: phi'(h)^2 underflows to 0 in the Gaussian tails ("math domain error" before); that mass is continuous
    # mass below the grid (tail_mass), not an atom, and the law is sigma_w2 phi'(h)^2 of i.i.d. h ~ N(0, q*)
    result = jacobian_spectrum(name, sigma_w2, sigma_b2, 1, "orthogonal")
    assert result.atoms == ()
    assert np.all(np.isfinite(result.density)) and np.all(result.density >= 0)
    mass, mean = _grid_mass_and_mean(result)
    assert mass == pytest.approx(1.0, abs=2e-5)
    assert mean == pytest.approx(result.mean, rel=2e-5)
    h = np.random.default_rng(1).standard_normal(100_000) * math.sqrt(result.q_star)
    samples = sigma_w2 * _phi_prime_squared(name, h)
    p_below = float(np.mean(samples < 1e-300))
    assert result.tail_mass == pytest.approx(p_below, abs=5e-3)
    if result.tail_mass > 0:
        assert result.support[0] == 0.0
    assert result.ks_distance(samples[samples >= result.lam[0]]) < 0.01 + result.tail_mass


def test_depth_one_orthogonal_relu_zero_atom_is_kept():
    # phi' = 0 on an interval next to the kink: a genuine atom at 0 (not tail mass)
    result = jacobian_spectrum("relu", 2.0, 1.0, 1, "orthogonal")
    assert result.atoms == ((0.0, pytest.approx(0.5, abs=1e-12)), (2.0, pytest.approx(0.5, abs=1e-12)))
    assert result.tail_mass == 0.0
    assert jacobian_moments("relu", 2.0, 1.0, 1, "orthogonal", k=1)[0] == pytest.approx(1.0, rel=1e-12)


def _leaky_relu_depth_two_exact(t, slope, sigma_w2):
    """CDF and density of J J^T for leaky ReLU, orthogonal weights, depth 2, at ``t`` (exact).

    ``J J^T ~ sigma_w2^2 A^{1/2} B A^{1/2}`` with ``A = s^2 + (1 - s^2) P``, ``B = s^2 + (1 - s^2) Q``, ``P, Q`` free
    projections of trace 1/2: in the 2x2 blocks of the pair, ``Q`` makes an angle with ``P`` whose ``x = cos^2`` has
    the arcsine law on [0, 1], and the block's two eigenvalues solve ``lam^2 - T lam + s^4 = 0``,
    ``T = 2 s^2 + (1 - s^2)^2 x`` (the larger one increasing in ``x``, the smaller one decreasing).
    """
    s2 = slope * slope
    tp = np.asarray(t) / sigma_w2**2
    x = np.clip((tp + s2 * s2 / tp - 2.0 * s2) / (1.0 - s2) ** 2, 0.0, 1.0)
    arcsine_cdf = 2.0 / math.pi * np.arcsin(np.sqrt(x))
    cdf = np.where(tp >= s2, 0.5 + 0.5 * arcsine_cdf, 0.5 - 0.5 * arcsine_cdf)
    with np.errstate(divide="ignore", invalid="ignore"):
        density = 0.5 / (math.pi * np.sqrt(x * (1.0 - x))) * np.abs(1.0 - s2 * s2 / tp**2) / (1.0 - s2) ** 2
    return cdf, density / sigma_w2**2


@pytest.mark.parametrize("slope", [0.01, 0.1, 0.5])
def test_leaky_relu_orthogonal_depth_two_has_inverse_square_root_edges_on_atoms(slope):
    # D^2 has atoms slope^2 and 1 (mass 1/2 each): both edges of J J^T sit on atoms of D^2 and the density diverges
    # there like an inverse square root (the walk stalled at the lower edge before)
    sigma_w2 = 2.0 / (1.0 + slope * slope)
    name = f"leaky_relu(slope={slope})"
    result = jacobian_spectrum(name, sigma_w2, 0.1, 2, "orthogonal")
    assert result.atoms == () and result.tail_mass == 0.0
    assert result.support == (pytest.approx((sigma_w2 * slope**2) ** 2, rel=1e-9),
                              pytest.approx(sigma_w2**2, rel=1e-9))
    cdf, density = _leaky_relu_depth_two_exact(result.lam, slope, sigma_w2)
    interior = slice(1, -1)
    np.testing.assert_allclose(result.density[interior], density[interior], rtol=1e-6)
    # the trapezoid misses O(sqrt(spacing)) of the mass next to the divergent edges
    assert np.max(np.abs(result.cdf(result.lam) - cdf)) < 2e-3
    m1, m2 = jacobian_moments(name, sigma_w2, 0.1, 2, "orthogonal", k=2)
    assert result.mean == pytest.approx(m1, rel=1e-12)
    assert m1 == pytest.approx((sigma_w2 * (1 + slope**2) / 2) ** 2, rel=1e-12)


@pytest.mark.parametrize(("depth", "points"), [(64, (0.027, 0.03, 0.04)), (8, (0.1525, 0.161, 0.1678))])
def test_near_isometric_lower_end_is_a_tail_as_in_the_reference(depth, points):
    # tanh at q* = 0.05, orthogonal: no soft lower edge inside the range of phi'^2 (see
    # test_spectrum.test_soft_edges_are_critical_points). The solver used to claim one at lam = 0.021 (depth 64) and
    # 0.169 (depth 8, density 0 below it, the reference 2e-3 to 4e-3 at the depth-8 points here)
    sigma_w2, sigma_b2 = meanfield.critical_point("tanh", 0.05)
    result = jacobian_spectrum("tanh", sigma_w2, sigma_b2, depth, "orthogonal")
    assert result.support[0] == 0.0 and result.tail_mass > 0.0
    reference = ReferenceSpectrum("tanh", sigma_w2, sigma_b2, depth, "orthogonal")
    for lam in points:
        assert float(np.interp(lam, result.lam, result.density)) == pytest.approx(reference.density(lam), rel=1e-3)


@pytest.mark.parametrize("sigma_b2", [0.0, 0.05])
def test_relu_gaussian_depth_one_is_marchenko_pastur_with_its_soft_lower_edge(sigma_b2):
    """ReLU, Gaussian weights, depth 1: ``J J^T`` has the law of ``W^T P W`` with ``P`` a projection on half the
    units, i.e. an atom 1/2 at 0 and half a Marchenko-Pastur law of ratio 1/2 scaled by ``sigma_w2``: edges
    ``sigma_w2 (1 -+ 1/sqrt 2)^2``. Its soft lower edge is real (``D^2`` is atomic: no continuous range to reject it
    from)."""
    sw2 = 2.0
    spec = jacobian_spectrum("relu", sw2, sigma_b2, depth=1, weights="gaussian")
    a, b = sw2 * (1 - 2**-0.5) ** 2, sw2 * (1 + 2**-0.5) ** 2
    assert spec.support[0] == pytest.approx(a, rel=1e-9)
    assert spec.support[1] == pytest.approx(b, rel=1e-9)
    assert spec.tail_mass == 0.0
    lam = spec.lam[(spec.lam > a * 1.01) & (spec.lam < b * 0.99)]
    t = lam / sw2
    exact = 0.5 * np.sqrt((b / sw2 - t) * (t - a / sw2)) / (2 * np.pi * 0.5 * t) / sw2
    got = np.interp(lam, spec.lam, spec.density)
    np.testing.assert_allclose(got, exact, rtol=1e-6)


def _grid_mean(spectrum) -> float:
    ok = np.isfinite(spectrum.density)
    lam, rho = spectrum.lam[ok], spectrum.density[ok]
    return float(np.sum(0.5 * (rho[1:] * lam[1:] ** 2 + rho[:-1] * lam[:-1] ** 2) * np.diff(np.log(lam))))


def test_elu_orthogonal_depth_30_ends_in_a_tail_with_the_exact_mean():
    """ELU, orthogonal, depth 30 hung once the law of D^2 was resolved up to the axis (the subordination point runs
    along the real axis inside the continuous range); it now stops there as a tail, and the grid carries the mean of
    the exact moment series to 1e-6 (the tail lies at lam < 1e-30)."""
    sw2 = float(meanfield.critical_sigma_w2("elu", 0.05)[0])
    spectrum = jacobian_spectrum("elu", sw2, 0.05, depth=30, weights="orthogonal")
    assert spectrum.support[0] == 0.0 and 0.0 < spectrum.tail_mass < 1e-3
    exact = float(jacobian_moments("elu", sw2, 0.05, depth=30, weights="orthogonal", k=1)[0])
    assert _grid_mean(spectrum) == pytest.approx(exact, rel=1e-6)


def test_a_tail_down_to_the_float64_floor_keeps_the_mean():
    """gelu at sigma_b2 = 0.5 (q* = 22), Gaussian, depth 1: D^2 has mass like x^(1/44) near 0 (phi'^2 ~ exp(-h^2)
    underflows in the far left tail), so the density of J J^T in log lam stays above 3e-10 down to lam = 1e-300. The
    walk once stalled at lam = exp(-371), where F' overflowed (G' ~ G / z beyond 1e308); it now reaches the floor with
    no warning, the tail below it is what the law puts there, and the grid carries the exact mean to 1e-6."""
    sw2 = float(meanfield.critical_sigma_w2("gelu", 0.5)[0])
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        spectrum = jacobian_spectrum("gelu", sw2, 0.5, depth=1, weights="gaussian")
    assert spectrum.lam[0] == pytest.approx(1e-300, rel=1e-9)
    assert np.all(np.isfinite(spectrum.density)) and np.all(spectrum.density >= 0)
    assert spectrum.density[0] > 0  # still mass at the floor: a tail, not an edge
    assert spectrum.tail_mass < 1e-5  # (1.5e-6: mostly the trapezoid error of a grid 0.35 apart in log lam)
    exact = float(jacobian_moments("gelu", sw2, 0.5, depth=1, weights="gaussian", k=1)[0])
    assert _grid_mean(spectrum) == pytest.approx(exact, rel=1e-6)
