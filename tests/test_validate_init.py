"""Torch face of the norm-preserving initialisers (validate/init.py)."""

import math
import warnings

import numpy as np
import pytest

torch = pytest.importorskip("torch")
F = torch.nn.functional

import rmt  # noqa: E402
from validate import (  # noqa: E402
    conv_orthogonal_,
    critical_,
    delta_orthogonal_,
    orthonormal_,
    orthonormal_penalty,
    procrustes_,
)

CONV = {1: F.conv1d, 2: F.conv2d, 3: F.conv3d}


def _norm_ratio(weight: torch.Tensor, n: int, dtype=torch.float64) -> np.ndarray:
    ndim = weight.dim() - 2
    x = torch.randn(6, weight.shape[1], *(n,) * ndim, generator=torch.Generator().manual_seed(1), dtype=dtype)
    pad = [weight.shape[-1] // 2] * 2 * ndim
    y = CONV[ndim](F.pad(x, pad, mode="circular"), weight.to(dtype))
    return (y.flatten(1).norm(dim=1) / x.flatten(1).norm(dim=1)).numpy()


@pytest.mark.parametrize("init", [delta_orthogonal_, conv_orthogonal_])
@pytest.mark.parametrize("shape", [(8, 8, 3), (8, 4, 3, 3), (6, 6, 5, 5), (4, 3, 3, 3, 3)])
def test_torch_conv_preserves_norm(init, shape):
    weight = torch.empty(shape, dtype=torch.float64)
    out = init(weight, gain=1.4, generator=torch.Generator().manual_seed(0))
    assert out is weight
    np.testing.assert_allclose(_norm_ratio(weight, 9), 1.4, rtol=1e-12)
    np.testing.assert_allclose(rmt.conv_singular_values(weight.numpy(), 7), 1.4, rtol=0, atol=1e-12)


def test_float32_module_weight_and_nn_conv2d():
    layer = torch.nn.Conv2d(16, 16, 3, padding=1, padding_mode="circular", bias=False)
    conv_orthogonal_(layer.weight, generator=torch.Generator().manual_seed(2))
    x = torch.randn(4, 16, 12, 12, generator=torch.Generator().manual_seed(3))
    with torch.no_grad():
        ratio = layer(x).flatten(1).norm(dim=1) / x.flatten(1).norm(dim=1)
    np.testing.assert_allclose(ratio.numpy(), 1.0, rtol=1e-5)
    assert layer.weight.dtype == torch.float32 and layer.weight.requires_grad


def test_generator_reproducibility_and_global_seed():
    a = conv_orthogonal_(torch.empty(4, 4, 3, 3), generator=torch.Generator().manual_seed(5))
    b = conv_orthogonal_(torch.empty(4, 4, 3, 3), generator=torch.Generator().manual_seed(5))
    c = conv_orthogonal_(torch.empty(4, 4, 3, 3), generator=torch.Generator().manual_seed(6))
    assert torch.equal(a, b) and not torch.equal(a, c)
    torch.manual_seed(9)
    d = delta_orthogonal_(torch.empty(4, 4, 3))
    torch.manual_seed(9)
    assert torch.equal(d, delta_orthogonal_(torch.empty(4, 4, 3)))


def test_delta_orthogonal_is_zero_off_centre():
    w = delta_orthogonal_(torch.empty(5, 3, 5, 5, dtype=torch.float64), gain=0.5)
    centre = w[:, :, 2, 2].clone()
    w[:, :, 2, 2] = 0
    assert torch.count_nonzero(w) == 0
    np.testing.assert_allclose((centre.T @ centre).numpy(), 0.25 * np.eye(3), atol=1e-14)


def test_orthonormal_():
    w = orthonormal_(torch.empty(8, 4, 3, 3, dtype=torch.float64), generator=torch.Generator().manual_seed(0))
    m = w.reshape(8, -1)
    np.testing.assert_allclose((m @ m.T).numpy(), np.eye(8), atol=1e-13)
    w = orthonormal_(torch.empty(10, 3, dtype=torch.float64))  # f_in < f_out: groups of 3
    np.testing.assert_allclose((w[:3] @ w[:3].T).numpy(), np.eye(3), atol=1e-13)


class _Net(torch.nn.Module):
    def __init__(self):
        super().__init__()
        self.conv1 = torch.nn.Conv2d(3, 16, 3, padding=1, padding_mode="circular")
        self.conv2 = torch.nn.Conv2d(16, 16, 3, padding=1, padding_mode="circular")
        self.bn = torch.nn.BatchNorm2d(16)
        self.fc = torch.nn.Linear(16, 10)


@pytest.mark.parametrize("init", ["gaussian", "orthogonal", "delta_orthogonal"])
def test_critical_sets_the_tanh_critical_point(init):
    """tanh at sigma_b2 = 0.05 is critical at sigma_w2 = 1.7609546... (reference value, docs/formulas.md)."""
    sw2 = 1.7609546
    net = critical_(_Net().double(), "tanh", sigma_b2=0.05, init=init, generator=torch.Generator().manual_seed(0))
    assert isinstance(net, _Net)
    biases = torch.cat([net.conv1.bias, net.conv2.bias, net.fc.bias]).detach().numpy()
    assert abs(np.var(biases) / 0.05 - 1) < 0.6  # 42 draws of N(0, 0.05)
    assert torch.equal(net.bn.weight, torch.ones(16))  # other modules untouched
    fc = net.fc.weight.detach().numpy()
    w2 = net.conv2.weight.detach().numpy()
    if init == "gaussian":
        big = critical_(torch.nn.Linear(400, 300).double(), "tanh", sigma_b2=0.05,
                        generator=torch.Generator().manual_seed(1))
        var = big.weight.detach().var().item() * 400
        assert abs(var / sw2 - 1) < 0.02  # 120000 draws: relative error of the variance about 0.4 %
        var_conv = np.var(w2) * 16 * 9
        assert abs(var_conv / sw2 - 1) < 0.1  # 2304 draws
    else:
        np.testing.assert_allclose(fc @ fc.T, sw2 * np.eye(10), rtol=0, atol=1e-6)
        for w in (net.conv1.weight.detach().numpy(), w2):
            np.testing.assert_allclose(rmt.conv_singular_values(w, 6), math.sqrt(sw2), rtol=0, atol=1e-6)
        if init == "delta_orthogonal":
            assert np.count_nonzero(w2[:, :, [0, 2], :]) == 0 and np.count_nonzero(w2[:, :, :, [0, 2]]) == 0


def test_critical_zero_bias_variance_and_relu():
    net = critical_(torch.nn.Sequential(torch.nn.Linear(50, 50)), "relu", sigma_b2=0.0, init="orthogonal")
    w = net[0].weight.detach().double().numpy()
    np.testing.assert_allclose(w @ w.T, 2.0 * np.eye(50), atol=1e-5)  # ReLU: sigma_w2 = 2
    assert torch.count_nonzero(net[0].bias) == 0


@pytest.mark.parametrize(
    ("call", "error", "match"),
    [
        (lambda: critical_(_Net(), "tanh", init="xavier"), ValueError, "init must be"),
        (lambda: critical_(_Net(), "tanh", sigma_b2=-1.0), ValueError, "sigma_b2"),
        (lambda: critical_(torch.empty(3, 3), "tanh"), TypeError, "nn.Module"),
        (lambda: critical_(torch.nn.Conv2d(8, 4, 3), "tanh", init="orthogonal"), ValueError, "c_in <= c_out"),
        (lambda: critical_(torch.nn.Conv2d(4, 4, 3, groups=2), "tanh"), ValueError, "grouped"),
        (lambda: delta_orthogonal_(torch.empty(4, 4, 4, 4)), ValueError, "odd kernel sizes"),
        (lambda: delta_orthogonal_(torch.empty(4, 4)), ValueError, "conv weight"),
        (lambda: conv_orthogonal_(torch.empty(3, 5, 3)), ValueError, "c_in <= c_out"),
        (lambda: orthonormal_(torch.empty(4)), ValueError, "shape"),
        (lambda: procrustes_(torch.empty(4, 4, 3, 3), 2), ValueError, "input_shape"),
        (lambda: procrustes_(torch.empty(4, 4, 3, 3), 8, clip=False), ValueError, "clip"),
        (lambda: procrustes_(torch.empty(4, 4, 3, 3), 8, method="eig"), ValueError, "method"),
        (lambda: orthonormal_penalty(torch.nn.ReLU()), ValueError, "no Linear or Conv"),
    ],
)
def test_bad_input(call, error, match):
    with pytest.raises(error, match=match):
        call()


@pytest.mark.parametrize("method", ["newton-schulz", "svd"])
@pytest.mark.parametrize(("shape", "n"), [((6, 4, 3, 3), (8, 8)), ((4, 6, 3), (9,)), ((8, 8, 1, 1), (5, 5))])
def test_procrustes_matches_numpy(method, shape, n):
    w = torch.randn(shape, dtype=torch.float64, generator=torch.Generator().manual_seed(4))
    ref = rmt.procrustes_project(w.numpy(), n, target=math.sqrt(2), method=method)
    out = procrustes_(w, n, target=math.sqrt(2), method=method)
    assert out is w
    np.testing.assert_allclose(w.numpy(), ref.kernel, rtol=0, atol=1e-12)


def test_procrustes_on_module_float32_and_warning():
    layer = torch.nn.Conv2d(8, 8, 1, bias=False)
    procrustes_(layer, 6, target=1.5)
    sv = rmt.conv_singular_values(layer.weight.detach().double().numpy(), 6)
    np.testing.assert_allclose(sv, 1.5, atol=1e-5)  # 1 x 1: clipping is exact
    w = torch.zeros(3, 3, 3, dtype=torch.float64)
    w[:, :, 0] = torch.eye(3)
    w[:, :, 2] = -torch.eye(3)  # taps sum to zero: singular at frequency 0
    with pytest.warns(RuntimeWarning, match="did not converge"):
        procrustes_(w, 8)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        procrustes_(torch.randn(4, 4, 3, 3, dtype=torch.float64), 8)


def test_orthonormal_penalty_matches_numpy_value_and_gradient():
    net = _Net().double()
    lam = 0.3
    value = orthonormal_penalty(net, lam=lam)
    value.backward()
    weights = [net.conv1.weight, net.conv2.weight, net.fc.weight]
    ref_value, ref_grads = rmt.orthonormal_penalty([w.detach().numpy() for w in weights], lam=lam)
    np.testing.assert_allclose(value.item(), ref_value, rtol=1e-12)
    for w, g in zip(weights, ref_grads, strict=True):
        np.testing.assert_allclose(w.grad.numpy(), g, rtol=1e-10, atol=1e-12)
    single = rmt.orthonormal_penalty(net.fc.weight.detach().numpy())[0]
    np.testing.assert_allclose(orthonormal_penalty([net.fc.weight]).item(), single, rtol=1e-12)


@pytest.mark.gpu
@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA device")
def test_gpu_procrustes_penalty_and_initialisers():
    w = torch.randn(16, 8, 3, 3, dtype=torch.float64, device="cuda", generator=torch.Generator("cuda").manual_seed(0))
    ref = rmt.procrustes_project(w.cpu().numpy(), 8, target=1.2)
    procrustes_(w, 8, target=1.2)
    assert w.is_cuda
    np.testing.assert_allclose(w.cpu().numpy(), ref.kernel, rtol=0, atol=1e-10)
    net = _Net().double().cuda()
    critical_(net, "tanh", sigma_b2=0.05, init="orthogonal", generator=torch.Generator("cuda").manual_seed(1))
    assert net.conv2.weight.is_cuda
    np.testing.assert_allclose(rmt.conv_singular_values(net.conv2.weight.detach().cpu().numpy(), 6),
                               math.sqrt(1.7609546396067428), atol=1e-10)
    value = orthonormal_penalty(net)
    value.backward()
    assert value.is_cuda and net.fc.weight.grad.is_cuda
