"""Rectangular layers and per-layer parameters (rmt.layers): closed forms and sampled networks of the same widths."""

import math

import numpy as np
import pytest

import rmt
from rmt.layers import network_layers

# (activation, sigma_w2, sigma_b2, width ratios n_0..n_L, weights)
CASES = [
    (["tanh", "relu", "erf"], [1.8, 2.0, 1.5], [0.05, 0.1, 0.0], [1, 1, 1, 1], "gaussian"),
    ("tanh", 1.8, 0.05, [1, 1.5, 0.75, 1.25], "gaussian"),
    ("relu", 2.0, 0.05, [1, 1.5, 2.0], "orthogonal"),
    ("linear", [1.0, 2.0, 0.5], 0.0, [3, 2, 4, 1.5], "gaussian"),
    (["relu", "tanh"], [2.0, 1.2], 0.05, [2, 1, 1.5], "orthogonal"),
]


@pytest.mark.parametrize("ratios", [[3, 2, 4, 1.5], [1, 2], [2, 1], [1, 0.5, 2, 1, 3]])
@pytest.mark.parametrize("sigma_w2", [1.0, 2.5])
def test_linear_gaussian_rectangular_moments(ratios, sigma_w2):
    # products of rectangular Gaussian matrices (entries N(0, sigma_w2 / n_in)): E lam = sigma_w2^L and
    # E lam^2 = sigma_w2^(2L) (1 + sum_{l=0}^{L-1} n_L / n_l) (L = 1: Marchenko-Pastur, sigma^4 (1 + n_1 / n_0))
    depth = len(ratios) - 1
    law = rmt.jacobian_spectrum("linear", sigma_w2, 0.0, depth, "gaussian", widths=ratios, num=3000)
    n = np.asarray(ratios, dtype=float)
    u = np.log(law.lam)
    f = law.density * law.lam
    atom = sum(m for _, m in law.atoms)
    assert atom == pytest.approx(max(0.0, 1 - n.min() / n[-1]), abs=1e-12)
    assert np.trapezoid(f, u) + atom + law.tail_mass == pytest.approx(1.0, abs=1e-3)
    assert law.mean == pytest.approx(sigma_w2**depth, rel=1e-12)
    assert np.trapezoid(f * law.lam, u) == pytest.approx(sigma_w2**depth, rel=2e-3)
    m2 = sigma_w2 ** (2 * depth) * (1 + np.sum(n[-1] / n[:-1]))
    assert np.trapezoid(f * law.lam**2, u) == pytest.approx(m2, rel=3e-3)
    if depth == 1:  # Marchenko-Pastur upper edge sigma_w2 (1 + sqrt(y))^2, y = n_1 / n_0
        assert law.support[1] == pytest.approx(sigma_w2 * (1 + math.sqrt(n[1] / n[0])) ** 2, rel=1e-10)


@pytest.mark.parametrize("activation,sigma_w2,sigma_b2,ratios,weights",
                         CASES[:2] + [pytest.param(*case, marks=pytest.mark.slow) for case in CASES[2:]])
def test_layered_law_matches_sampled_networks(activation, sigma_w2, sigma_b2, ratios, weights):
    depth = len(ratios) - 1
    law = rmt.jacobian_spectrum(activation, sigma_w2, sigma_b2, depth, weights, widths=ratios, num=1000)
    assert np.all(np.isfinite(law.density)) and np.all(law.density >= 0)
    ks = []
    for scale in (100, 400):
        dims = [int(round(scale * r)) for r in ratios]
        frame = rmt.sample_jacobian_spectrum(activation, sigma_w2, sigma_b2, depth, None, weights, widths=dims,
                                             draws=2, rng=0)
        assert len(frame) == 2 * dims[-1]
        ks.append(law.ks_distance(frame))
    assert ks[1] < 0.05
    assert ks[1] < 0.85 * ks[0]  # converges with width


def test_uniform_sequences_take_the_square_solver():
    a = rmt.jacobian_spectrum(["tanh"] * 5, [1.5] * 5, 0.05, 5, "orthogonal", widths=[7] * 6, num=300)
    b = rmt.jacobian_spectrum("tanh", 1.5, 0.05, 5, "orthogonal", num=300)
    np.testing.assert_array_equal(a.density, b.density)


def test_layer_variances_follow_the_length_map():
    layers = network_layers(["tanh", "relu"], [1.5, 2.0], [0.1, 0.2], 2, "gaussian", widths=[1, 2, 1])
    q0 = layers.q[0]
    assert q0 == pytest.approx(rmt.fixed_point_variance("tanh", 1.5, 0.1)[0], rel=1e-12)
    # q_1 = 1.5 E[tanh(h0)^2] + 0.1 at the fixed point: = q0
    assert layers.q[1] == pytest.approx(q0, rel=1e-10)
    # q_2 = 2 E[tanh(h1)^2] + 0.2 (phi_{l-1} feeds layer l)
    h = np.linspace(-12, 12, 200001) * math.sqrt(layers.q[1])
    pdf = np.exp(-h**2 / (2 * layers.q[1])) / math.sqrt(2 * math.pi * layers.q[1])
    second = np.trapezoid(np.tanh(h) ** 2 * pdf, h)
    assert layers.q[2] == pytest.approx(2.0 * second + 0.2, rel=1e-8)


@pytest.mark.parametrize("kwargs,match", [
    (dict(widths=[1, 2]), "widths"),
    (dict(widths=[1, -1, 2, 3]), "widths"),
    (dict(activation=["tanh", "relu"]), "activation"),
    (dict(sigma_w2=[1.0, 2.0, -1.0]), "sigma_w2"),
    (dict(sigma_b2=[0.0, np.nan, 0.0]), "sigma_b2"),
])
def test_layer_descriptions_are_checked(kwargs, match):
    args = dict(activation="tanh", sigma_w2=1.5, sigma_b2=0.05, depth=3, weights="gaussian", widths=[1, 2, 1, 1])
    args.update(kwargs)
    with pytest.raises(ValueError, match=match):
        rmt.jacobian_spectrum(**args)
