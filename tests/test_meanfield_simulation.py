"""Wide random numpy networks reproduce the mean-field q^l and c^l layer by layer."""

import numpy as np
import pytest

import meanfield as mf


@pytest.mark.parametrize("name,sw2,sb2", [("tanh", 2.5, 0.3), ("relu", 1.8, 0.2)])
def test_finite_width_network_follows_maps(name, sw2, sb2):
    rng = np.random.default_rng(0)
    act = mf.get_activation(name)
    width, depth, nets = 1000, 8, 4
    q0, c0 = 1.5, 0.4
    theory = mf.iterate_maps(act, sw2, sb2, q0, c0, depth)
    q_sim = np.zeros(depth + 1)
    c_sim = np.zeros(depth + 1)
    for _ in range(nets):
        # two inputs whose pre-activations h^0 have squared length q0 per unit and correlation c0
        z = rng.standard_normal((2, width))
        x1 = np.sqrt(q0) * z[0]
        x2 = np.sqrt(q0) * (c0 * z[0] + np.sqrt(1 - c0**2) * z[1])
        h = np.stack([x1, x2])
        for layer in range(depth + 1):
            q = np.mean(h**2, axis=1)
            q_sim[layer] += q.mean() / nets
            c_sim[layer] += np.mean(h[0] * h[1]) / np.sqrt(q[0] * q[1]) / nets
            w = rng.standard_normal((width, width)) * np.sqrt(sw2 / width)
            b = rng.standard_normal(width) * np.sqrt(sb2)
            h = act.phi(h) @ w.T + b
    # sampling error of a mean over width * nets units is ~ sqrt(2/(width*nets)) ~ 2% relative; allow 4 sigma
    assert np.allclose(q_sim[1:], theory.q.to_numpy()[1:], rtol=0.09)
    assert np.allclose(c_sim[1:], theory.c.to_numpy()[1:], atol=0.06)
