"""The Gaussian quadrature engine against closed forms and the independent scipy reference."""

import math

import numpy as np
import pytest
import reference as ref

from meanfield import gaussian_expectation, gaussian_kernel, gaussian_nodes, get_activation, hermite_coefficients
from meanfield.kernel_quadrature import KERNEL_MAX_NODES, kernel_quadrature
from meanfield.mehler import MehlerKernel


@pytest.mark.parametrize("q", [0.0, 1e-6, 0.3, 2.7, 7.0, 50.0, 1e4])
def test_nodes_moments_and_kinks(q):
    h, w = gaussian_nodes(q, kinks=(0.0,))
    assert np.sum(w) == pytest.approx(1.0, rel=1e-14)
    assert np.sum(w * h * h) == pytest.approx(q, rel=1e-13, abs=1e-300)
    assert np.sum(w * np.maximum(h, 0.0)) == pytest.approx(math.sqrt(q / (2 * math.pi)), rel=1e-13, abs=1e-300)


@pytest.mark.parametrize("q", [0.05, 1.0, 2.72, 7.0, 30.0])
def test_tanh_expectations_against_adaptive_quadrature(q):
    h, w = gaussian_nodes(q)
    expected = ref.expect(lambda x: (1 - math.tanh(x) ** 2) ** 2, q)
    assert np.sum(w * (1 - np.tanh(h) ** 2) ** 2) == pytest.approx(expected, rel=1e-12)


def test_hermite_parseval_and_mehler():
    q = 2.0
    a = hermite_coefficients("tanh", q, 400)
    h, w = gaussian_nodes(q)
    assert np.sum(a**2) == pytest.approx(np.sum(w * np.tanh(h) ** 2), rel=1e-13)
    c = 0.6
    series = np.sum(a**2 * c ** np.arange(a.size))
    assert series == pytest.approx(ref.two_point(math.tanh, math.tanh, q, c), rel=1e-11)


def _random_covariances(n, seed):
    rng = np.random.default_rng(seed)
    q1, q2 = rng.uniform(0.0, 4.0, n), rng.uniform(0.0, 4.0, n)
    c = rng.uniform(-1.0, 1.0, n)
    c[:4] = [1.0, -1.0, 0.999999, 0.0]
    return q1, q2, c * np.sqrt(q1 * q2)


@pytest.mark.parametrize("name", ["erf", "relu", "leaky_relu(slope=0.3)", "linear"])
def test_quadrature_path_reproduces_closed_forms(name):
    """The 2-D quadrature (used for activations without a closed form) against the arcsine / arc-cosine kernels."""
    act = get_activation(name)
    q1, q2, q12 = _random_covariances(60, 0)
    numeric = kernel_quadrature(act.phi, act.phi, act.kinks, q1, q2, q12)
    closed = gaussian_kernel(act, q1, q2, q12)
    assert np.max(np.abs(numeric - closed)) < 1e-11 * max(1.0, np.max(np.abs(closed)))


def test_closed_forms_against_reference():
    q, c = 1.7, 0.35
    for name in ("erf", "relu"):
        phi = ref.ACTIVATIONS[name][0]
        kinks = ref.ACTIVATIONS[name][3]
        assert gaussian_kernel(name, q, q, c * q) == pytest.approx(ref.two_point(phi, phi, q, c, kinks), rel=1e-11)
    relu = (q / (2 * math.pi)) * (math.sqrt(1 - c * c) + (math.pi - math.acos(c)) * c)
    assert gaussian_kernel("relu", q, q, c * q) == pytest.approx(relu, rel=1e-14)


def test_tanh_kernel_against_reference_and_broadcasting():
    q, c = 2.5, -0.7
    value = gaussian_kernel("tanh", q, q, c * q)
    assert value == pytest.approx(ref.two_point(math.tanh, math.tanh, q, c), rel=1e-11)
    grid = gaussian_kernel("tanh", np.full((2, 3), q), q, c * q)
    assert grid.shape == (2, 3) and np.allclose(grid, value, rtol=1e-14)


