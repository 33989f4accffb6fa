"""Issue 14: non-finite inputs to the norm-preservation functions raise naming the argument; batch-norm rank."""

import numpy as np
import pytest

import rmt
from rmt.procrustes import newton_schulz_polar

BAD = [np.nan, np.inf, -np.inf]


@pytest.mark.parametrize("bad", BAD)
@pytest.mark.parametrize("shape", [(3, 4), (4, 2, 3), (2, 2, 3, 3)])
def test_orthonormal_functions_reject_non_finite_weights(bad, shape):
    w = np.random.default_rng(0).standard_normal(shape)
    w.flat[5] = bad
    with pytest.raises(ValueError, match="weights must be finite"):
        rmt.orthonormal_penalty(w)
    with pytest.raises(ValueError, match="weights must be finite"):
        rmt.orthonormal_penalty([np.eye(3), w])
    with pytest.raises(ValueError, match="weights must be finite"):
        rmt.filter_correlation(w)


@pytest.mark.parametrize("bad", BAD)
@pytest.mark.parametrize("shape", [(2, 3, 3), (3, 2, 3, 3), (2, 2, 1, 1, 3)])
def test_conv_functions_reject_non_finite_kernels(bad, shape):
    k = np.random.default_rng(1).standard_normal(shape)
    k.flat[-1] = bad
    for call in (lambda: rmt.conv_singular_values(k, 8), lambda: rmt.conv_symbol(k, 8),
                 lambda: rmt.conv_operator_matrix(k, 8), lambda: rmt.procrustes_project(k, 8),
                 lambda: rmt.procrustes_project(k, 8, method="svd")):
        with pytest.raises(ValueError, match="kernel must be finite"):
            call()
    with pytest.raises(ValueError, match="a must be finite"):
        newton_schulz_polar(np.full((2, 3, 3), bad))


@pytest.mark.parametrize("tol", [-1.0, 0.0, np.nan, np.inf])
def test_procrustes_rejects_bad_tol(tol):
    k = np.random.default_rng(2).standard_normal((2, 2, 3))
    with pytest.raises(ValueError, match="tol"):
        rmt.procrustes_project(k, 8, tol=tol)
    with pytest.raises(ValueError, match="tol"):
        newton_schulz_polar(np.eye(3), tol=tol)
    with pytest.raises((ValueError, TypeError), match="max_iter"):
        rmt.procrustes_project(k, 8, max_iter=0)


@pytest.mark.parametrize("bad", BAD)
def test_batchnorm_rejects_non_finite_inputs(bad):
    x = np.random.default_rng(3).standard_normal((6, 3))
    y = x.copy()
    y[2, 1] = bad
    for fn in (rmt.batchnorm_jacobian, rmt.batchnorm_spectrum):
        with pytest.raises(ValueError, match="x must be finite"):
            fn(y)
        with pytest.raises(ValueError, match="gamma must be finite"):
            fn(x, gamma=np.array([1.0, bad, 1.0]))
        with pytest.raises(ValueError, match="eps"):
            fn(x, eps=bad)


@pytest.mark.parametrize("seed", range(6))
@pytest.mark.parametrize("gamma", [1.0, 1e-8, 1e8])
def test_batchnorm_rank_is_m_minus_two_for_small_batches(seed, gamma):
    rng = np.random.default_rng(seed)
    for m in (2, 3, 4, 7):
        x = rng.standard_normal((m, 5)) * 10.0 ** rng.uniform(-6, 6, size=5)
        result = rmt.batchnorm_spectrum(x, gamma=gamma)
        np.testing.assert_array_equal(result.rank, m - 2)
        one = rmt.batchnorm_spectrum(x[:, 0], gamma=gamma)
        assert one.rank == m - 2


def test_procrustes_in_place_rejects_non_finite_weights():
    torch = pytest.importorskip("torch")
    from validate.init import procrustes_

    for bad in BAD:
        w = torch.randn(3, 3, 3, 3, dtype=torch.float64)
        w[0, 1, 1, 1] = bad
        with pytest.raises(ValueError, match="weight must be finite"):
            procrustes_(w, 8)
    w = torch.randn(3, 3, 3, 3)
    with pytest.raises(ValueError, match="tol"):
        procrustes_(w, 8, tol=-1e-3)
    with pytest.raises((ValueError, TypeError), match="max_iter"):
        procrustes_(w, 8, max_iter=0)
