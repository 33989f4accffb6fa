"""Haar matrices, orthogonal conv kernels (paper 002 Algorithm 1) and Delta-Orthogonal kernels."""

import numpy as np
import pytest
from scipy import stats

from rmt import (
    conv_operator_matrix,
    conv_singular_values,
    delta_orthogonal_kernel,
    haar_orthogonal,
    orthogonal_conv_kernel,
)

torch = pytest.importorskip("torch")
F = torch.nn.functional


# ----------------------------------------------------------------------------------------------------- Haar matrices
@pytest.mark.parametrize(("rows", "cols"), [(5, 3), (3, 5), (4, 4), (1, 1)])
def test_haar_is_semi_orthogonal(rows, cols):
    q = haar_orthogonal(rows, cols, rng=0)
    assert q.shape == (rows, cols)
    small = q.T @ q if rows >= cols else q @ q.T
    np.testing.assert_allclose(small, np.eye(min(rows, cols)), rtol=0, atol=1e-14)


def _so_even_angle_cdf(theta: np.ndarray, half: int) -> np.ndarray:
    """CDF of one eigenangle in [0, pi] of Haar SO(2 half) (Weyl; Chebyshev kernel):
    density (1/pi) [half - 1/2 + sin((2 half - 1) t) / (2 sin t)] / half."""
    k = np.arange(1, half)
    return (half * theta + 0.5 * np.sum(np.sin(2 * np.outer(theta, k)) / k, axis=1)) / (half * np.pi)


def _so_angles(sampler, count: int, rng: np.random.Generator) -> np.ndarray:
    """Eigenangles in (0, pi) of samples mapped to SO(d) by flipping one column when det = -1 (Haar O -> Haar SO)."""
    out = []
    while len(out) < count:
        q = sampler(rng)
        if np.linalg.det(q) < 0:
            q[:, 0] *= -1
        ev = np.linalg.eigvals(q)
        out.extend(np.angle(ev[ev.imag > 0]))
    return np.array(out)


def test_haar_eigenangle_distribution_ks():
    """Eigenangles of 4 x 4 samples follow the exact SO(4) law (far from uniform at this size); QR without the sign
    fix fails the same test, so the test has power."""
    rng = np.random.default_rng(20261123)
    angles = _so_angles(lambda r: haar_orthogonal(4, 4, r), 4000, rng)
    assert stats.kstest(angles, lambda t: _so_even_angle_cdf(t, 2)).pvalue > 0.01
    naive = _so_angles(lambda r: np.linalg.qr(r.standard_normal((4, 4)))[0], 4000, rng)
    assert stats.kstest(naive, lambda t: _so_even_angle_cdf(t, 2)).pvalue < 1e-5
    # and the exact law is needed: a uniform law is rejected for the Haar samples
    assert stats.kstest(angles, stats.uniform(0, np.pi).cdf).pvalue < 1e-5


def test_haar_entries_and_determinant():
    """Each entry q of a Haar n x n matrix has q^2 ~ Beta(1/2, (n-1)/2) and a symmetric sign; det = +-1 evenly."""
    rng = np.random.default_rng(5)
    n, count = 6, 3000
    samples = np.array([haar_orthogonal(n, n, rng) for _ in range(count)])
    for i, j in [(0, 0), (2, 3), (5, 5)]:
        q = samples[:, i, j]
        assert stats.kstest(q**2, stats.beta(0.5, (n - 1) / 2).cdf).pvalue > 0.01
        assert stats.binomtest(int(np.sum(q > 0)), count).pvalue > 0.01
    dets = np.linalg.det(samples)
    np.testing.assert_allclose(np.abs(dets), 1.0, atol=1e-12)
    assert stats.binomtest(int(np.sum(dets > 0)), count).pvalue > 0.01


def test_haar_seeding():
    np.testing.assert_array_equal(haar_orthogonal(4, 3, rng=3), haar_orthogonal(4, 3, rng=np.random.default_rng(3)))
    assert not np.allclose(haar_orthogonal(4, 3, rng=3), haar_orthogonal(4, 3, rng=4))


# ------------------------------------------------------------------------------------- orthogonal conv kernels
ORTHO_CASES = [
    (5, 3, 3, 1),
    (4, 4, 5, 1),
    (6, 6, 3, 2),
    (6, 2, (3, 5), 2),
    (4, 4, 2, 2),  # even kernel: still orthogonal (torch needs odd k for same-size circular padding)
    (3, 3, 3, 3),
    (4, 4, 1, 2),
]


@pytest.mark.parametrize(("c_out", "c_in", "k", "ndim"), ORTHO_CASES)
@pytest.mark.parametrize("gain", [1.0, 1.7])
def test_orthogonal_conv_kernel_singular_values(c_out, c_in, k, ndim, gain):
    kernel = orthogonal_conv_kernel(c_out, c_in, k, ndim=ndim, gain=gain, rng=42)
    kk = (k,) * ndim if isinstance(k, int) else k
    assert kernel.shape == (c_out, c_in, *kk)
    for n in {max(kk), max(kk) + 1, 7, 10}:
        sv = conv_singular_values(kernel, n)
        np.testing.assert_allclose(sv, gain, rtol=0, atol=1e-10)
    # identity: sum_d T_d^T T_d = gain^2 I, so the squared weights sum to gain^2 c_in
    np.testing.assert_allclose(np.sum(kernel**2), gain**2 * c_in, rtol=1e-12)


