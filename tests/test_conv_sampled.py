"""The CNN covariance map against sampled finite random CNNs (numpy, circular padding, many channels).

The mean over independent networks of the empirical spatial covariance must match ``propagate_covariance`` layer by
layer within sampling error: z-scores use the standard error estimated from the spread over draws. Negative controls
(the same samples against the theory for a different kernel) show that the checks have the power to fail.
"""

import numpy as np
import pytest
from test_conv_meanfield import S4, figure_s4_input, random_covariance

from meanfield.conv import (
    cyclic_diagonal_modes,
    fourier_depth_scales,
    propagate_covariance,
    sample_conv_covariance,
)
from meanfield.kernels import kernel_variance


def zscores(samples, theory):
    """(mean over draws - theory) / standard error, for every layer >= 1 and entry."""
    draws = samples.shape[0]
    mean = samples.mean(axis=0)
    se = samples.std(axis=0, ddof=1) / np.sqrt(draws)
    return ((mean - theory) / se)[1:]


def assert_within_sampling_error(z, max_abs=5.5, max_mean_square=2.5):
    # entries are strongly correlated, so the mean of z^2 fluctuates more than for independent ones; with a correct
    # theory it is ~1 (t-distributed z with few draws: slightly above 1)
    assert np.abs(z).max() < max_abs, np.abs(z).max()
    assert (z**2).mean() < max_mean_square, (z**2).mean()


@pytest.mark.parametrize(
    "activation, kernel, ndim, n, sigma_w2, sigma_b2, other",
    [
        ("tanh", "uniform", 1, 6, 1.6, 0.1, "delta"),
        ("erf", "delta", 1, 6, 2.25, 0.25, "uniform"),
        ("tanh", "delta", 2, 4, 1.2, 0.05, "uniform"),
        ("erf", "uniform", 2, 4, 2.0, 0.1, "delta"),
    ],
)
def test_sampled_cnn_covariance_matches_mean_field(activation, kernel, ndim, n, sigma_w2, sigma_b2, other):
    rng = np.random.default_rng(10)
    S0 = random_covariance(n**ndim, rng)
    v = kernel_variance(kernel, 3, ndim)
    depth = 3
    samples = sample_conv_covariance(S0, activation, sigma_w2, sigma_b2, v, depth, channels=256, draws=16, rng=11)
    assert samples.shape == (16, depth + 1, n**ndim, n**ndim)
    theory = propagate_covariance(S0, activation, sigma_w2, sigma_b2, v, depth)
    assert_within_sampling_error(zscores(samples, theory))
    # negative control: the same samples reject the covariance map of another kernel
    wrong = propagate_covariance(S0, activation, sigma_w2, sigma_b2, kernel_variance(other, 3, ndim), depth)
    assert (zscores(samples, wrong) ** 2).mean() > 10


def test_sampled_cnn_two_dimensional_square_layout_and_stacking():
    rng = np.random.default_rng(12)
    n = 3
    S0 = random_covariance(n * n, rng)
    v = kernel_variance("GS2", 3, 2)
    flat = sample_conv_covariance(S0, "tanh", 1.5, 0.1, v, 2, channels=32, draws=2, rng=13)
    square = sample_conv_covariance(S0.reshape(n, n, n, n), "tanh", 1.5, 0.1, v, 2, channels=32, draws=2, rng=13)
    np.testing.assert_allclose(square.reshape(flat.shape), flat, rtol=1e-12, atol=1e-14)
    stacked = sample_conv_covariance(np.stack([S0, S0]), "tanh", 1.5, 0.1, v, 2, channels=32, draws=2, rng=13)
    assert stacked.shape == (2, 3, 2, n * n, n * n)
    np.testing.assert_allclose(stacked[:, :, 0], stacked[:, :, 1], rtol=1e-12, atol=1e-14)
    np.testing.assert_allclose(stacked[:, :, 0], flat, rtol=1e-12, atol=1e-14)  # same draws, same networks
    with pytest.raises(ValueError, match="channels"):
        sample_conv_covariance(S0, "tanh", 1.5, 0.1, v, 2, channels=0)
    with pytest.raises(TypeError, match="draws"):
        sample_conv_covariance(S0, "tanh", 1.5, 0.1, v, 2, draws=1.5)


