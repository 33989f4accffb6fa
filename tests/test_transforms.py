"""Building blocks of the Jacobian-spectrum theory, each against an independent computation (quad, closed forms)."""

import math

import numpy as np
import pytest
from scipy import integrate

from rmt import (
    d2_law,
    d2_moment_generating,
    d2_moments,
    d2_s_transform,
    d2_stieltjes,
    marchenko_pastur_density,
    marchenko_pastur_edges,
    weight_moment_generating,
    weight_s_transform,
    weight_stieltjes,
)


def _gauss_expect(f, q):
    """E[f(h)], h ~ N(0, q), by adaptive quadrature (independent of the core's rule)."""
    s = math.sqrt(q)
    val, _ = integrate.quad(lambda x: f(s * x) * math.exp(-0.5 * x * x) / math.sqrt(2 * math.pi), -40, 40,
                            limit=400, epsabs=1e-15, epsrel=1e-13, points=[0.0])
    return val


@pytest.mark.parametrize("ratio", [0.25, 1.0, 3.0])
@pytest.mark.parametrize("sigma_w2", [0.5, 2.0])
def test_marchenko_pastur_mass_and_mean(ratio, sigma_w2):
    a, b = marchenko_pastur_edges(ratio, sigma_w2)
    assert a == pytest.approx(sigma_w2 * (1 - math.sqrt(ratio)) ** 2)
    mass, _ = integrate.quad(lambda x: marchenko_pastur_density(x, ratio, sigma_w2), a, b, limit=200)
    mean, _ = integrate.quad(lambda x: x * marchenko_pastur_density(x, ratio, sigma_w2), a, b, limit=200)
    atom = max(0.0, 1 - 1 / ratio)
    assert mass == pytest.approx(1 - atom, abs=1e-7)
    # the mean of X^T X (M x M, entries var sigma_w2/N) is sigma_w2, whatever the ratio
    assert mean == pytest.approx(sigma_w2, rel=1e-7)


def test_marchenko_pastur_matches_sampled_matrix():
    rng = np.random.default_rng(0)
    n, m = 1000, 500
    x = rng.standard_normal((n, m)) * math.sqrt(1.5 / n)
    eig = np.linalg.eigvalsh(x.T @ x)
    a, b = marchenko_pastur_edges(m / n, 1.5)
    assert eig.min() > a * 0.9 and eig.max() < b * 1.02
    grid = np.linspace(a, b, 4001)
    cdf = integrate.cumulative_trapezoid(marchenko_pastur_density(grid, m / n, 1.5), grid, initial=0)
    emp = np.searchsorted(np.sort(eig), grid) / m
    assert np.max(np.abs(emp - cdf)) < 0.01


@pytest.mark.parametrize("ratio", [0.5, 1.0, 2.0])
def test_gaussian_stieltjes_is_the_transform_of_the_density(ratio):
    sigma_w2 = 1.3
    a, b = marchenko_pastur_edges(ratio, sigma_w2)
    atom = max(0.0, 1 - 1 / ratio)
    for z in [3.0 + 1.0j, -0.5 + 0.2j, 1.0 + 0.01j, 10.0 - 2.0j]:
        re, _ = integrate.quad(lambda t, z=z: (marchenko_pastur_density(t, ratio, sigma_w2) / (z - t)).real, a, b,
                               limit=400)
        im, _ = integrate.quad(lambda t, z=z: (marchenko_pastur_density(t, ratio, sigma_w2) / (z - t)).imag, a, b,
                               limit=400)
        expected = re + 1j * im + atom / z
        assert weight_stieltjes(z, "gaussian", sigma_w2, ratio) == pytest.approx(expected, rel=1e-6, abs=1e-8)
    # Stieltjes inversion recovers the density
    x = np.linspace(a, b, 9)[1:-1]
    rho = -weight_stieltjes(x + 1e-12j, "gaussian", sigma_w2, ratio).imag / np.pi
    np.testing.assert_allclose(rho, marchenko_pastur_density(x, ratio, sigma_w2), rtol=1e-8)


@pytest.mark.parametrize("weights,ratio", [("gaussian", 0.5), ("gaussian", 1.0), ("gaussian", 2.0),
                                           ("orthogonal", 1.0)])
def test_weight_s_transform_inverts_the_moment_generating_function(weights, ratio):
    z = np.array([5.0 + 0.5j, 8.0 - 1.0j, -3.0 + 2.0j, 20.0 + 0.0j])
    m = weight_moment_generating(z, weights, 1.7, ratio)
    np.testing.assert_allclose(weight_s_transform(m, weights, 1.7, ratio), (1 + m) / (m * z), rtol=1e-12)


