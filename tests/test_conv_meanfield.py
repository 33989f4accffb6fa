"""Convolutional mean field (paper 002, section 2.1): kernels, Fourier eigenvalues, depth scales, covariance map.

References are independent of the code under test: brute-force eigen-decomposition of A_v as a matrix, explicit
per-pair loops with the core's 2-D quadrature, the fully connected maps of meanfield.quantities, and closed forms.
"""

import itertools
import json
import subprocess
import sys

import numpy as np
import pytest

from meanfield import gaussian_kernel, get_activation, iterate_maps, mean_field_point
from meanfield.cli import main as cli_main
from meanfield.conv import (
    _propagate_general,
    covariance_mode_decay,
    cyclic_diagonal_modes,
    figure_s4_covariance,
    fixed_point_covariance,
    fourier_depth_scales,
    fourier_eigenvalues,
    propagate_covariance,
)
from meanfield.kernels import kernel_variance

S4 = {"activation": "erf", "sigma_w2": 2.25, "sigma_b2": 0.25, "v": [0.025, 0.950, 0.025], "n": 10}


def figure_s4_input(scale=1.0):
    """Sigma^0 of paper 002 Figure S4 from the library, checked against the paper's own DFT of eps^0."""
    r = 2.0 / 3.0
    dft = -np.array([1, r, r**3, r**5, r**4, r**2, r**4, r**5, r**3, r]) / 6.0
    n = S4["n"]
    star = fixed_point_covariance(S4["activation"], S4["sigma_w2"], S4["sigma_b2"], n)
    S0 = figure_s4_covariance(scale)
    eps = star - S0
    a = np.arange(n)
    np.testing.assert_allclose(np.fft.fft(eps[a, (a + 1) % n]), scale * dft, atol=1e-15)
    np.testing.assert_allclose(eps, eps.T, atol=0)
    off = eps.copy()
    off[a, (a + 1) % n] = 0
    off[(a + 1) % n, a] = 0
    assert not off.any()
    return S0, star, dft


def random_covariance(N, rng, rank_factor=2):
    A = rng.standard_normal((N, rank_factor * N))
    return A @ A.T / (rank_factor * N)


def translation_invariant_covariance(n, ndim, q=0.9, width=2.0):
    """Sigma[a, a'] = g(a' - a) with a positive spectrum (so positive definite)."""
    k = np.array(list(itertools.product(range(n), repeat=ndim)))
    k = np.minimum(k, n - k)
    spectrum = np.exp(-(k**2).sum(1) / width**2).reshape((n,) * ndim)
    g = np.fft.ifftn(spectrum).real
    g *= q / g.flat[0]
    coords = np.array(list(itertools.product(range(n), repeat=ndim)))
    diff = (coords[None, :, :] - coords[:, None, :]) % n
    return g[tuple(np.moveaxis(diff, -1, 0))]


# ----------------------------------------------------------------------------------------------------- kernels


