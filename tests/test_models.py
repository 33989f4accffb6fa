"""Models of the validation experiments: activations compiled to torch, architectures, initialisation statistics."""

import math

import numpy as np
import pytest
import torch

from validate.activations import torch_activation
from validate.data import load_dataset
from validate.models import FCNet, VanillaCNN, build_model, init_model_

pytestmark = pytest.mark.usefixtures("one_torch_thread")


REFERENCES = {
    "tanh": np.tanh,
    "relu": lambda x: np.maximum(x, 0),
    "hard_tanh": lambda x: np.clip(x, -1, 1),
    "leaky_relu(slope=0.1)": lambda x: np.where(x > 0, x, 0.1 * x),
    "elu": lambda x: np.where(x > 0, x, np.expm1(x)),
    "softplus": lambda x: np.log1p(np.exp(x)),
    "linear": lambda x: x,
    "x*tanh(x)": lambda x: x * np.tanh(x),
    "sqrt(2)*sin(x) + x/3": lambda x: math.sqrt(2) * np.sin(x) + x / 3,
    "exp(-x**2/2)": lambda x: np.exp(-(x**2) / 2),
}


@pytest.mark.parametrize("spec", sorted(REFERENCES))
def test_torch_activation_values_and_gradients(spec):
    x = np.linspace(-4.0, 4.0, 81) + 0.013  # avoid the kinks themselves
    f = torch_activation(spec)
    t = torch.tensor(x, dtype=torch.float64, requires_grad=True)
    y = f(t)
    assert np.allclose(y.detach().numpy(), REFERENCES[spec](x), rtol=1e-12, atol=1e-12)
    y.sum().backward()
    h = 1e-6
    numeric = (REFERENCES[spec](x + h) - REFERENCES[spec](x - h)) / (2 * h)
    assert np.allclose(t.grad.numpy(), numeric, rtol=1e-6, atol=1e-6)
    assert f(torch.zeros(3, dtype=torch.float32)).dtype == torch.float32


def test_torch_activation_rejects_expressions_torch_cannot_evaluate():
    with pytest.raises(ValueError):
        torch_activation("x*tanh(y)")


def _gauss_expectation(f, q, n=200):
    z, w = np.polynomial.hermite_e.hermegauss(n)
    return float(np.sum(w * f(np.sqrt(q) * z)) / np.sqrt(2 * np.pi))


@pytest.mark.parametrize("init", ["gaussian", "orthogonal"])
def test_fc_preactivation_variance_follows_length_map(init):
    """Wide FC nets on standardised inputs: the empirical q^l matches the mean-field length map started from
    q^1 = sw2 + sb2 (the input convention of validate.data), q^{l+1} = sw2 E[tanh(sqrt(q^l) z)^2] + sb2."""
    sw2, sb2, width, depth, seeds = 2.0, 0.3, 512, 6, 8
    data = load_dataset("synthetic")
    x0 = torch.tensor(data.x_train[:256]).flatten(1)
    q_model = np.zeros(depth)
    for seed in range(seeds):
        net = build_model("fc", depth=depth, input_shape=data.input_shape, num_classes=4, width=width).double()
        init_model_(net, sw2, sb2, init=init, generator=torch.Generator().manual_seed(seed))
        x = x0
        with torch.no_grad():
            for l, layer in enumerate(net.hidden):
                h = layer(x)
                q_model[l] += float((h**2).mean()) / seeds
                x = torch.tanh(h)
    q_theory = [sw2 + sb2]
    for _ in range(depth - 1):
        q_theory.append(sw2 * _gauss_expectation(lambda u: np.tanh(u) ** 2, q_theory[-1]) + sb2)
    # one network's estimate fluctuates by about sqrt(2 / width) = 6 % (weights and biases are shared by all inputs);
    # the mean of 8 networks by about 2 %. A fan-in convention error would be off by a factor (e.g. 32/512).
    assert np.allclose(q_model, q_theory, rtol=0.07), (q_model, q_theory)


def test_gaussian_and_orthogonal_weight_statistics():
    sw2, sb2 = 1.7, 0.2
    net = FCNet(256, 256, 2, 10).double()
    init_model_(net, sw2, sb2, init="gaussian", generator=torch.Generator().manual_seed(1))
    w = net.hidden[1].weight.detach().numpy()
    assert abs(w.var() * 256 / sw2 - 1) < 0.02  # 65536 samples: std error 0.6 %
    biases = torch.cat([m.bias for m in net.hidden]).detach().numpy()
    assert abs(biases.var() / sb2 - 1) < 0.3  # 512 samples
    init_model_(net, sw2, sb2, init="orthogonal", generator=torch.Generator().manual_seed(1))
    w = net.hidden[1].weight.detach().double()
    assert torch.allclose(w @ w.T, sw2 * torch.eye(256, dtype=torch.float64), atol=1e-10)


