"""gradnorm probe, ProcResNet transitions and backward-error modulation (papers 000 and 003)."""

import math

import numpy as np
import pandas as pd
import pytest
import torch
from torch import nn

import rmt
from validate.probes.gradnorm import block_gradient_ratios, summarize_gradnorm, train_gradnorm
from validate.probes.modulation import Modulation
from validate.probes.nets import ProcrustesTransition, plain_net, resnet

pytestmark = pytest.mark.usefixtures("one_torch_thread")


def _median_abs_log_ratio(net, seed=0):
    gen = torch.Generator().manual_seed(seed)
    x = torch.randn(32, 1, 8, 8, generator=gen)
    y = torch.randint(0, 10, (32,), generator=gen)
    frame = block_gradient_ratios(net, x, y)
    return float(np.median(np.abs(np.log(frame.ratio.to_numpy())))), frame


def test_identity_skip_blocks_approach_norm_preservation_as_blocks_are_added():
    torch.manual_seed(0)
    devs = [_median_abs_log_ratio(resnet(1, 10, per_stage=n, widths=(16,)))[0] for n in (2, 8, 32)]
    assert devs[0] > devs[1] > devs[2], devs
    assert devs[2] < 0.5 * devs[0]
    _, frame = _median_abs_log_ratio(resnet(1, 10, per_stage=32, widths=(16,)))
    assert (frame.kind == "identity").all()
    # the later blocks of one deep net are closer to 1 than the first ones
    dev = np.abs(np.log(frame.ratio.to_numpy()))
    assert dev[-8:].mean() < dev[:4].mean()


def test_block_ratios_are_norms_of_autograd_gradients():
    torch.manual_seed(1)
    net = plain_net(1, 10, per_stage=1, widths=(4, 8)).double()
    x = torch.randn(6, 1, 8, 8, dtype=torch.float64)
    y = torch.randint(0, 10, (6,))
    frame = block_gradient_ratios(net, x, y)
    # independent: gradient w.r.t. each block's input by re-running the tail of the network from a leaf
    h = net.stem(x)
    for k, block in enumerate(net.blocks):
        leaf = h.detach().requires_grad_(True)
        z = leaf
        for later in net.blocks[k:]:
            z = later(z)
        loss = nn.functional.cross_entropy(net.readout(net.final(z).mean(dim=(2, 3))), y)
        (g,) = torch.autograd.grad(loss, leaf)
        assert frame.grad_in[k] == pytest.approx(float(g.norm()), rel=1e-10)
        h = block(h)


def test_procrustes_keeps_transition_singular_values_at_target_while_training():
    kw = dict(data="digits", per_stage=1, widths=(8, 16), steps=12, record_every=4, batch_size=32, lr=0.1)
    projected = train_gradnorm("procresnet", "l2", procrustes_every=4, **kw)
    assert projected.transition_sv_dev.max() < 1e-5
    # control: without projections during training the singular values leave the target
    drifting = train_gradnorm("procresnet", "l2", procrustes_every=10_000, **kw)
    assert drifting.transition_sv_dev.iloc[-1] > 1e-3


def test_procrustes_transition_operator_singular_values():
    block = ProcrustesTransition(4, 8)
    block.project_()
    s = rmt.conv_singular_values(block.projected.weight.detach().double().numpy(), 5)
    assert np.allclose(s, math.sqrt(2.0), atol=1e-5)


def _chain(kind: str):
    torch.manual_seed(2)
    if kind == "fc":
        layers = []
        for _ in range(5):
            layers += [nn.Linear(12, 12), nn.Tanh()]
        return nn.Sequential(*layers, nn.Linear(12, 3)).double(), torch.randn(7, 12, dtype=torch.float64)
    net = plain_net(1, 3, per_stage=1, widths=(4, 6, 8)).double()
    return net, torch.randn(5, 1, 8, 8, dtype=torch.float64)


