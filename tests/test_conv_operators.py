"""Periodic conv operators: FFT singular values vs the explicit matrix, the explicit matrix vs torch."""

import numpy as np
import pytest

from rmt import conv_operator_matrix, conv_singular_values, conv_symbol

torch = pytest.importorskip("torch")
F = torch.nn.functional

# (kernel spatial shape, input shape, stride), c_out != c_in throughout
CASES = [
    ((3,), (7,), (1,)),
    ((5,), (12,), (1,)),
    ((3, 3), (6, 6), (1, 1)),
    ((3, 5), (6, 8), (1, 1)),
    ((1, 1), (5, 4), (1, 1)),
    ((3, 3, 3), (4, 5, 3), (1, 1, 1)),
    ((4, 2), (6, 7), (1, 1)),  # even kernel sizes
    ((5,), (3,), (1,)),  # kernel longer than the input: taps wrap around
    ((3, 3), (8, 8), (2, 2)),  # strided
    ((3,), (9,), (3,)),
    ((5, 3), (8, 6), (2, 3)),
]


def _sorted_svd(matrix: np.ndarray) -> np.ndarray:
    return np.sort(np.linalg.svd(matrix, compute_uv=False))


@pytest.mark.parametrize(("c_out", "c_in"), [(4, 3), (2, 5)])
@pytest.mark.parametrize(("k", "n", "s"), CASES)
def test_fft_singular_values_match_explicit_matrix(k, n, s, c_out, c_in):
    rng = np.random.default_rng(hash((k, n, s, c_out)) % 2**32)
    kernel = rng.standard_normal((c_out, c_in, *k))
    sv = conv_singular_values(kernel, n, s)
    out = tuple(ni // si for ni, si in zip(n, s, strict=True))
    assert sv.shape == (*out, min(c_out, c_in * int(np.prod(s))))
    assert np.all(np.diff(sv, axis=-1) <= 0)  # descending per frequency
    dense = _sorted_svd(conv_operator_matrix(kernel, n, s))
    r = sv.size
    assert r <= dense.size
    # the explicit matrix has exactly the FFT singular values plus zeros (when it has more columns than rows etc.)
    np.testing.assert_allclose(np.sort(sv.ravel()), dense[-r:], rtol=0, atol=1e-10)
    assert np.all(np.abs(dense[:-r]) < 1e-10)


TORCH_CASES = [c for c in CASES if all(kk // 2 <= nn for kk, nn in zip(c[0], c[1], strict=True))]  # torch: pad <= n


@pytest.mark.parametrize(("k", "n", "s"), TORCH_CASES)
def test_operator_matrix_equals_torch_circular_conv(k, n, s):
    rng = np.random.default_rng(7)
    c_out, c_in = 3, 2
    kernel = rng.standard_normal((c_out, c_in, *k))
    x = rng.standard_normal((c_in, *n))
    pad = []
    for kk in reversed(k):
        pad += [kk // 2, kk // 2]
    conv = {1: F.conv1d, 2: F.conv2d, 3: F.conv3d}[len(k)]
    y = conv(F.pad(torch.from_numpy(x)[None], pad, mode="circular"), torch.from_numpy(kernel), stride=s)[0]
    out = tuple(ni // si for ni, si in zip(n, s, strict=True))
    y = y[(slice(None), *(slice(0, o) for o in out))].numpy()  # even k: torch returns one extra row per axis
    np.testing.assert_allclose(conv_operator_matrix(kernel, n, s) @ x.ravel(), y.ravel(), rtol=0, atol=1e-12)


def test_odd_kernel_matches_torch_module_exactly():
    """With odd k the whole torch output (no trimming) is the operator, via nn.Conv2d's own circular padding."""
    rng = np.random.default_rng(3)
    layer = torch.nn.Conv2d(3, 5, 3, padding=1, padding_mode="circular", bias=False).double()
    x = torch.from_numpy(rng.standard_normal((1, 3, 6, 7)))
    with torch.no_grad():
        y = layer(x)[0].numpy()
    matrix = conv_operator_matrix(layer.weight.detach().numpy(), (6, 7))
    np.testing.assert_allclose(matrix @ x.numpy().ravel(), y.ravel(), rtol=0, atol=1e-12)


def test_symbol_acts_on_input_dft_as_documented():
    """Stride 1: DFT(y)[f] = conj(symbol[f]) @ DFT(x)[f] (numpy FFT convention), an independent check of the symbol."""
    rng = np.random.default_rng(11)
    kernel = rng.standard_normal((4, 3, 3, 5))
    n = (6, 8)
    x = rng.standard_normal((3, *n))
    y = (conv_operator_matrix(kernel, n) @ x.ravel()).reshape(4, *n)
    xf = np.moveaxis(np.fft.fftn(x, axes=(1, 2)), 0, -1)[..., None]
    yf = np.moveaxis(np.fft.fftn(y, axes=(1, 2)), 0, -1)
    pred = (np.conj(conv_symbol(kernel, n)) @ xf)[..., 0]
    np.testing.assert_allclose(pred, yf, rtol=0, atol=1e-11)


def test_identity_and_shift_kernels_have_unit_singular_values():
    """Closed forms: a centred identity tap is the identity; an off-centre one a cyclic shift (also orthogonal)."""
    for tap in [(1, 1), (0, 2)]:
        kernel = np.zeros((3, 3, 3, 3))
        kernel[(slice(None), slice(None), *tap)] = np.eye(3)
        np.testing.assert_allclose(conv_singular_values(kernel, (5, 4)), 1.0, rtol=0, atol=1e-14)
        matrix = conv_operator_matrix(kernel, (5, 4))
        np.testing.assert_allclose(matrix.T @ matrix, np.eye(60), rtol=0, atol=1e-14)


def test_scalar_1d_kernel_closed_form():
    """One channel, kernel [a, b, c]: singular values |b + a e^{-i w} + c e^{i w}| at w = 2 pi f / n."""
    a, b, c = 0.3, -1.2, 0.7
    n = 9
    w = 2 * np.pi * np.arange(n) / n
    expected = np.abs(b + a * np.exp(-1j * w) + c * np.exp(1j * w))
    sv = conv_singular_values(np.array([[[a, b, c]]]), n)
    np.testing.assert_allclose(sv[:, 0], expected, rtol=0, atol=1e-14)


def test_float32_in_float32_out():
    rng = np.random.default_rng(0)
    kernel = rng.standard_normal((4, 3, 3, 3))
    sv64 = conv_singular_values(kernel, 8)
    sv32 = conv_singular_values(kernel.astype(np.float32), 8)
    assert sv32.dtype == np.float32 and sv64.dtype == np.float64
    assert conv_operator_matrix(kernel.astype(np.float32), 4).dtype == np.float32
    assert conv_symbol(kernel.astype(np.float32), 4).dtype == np.complex64
    np.testing.assert_allclose(sv32, sv64, rtol=1e-5, atol=1e-5)


def test_int_input_shape_means_every_axis():
    kernel = np.random.default_rng(1).standard_normal((2, 2, 3, 3))
    np.testing.assert_array_equal(conv_singular_values(kernel, 5), conv_singular_values(kernel, (5, 5)))


@pytest.mark.parametrize(
    ("kernel", "input_shape", "stride", "error", "match"),
    [
        (np.ones((2, 3)), 4, 1, ValueError, "ndim 3-5"),
        (np.ones((2, 2, 3, 3, 3, 3)), 4, 1, ValueError, "ndim 3-5"),
        (np.ones((2, 2, 3), dtype=complex), 4, 1, TypeError, "real floating-point"),
        (np.ones((2, 2, 3, 3)), (4,), 1, ValueError, "input_shape must have 2"),
        (np.ones((2, 2, 3, 3)), (4, 0), 1, ValueError, "input_shape entries must be >= 1"),
        (np.ones((2, 2, 3, 3)), (4, 4.5), 1, ValueError, "input_shape"),
        (np.ones((2, 2, 3, 3)), (6, 6), 4, ValueError, "must divide"),
        (np.ones((2, 2, 3)), 6, 0, ValueError, "stride entries must be >= 1"),
        (np.ones((0, 2, 3)), 6, 1, ValueError, "no empty axis"),
    ],
)
def test_bad_input(kernel, input_shape, stride, error, match):
    for func in (conv_singular_values, conv_operator_matrix, conv_symbol):
        with pytest.raises(error, match=match):
            func(kernel, input_shape, stride)