def test_weight_moment_generating_series():
    # M(z) = sum_k m_k / z^k; MP (ratio y, variance s): Narayana moments s^k sum_j N(k, j) y^(j-1)
    z, y = 1e3, 0.5
    m = weight_moment_generating(z, "gaussian", 2.0, y).real
    moments = [2.0, 4.0 * (1 + y), 8.0 * (1 + 3 * y + y**2), 16.0 * (1 + 6 * y + 6 * y**2 + y**3)]
    assert m == pytest.approx(sum(mk / z ** (k + 1) for k, mk in enumerate(moments)), rel=1e-10)
    assert weight_moment_generating(z, "orthogonal", 2.0).real == pytest.approx(2.0 / (z - 2.0), rel=1e-14)


def test_weight_transforms_reject_bad_arguments():
    with pytest.raises(ValueError, match="weights"):
        weight_s_transform(0.1, "uniform", 1.0)
    with pytest.raises(ValueError, match="ratio"):
        weight_stieltjes(1j, "orthogonal", 1.0, ratio=2.0)
    with pytest.raises(ValueError, match="sigma_w2"):
        marchenko_pastur_edges(1.0, -1.0)
    with pytest.raises(ValueError, match="q"):
        d2_law("tanh", -1.0)


@pytest.mark.parametrize("q", [0.05, 0.57, 3.0])
def test_d2_moments_against_adaptive_quadrature(q):
    mu = d2_moments("tanh", q, k=4)
    for k in range(1, 5):
        expected = _gauss_expect(lambda h, k=k: (1 - math.tanh(h) ** 2) ** (2 * k), q)
        assert mu[k - 1] == pytest.approx(expected, rel=1e-11)


@pytest.mark.parametrize("z,rtol", [(1.5 + 0.0j, 1e-11), (0.5 + 0.5j, 1e-9), (-0.3 + 0.2j, 1e-11),
                                    (0.9 + 0.3j, 1e-6), (0.5 + 0.1j, 1e-2)])
def test_d2_transforms_against_adaptive_quadrature(z, rtol):
    # a sum over quadrature atoms is a faithful transform until z comes as close to the range of phi'^2 as the
    # atoms are spaced: full accuracy off the axis, degrading near it (the spectrum solver stops there)
    q = 0.57

    def integrand(h):
        d = (1 - math.tanh(h) ** 2) ** 2
        return d / (z - d)

    expected = _gauss_expect(lambda h: integrand(h).real, q) + 1j * _gauss_expect(lambda h: integrand(h).imag, q)
    assert d2_moment_generating(z, "tanh", q) == pytest.approx(expected, rel=rtol)
    assert z * d2_stieltjes(z, "tanh", q) - 1 == pytest.approx(expected, rel=rtol)


def test_d2_law_of_relu_and_linear():
    law = d2_law("relu", 1.3)
    assert law.zero_mass == pytest.approx(0.5, abs=1e-14)
    z = np.array([2.0 + 0.5j, -1.0 + 1.0j])
    np.testing.assert_allclose(d2_moment_generating(z, law), 0.5 / (z - 1), rtol=1e-13)
    assert d2_law("linear", 0.7).is_point_mass()
    # q = 0 is the limit of small q: phi'(0-)^2 and phi'(0+)^2 with probability 1/2
    assert d2_law("relu", 0.0).zero_mass == 0.5
    assert d2_law("linear", 0.0).is_point_mass()


def test_d2_s_transform_closed_forms_and_round_trip():
    # ReLU: M = (1/2)/(z - 1)  ->  S(m) = 2 (1 + m) / (1 + 2 m)
    m = np.array([-0.2 - 0.1j, 0.3 - 0.05j, 0.05 + 0.0j])
    np.testing.assert_allclose(d2_s_transform(m, "relu", 1.0), 2 * (1 + m) / (1 + 2 * m), rtol=1e-11)
    # linear: S = 1
    np.testing.assert_allclose(d2_s_transform(m, "linear", 1.0), 1.0, rtol=1e-12)
    # tanh: S(M(z)) = (1 + m) / (m z) on the principal branch (z large)
    z = np.array([3.0 + 0.5j, 5.0 - 1.0j, 2.0 + 0.0j])
    mz = d2_moment_generating(z, "tanh", 0.57)
    np.testing.assert_allclose(d2_s_transform(mz, "tanh", 0.57), (1 + mz) / (mz * z), rtol=1e-10)


def test_d2_s_transform_series():
    # S(m) = 1/mu_1 + (mu_1^2 - mu_2)/mu_1^3 m + O(m^2)
    mu1, mu2 = d2_moments("tanh", 0.8, k=2)
    m = 1e-5
    s = d2_s_transform(m, "tanh", 0.8).real
    assert s == pytest.approx(1 / mu1 + (mu1**2 - mu2) / mu1**3 * m, rel=1e-9)
