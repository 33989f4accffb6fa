"""signal probe: empirical q^l, c^l of torch networks agree with the mean-field maps within the reported error."""

import numpy as np
import pytest

import meanfield
from validate.probes.signal import correlated_pair, signal_cnn, signal_fc, signal_width_sweep

pytestmark = pytest.mark.usefixtures("one_torch_thread")

Z_MAX = 4.5  # a dozen comparisons per run: |z| beyond 4.5 has probability ~1e-4 under the null


def test_correlated_pair_has_requested_length_and_correlation():
    pair = correlated_pair(50, -0.3, rng=1)
    assert np.allclose((pair**2).mean(axis=1), 1.0)
    assert np.isclose(pair[0] @ pair[1] / 50, -0.3)


@pytest.mark.parametrize("activation, sigma_w2, sigma_b2, init", [
    ("tanh", None, 0.05, "gaussian"),      # critical
    ("tanh", 3.0, 0.1, "orthogonal"),     # chaotic, orthogonal weights: same mean-field maps
    ("relu", 1.5, 0.1, "gaussian"),
])
def test_fc_signal_matches_iteration_within_reported_error(activation, sigma_w2, sigma_b2, init):
    frame = signal_fc(activation, sigma_w2, sigma_b2, depth=6, width=128, draws=24, init=init, seed=3)
    assert list(frame.columns[:8]) == ["layer", "width", "q_theory", "q_sampled", "q_stderr", "c_theory",
                                       "c_sampled", "c_stderr"]
    assert (frame.q_stderr > 0).all() and (frame.c_stderr > 0).all()
    assert frame.q_z.abs().max() < Z_MAX, frame
    assert frame.c_z.abs().max() < Z_MAX, frame
    # the theory column is meanfield.iterate_maps itself (from the first layer's q, c)
    first = frame.iloc[0]
    ref = meanfield.iterate_maps(activation, frame.attrs["sigma_w2"], sigma_b2, first.q_theory, first.c_theory, 5)
    assert np.allclose(ref.q, frame.q_theory) and np.allclose(ref.c, frame.c_theory)


def test_fc_signal_negative_control_wrong_sigma_w2_fails():
    crit = float(meanfield.critical_sigma_w2("tanh", 0.05)[0])
    right = signal_fc("tanh", crit, 0.05, depth=6, width=128, draws=24, seed=4)
    wrong = signal_fc("tanh", 1.3 * crit, 0.05, depth=6, width=128, draws=24, seed=4)
    z = (wrong.q_sampled - right.q_theory) / wrong.q_stderr
    assert z.abs().max() > 3 * Z_MAX


def test_fc_signal_rejects_unequal_inputs():
    pair = correlated_pair(20, 0.2, rng=0)
    pair[1] *= 2
    with pytest.raises(ValueError, match="equal"):
        signal_fc("tanh", 1.5, 0.0, depth=2, width=8, draws=2, inputs=pair)


def test_width_sweep_gap_closes_like_inverse_sqrt_width():
    frame = signal_width_sweep((32, 128, 512), activation="tanh", sigma_w2=2.0, sigma_b2=0.05, depth=4, draws=10,
                               seed=1)
    assert -0.8 < frame.attrs["q_slope"] < -0.3
    assert -0.8 < frame.attrs["c_slope"] < -0.3


@pytest.mark.parametrize("activation, sigma_w2, sigma_b2, init", [
    ("tanh", None, 0.05, "gaussian"),
    ("relu", 1.8, 0.1, "gaussian"),
    ("tanh", 2.5, 0.05, "delta-orthogonal"),
])
def test_cnn_signal_matches_propagate_covariance(activation, sigma_w2, sigma_b2, init):
    image = np.random.default_rng(0).standard_normal((2, 6, 6))
    frame = signal_cnn(activation, sigma_w2, sigma_b2, depth=4, channels=32, draws=12, init=init, image=image, seed=2)
    assert frame.q_z.abs().max() < Z_MAX, frame
    assert frame.c_z.abs().max() < Z_MAX, frame
    assert frame.cov_max_z.max() < 7.0, frame  # max over ~670 entries, t-distributed with 11 dof


def test_cnn_signal_negative_control():
    image = np.random.default_rng(0).standard_normal((2, 6, 6))
    right = signal_cnn("tanh", 1.5, 0.05, depth=3, channels=32, draws=12, image=image, seed=2)
    wrong = signal_cnn("tanh", 2.0, 0.05, depth=3, channels=32, draws=12, image=image, seed=2)
    assert ((wrong.q_sampled - right.q_theory) / wrong.q_stderr).abs().max() > 3 * Z_MAX


def test_cnn_signal_rejects_algorithm1_orthogonal():
    with pytest.raises(ValueError, match="init"):
        signal_cnn("tanh", 1.5, 0.0, depth=1, channels=4, draws=2, init="orthogonal")


def test_fc_signal_with_two_inputs_from_the_data():
    frame = signal_fc("tanh", 2.0, 0.05, depth=4, width=96, draws=16, data="digits", seed=5)
    assert frame.attrs["q0"] == pytest.approx(1.0)  # standardised examples: q^0 = 1
    assert -1 < frame.attrs["c0"] < 1
    assert frame.q_z.abs().max() < Z_MAX and frame.c_z.abs().max() < Z_MAX
