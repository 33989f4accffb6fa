"""The Gaussian quadrature engine against closed forms and the independent scipy reference."""

import math

import numpy as np
import pytest
import reference as ref

from meanfield import gaussian_kernel, gaussian_nodes, get_activation, hermite_coefficients
from meanfield.gaussian import _kernel_quadrature


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
    numeric = _kernel_quadrature(act.phi, act.phi, act.kinks, q1, q2, q12)
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