def test_named_kernels_shapes_sums_and_family():
    for ndim in (1, 2):
        for k in (1, 3, 5):
            delta = kernel_variance("delta", k, ndim)
            uniform = kernel_variance("uniform", k, ndim)
            assert delta.shape == uniform.shape == (k,) * ndim
            assert delta[(k // 2,) * ndim] == 1.0 and delta.sum() == 1.0
            np.testing.assert_allclose(uniform, 1.0 / k**ndim, rtol=1e-15)
            np.testing.assert_array_equal(kernel_variance("GS0", k, ndim), delta)
            np.testing.assert_allclose(kernel_variance("gs4", k, ndim), uniform, rtol=1e-15)
            for j in range(5):
                v = kernel_variance(f"GS{j}", k, ndim)
                assert v.min() >= 0 and abs(v.sum() - 1) < 1e-15


def test_gs_family_eigenvalues_interpolate_linearly():
    # GS_j = (1 - j/4) delta + (j/4) uniform, so lambda(GS_j) = 1 - (j/4) (1 - lambda(uniform)): every (real)
    # eigenvalue decreases monotonically from 1 (GS0, all modes at the zero-mode rate) to the uniform kernel's (GS4)
    lam = np.array([fourier_eigenvalues(kernel_variance(f"GS{j}", 3, 2), 8) for j in range(5)])
    np.testing.assert_allclose(lam.imag, 0, atol=1e-15)
    centred = np.zeros((8, 8))  # the 3x3 box at offsets -1, 0, 1 on the periodic 8x8 image
    centred[np.ix_([7, 0, 1], [7, 0, 1])] = 1 / 9
    uniform = np.fft.fft2(centred).real
    for j in range(5):
        np.testing.assert_allclose(lam[j].real, 1 - (j / 4) * (1 - uniform), atol=1e-15)
    assert np.all(np.diff(lam.real, axis=0) <= 1e-15)


def test_user_vectors_parse_and_validate():
    np.testing.assert_allclose(kernel_variance("0.1,0.8,0.1"), [0.1, 0.8, 0.1])
    np.testing.assert_allclose(kernel_variance([0.1, 0.8, 0.1], ndim=2), np.outer([0.1, 0.8, 0.1], [0.1, 0.8, 0.1]))
    v2 = np.full((3, 5), 1 / 15)
    np.testing.assert_allclose(kernel_variance(v2), v2)
    bad = {
        "0.5,0.6": "odd",
        "0.2,0.3": "odd",
        "0.5,-0.1,0.6": "non-negative",
        "0.1,0.1,0.1": "sum to 1",
        "0.1,nan,0.9": "finite",
        "hello": "neither a name",
    }
    for spec, message in bad.items():
        with pytest.raises(ValueError, match=message):
            kernel_variance(spec)
    with pytest.raises(ValueError, match="dimensions"):
        kernel_variance(np.ones((1, 1, 1)))
    with pytest.raises(ValueError, match="does not match"):
        kernel_variance([0.1, 0.8, 0.1], size=5)
    with pytest.raises(ValueError, match="odd positive"):
        kernel_variance("uniform", 4)
    with pytest.raises(ValueError, match="ndim"):
        kernel_variance("uniform", 3, 3)
    with pytest.raises(TypeError):
        kernel_variance([["a", "b", "c"]])


# ------------------------------------------------------------------------------------------ Fourier eigenvalues


def averaging_operator_matrix(v, n):
    """A_v as an explicit matrix on vectorised covariances: (A M)[a, a'] = sum_beta v_beta M[a + beta, a' + beta]."""
    v = np.asarray(v, dtype=float)
    positions = np.array(list(itertools.product(range(n), repeat=v.ndim)))  # (N, ndim), row-major
    N = len(positions)
    A = np.zeros((N * N, N * N))
    centre = np.array(v.shape) // 2
    rows = (np.arange(N)[:, None] * N + np.arange(N)[None, :]).ravel()
    for beta in itertools.product(*[range(s) for s in v.shape]):
        shifted = (positions + (np.array(beta) - centre)) % n
        flat = np.ravel_multi_index(tuple(shifted.T), (n,) * v.ndim)  # flat index of a + beta
        cols = (flat[:, None] * N + flat[None, :]).ravel()
        A[rows, cols] += v[beta]
    return A


@pytest.mark.parametrize(
    "v, n",
    [
        ([0.025, 0.95, 0.025], 6),
        ([0.1, 0.3, 0.6], 5),  # asymmetric: complex eigenvalues
        ([0.2, 0.2, 0.2, 0.2, 0.2], 5),
        (kernel_variance("GS2", 3, 2), 3),
        (np.array([[0.05, 0.1, 0.0], [0.2, 0.3, 0.05], [0.1, 0.1, 0.1]]), 4),  # asymmetric 2-D
    ],
)
def test_fourier_eigenvalues_match_brute_force_spectrum(v, n):
    lam = fourier_eigenvalues(v, n)
    ndim = np.asarray(v).ndim
    assert lam.shape == (n,) * ndim
    assert abs(lam.flat[0] - 1) < 1e-15 and np.all(np.abs(lam) <= 1 + 1e-15)
    brute = np.linalg.eigvals(averaging_operator_matrix(v, n))
    expected = np.repeat(lam.ravel(), n**ndim)  # each lambda_k once per cyclic diagonal
    # match the two multisets
    remaining = brute.copy()
    for value in expected:
        j = int(np.argmin(np.abs(remaining - value)))
        assert abs(remaining[j] - value) < 1e-10
        remaining[j] = np.inf


def test_fourier_eigenvalues_are_eigenvectors_of_cyclic_diagonal_modes():
    # A_v applied to a Fourier mode along a cyclic diagonal multiplies it by lambda_k (1-D and 2-D)
    rng = np.random.default_rng(1)
    for v, n in (([0.1, 0.3, 0.6], 7), (rng.dirichlet(np.ones(9)).reshape(3, 3), 4)):
        v = np.asarray(v)
        A = averaging_operator_matrix(v, n)
        N = n**v.ndim
        M = rng.standard_normal((N, N))
        M = M + M.T
        AM = (A @ M.ravel()).reshape(N, N)
        shape = (n,) * (2 * v.ndim)
        before = cyclic_diagonal_modes(M.reshape(shape), v.ndim)
        after = cyclic_diagonal_modes(AM.reshape(shape), v.ndim)
        lam = fourier_eigenvalues(v, n)
        np.testing.assert_allclose(after, before * lam, atol=1e-12)


def test_cyclic_diagonal_modes_against_explicit_sums():
    rng = np.random.default_rng(2)
    n = 4
    M = rng.standard_normal((n, n))
    out = cyclic_diagonal_modes(M, 1)
    for d, k in itertools.product(range(n), repeat=2):
        ref = sum(M[a, (a + d) % n] * np.exp(-2j * np.pi * k * a / n) for a in range(n))
        assert abs(out[d, k] - ref) < 1e-12
    M4 = rng.standard_normal((2, n, n, n, n))  # a leading stack axis
    out4 = cyclic_diagonal_modes(M4, 2)
    assert out4.shape == (2, n, n, n, n)
    for d1, d2, k1, k2 in [(0, 1, 2, 3), (3, 2, 1, 0), (1, 1, 1, 1)]:
        ref = sum(
            M4[1, a1, a2, (a1 + d1) % n, (a2 + d2) % n] * np.exp(-2j * np.pi * (k1 * a1 + k2 * a2) / n)
            for a1 in range(n)
            for a2 in range(n)
        )
        assert abs(out4[1, d1, d2, k1, k2] - ref) < 1e-12
    with pytest.raises(ValueError, match="shape"):
        cyclic_diagonal_modes(np.zeros((3, 4)), 1)
    with pytest.raises(ValueError, match="ndim"):
        cyclic_diagonal_modes(M, 3)


# ---------------------------------------------------------------------------------------------- depth scales


@pytest.mark.parametrize(
    "activation, sigma_w2, sigma_b2",
    [("tanh", 1.2, 0.05), ("tanh", 3.0, 0.3), ("erf", 2.25, 0.25), ("tanh", 1.7609546, 0.05)],  # last: critical
)
def test_fourier_depth_scales_formula_zero_mode_and_delta(activation, sigma_w2, sigma_b2):
    point = mean_field_point(activation, sigma_w2, sigma_b2)
    v = kernel_variance("GS3", 3, 2)
    result = fourier_depth_scales(activation, sigma_w2, sigma_b2, v, 6)
    assert result.xi.shape == result.eigenvalues.shape == (6, 6)
    assert result.xi[0, 0] == point.xi_c  # exactly, also next to the critical line
    assert result.chi_c == point.chi_c and result.q_star == point.q_star and result.c_star == point.c_star
    others = np.abs(result.eigenvalues) < 1 - 1e-12
    direct = -1.0 / np.log(point.chi_c * np.abs(result.eigenvalues[others]))
    np.testing.assert_allclose(result.xi[others], direct, rtol=1e-9)
    assert np.all(result.xi <= point.xi_c)
    delta = fourier_depth_scales(activation, sigma_w2, sigma_b2, kernel_variance("delta", 3, 1), 7)
    assert np.all(delta.xi == point.xi_c)
    table = result.table
    assert list(table.columns) == ["k1", "k2", "lambda_real", "lambda_imag", "abs_lambda", "xi"]
    assert len(table) == 36 and table.xi.iloc[0] == point.xi_c


def test_depth_scale_of_a_vanishing_eigenvalue_is_zero():
    # uniform kernel of size 3 on n = 3: lambda_1 = lambda_2 = 0 exactly -> those modes die in one layer
    result = fourier_depth_scales("tanh", 1.5, 0.1, kernel_variance("uniform", 3), 3)
    np.testing.assert_allclose(np.abs(result.eigenvalues[1:]), 0, atol=1e-15)
    assert np.all(result.xi[1:] < 0.03)


def test_fourier_depth_scales_bad_inputs():
    with pytest.raises(ValueError, match="sigma_w2"):
        fourier_depth_scales("tanh", -1.0, 0.1, [0, 1, 0], 4)
    with pytest.raises(ValueError, match="kernel size"):
        fourier_depth_scales("tanh", 1.0, 0.1, [0.2] * 5, 4)
    with pytest.raises(ValueError, match="finite fixed point"), pytest.warns(RuntimeWarning):
        fourier_depth_scales("relu", 3.0, 0.1, [0, 1, 0], 4)
    with pytest.raises(TypeError, match="n must be"):
        fourier_eigenvalues([0, 1, 0], 4.0)


# ------------------------------------------------------------------------------------------ covariance map


def brute_force_propagate(Sigma0, activation, sigma_w2, sigma_b2, v, depth):
    """Per-pair scalar loop with the core's quadrature, and A_v by explicit index arithmetic (positions flattened)."""
    v = np.asarray(v, dtype=float)
    A = averaging_operator_matrix(v, round(Sigma0.shape[0] ** (1 / v.ndim)))
    S = np.array(Sigma0, dtype=float)
    layers = [S]
    N = S.shape[0]
    for _ in range(depth):
        C = np.empty((N, N))
        for a in range(N):
            for b in range(N):
                C[a, b] = sigma_w2 * gaussian_kernel(activation, S[a, a], S[b, b], S[a, b]) + sigma_b2
        S = (A @ C.ravel()).reshape(N, N)
        layers.append(S)
    return np.array(layers)


@pytest.mark.parametrize(
    "activation, v, n",
    [("tanh", [0.2, 0.5, 0.3], 5), ("x*tanh(x)", [0.25, 0.5, 0.25], 4), ("erf", kernel_variance("GS2", 3, 2), 3),
     ("tanh", np.array([[0.0, 0.1, 0.0], [0.2, 0.4, 0.1], [0.0, 0.2, 0.0]]), 3)],
)
def test_propagate_covariance_matches_per_pair_loop(activation, v, n):
    rng = np.random.default_rng(3)
    v = np.asarray(v)
    S0 = random_covariance(n**v.ndim, rng)
    exact = propagate_covariance(S0, activation, 1.6, 0.1, v, 2)
    reference = brute_force_propagate(S0, activation, 1.6, 0.1, v, 2)
    assert exact.shape == (3, n**v.ndim, n**v.ndim)
    np.testing.assert_allclose(exact, reference, rtol=1e-11, atol=1e-13)


def test_two_dimensional_layouts_agree():
    rng = np.random.default_rng(4)
    n = 3
    v = kernel_variance("uniform", 3, 2)
    S0 = random_covariance(n * n, rng)
    flat = propagate_covariance(S0, "erf", 1.3, 0.2, v, 3)
    square = propagate_covariance(S0.reshape(n, n, n, n), "erf", 1.3, 0.2, v, 3)
    assert square.shape == (4, n, n, n, n)
    np.testing.assert_array_equal(square.reshape(flat.shape), flat)


@pytest.mark.parametrize("ndim, n", [(1, 6), (2, 4)])
@pytest.mark.parametrize("activation", ["tanh", "erf"])
def test_translation_invariant_path_equals_general_path_and_fully_connected_maps(ndim, n, activation):
    S0 = translation_invariant_covariance(n, ndim)
    v = kernel_variance("GS1", 3, ndim)
    fast = propagate_covariance(S0, activation, 2.0, 0.1, v, 6)
    general = _propagate_general(S0, get_activation(activation), 2.0, 0.1, v, n, 6)
    np.testing.assert_allclose(fast, general, rtol=1e-12, atol=1e-14)
    np.testing.assert_allclose(fast[:3], brute_force_propagate(S0, activation, 2.0, 0.1, v, 2), rtol=1e-11, atol=1e-13)
    # A_v is the identity on invariant covariances: each offset follows the fully connected (q, c) maps
    for offset in range(1, n**ndim, 3):
        q0, c0 = S0[0, 0], S0[0, offset] / S0[0, 0]
        fc = iterate_maps(activation, 2.0, 0.1, q0, c0, 6)
        np.testing.assert_allclose(fast[:, 0, 0], fc.q.to_numpy(), rtol=1e-11)
        np.testing.assert_allclose(fast[:, 0, offset] / fast[:, 0, 0], fc.c.to_numpy(), rtol=1e-10, atol=1e-12)


@pytest.mark.parametrize(
    "activation, sigma_w2, sigma_b2, expected_phase",
    [("erf", 0.5, 0.1, "ordered"), ("erf", 2.25, 0.25, "chaotic"), ("tanh", 1.2, 0.1, "ordered"),
     ("tanh", 3.0, 0.1, "chaotic")],
)
def test_fixed_point_is_the_fully_connected_one(activation, sigma_w2, sigma_b2, expected_phase):
    point = mean_field_point(activation, sigma_w2, sigma_b2)
    assert point.phase == expected_phase
    rng = np.random.default_rng(5)
    n = 4
    S0 = random_covariance(n, rng)
    depth = int(np.ceil(40 * max(point.xi_c, point.xi_q))) + 20
    final = propagate_covariance(S0, activation, sigma_w2, sigma_b2, kernel_variance("uniform", 3), depth)[-1]
    star = fixed_point_covariance(activation, sigma_w2, sigma_b2, n)
    np.testing.assert_allclose(np.diag(star), point.q_star)
    np.testing.assert_allclose(star[0, 1], point.q_star * point.c_star)
    np.testing.assert_allclose(final, star, rtol=1e-9)


def test_linearised_modes_agree_once_the_deviation_is_small():
    errors = {}
    for scale in (1e-2, 1e-3):
        S0, _, dft = figure_s4_input(scale)
        table = covariance_mode_decay(S0, S4["activation"], S4["sigma_w2"], S4["sigma_b2"], S4["v"], 40)
        np.testing.assert_allclose(table[table.layer == 0].exact_abs, scale * np.abs(dft), rtol=1e-9)
        errors[scale] = table.relative_error.max()
    assert errors[1e-3] < 1e-3
    assert 5 < errors[1e-2] / errors[1e-3] < 20  # the error of the linearisation is first order in the deviation


def test_two_dimensional_mode_decay_linearisation():
    # a small deviation on the (0, 1) cyclic diagonal of a 4x4 image. Second-order terms decay like (chi_c)^2 (product
    # of two zero modes), so the linear prediction stays dominant only for modes with |lambda_k| >= chi_c; there it
    # holds to ~ the relative size of the deviation over many layers
    n, scale = 4, 1e-4
    rng = np.random.default_rng(7)
    star = fixed_point_covariance("erf", 2.25, 0.25, n, ndim=2)
    eps = np.zeros((n, n, n, n))
    a1, a2 = np.meshgrid(np.arange(n), np.arange(n), indexing="ij")
    values = rng.uniform(0.5, 1.0, (n, n)) * scale
    eps[a1, a2, a1, (a2 + 1) % n] = values
    eps[a1, (a2 + 1) % n, a1, a2] = values
    v = kernel_variance(S4["v"], ndim=2)
    table = covariance_mode_decay(star - eps, "erf", 2.25, 0.25, v, 15, offset=(0, 1))
    assert list(table.columns) == ["layer", "k1", "k2", "abs_lambda", "exact_abs", "linear_abs", "relative_error"]
    assert len(table) == 16 * n * n
    np.testing.assert_allclose(table[table.layer == 0].exact_abs, np.abs(np.fft.fft2(values)).ravel(), rtol=1e-9)
    np.testing.assert_allclose(table.abs_lambda[:16], np.abs(fourier_eigenvalues(v, n)).ravel())
    dominant = table.abs_lambda >= mean_field_point("erf", 2.25, 0.25).chi_c
    assert dominant.sum() == 5 * 16  # the zero mode and the four next to it
    assert table.relative_error[dominant].max() < 1e-3


def test_figure_s4_exact_iteration_decays_at_the_predicted_depth_scales():
    S0, _, _ = figure_s4_input()
    depth = 80
    table = covariance_mode_decay(S0, S4["activation"], S4["sigma_w2"], S4["sigma_b2"], S4["v"], depth)
    xi = fourier_depth_scales(S4["activation"], S4["sigma_w2"], S4["sigma_b2"], S4["v"], S4["n"]).xi
    exact = table.pivot(index="layer", columns="k", values="exact_abs")
    fitted = -(depth - 40) / np.log(exact.loc[depth] / exact.loc[40]).to_numpy()
    np.testing.assert_allclose(fitted, xi, rtol=0.01)
    # near the start the deviation is not small (|eps| ~ 1/6): the linearisation is off by several percent there
    assert table[table.layer == 10].relative_error.max() > 0.05


def test_propagate_covariance_bad_inputs():
    v = [0.25, 0.5, 0.25]
    good = np.eye(4)
    with pytest.raises(ValueError, match="symmetric"):
        propagate_covariance(np.triu(np.ones((4, 4))), "tanh", 1.0, 0.1, v, 2)
    with pytest.raises(ValueError, match="semi-definite"):
        propagate_covariance(np.array([[1, 2, 0, 0], [2, 1, 0, 0], [0, 0, 1, 0], [0, 0, 0, 1.0]]), "tanh", 1, 0.1, v, 2)
    with pytest.raises(ValueError, match=r"shape \(n, n\)"):
        propagate_covariance(np.eye(4)[:3], "tanh", 1.0, 0.1, v, 2)
    with pytest.raises(ValueError, match=r"\(n\*\*2, n\*\*2\)"):
        propagate_covariance(np.eye(5), "tanh", 1.0, 0.1, kernel_variance("uniform", 3, 2), 2)
    with pytest.raises(ValueError, match="kernel size"):
        propagate_covariance(np.eye(2), "tanh", 1.0, 0.1, v, 2)
    with pytest.raises(ValueError, match="sigma_b2"):
        propagate_covariance(good, "tanh", 1.0, -0.1, v, 2)
    with pytest.raises(ValueError, match="depth"):
        propagate_covariance(good, "tanh", 1.0, 0.1, v, -1)
    with pytest.raises(TypeError, match="depth"):
        propagate_covariance(good, "tanh", 1.0, 0.1, v, 2.5)
    with pytest.raises(ValueError, match="finite"):
        propagate_covariance(np.full((4, 4), np.nan), "tanh", 1.0, 0.1, v, 2)
    with pytest.raises(ValueError, match="sum to 1"):
        propagate_covariance(good, "tanh", 1.0, 0.1, [0.2, 0.2, 0.2], 2)
    with pytest.raises(FloatingPointError, match="diverges"):
        propagate_covariance(good, "relu", 3.0, 0.1, v, 5000)
    with pytest.raises(FloatingPointError, match="diverges"):  # the Mehler path (smooth, unbounded activation)
        propagate_covariance(good, "softplus", 5.0, 0.1, v, 5000)
    with pytest.raises(FloatingPointError, match="diverg"):  # variances beyond the range of a finite fixed point
        propagate_covariance(good, "x*tanh(x)", 3.0, 0.1, v, 5000)
    with pytest.raises(ValueError, match="non-zero"):
        covariance_mode_decay(good, "tanh", 1.0, 0.1, v, 2, offset=0)


# --------------------------------------------------------------------------------------------------------- CLI


def run_cli(capsys, *args):
    """``python -m meanfield modes ARGS`` in-process: (exit status, stdout, stderr)."""
    try:
        status = cli_main(["modes", *args])
    except SystemExit as exc:  # argparse errors
        status = exc.code
    out = capsys.readouterr()
    return status, out.out, out.err


def test_cli_modes_json(capsys):
    status, stdout, stderr = run_cli(capsys, "--activation", "tanh", "--sigma-w2", "1.5", "--sigma-b2", "0.05",
                                     "--kernel", "0.1,0.8,0.1", "--size", "8", "--json")
    assert status == 0, stderr
    doc = json.loads(stdout)
    assert list(doc) == ["activation", "sigma_w2", "sigma_b2", "kernel", "size", "ndim", "q_star", "c_star", "chi_c",
                         "xi_c", "modes"]
    assert doc["ndim"] == 2 and len(doc["modes"]) == 64
    assert list(doc["modes"][0]) == ["k1", "k2", "lambda_real", "lambda_imag", "abs_lambda", "xi"]
    point = mean_field_point("tanh", 1.5, 0.05)
    assert doc["xi_c"] == pytest.approx(point.xi_c, rel=1e-12) and doc["modes"][0]["xi"] == doc["xi_c"]
    lam = fourier_eigenvalues(np.outer([0.1, 0.8, 0.1], [0.1, 0.8, 0.1]), 8)
    np.testing.assert_allclose([m["lambda_real"] for m in doc["modes"]], lam.real.ravel(), atol=1e-15)
    status, stdout, _ = run_cli(capsys, "--sigma-w2", "1", "--sigma-b2", "0", "--kernel", "delta", "--size", "3",
                                "--ndim", "1", "--json")
    critical = json.loads(stdout)
    assert status == 0 and critical["xi_c"] == "inf" and all(m["xi"] == "inf" for m in critical["modes"])


def test_cli_modes_text_and_errors(capsys):
    status, stdout, _ = run_cli(capsys, "--sigma-w2", "1.5", "--sigma-b2", "0.05", "--kernel", "GS2", "--size", "4")
    assert status == 0 and "xi_c" in stdout and "abs_lambda" in stdout
    for args, word in [
        (("--sigma-w2", "1.5", "--sigma-b2", "0.05", "--kernel", "0.5,0.6"), "--kernel"),
        (("--sigma-w2", "1.5", "--sigma-b2", "0.05", "--kernel", "GS7"), "--kernel"),
        (("--sigma-w2", "-1", "--sigma-b2", "0.05"), "--sigma-w2"),
        (("--sigma-w2", "1.5", "--sigma-b2", "0.05", "--kernel-size", "4"), "--kernel-size"),
        (("--sigma-w2", "1.5", "--sigma-b2", "0.05", "--kernel-size", "5", "--size", "3"), "--size"),
        (("--sigma-w2", "1.5", "--sigma-b2", "0.05", "--ndim", "3"), "--ndim"),
    ]:
        status, _, stderr = run_cli(capsys, *args)
        assert status == 2, (args, stderr)
        assert word in stderr and "Traceback" not in stderr


def test_cli_modes_runs_as_a_module():
    out = subprocess.run([sys.executable, "-m", "meanfield", "modes", "--sigma-w2", "1.5", "--sigma-b2", "0.05",
                          "--kernel", "0.5,0.6"], capture_output=True, text=True)
    assert out.returncode == 2 and "--kernel" in out.stderr and "Traceback" not in out.stderr