def figure_s4_samples(scale, depth, channels, draws, rng):
    """Modes of the first cyclic diagonal of eps^l = Sigma*^l - Sigma^l per draw, from common random numbers."""
    S0, star, _ = figure_s4_input(scale)
    args = (S4["activation"], S4["sigma_w2"], S4["sigma_b2"], S4["v"], depth)
    samples = sample_conv_covariance(np.stack([star, S0]), *args, channels=channels, draws=draws, rng=rng)
    sampled = cyclic_diagonal_modes(samples[:, :, 0] - samples[:, :, 1])[:, :, 1].real  # (draws, layer, k)
    exact = cyclic_diagonal_modes(star - propagate_covariance(S0, *args))[:, 1].real  # (layer, k)
    return sampled, exact


def fitted_depth_scales(modes):
    """-1/slope of log|mode| against layer, per mode (least squares over all layers)."""
    layers = np.arange(modes.shape[0])
    slopes = np.polyfit(layers, np.log(np.abs(modes)), 1)[0]
    return -1.0 / slopes


def jackknife_error(sampled):
    """Jackknife standard error of fitted_depth_scales(mean over draws)."""
    draws = sampled.shape[0]
    total = sampled.sum(axis=0)
    leave_one_out = np.array([fitted_depth_scales((total - s) / (draws - 1)) for s in sampled])
    return np.sqrt((draws - 1) * leave_one_out.var(axis=0))


def test_figure_s4_setting_sampled_modes_follow_the_exact_iteration():
    sampled, exact = figure_s4_samples(1.0, depth=6, channels=256, draws=32, rng=14)
    mean = sampled.mean(axis=0)
    se = sampled.std(axis=0, ddof=1) / np.sqrt(sampled.shape[0])
    z = ((mean - exact) / se)[1:]
    assert_within_sampling_error(z)
    # the decay rate of each mode matches the exact iteration's within sampling error (jackknife over draws)
    fitted, error = fitted_depth_scales(mean), jackknife_error(sampled)
    assert np.all(np.abs(fitted - fitted_depth_scales(exact)) < 4 * error), (fitted, fitted_depth_scales(exact), error)
    # negative control: a uniform kernel would make the modes decay at other rates; the samples reject it
    S0, star, _ = figure_s4_input()
    other = star - propagate_covariance(S0, S4["activation"], S4["sigma_w2"], S4["sigma_b2"], [1 / 3] * 3, 6)
    z_other = ((mean - cyclic_diagonal_modes(other)[:, 1].real) / se)[1:]
    assert (z_other**2).mean() > 10


@pytest.mark.slow
def test_figure_s4_sampled_decay_rates_agree_with_predicted_depth_scales():
    # a deviation 0.3 x the paper's keeps the nonlinearity small, so the rates approach -1/log(chi_c lambda_k)
    depth = 12
    sampled, exact = figure_s4_samples(0.3, depth=depth, channels=512, draws=96, rng=15)
    mean = sampled.mean(axis=0)
    se = sampled.std(axis=0, ddof=1) / np.sqrt(sampled.shape[0])
    assert_within_sampling_error(((mean - exact) / se)[1:])
    predicted = fourier_depth_scales(S4["activation"], S4["sigma_w2"], S4["sigma_b2"], S4["v"], S4["n"]).xi
    fitted, error = fitted_depth_scales(mean), jackknife_error(sampled)
    assert np.all(np.abs(fitted - predicted) < 4 * error + 0.06 * predicted), (fitted, predicted, error)


@pytest.mark.slow
@pytest.mark.parametrize("activation, kernel, ndim, n", [("tanh", "GS2", 2, 6), ("erf", "GS1", 1, 12)])
def test_sampled_cnn_deeper_and_larger(activation, kernel, ndim, n):
    rng = np.random.default_rng(16)
    S0 = random_covariance(n**ndim, rng)
    v = kernel_variance(kernel, 3, ndim)
    samples = sample_conv_covariance(S0, activation, 1.8, 0.1, v, 8, channels=512, draws=24, rng=17)
    theory = propagate_covariance(S0, activation, 1.8, 0.1, v, 8)
    assert_within_sampling_error(zscores(samples, theory))
