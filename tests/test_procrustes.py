"""Procrustes projection of conv kernels (paper 003): Newton-Schulz vs SVD, exactness, idempotence, honest clipping."""

import warnings

import numpy as np
import pytest

from rmt import conv_operator_matrix, conv_singular_values, newton_schulz_polar, procrustes_project
from rmt.procrustes import default_max_iter

# (c_out, c_in, kernel, input) covering tall, wide, square, 1-D, 2-D, 3-D and odd/even input sizes
CASES = [
    (6, 4, (3, 3), (8, 8)),
    (4, 6, (3, 3), (7, 9)),
    (5, 5, (3,), (10,)),
    (3, 3, (3, 3, 3), (4, 4, 5)),
    (8, 8, (1, 1), (6, 6)),
]


def _polar_svd(matrix: np.ndarray) -> np.ndarray:
    u, _, vh = np.linalg.svd(matrix, full_matrices=False)
    return u @ vh


@pytest.mark.parametrize(("c_out", "c_in", "k", "n"), CASES)
@pytest.mark.parametrize("clip", [True, False])
def test_newton_schulz_agrees_with_svd(c_out, c_in, k, n, clip):
    kernel = np.random.default_rng(0).standard_normal((c_out, c_in, *k))
    ns = procrustes_project(kernel, n, target=1.3, clip=clip)
    svd = procrustes_project(kernel, n, target=1.3, method="svd", clip=clip)
    assert ns.converged and ns.iterations > 0 and ns.residual < 1e-12
    assert svd.iterations == 0 and svd.converged
    np.testing.assert_allclose(ns.kernel, svd.kernel, rtol=0, atol=1e-8)
    expected_shape = (c_out, c_in, *(k if clip else n))
    assert ns.kernel.shape == expected_shape


@pytest.mark.parametrize(("c_out", "c_in", "k", "n"), CASES)
def test_full_kernel_is_the_projection_of_the_explicit_operator(c_out, c_in, k, n):
    """clip=False: the operator of the returned kernel is target times the polar factor of the original operator,
    computed independently by an SVD of the explicit (c_out N) x (c_in N) matrix; all singular values equal target."""
    kernel = np.random.default_rng(1).standard_normal((c_out, c_in, *k))
    target = np.sqrt(2.0)
    result = procrustes_project(kernel, n, target=target, clip=False)
    projected = conv_operator_matrix(result.kernel, n)
    np.testing.assert_allclose(projected, target * _polar_svd(conv_operator_matrix(kernel, n)), rtol=0, atol=1e-10)
    np.testing.assert_allclose(result.singular_values, target, rtol=0, atol=1e-10)
    assert result.deviation < 1e-10 and result.target == target


@pytest.mark.parametrize(("c_out", "c_in", "k", "n"), CASES)
def test_projecting_twice_changes_nothing(c_out, c_in, k, n):
    kernel = np.random.default_rng(2).standard_normal((c_out, c_in, *k))
    once = procrustes_project(kernel, n, target=0.9, clip=False)
    twice = procrustes_project(once.kernel, n, target=0.9, clip=False)
    np.testing.assert_allclose(twice.kernel, once.kernel, rtol=0, atol=1e-12)


@pytest.mark.parametrize(("c_out", "c_in", "k", "n"), CASES)
def test_clipped_report_is_honest(c_out, c_in, k, n):
    """The reported singular values of the clipped kernel equal an independent SVD of its explicit operator."""
    kernel = np.random.default_rng(3).standard_normal((c_out, c_in, *k))
    result = procrustes_project(kernel, n, target=1.0, clip=True)
    dense = np.sort(np.linalg.svd(conv_operator_matrix(result.kernel, n), compute_uv=False))
    r = result.singular_values.size
    np.testing.assert_allclose(np.sort(result.singular_values.ravel()), dense[-r:], rtol=0, atol=1e-10)
    np.testing.assert_allclose(result.deviation, np.max(np.abs(dense[-r:] - 1.0)), rtol=1e-10, atol=1e-12)
    if all(kk == 1 for kk in k):  # 1 x 1 kernels: clipping is exact and idempotent
        assert result.deviation < 1e-12
        again = procrustes_project(result.kernel, n, clip=True)
        np.testing.assert_allclose(again.kernel, result.kernel, rtol=0, atol=1e-12)
    else:  # random 3 x 3 kernels: the full projection needs all n taps, the clipped one is visibly off
        assert result.deviation > 0.05


