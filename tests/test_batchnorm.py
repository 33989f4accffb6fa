"""Batch-norm Jacobian over the batch (papers 000/001) against torch autograd, and its eigenstructure."""

import numpy as np
import pytest

from rmt import batchnorm_jacobian, batchnorm_spectrum

torch = pytest.importorskip("torch")


def _torch_jacobian(x: np.ndarray, gamma: np.ndarray, eps: float) -> np.ndarray:
    """Autograd Jacobian of F.batch_norm(training=True) for x of shape (m, d): returns (d, m, m)."""
    xt = torch.from_numpy(x)
    g = torch.from_numpy(gamma)

    def f(inp):
        if eps > 0:
            return torch.nn.functional.batch_norm(inp, None, None, weight=g, bias=None, training=True, eps=eps)
        # torch refuses eps = 0 in training; autograd of the definition with the biased batch variance instead
        return g * (inp - inp.mean(0)) / torch.sqrt(inp.var(0, unbiased=False))

    jac = torch.autograd.functional.jacobian(f, xt).numpy()  # (m, d, m, d)
    d = x.shape[1]
    return np.stack([jac[:, k, :, k] for k in range(d)])


@pytest.mark.parametrize("m", [2, 3, 8, 33])
@pytest.mark.parametrize("eps", [0.0, 1e-5, 0.3, 10.0])
def test_jacobian_matches_torch_autograd(m, eps):
    rng = np.random.default_rng(m)
    d = 3
    x = rng.standard_normal((m, d)) * np.array([0.5, 2.0, 7.0]) + np.array([0.0, -3.0, 10.0])
    gamma = np.array([1.0, 0.4, -2.5])
    jac = batchnorm_jacobian(x, gamma=gamma, eps=eps)
    assert jac.shape == (d, m, m)
    np.testing.assert_allclose(jac, _torch_jacobian(x, gamma, eps), rtol=1e-10, atol=1e-12)
    # one feature: (m,) -> (m, m), the same block
    np.testing.assert_allclose(batchnorm_jacobian(x[:, 1], gamma=0.4, eps=eps), jac[1], rtol=1e-14, atol=1e-15)


@pytest.mark.parametrize("m", [3, 4, 16, 100])
@pytest.mark.parametrize("gamma", [1.0, 0.3, 2.5])
def test_eps_zero_two_zero_eigenvalues_rest_rho(m, gamma):
    x = np.random.default_rng(m).standard_normal(m) * 3.0 + 1.0
    spec = batchnorm_spectrum(x, gamma=gamma, eps=0.0)
    rho = gamma / np.std(x)
    np.testing.assert_allclose(spec.rho, rho, rtol=1e-14)
    assert spec.second == 0.0
    np.testing.assert_allclose(spec.eigenvalues[:2], 0.0, atol=1e-13 * rho)
    np.testing.assert_allclose(spec.eigenvalues[2:], rho, rtol=1e-12)
    assert spec.rank == m - 2
    assert spec.tol == pytest.approx(m * np.finfo(float).eps * rho)


@pytest.mark.parametrize("m", [3, 8, 50])
@pytest.mark.parametrize("eps", [1e-5, 0.1, 4.0])
@pytest.mark.parametrize("gamma", [1.0, 1.7])
def test_eps_positive_moves_second_eigenvalue(m, eps, gamma):
    x = np.random.default_rng(10 * m).standard_normal(m) * 0.8
    var = np.var(x)
    spec = batchnorm_spectrum(x, gamma=gamma, eps=eps)
    rho = gamma / np.sqrt(var + eps)
    second = rho * eps / (var + eps)
    np.testing.assert_allclose([spec.rho, spec.second], [rho, second], rtol=1e-13)
    expected = np.sort(np.r_[0.0, second, np.full(m - 2, rho)])
    np.testing.assert_allclose(spec.eigenvalues, expected, rtol=0, atol=1e-12 * rho)
    assert spec.rank == m - 1


def test_batch_of_two_is_zero_with_eps_zero():
    """m = 2: both eigenvalues vanish (J = 0) since e and xhat span the whole space."""
    jac = batchnorm_jacobian(np.array([1.0, 3.0]))
    np.testing.assert_allclose(jac, 0.0, atol=1e-15)
    assert batchnorm_spectrum(np.array([1.0, 3.0])).rank == 0


def test_spectrum_over_features_and_explicit_tol():
    rng = np.random.default_rng(1)
    x = rng.standard_normal((10, 4))
    spec = batchnorm_spectrum(x, gamma=np.array([1.0, 2.0, 3.0, 4.0]), eps=0.0)
    assert spec.eigenvalues.shape == (4, 10) and spec.rank.shape == (4,)
    assert np.all(spec.rank == 8)
    np.testing.assert_allclose(spec.eigenvalues[:, -1], np.array([1.0, 2.0, 3.0, 4.0]) / np.std(x, axis=0))
    # a tolerance above the second eigenvalue (eps > 0) drops it from the rank
    spec = batchnorm_spectrum(x[:, 0], eps=1e-3, tol=1e-2)
    assert spec.second < 1e-2 and spec.rank == 8 and spec.tol == 1e-2


@pytest.mark.parametrize(
    ("call", "error", "match"),
    [
        (lambda: batchnorm_jacobian(np.array([1.0])), ValueError, "m = x.shape"),
        (lambda: batchnorm_jacobian(np.ones((1, 3))), ValueError, ">= 2"),
        (lambda: batchnorm_jacobian(np.ones((3, 2, 2))), ValueError, r"\(m,\) or \(m, d\)"),
        (lambda: batchnorm_jacobian(np.ones(4)), ValueError, "zero batch variance"),
        (lambda: batchnorm_jacobian(np.arange(4.0), eps=-1.0), ValueError, "eps"),
        (lambda: batchnorm_jacobian(np.array([1.0, np.nan])), ValueError, "finite"),
        (lambda: batchnorm_jacobian(np.array(["a", "b"])), TypeError, "floating"),
        (lambda: batchnorm_spectrum(np.arange(4.0), tol=-1), ValueError, "tol"),
    ],
)
def test_bad_input(call, error, match):
    with pytest.raises(error, match=match):
        call()


def test_constant_batch_with_eps_is_fine():
    """var = 0 is allowed when eps > 0: J = rho (I - e e^T / m), eigenvalues 0 and rho = gamma / sqrt(eps)."""
    spec = batchnorm_spectrum(np.full(5, 2.0), eps=0.25)
    np.testing.assert_allclose(spec.eigenvalues, [0.0, 2.0, 2.0, 2.0, 2.0], atol=1e-14)