def test_kernel_rejects_bad_covariances():
    with pytest.raises(ValueError, match="q1"):
        gaussian_kernel("tanh", -1.0, 1.0, 0.0)
    with pytest.raises(ValueError, match="semi-definite"):
        gaussian_kernel("tanh", 1.0, 1.0, 1.5)
    with pytest.raises(ValueError):
        gaussian_nodes(float("nan"))


def _pairs_near_the_diagonal(variances, n, seed):
    """``n`` pairs over a few ``variances``; correlations uniform in (-1, 1) and within 1e-12 .. 1e-1 of +-1."""
    rng = np.random.default_rng(seed)
    q1, q2 = rng.choice(variances, n), rng.choice(variances, n)
    near_one = 1 - 10 ** rng.uniform(-12, -1, n // 4)
    c = np.concatenate([rng.uniform(-1, 1, n - 2 * near_one.size), near_one, -near_one, [1.0 - 1e-12]])[:n]
    return q1, q2, c * np.sqrt(q1 * q2)


@pytest.mark.parametrize("name", ["tanh", "x*tanh(x)", "0.5*x + sin(x)**2", "sin"])
def test_mehler_path_equals_the_quadrature_path(name):
    """gaussian_kernel's fast path (Mehler series, smooth activations) against its 2-D quadrature, pair by pair."""
    act = get_activation(name)
    q1, q2, q12 = _pairs_near_the_diagonal([0.05, 0.3, 1.0, 2.7, 7.0], 80, 6)
    fast = gaussian_kernel(act, q1, q2, q12)
    slow = kernel_quadrature(act.phi, act.phi, act.kinks, q1, q2, q12)
    scale = np.sqrt(gaussian_kernel(act, q1, q1, q1) * gaussian_kernel(act, q2, q2, q2))
    assert np.max(np.abs(fast - slow) / scale) < 2e-13  # the series' truncation tolerance is 1e-13 of the scale
    # the Mehler sum itself (not its quadrature fallback) settles most pairs, including some with |c| > 0.9
    kernel = MehlerKernel(act)
    second, a, tail = kernel.coefficients(np.unique(np.concatenate([q1, q2])))
    c = np.abs(q12) / np.sqrt(q1 * q2)
    i1, i2 = np.searchsorted(np.unique(q1.tolist() + q2.tolist()), [q1, q2])
    settled = c ** a.shape[1] * np.sqrt(tail[i1] * tail[i2]) <= kernel.TOL * np.sqrt(second[i1] * second[i2])
    assert settled.mean() > 0.5 and np.any(settled & (c > 0.9))


def test_mehler_kernel_against_scipy_reference():
    """Unequal variances through the reference's unit-variance pair: tanh(sqrt(q) u) with u ~ N(0, 1)."""
    kernel = MehlerKernel("tanh")
    for q1, q2, c in [(0.05, 7.0, 0.3), (2.7, 2.7, -0.95), (7.0, 1.0, 0.999)]:
        s1, s2 = math.sqrt(q1), math.sqrt(q2)
        expected = ref.two_point(lambda u, s=s1: math.tanh(s * u), lambda u, s=s2: math.tanh(s * u), 1.0, c)
        assert kernel(q1, q2, c * math.sqrt(q1 * q2)) == pytest.approx(expected, rel=1e-11)


def test_mehler_coefficients_match_hermite_coefficients_and_are_reused():
    for name in ("tanh", "x*tanh(x)", "gelu"):
        act = get_activation(name)
        kernel = MehlerKernel(act)
        variances = np.array([0.0, 0.05, 0.6, 3.0, 7.0])
        second, a, tail = kernel.coefficients(variances)
        reference = np.array([hermite_coefficients(act, q, a.shape[1] - 1) for q in variances])
        np.testing.assert_allclose(a, reference, rtol=0, atol=1e-14)
        np.testing.assert_allclose(second, gaussian_kernel(act, variances, variances, variances), rtol=1e-13)
        assert np.all(tail <= kernel.TOL * second) or a.shape[1] == kernel.K_MAX + 1
        assert kernel.coefficients(variances.copy())[1] is a  # the same set of variances: cached


def test_mehler_kernel_with_kinks_against_closed_form_and_quadrature():
    """Kinked activations (gaussian_kernel sends them to its quadrature) stay correct in the series: relu and hard tanh,
    several variances sharing one rule with the kinks of each as panel boundaries."""
    q1, q2, q12 = _pairs_near_the_diagonal([0.05, 0.7, 3.0], 24, 3)
    relu = MehlerKernel("relu")
    np.testing.assert_allclose(relu(q1, q2, q12), gaussian_kernel("relu", q1, q2, q12), rtol=1e-12, atol=1e-14)
    act = get_activation("hard_tanh")
    slow = kernel_quadrature(act.phi, act.phi, act.kinks, q1, q2, q12)
    np.testing.assert_allclose(MehlerKernel(act)(q1, q2, q12), slow, rtol=1e-12, atol=1e-14)
    second, a, _ = MehlerKernel(act).coefficients(np.array([0.05, 0.7, 3.0]))
    reference = np.array([hermite_coefficients(act, q, a.shape[1] - 1) for q in (0.05, 0.7, 3.0)])
    np.testing.assert_allclose(a, reference, rtol=0, atol=1e-13)


def test_mehler_kernel_validates_like_gaussian_kernel():
    kernel = MehlerKernel("tanh")
    with pytest.raises(ValueError, match="semi-definite"):
        kernel(1.0, 1.0, 1.5)
    with pytest.raises(ValueError, match="q2"):
        kernel(1.0, -1.0, 0.0)
    assert kernel(np.full((2, 3), 1.5), 1.5, 0.3).shape == (2, 3)


def test_kernel_at_huge_variances():
    """Non-oscillatory activations at q ~ 1e8 - 1e10: the graded 2-D rule gives the right number quickly; an
    oscillatory integrand at such variances is a clear error, not an out-of-memory crash."""
    q = 3e10
    second = gaussian_expectation(lambda z: (math.sqrt(q) * z * np.tanh(math.sqrt(q) * z)) ** 2, q, oscillatory=False)
    # V - K(c) = q int_c^1 E[phi' phi'](t) dt ~ q (1 - c) E[phi'^2] ~ 30 against V = q: K = V (1 - 1e-9) roughly
    value = gaussian_kernel("x*tanh(x)", q, q, q * (1 - 1e-9))
    assert 0 < second - value < 1e-8 * second
    # hard tanh at q = 1e8 is a sign function up to O(1/sqrt(q)): E[sign sign] = (2/pi) asin(c)
    assert gaussian_kernel("hard_tanh", 1e8, 1e8, 0.5e8) == pytest.approx(2 / math.pi * math.asin(0.5), rel=1e-3)
    act = get_activation("sin")
    with pytest.raises(FloatingPointError, match="quadrature nodes"):
        kernel_quadrature(act.phi, act.phi, (), np.array([1e8]), np.array([1e8]), np.array([0.5e8]))
    assert KERNEL_MAX_NODES >= 12 * 22 * 10  # the documented range q <= 100 stays open
    # far from the diagonal the Mehler series needs no quadrature, even at a huge q: E[phi(h1) phi(h2)] = E[phi]^2
    q = 1e10
    mean = gaussian_expectation(lambda z: math.sqrt(q) * z * np.tanh(math.sqrt(q) * z), q, oscillatory=False)
    assert gaussian_kernel("x*tanh(x)", q, q, 0.0) == pytest.approx(mean**2, rel=1e-12)