@pytest.mark.parametrize("kind", ["fc", "conv-bn-relu"])
@pytest.mark.parametrize("tolerance", [0.0, 0.1])
def test_modulation_leaves_forward_untouched_and_scales_backward_as_specified(kind, tolerance):
    net, x = _chain(kind)
    y = torch.arange(len(x)) % 3
    layers = [m for m in net.modules() if isinstance(m, (nn.Linear, nn.Conv2d))]
    # reference: raw errors and weight gradients by plain autograd
    outs = []
    handles = [m.register_forward_hook(lambda _m, _i, o: outs.append(o)) for m in layers]
    ref_out = net(x)
    loss = nn.functional.cross_entropy(ref_out, y)
    raw = torch.autograd.grad(loss, outs, retain_graph=True)
    raw_w = torch.autograd.grad(loss, [m.weight for m in layers])
    for h in handles:
        h.remove()
    q = [float(g.pow(2).mean()) for g in raw]
    expected = [1.0] * len(layers)
    cumulative = 1.0
    for i in range(len(layers) - 2, -1, -1):
        ratio = q[i + 1] / q[i]
        if abs(math.log(ratio)) > math.log1p(tolerance):
            cumulative *= math.sqrt(ratio)
        expected[i] = cumulative
    with Modulation(net, iterations=1, tolerance=tolerance) as mod:
        out = net(x)
        assert torch.equal(out, ref_out)  # forward untouched
        grads_w = torch.autograd.grad(nn.functional.cross_entropy(out, y), [m.weight for m in layers])
        for g, r, c in zip(grads_w, raw_w, expected, strict=True):
            assert torch.allclose(g, c * r, rtol=1e-10, atol=1e-14)
        mod.step()
        assert not mod.active  # on for the first `iterations` only
        grads_off = torch.autograd.grad(nn.functional.cross_entropy(net(x), y), [m.weight for m in layers])
        for g, r in zip(grads_off, raw_w, strict=True):
            assert torch.allclose(g, r, rtol=1e-12, atol=1e-15)
    if tolerance == 0.0:
        assert any(abs(c - 1.0) > 1e-3 for c in expected)  # the check is not vacuous


def test_modulation_removes_its_hooks():
    net, x = _chain("fc")
    before = net(x)
    mod = Modulation(net)
    mod.remove()
    assert not any(m._forward_hooks for m in net.modules()) and not net._forward_pre_hooks
    assert torch.equal(net(x), before)


def test_modulation_rejects_bad_arguments():
    with pytest.raises(ValueError, match="tolerance"):
        Modulation(nn.Linear(2, 2), tolerance=-1)
    with pytest.raises(ValueError, match="no parametric"):
        Modulation(nn.Tanh())


def test_gradnorm_training_records_ratios_and_theory():
    frame = train_gradnorm("resnet", "orthonormal", data="digits", per_stage=1, widths=(8, 16), steps=4,
                           record_every=2, batch_size=16)
    assert set(frame.step) == {0, 2, 4}
    assert {"ratio", "ratio_theory", "kind", "loss", "test_accuracy", "train_loss", "train_accuracy"} \
        <= set(frame.columns)
    per_step = frame.groupby("step").first()
    assert np.isnan(per_step.train_loss.loc[0]) and np.isfinite(per_step.train_loss.loc[[2, 4]]).all()
    assert per_step.train_accuracy.loc[[2, 4]].between(0, 1).all()
    assert (frame[frame.kind == "identity"].ratio_theory == 1.0).all()
    assert frame[frame.kind == "transition"].ratio_theory.isna().all()
    assert np.isfinite(frame.ratio).all()


@pytest.mark.parametrize("seed", [0, 1])
def test_modulation_keeps_a_deep_plain_net_training_where_the_unmodulated_one_diverges(seed):
    # paper 000 (Sec. "The Rationality of Modulation"): a deep plain Conv-BN-ReLU net with orthonormal init and
    # regulariser diverges, the same net with modulation in the first iterations does not. 73 convolutions: the
    # backward error grows ~1.16x per layer through BN at init (x1e4..1e5 over the net), the first SGD steps blow
    # the lower layers up and the orthonormal penalty overflows; modulation matches the error moments layer by layer.
    kw = dict(data="digits", per_stage=24, widths=(4, 8, 16), steps=6, record_every=3, batch_size=32, lr=0.05,
              modulate_iterations=100, seed=seed)
    plain = train_gradnorm("plain", "orthonormal", **kw)
    modulated = train_gradnorm("plain-modulated", "orthonormal", **kw)
    init_plain, init_mod = plain[plain.step == 0], modulated[modulated.step == 0]
    assert np.prod(init_plain.ratio) > 1e3  # the unmodulated error explodes towards the input
    mid = init_mod[init_mod.kind == "plain"].ratio.to_numpy()
    assert np.median(np.abs(np.log(mid))) < 0.06 and np.prod(init_mod.ratio) < 10  # matched (transitions sqrt 2)
    assert not np.isfinite(plain[plain.step == 6].train_loss).all()
    assert np.isfinite(modulated.train_loss.iloc[len(init_mod):]).all() and np.isfinite(modulated.loss).all()
    summary = summarize_gradnorm(pd.concat([plain, modulated]))
    assert summary["plain/orthonormal"]["diverged"] and not summary["plain-modulated/orthonormal"]["diverged"]
    # a part saved before the training columns existed is summarised without them, not as diverged
    older = summarize_gradnorm(pd.concat([plain, modulated.drop(columns=["train_loss", "train_accuracy"])]))
    assert older["plain/orthonormal"]["diverged"] and "diverged" not in older["plain-modulated/orthonormal"]
