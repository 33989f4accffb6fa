"""validate.diagnose: verdicts, chi per layer against meanfield.chi_1, and no mutation of the model."""

import math

import numpy as np
import pytest
import torch
from torch import nn

import meanfield
from validate.diagnostic import VERDICTS, diagnose
from validate.models import FCNet, build_model, init_model_
from validate.probes.nets import resnet

SB2 = 0.05


pytestmark = pytest.mark.usefixtures("one_torch_thread")


def _mlp(sigma_w2, seed, width=128, depth=8):
    net = FCNet(width, width, depth, 10, "tanh").double()
    init_model_(net, sigma_w2, SB2, generator=torch.Generator().manual_seed(seed))
    q = float(meanfield.q_star("tanh", sigma_w2, SB2))
    x = torch.randn(8, width, generator=torch.Generator().manual_seed(100 + seed), dtype=torch.float64)
    x = x / x.pow(2).mean(1, keepdim=True).sqrt() * math.sqrt((q - SB2) / sigma_w2)  # q^1 = q*
    return net, x


CRITICAL = float(meanfield.critical_sigma_w2("tanh", SB2)[0])


@pytest.mark.parametrize("sigma_w2, verdict", [(CRITICAL, "near-critical"), (4.0, "chaotic"), (1.0, "ordered")])
def test_verdicts_on_tanh_mlps(sigma_w2, verdict):
    import validate

    net, x = _mlp(sigma_w2, seed=0)
    d = validate.diagnose(net, x, probes=4)  # the public name the issue spells
    assert d.verdict == verdict, d.text()
    assert d.plain_stack is not None and d.plain_stack["activation"] == "tanh"
    # the sigma_w2 validate.critical_ would set at the estimated sigma_b2
    expected = float(meanfield.critical_sigma_w2("tanh", d.plain_stack["sigma_b2"])[0])
    assert d.plain_stack["critical_sigma_w2"] == pytest.approx(expected, rel=1e-12)
    assert d.plain_stack["sigma_b2"] == pytest.approx(SB2, rel=0.5)
    assert d.plain_stack["sigma_w2"] == pytest.approx(sigma_w2, rel=0.1)
    assert d.spectrum["method"] == "exact" and d.spectrum["size"] == 128
    if verdict != "near-critical":
        assert math.isfinite(d.trainable_depth)
        assert d.trainable_depth == pytest.approx(6 * float(meanfield.xi_c("tanh", sigma_w2, SB2)), rel=0.3)


@pytest.mark.parametrize("sigma_w2", [1.0, CRITICAL, 4.0])
def test_chi_per_layer_matches_meanfield_chi_1(sigma_w2):
    # Monte Carlo over networks: 6 draws x 7 hidden-to-hidden transitions (independent weights per layer)
    draws = [diagnose(*_mlp(sigma_w2, seed), probes=4).layers for seed in range(6)]
    chi = np.stack([d.chi.to_numpy()[:-2] for d in draws])
    expected = float(meanfield.chi_1("tanh", sigma_w2, SB2))
    pooled_se = chi.std(ddof=1) / math.sqrt(chi.size)
    assert abs(chi.mean() - expected) < 4.0 * pooled_se, (chi.mean(), pooled_se, expected)
    per_layer = (chi.mean(axis=0) - expected) / (chi.std(axis=0, ddof=1) / math.sqrt(len(draws)))
    assert np.abs(per_layer).max() < 7.0  # t with 5 dof over 7 layers


def test_chi_control_wrong_prediction_is_rejected():
    draws = [diagnose(*_mlp(1.0, seed), probes=4).layers for seed in range(6)]
    chi = np.stack([d.chi.to_numpy()[:-2] for d in draws])
    wrong = float(meanfield.chi_1("tanh", 1.2, SB2))
    assert abs(chi.mean() - wrong) > 4.0 * 3 * chi.std(ddof=1) / math.sqrt(chi.size)


def _snapshot(model):
    return ({k: v.clone() for k, v in model.state_dict().items()},
            {n: p.requires_grad for n, p in model.named_parameters()}, [m.training for m in model.modules()])


def _assert_unchanged(model, snap):
    state, flags, modes = snap
    now = model.state_dict()
    assert state.keys() == now.keys()
    assert all(torch.equal(state[k], now[k]) for k in state)
    assert flags == {n: p.requires_grad for n, p in model.named_parameters()}
    assert modes == [m.training for m in model.modules()]
    assert all(p.grad is None for p in model.parameters())
    assert not any(m._forward_hooks for m in model.modules())


def test_diagnose_never_mutates_a_batchnorm_resnet():
    torch.manual_seed(0)
    net = resnet(1, 10, per_stage=2, widths=(8, 16))
    net.stem.weight.requires_grad_(False)
    snap = _snapshot(net)
    d = diagnose(net, torch.randn(6, 1, 8, 8), torch.arange(6) % 10, probes=2)
    _assert_unchanged(net, snap)
    assert d.verdict in VERDICTS
    assert d.plain_stack is None
    assert any("normalisation" in r for r in d.cannot_judge)
    assert np.isfinite(d.layers.q).all() and np.isfinite(d.layers.grad_norm).all()


def test_diagnose_vanilla_cnn_and_inplace_relu_stack():
    torch.manual_seed(0)
    cnn = build_model("cnn", depth=4, input_shape=(1, 8, 8), num_classes=10, activation="tanh", channels=8)
    init_model_(cnn, CRITICAL, SB2, generator=torch.Generator().manual_seed(0))
    snap = _snapshot(cnn)
    d = diagnose(cnn, torch.randn(4, 1, 8, 8), probes=2, max_jacobian_size=16)
    _assert_unchanged(cnn, snap)
    assert d.spectrum["method"] == "moments" and d.spectrum["mean_lam"] > 0
    assert any("max_jacobian_size" in r for r in d.cannot_judge)
    # a stack with in-place ReLUs is read as a plain ReLU stack (the copy's ReLUs are made out-of-place)
    relu = nn.Sequential(nn.Linear(16, 32), nn.ReLU(inplace=True), nn.Linear(32, 32), nn.ReLU(inplace=True),
                         nn.Linear(32, 32), nn.ReLU(inplace=True), nn.Linear(32, 4))
    snap = _snapshot(relu)
    d = diagnose(relu, torch.randn(6, 16), probes=2)
    _assert_unchanged(relu, snap)
    assert relu[1].inplace
    assert d.plain_stack is not None and d.plain_stack["activation"] == "relu"


def test_diagnose_residual_mlp_is_not_called_plain():
    class Residual(nn.Module):
        def __init__(self):
            super().__init__()
            self.a, self.b, self.c = nn.Linear(16, 16), nn.Linear(16, 16), nn.Linear(16, 3)

        def forward(self, x):
            h = torch.tanh(self.a(x))
            h = h + torch.tanh(self.b(h))
            return self.c(h)

    d = diagnose(Residual(), torch.randn(4, 16), probes=2)
    assert d.plain_stack is None and any("plain stack" in r for r in d.cannot_judge)


def test_diagnose_rejects_bad_input():
    with pytest.raises(ValueError, match="at least 2"):
        diagnose(nn.Linear(3, 3), torch.randn(1, 3))
    with pytest.raises(TypeError):
        diagnose("model", torch.randn(2, 3))
    with pytest.raises(ValueError, match="no nn.Linear"):
        diagnose(nn.Tanh(), torch.randn(2, 3))
