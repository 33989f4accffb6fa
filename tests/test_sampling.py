"""Finite random networks against the free-probability predictions (Kolmogorov-Smirnov distances), conv included."""

import math

import numpy as np
import pytest

import meanfield
from rmt import conv_operator_spectrum, jacobian_moments, jacobian_spectrum, sample_jacobian_spectrum

SW2_CRIT, _ = meanfield.critical_sigma_w2("tanh", 0.05)
SW2_SMALL, SB2_SMALL = meanfield.critical_point("tanh", 0.05)  # q* = 0.05


@pytest.fixture(autouse=True)
def _one_blas_thread():
    """Run these BLAS-bound tests on one thread: on the shared, loaded test machine multithreaded BLAS on small
    matrices (QR of 800 x 800 per layer) oversubscribes the cores and runs several times slower."""
    try:
        from threadpoolctl import threadpool_limits
    except ImportError:
        yield
        return
    with threadpool_limits(limits=1, user_api="blas"):
        yield


def _mean_ks(theory, frame):
    """Mean over draws of the KS distance between one network's eigenvalues and the predicted law."""
    return float(np.mean([theory.ks_distance(group.lam) for _, group in frame.groupby("draw")]))


def _check_convergence(sw2, sb2, depth, weights, widths, draws, seed=0):
    theory = jacobian_spectrum("tanh", sw2, sb2, depth, weights, num=1500)
    ks = [_mean_ks(theory, sample_jacobian_spectrum("tanh", sw2, sb2, depth, n, weights, draws=d, rng=seed))
          for n, d in zip(widths, draws, strict=True)]
    return ks


@pytest.mark.parametrize("sw2,sb2,depth,weights", [
    (SW2_CRIT, 0.05, 1, "gaussian"),
    (SW2_CRIT, 0.05, 2, "orthogonal"),
    (SW2_SMALL, SB2_SMALL, 4, "gaussian"),
    (SW2_SMALL, SB2_SMALL, 4, "orthogonal"),
])
def test_sampled_spectra_approach_the_prediction(sw2, sb2, depth, weights):
    ks_small, ks_large = _check_convergence(sw2, sb2, depth, weights, widths=(200, 800), draws=(4, 2))
    assert ks_small < 0.1
    assert ks_large < 0.03
    assert ks_large < 0.7 * ks_small  # shrinks with width (expected about 1/sqrt(4) here)


@pytest.mark.slow
@pytest.mark.parametrize("weights", ["orthogonal", "gaussian"])
@pytest.mark.parametrize("point", ["sb2=0.05", "small q*"])
@pytest.mark.parametrize("depth", [1, 2, 8, 32, 64])
def test_sampled_spectra_approach_the_prediction_sweep(depth, point, weights):
    sw2, sb2 = (SW2_CRIT, 0.05) if point == "sb2=0.05" else (SW2_SMALL, SB2_SMALL)
    ks_small, ks_large = _check_convergence(sw2, sb2, depth, weights, widths=(200, 1000), draws=(5, 2))
    assert ks_small < 0.15
    assert ks_large < 0.06
    assert ks_large < 0.8 * ks_small


def test_depth_one_orthogonal_networks_sample_the_pushforward_law():
    # one layer: the eigenvalues are sigma_w2 phi'(h_i)^2 of N nearly i.i.d. pre-activations, KS ~ 1/sqrt(N)
    theory = jacobian_spectrum("tanh", SW2_CRIT, 0.05, 1, "orthogonal")
    ks = [_mean_ks(theory, sample_jacobian_spectrum("tanh", SW2_CRIT, 0.05, 1, n, "orthogonal", draws=d, rng=2))
          for n, d in ((100, 4), (1000, 2))]
    assert ks[0] < 0.2 and ks[1] < 0.06 and ks[1] < 0.6 * ks[0]
    relu = jacobian_spectrum("relu", 1.5, 0.1, 1, "orthogonal")
    frame = sample_jacobian_spectrum("relu", 1.5, 0.1, 1, 800, "orthogonal", rng=0)
    assert relu.ks_distance(frame.lam) < 0.05


def test_sampled_moments_match_the_series():
    # normalised trace moments of one wide network against the exact series (finite-width corrections are O(1/N))
    # normalised by the first moment: one network's overall scale fluctuates by O(sqrt(L / N))
    frame = sample_jacobian_spectrum("tanh", SW2_CRIT, 0.05, 3, 1000, "gaussian", rng=3)
    lam = frame.lam.to_numpy()
    m1, m2, m3 = jacobian_moments("tanh", SW2_CRIT, 0.05, 3, "gaussian", k=3)
    s1, s2, s3 = (np.mean(lam**k) for k in (1, 2, 3))
    assert s1 == pytest.approx(m1, rel=0.06)
    assert s2 / s1**2 == pytest.approx(m2 / m1**2, rel=0.02)
    assert s3 / s1**3 == pytest.approx(m3 / m1**3, rel=0.04)