def test_one_by_one_kernel_closed_form():
    """1 x 1: the symbol is the constant matrix A, so the projection is target * polar(A) at the single tap."""
    a = np.random.default_rng(4).standard_normal((6, 3))
    result = procrustes_project(a[:, :, None, None], (5, 5), target=2.0)
    np.testing.assert_allclose(result.kernel[:, :, 0, 0], 2.0 * _polar_svd(a), rtol=0, atol=1e-13)


def test_orthogonal_kernel_is_a_fixed_point():
    from rmt import orthogonal_conv_kernel

    kernel = orthogonal_conv_kernel(6, 4, 3, gain=1.5, rng=0)
    result = procrustes_project(kernel, 9, target=1.5)
    np.testing.assert_allclose(result.kernel, kernel, rtol=0, atol=1e-12)
    assert result.deviation < 1e-12


def test_newton_schulz_ill_conditioned_and_rank_deficient():
    rng = np.random.default_rng(5)
    u, _ = np.linalg.qr(rng.standard_normal((6, 6)))
    v, _ = np.linalg.qr(rng.standard_normal((4, 4)))

    def matrix(s):
        return (u[:, :4] * np.asarray(s)) @ v.T

    x, iterations, converged, residual = newton_schulz_polar(matrix([1e3, 1.0, 1e-1, 1e-3]))  # condition 1e6
    assert converged and residual < 1e-12
    np.testing.assert_allclose(x, u[:, :4] @ v.T, rtol=0, atol=1e-10)
    assert 30 < iterations < default_max_iter(np.float64)  # about log(1e6) / log(1.5) + a few quadratic steps
    # condition 1e9: below sqrt(eps), so numerically singular by default, resolved with more iterations
    assert not newton_schulz_polar(matrix([1e3, 1.0, 1e-3, 1e-6]))[2]
    x, _, converged, _ = newton_schulz_polar(matrix([1e3, 1.0, 1e-3, 1e-6]), max_iter=100)
    assert converged  # the polar factor itself is only determined to about eps * cond = 1e-7 here
    np.testing.assert_allclose(x, u[:, :4] @ v.T, rtol=0, atol=1e-6)
    x, iterations, converged, residual = newton_schulz_polar(matrix([1.0, 1.0, 1.0, 0.0]))  # zero up to rounding
    assert not converged and iterations == default_max_iter(np.float64) and residual > 0.5
    # a batch with a matrix that is zero up to rounding: one common scale keeps it at zero instead of projecting noise
    batch = np.stack([matrix([2.0, 1.0, 1.0, 1.0]), 1e-17 * rng.standard_normal((6, 4))])
    assert not newton_schulz_polar(batch)[2]


def test_non_convergence_warns():
    """A 1-D kernel whose taps sum to zero has a zero matrix at frequency 0: the projection is not defined there."""
    kernel = np.random.default_rng(6).standard_normal((3, 3, 3))
    kernel[:, :, 2] = -kernel[:, :, 0] - kernel[:, :, 1]
    with pytest.warns(RuntimeWarning, match="did not converge"):
        result = procrustes_project(kernel, 8, clip=False)
    assert not result.converged
    with pytest.warns(RuntimeWarning, match="did not converge"):
        procrustes_project(np.random.default_rng(7).standard_normal((3, 3, 3)), 8, max_iter=2)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        procrustes_project(kernel, 8, method="svd")  # SVD picks some completion, no warning


def test_float32_kernel_stays_float32():
    kernel = np.random.default_rng(8).standard_normal((8, 8, 3, 3))
    r32 = procrustes_project(kernel.astype(np.float32), 8, clip=False)
    r64 = procrustes_project(kernel, 8, clip=False)
    assert r32.kernel.dtype == np.float32 and r32.converged
    np.testing.assert_allclose(r32.kernel, r64.kernel, rtol=0, atol=1e-5)
    np.testing.assert_allclose(conv_singular_values(r32.kernel, 8), 1.0, atol=1e-5)


@pytest.mark.parametrize(
    ("kwargs", "match"),
    [
        ({"input_shape": (2, 2)}, "at least the kernel size"),
        ({"input_shape": (8,)}, "input_shape must have 2"),
        ({"input_shape": 8, "target": 0.0}, "target"),
        ({"input_shape": 8, "method": "qr"}, "method"),
        ({"input_shape": 8, "max_iter": 0}, "max_iter"),
    ],
)
def test_bad_input(kwargs, match):
    kernel = np.ones((2, 2, 3, 3))
    with pytest.raises(ValueError, match=match):
        procrustes_project(kernel, **kwargs)
