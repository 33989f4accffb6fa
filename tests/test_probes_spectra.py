"""spectra probe: Jacobians of real torch networks against rmt.jacobian_spectrum."""

import numpy as np
import pytest

from validate.probes.spectra import network_spectrum, spectra

pytestmark = pytest.mark.usefixtures("one_torch_thread")


@pytest.mark.parametrize("architecture, init", [("fc", "orthogonal"), ("cnn", "orthogonal"),
                                                ("cnn", "delta-orthogonal")])
def test_linear_orthogonal_network_is_an_isometry(architecture, init):
    lam = network_spectrum("linear", 1.0, 0.0, depth=6, architecture=architecture, width=24 if architecture == "fc"
                           else 4, image_size=5, init=init, seed=1)["lam"].to_numpy()
    assert np.allclose(lam, 1.0, rtol=0, atol=1e-10)


def test_linear_orthogonal_summary_has_zero_ks_distance():
    frame = spectra("linear", 1.0, 0.0, depth=4, settings=[("fc", "orthogonal")], width=16, draws=1)
    row = frame.iloc[0]
    assert row.ks_distance == 0.0 and row.condition_number == pytest.approx(1.0)


def test_critical_tanh_ks_distance_shrinks_with_width():
    small = spectra("tanh", None, 0.05, depth=8, settings=[("fc", "orthogonal")], width=24, draws=3, seed=5)
    large = spectra("tanh", None, 0.05, depth=8, settings=[("fc", "orthogonal")], width=256, draws=3, seed=5)
    assert large.ks_distance.iloc[0] < small.ks_distance.iloc[0]
    assert large.ks_distance.iloc[0] < 0.06
    # sampled moments near the law's (mean chi^L = 1 at criticality)
    assert large.mean_sampled.iloc[0] == pytest.approx(large.mean_theory.iloc[0], rel=0.25)


def test_gaussian_cnn_compared_with_gaussian_law():
    frame = spectra("tanh", None, 0.05, depth=3, settings=[("cnn", "gaussian")], channels=6, image_size=5, draws=1)
    assert frame.weights.iloc[0] == "gaussian"
    assert 0 <= frame.ks_distance.iloc[0] < 0.2


def test_spectra_rejects_bad_settings():
    with pytest.raises(ValueError, match="architecture"):
        spectra("tanh", settings=[("rnn", "gaussian")])