@pytest.mark.parametrize(("ndim", "n"), [(1, (5,)), (1, (9,)), (2, (4, 6)), (2, (5, 5))])
def test_orthogonal_conv_kernel_explicit_operator_is_isometry(ndim, n):
    """Independent of the FFT: the explicit operator matrix O has O^T O = gain^2 I."""
    kernel = orthogonal_conv_kernel(5, 3, 3, ndim=ndim, gain=0.8, rng=9)
    matrix = conv_operator_matrix(kernel, n)
    np.testing.assert_allclose(matrix.T @ matrix, 0.64 * np.eye(matrix.shape[1]), rtol=0, atol=1e-12)


def test_orthogonal_conv_kernel_spreads_over_taps():
    """Algorithm 1 is not a delta: with many channels every tap carries weight; seeds give different kernels."""
    kernel = orthogonal_conv_kernel(32, 32, 3, ndim=2, rng=1)
    energy = np.sum(kernel**2, axis=(0, 1))
    assert np.all(energy > 0.01 * energy.sum())
    np.testing.assert_array_equal(kernel, orthogonal_conv_kernel(32, 32, 3, ndim=2, rng=1))
    assert not np.allclose(kernel, orthogonal_conv_kernel(32, 32, 3, ndim=2, rng=2))


@pytest.mark.parametrize("ndim", [1, 2, 3])
@pytest.mark.parametrize("builder", [orthogonal_conv_kernel, delta_orthogonal_kernel])
def test_torch_circular_conv_preserves_norm(builder, ndim):
    gain = 1.3
    kernel = builder(6, 4, 3, ndim=ndim, gain=gain, rng=0)
    x = torch.randn(8, 4, *(7,) * ndim, generator=torch.Generator().manual_seed(0), dtype=torch.float64)
    conv = {1: F.conv1d, 2: F.conv2d, 3: F.conv3d}[ndim]
    y = conv(F.pad(x, [1, 1] * ndim, mode="circular"), torch.from_numpy(kernel))
    ratio = y.flatten(1).norm(dim=1) / x.flatten(1).norm(dim=1)
    np.testing.assert_allclose(ratio.numpy(), gain, rtol=1e-12)


# ---------------------------------------------------------------------------------------------- Delta-Orthogonal
@pytest.mark.parametrize(("c_out", "c_in", "k", "ndim"), [(4, 4, 3, 2), (6, 3, 5, 1), (3, 5, (3, 1, 5), 3)])
def test_delta_orthogonal_kernel(c_out, c_in, k, ndim):
    kernel = delta_orthogonal_kernel(c_out, c_in, k, ndim=ndim, gain=2.0, rng=3)
    kk = (k,) * ndim if isinstance(k, int) else k
    centre = (slice(None), slice(None), *(x // 2 for x in kk))
    rest = kernel.copy()
    rest[centre] = 0
    assert np.all(rest == 0)
    for n in (max(kk), 8):
        np.testing.assert_allclose(conv_singular_values(kernel, n), 2.0, rtol=0, atol=1e-12)
    small = kernel[centre].T @ kernel[centre] if c_out >= c_in else kernel[centre] @ kernel[centre].T
    np.testing.assert_allclose(small, 4.0 * np.eye(min(c_out, c_in)), atol=1e-12)


# --------------------------------------------------------------------------------------------------- bad input
@pytest.mark.parametrize(
    ("call", "match"),
    [
        (lambda: orthogonal_conv_kernel(3, 4, 3), "c_in <= c_out"),
        (lambda: orthogonal_conv_kernel(4, 4, 3, ndim=4), "ndim"),
        (lambda: orthogonal_conv_kernel(4, 4, (3, 3, 3), ndim=2), "kernel_size must have 2"),
        (lambda: orthogonal_conv_kernel(4, 4, 0), "kernel_size entries must be >= 1"),
        (lambda: orthogonal_conv_kernel(4, 4, 3, gain=0.0), "gain"),
        (lambda: orthogonal_conv_kernel(0, 4, 3), "c_out"),
        (lambda: delta_orthogonal_kernel(4, 4, 4), "odd kernel sizes"),
        (lambda: delta_orthogonal_kernel(4, 4, (3, 2)), "odd kernel sizes"),
        (lambda: delta_orthogonal_kernel(4, 4, 3, ndim=0), "ndim"),
        (lambda: delta_orthogonal_kernel(4, 4, 3, gain=-1), "gain"),
        (lambda: haar_orthogonal(0, 3), "rows"),
        (lambda: haar_orthogonal(3, 2.5), "cols"),
    ],
)
def test_bad_input(call, match):
    with pytest.raises(ValueError, match=match):
        call()