def test_cnn_shapes_and_circular_deep_block():
    net = build_model("cnn", depth=3, input_shape=(1, 28, 28), num_classes=10, channels=8)
    assert isinstance(net, VanillaCNN)
    sizes = []
    for conv in [*net.stem, *net.block]:
        conv.register_forward_hook(lambda _m, _i, out: sizes.append(tuple(out.shape[1:])))
    out = net(torch.zeros(5, 1, 28, 28))
    assert out.shape == (5, 10)
    assert sizes == [(8, 28, 28), (8, 14, 14), (8, 7, 7)] + [(8, 7, 7)] * 3
    assert all(c.padding_mode == "circular" for c in net.block)
    assert all(c.stride == (1, 1) for c in net.block)
    # circular padding: a deep-block conv commutes with cyclic shifts of its input
    x = torch.randn(2, 8, 7, 7)
    conv = net.block[0]
    with torch.no_grad():
        assert torch.allclose(conv(torch.roll(x, (2, 3), dims=(2, 3))), torch.roll(conv(x), (2, 3), dims=(2, 3)),
                              atol=1e-6)


def test_cnn_gaussian_kernel_variance_vectors():
    sw2, c = 2.0, 64
    net = build_model("cnn", depth=4, input_shape=(1, 8, 8), num_classes=10, channels=c).double()
    init_model_(net, sw2, 0.0, kernel="uniform", generator=torch.Generator().manual_seed(2))
    w = torch.stack([conv.weight for conv in net.block]).detach().numpy()  # (4, c, c, 3, 3)
    per_tap = w.var(axis=(0, 1, 2)) * c / sw2  # v_beta, 16384 samples each: std error 1.1 %
    assert np.allclose(per_tap, 1 / 9, rtol=0.06)
    assert all(float(conv.bias.detach().abs().max()) == 0.0 for conv in net.block)
    init_model_(net, sw2, 0.0, kernel="delta", generator=torch.Generator().manual_seed(2))
    w = torch.stack([conv.weight for conv in net.block]).detach().numpy()
    mask = np.ones((3, 3), bool)
    mask[1, 1] = False
    assert np.all(w[..., mask] == 0)
    assert abs(w[..., 1, 1].var() * c / sw2 - 1) < 0.03


@pytest.mark.parametrize("init", ["orthogonal", "delta-orthogonal"])
def test_cnn_orthogonal_inits_are_isometric(init):
    """With circular padding an orthogonal conv kernel scaled by sqrt(sw2) multiplies every input norm by sqrt(sw2)."""
    sw2, c = 1.5, 8
    net = build_model("cnn", depth=2, input_shape=(1, 8, 8), num_classes=10, channels=c).double()
    init_model_(net, sw2, 0.0, init=init, generator=torch.Generator().manual_seed(3))
    conv = net.block[0]
    x = torch.randn(4, c, 7, 7, dtype=torch.float64)
    with torch.no_grad():
        y = conv(x)
    ratio = (y**2).sum(dim=(1, 2, 3)) / (x**2).sum(dim=(1, 2, 3))
    assert torch.allclose(ratio, torch.full_like(ratio, sw2), rtol=1e-9)
    if init == "delta-orthogonal":
        w = conv.weight.detach()
        assert float(w[:, :, 0, 0].abs().max()) == 0.0


def test_float64_and_bad_arguments():
    net = build_model("fc", depth=2, input_shape=(32,), num_classes=4, width=8).to(torch.float64)
    init_model_(net, 1.0, 0.0, generator=torch.Generator().manual_seed(0))
    assert all(p.dtype == torch.float64 for p in net.parameters())
    with pytest.raises(ValueError, match="model"):
        build_model("rnn", depth=2, input_shape=(32,), num_classes=4)
    with pytest.raises(ValueError, match="cnn"):
        build_model("cnn", depth=2, input_shape=(32,), num_classes=4)
    with pytest.raises(ValueError, match="depth"):
        build_model("fc", depth=0, input_shape=(32,), num_classes=4)
    with pytest.raises(ValueError, match="sigma_w2"):
        init_model_(net, 0.0, 0.0)
    with pytest.raises(ValueError, match="sigma_b2"):
        init_model_(net, 1.0, -1.0)
    with pytest.raises(ValueError, match="init"):
        init_model_(net, 1.0, 0.0, init="xavier")