def test_conv_jacobian_with_many_channels_matches_the_fully_connected_prediction():
    for weights in ("gaussian", "orthogonal"):
        theory = jacobian_spectrum("tanh", SW2_CRIT, 0.05, 4, weights, num=1000)
        ks = []
        for channels in (16, 128):
            frame = sample_jacobian_spectrum("tanh", SW2_CRIT, 0.05, 4, channels, weights, architecture="conv",
                                             image_size=4, kernel_size=3, rng=0)
            assert len(frame) == channels * 4
            ks.append(theory.ks_distance(frame.lam))
        assert ks[1] < 0.03, weights
        assert ks[1] < ks[0], weights


def test_conv_2d_geometry_and_kernel_variance():
    frame = sample_jacobian_spectrum("tanh", SW2_CRIT, 0.05, 2, 8, "gaussian", architecture="conv",
                                     image_size=(3, 3), kernel_size=3, kernel_variance="delta", rng=1)
    assert len(frame) == 8 * 9
    # a delta kernel makes every spatial position an independent 8-channel fully connected network
    assert np.all(frame.lam > 0)


def test_qr_accumulation_keeps_small_singular_values_accurate():
    # Gaussian tanh network whose eigenvalues span > 25 decades: the largest must agree with the plain product,
    # the smallest with the reciprocals of the largest singular values of the inverse product
    depth, width = 12, 40
    frame = sample_jacobian_spectrum("tanh", SW2_CRIT, 0.05, depth, width, "gaussian", rng=7)
    plain = sample_jacobian_spectrum("tanh", SW2_CRIT, 0.05, depth, width, "gaussian", method="product", rng=7)
    lam, lam_plain = np.sort(frame.lam.to_numpy()), np.sort(plain.lam.to_numpy())
    assert lam[-1] / lam[0] > 1e25
    np.testing.assert_allclose(lam[-10:], lam_plain[-10:], rtol=1e-9)
    # rebuild the same layers to form the inverse product
    act = meanfield.get_activation("tanh")
    rng = np.random.default_rng(7)
    q = meanfield.q_star("tanh", SW2_CRIT, 0.05)
    x = act.phi(rng.standard_normal(width) * math.sqrt(q))
    inverse = np.eye(width)
    for _ in range(depth):
        w = rng.standard_normal((width, width)) * math.sqrt(SW2_CRIT / width)
        h = w @ x + np.repeat(rng.standard_normal(width) * math.sqrt(0.05), 1)
        x = act.phi(h)
        inverse = inverse @ np.linalg.inv(act.dphi(h)[:, None] * w)
    smallest = np.sort(1.0 / np.linalg.svd(inverse, compute_uv=False) ** 2)
    # the inverse product resolves its k-th singular value to about 1e-16 sqrt(lam_k / lam_0) relative
    reliable = smallest <= 1e14 * smallest[0]
    assert reliable.sum() >= 3
    np.testing.assert_allclose(lam[reliable], smallest[reliable], rtol=1e-6)
    assert abs(lam_plain[0] / lam[0] - 1) > 1e-3  # the plain product does not resolve them


def test_sampling_is_reproducible_and_checks_arguments():
    a = sample_jacobian_spectrum("tanh", SW2_CRIT, 0.05, 3, 20, "orthogonal", draws=2, rng=5)
    b = sample_jacobian_spectrum("tanh", SW2_CRIT, 0.05, 3, 20, "orthogonal", draws=2, rng=5)
    assert list(a.columns) == ["draw", "lam", "zero"] and len(a) == 40
    np.testing.assert_array_equal(a.to_numpy(), b.to_numpy())
    with pytest.raises(ValueError, match="architecture"):
        sample_jacobian_spectrum("tanh", 1.0, 0.05, 3, 20, architecture="rnn")
    with pytest.raises(ValueError, match="width"):
        sample_jacobian_spectrum("tanh", 1.0, 0.05, 3, 0)
    with pytest.raises(ValueError, match="kernel_size"):
        sample_jacobian_spectrum("tanh", 1.0, 0.05, 3, 4, "gaussian", architecture="conv", kernel_size=2)
    with pytest.raises(ValueError, match="method"):
        sample_jacobian_spectrum("tanh", 1.0, 0.05, 3, 4, method="svd")


def test_conv_operator_spectrum_approaches_marchenko_pastur():
    samples, law = conv_operator_spectrum(channels=(2, 8, 64), image_size=26, kernel_size=5, rng=0)
    assert set(samples.columns) == {"channels", "matrix", "s"}
    assert list(law.columns) == ["s", "density"]
    assert np.trapezoid(law.density, law.s) == pytest.approx(1.0, abs=2e-3)

    def ks(values):
        s = np.sort(values)
        cdf = np.interp(s, law.s, np.concatenate([[0.0], np.cumsum(np.diff(law.s) * 0.5 *
                                                                      (law.density.to_numpy()[1:] +
                                                                       law.density.to_numpy()[:-1]))]))
        n = s.size
        return max(np.max(np.arange(1, n + 1) / n - cdf), np.max(cdf - np.arange(n) / n))

    conv = [ks(samples[(samples.channels == c) & (samples.matrix == "conv")].s) for c in (2, 8, 64)]
    dense = ks(samples[(samples.channels == 64) & (samples.matrix == "dense")].s)
    assert dense < 0.03
    assert conv[2] < 0.03 and conv[2] < conv[1] < conv[0]
