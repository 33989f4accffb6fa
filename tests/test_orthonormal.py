"""Paper 000's orthonormal init, regulariser (Eq. 3) with gradient, and filter correlation."""

import numpy as np
import pytest

from rmt import filter_correlation, orthonormal_kernel, orthonormal_penalty


@pytest.mark.parametrize(("c_out", "c_in", "k"), [(8, 4, (3, 3)), (5, 5, ()), (16, 16, (1, 1)), (6, 2, (3,))])
def test_orthonormal_kernel_full_rank(c_out, c_in, k):
    """f_in >= f_out: all filters orthonormal (rows of the (c_out, f_in) reshape)."""
    w = orthonormal_kernel(c_out, c_in, k, rng=0)
    assert w.shape == (c_out, c_in, *k)
    m = w.reshape(c_out, -1)
    np.testing.assert_allclose(m @ m.T, np.eye(c_out), rtol=0, atol=1e-13)


@pytest.mark.parametrize(("c_out", "c_in", "k"), [(10, 1, (2, 2)), (9, 3, ()), (64, 3, (3, 3)), (7, 7, ())])
def test_orthonormal_kernel_groupwise(c_out, c_in, k):
    """f_in < f_out: consecutive groups of f_in filters (last one f_out mod f_in) orthonormal within the group."""
    w = orthonormal_kernel(c_out, c_in, k, rng=1)
    m = w.reshape(c_out, -1)
    f_in = m.shape[1]
    np.testing.assert_allclose(np.linalg.norm(m, axis=1), 1.0, atol=1e-13)
    starts = list(range(0, c_out, f_in))
    assert len(starts) == -(-c_out // f_in)
    for s in starts:
        g = m[s : s + f_in]
        np.testing.assert_allclose(g @ g.T, np.eye(len(g)), rtol=0, atol=1e-13)
    if len(starts) > 1:  # different groups are independent, hence not orthogonal
        assert np.max(np.abs(m[:f_in] @ m[f_in : 2 * f_in].T)) > 1e-3


def test_orthonormal_kernel_int_kernel_size_and_seed():
    assert orthonormal_kernel(4, 2, 3, rng=0).shape == (4, 2, 3, 3)
    np.testing.assert_array_equal(orthonormal_kernel(4, 2, 3, rng=5), orthonormal_kernel(4, 2, 3, rng=5))


def _penalty_direct(weights, lam):
    """Paper 000 Eq. 3 literally: W_l in R^{f_in x f_out} (filters as columns), lam/2 sum ||W^T W - I||_F^2."""
    total = 0.0
    for w in weights:
        wl = w.reshape(w.shape[0], -1).T
        total += 0.5 * lam * np.linalg.norm(wl.T @ wl - np.eye(wl.shape[1]), "fro") ** 2
    return total


def test_penalty_value_and_gradient_finite_differences():
    rng = np.random.default_rng(2)
    shapes, scales = [(4, 3, 3, 3), (5, 4), (6, 2, 5)], [0.3, 0.5, 1.0]
    weights = [s * rng.standard_normal(shape) for shape, s in zip(shapes, scales, strict=True)]
    lam = 0.7
    value, grads = orthonormal_penalty(weights, lam=lam)
    np.testing.assert_allclose(value, _penalty_direct(weights, lam), rtol=1e-13)
    assert [g.shape for g in grads] == [w.shape for w in weights]
    h = 1e-6
    for li, w in enumerate(weights):
        for idx in [tuple(rng.integers(0, s) for s in w.shape) for _ in range(6)]:
            plus = [x.copy() for x in weights]
            minus = [x.copy() for x in weights]
            plus[li][idx] += h
            minus[li][idx] -= h
            fd = (_penalty_direct(plus, lam) - _penalty_direct(minus, lam)) / (2 * h)
            np.testing.assert_allclose(grads[li][idx], fd, rtol=1e-6, atol=1e-8)


def test_penalty_zero_at_orthonormal_and_single_array():
    w = orthonormal_kernel(6, 4, (3, 3), rng=3)
    value, grad = orthonormal_penalty(w, lam=2.0)
    assert isinstance(grad, np.ndarray) and grad.shape == w.shape
    assert value < 1e-25 and np.max(np.abs(grad)) < 1e-12
    # a scaled orthonormal kernel: M M^T = s^2 I, penalty lam/2 * f_out (s^2 - 1)^2, gradient 2 lam (s^2 - 1) s M
    value, grad = orthonormal_penalty(1.5 * w, lam=2.0)
    np.testing.assert_allclose(value, 6 * 1.25**2, rtol=1e-12)
    np.testing.assert_allclose(grad, 2 * 2.0 * 1.25 * 1.5 * w, rtol=1e-12, atol=1e-14)


def test_filter_correlation_closed_forms():
    assert filter_correlation(orthonormal_kernel(8, 4, (3, 3), rng=0)) < 1e-13
    same = np.tile(np.arange(1.0, 5.0), (3, 1))
    np.testing.assert_allclose(filter_correlation(same), 1.0)
    # two filters at 60 degrees, one layer with three filters at cos 0, 0, -1: mean over the 1 + 3 pairs
    two = np.array([[1.0, 0.0], [0.5, np.sqrt(3) / 2]])
    three = np.array([[1.0, 0.0, 0.0], [0.0, 2.0, 0.0], [-3.0, 0.0, 0.0]])
    np.testing.assert_allclose(filter_correlation(two), 0.5)
    np.testing.assert_allclose(filter_correlation([two, three]), (0.5 + 0 + 1 + 0) / 4)


def test_filter_correlation_random_gaussian_filters():
    """Independent Gaussian filters in f dimensions: E|cos| = Gamma(f/2) / (sqrt(pi) Gamma((f+1)/2))."""
    from scipy.special import gammaln

    f = 50
    expected = np.exp(gammaln(f / 2) - gammaln((f + 1) / 2)) / np.sqrt(np.pi)
    w = np.random.default_rng(4).standard_normal((200, f))
    np.testing.assert_allclose(filter_correlation(w), expected, rtol=0.03)


@pytest.mark.parametrize(
    ("call", "error", "match"),
    [
        (lambda: orthonormal_kernel(0, 3), ValueError, "c_out"),
        (lambda: orthonormal_kernel(3, 3, (3, 0)), ValueError, "kernel_size"),
        (lambda: orthonormal_penalty(np.ones(3)), ValueError, "shape"),
        (lambda: orthonormal_penalty(np.ones((3, 3)), lam=-1), ValueError, "lam"),
        (lambda: orthonormal_penalty([]), TypeError, "non-empty"),
        (lambda: orthonormal_penalty(np.ones((2, 2), dtype=int)), TypeError, "floating"),
        (lambda: filter_correlation(np.ones((1, 4))), ValueError, "two or more filters"),
        (lambda: filter_correlation(np.zeros((3, 4))), ValueError, "all-zero filter"),
    ],
)
def test_bad_input(call, error, match):
    with pytest.raises(error, match=match):
        call()
