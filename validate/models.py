"""Networks of the trainability experiments and their initialisation from ``(sigma_w2, sigma_b2)``.

Depth conventions (the ``depth`` of the experiment tables):

- :class:`FCNet`: ``depth`` hidden layers of width ``N`` (``h^1 = W^1 x + b^1`` from the input, then ``depth - 1``
  square layers), each followed by the activation, then a linear readout. ``depth`` counts the nonlinear layers, the
  ``L`` of Schoenholz et al. (2017).
- :class:`VanillaCNN` (paper 002, section 4): three 3 x 3 convolutions with strides 1, 2, 2 (zero padding 1) from the
  image channels up to ``c`` channels (28 x 28 -> 7 x 7 on MNIST), then ``depth`` 3 x 3 convolutions of ``c``
  channels with stride 1 and circular padding (the periodic setting the mean-field theory describes), the activation
  after every convolution, global average pooling and a linear readout. ``depth`` is the paper's ``d``.
"""

from __future__ import annotations

import math

import numpy as np
import torch
from torch import nn

from validate.activations import torch_activation

__all__ = ["FCNet", "VanillaCNN", "INITS", "MODELS", "build_model", "init_model_"]

INITS = ("gaussian", "orthogonal", "delta-orthogonal")
MODELS = ("fc", "cnn")


class FCNet(nn.Module):
    """Fully connected network: ``depth`` layers ``x -> phi(W x + b)`` of width ``width``, then a linear readout.

    Parameters
    ----------
    input_dim : int
        Features per example (inputs are flattened).
    width : int
    depth : int
        Number of nonlinear layers (>= 1).
    num_classes : int
    activation : str or meanfield.Activation
        Compiled with :func:`validate.activations.torch_activation`.
    device : torch.device, optional
        Where the parameters are created (``"meta"``: shapes only, no memory and no default initialisation).
    """

    def __init__(self, input_dim: int, width: int, depth: int, num_classes: int, activation="tanh", device=None):
        super().__init__()
        self.phi = torch_activation(activation)
        self.hidden = nn.ModuleList(
            [nn.Linear(input_dim if i == 0 else width, width, device=device) for i in range(depth)]
        )
        self.readout = nn.Linear(width, num_classes, device=device)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """Logits, shape (batch, num_classes), from inputs of shape (batch, *input_shape)."""
        x = x.flatten(1)
        for layer in self.hidden:
            x = self.phi(layer(x))
        return self.readout(x)


class VanillaCNN(nn.Module):
    """The vanilla CNN of paper 002 (Xiao et al. 2018, section 4); see the module docstring.

    Parameters
    ----------
    in_channels : int
    channels : int
        ``c``, the channel count after the stem and in the deep block.
    depth : int
        ``d``, the number of circular-padded 3 x 3 convolutions in the deep block (>= 1).
    num_classes : int
    activation : str or meanfield.Activation
    device : torch.device, optional
        As for :class:`FCNet`.
    """

    def __init__(self, in_channels: int, channels: int, depth: int, num_classes: int, activation="tanh",
                 device=None):
        super().__init__()
        self.phi = torch_activation(activation)
        self.stem = nn.ModuleList(
            [nn.Conv2d(in_channels if i == 0 else channels, channels, 3, stride=s, padding=1, device=device)
             for i, s in enumerate((1, 2, 2))]
        )
        self.block = nn.ModuleList(
            [nn.Conv2d(channels, channels, 3, padding=1, padding_mode="circular", device=device)
             for _ in range(depth)]
        )
        self.readout = nn.Linear(channels, num_classes, device=device)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """Logits, shape (batch, num_classes), from images of shape (batch, C, H, W)."""
        for conv in [*self.stem, *self.block]:
            x = self.phi(conv(x))
        return self.readout(x.mean(dim=(2, 3)))


def build_model(model: str, *, depth: int, input_shape: tuple[int, ...], num_classes: int, activation="tanh",
                width: int = 256, channels: int = 32, device=None) -> nn.Module:
    """Construct an uninitialised :class:`FCNet` (``model="fc"``) or :class:`VanillaCNN` (``model="cnn"``).

    Raises
    ------
    ValueError for an unknown model, non-positive sizes, or a CNN on non-image inputs.
    """
    for name, value in (("depth", depth), ("width", width), ("channels", channels), ("num_classes", num_classes)):
        if not isinstance(value, (int, np.integer)) or value < 1:
            raise ValueError(f"{name} must be a positive integer, got {value!r}")
    if model == "fc":
        return FCNet(int(np.prod(input_shape)), int(width), int(depth), num_classes, activation, device=device)
    if model == "cnn":
        if len(input_shape) != 3:
            raise ValueError(f"model 'cnn' needs image inputs of shape (C, H, W), got input shape {input_shape}")
        return VanillaCNN(input_shape[0], int(channels), int(depth), num_classes, activation, device=device)
    raise ValueError(f"model must be one of {', '.join(MODELS)}, got {model!r}")


def _gaussian_conv_(weight: torch.Tensor, sigma_w2: float, v: np.ndarray, generator) -> None:
    """``w_ij(beta) ~ N(0, sigma_w2 * v_beta / c_in)`` (paper 002, eqn. 2.3 with a variance vector ``v``)."""
    std = torch.as_tensor(np.sqrt(sigma_w2 * v / weight.shape[1]), dtype=weight.dtype, device=weight.device)
    weight.normal_(0.0, 1.0, generator=generator).mul_(std)


@torch.no_grad()
def init_model_(net: nn.Module, sigma_w2: float, sigma_b2: float, init: str = "gaussian", kernel="uniform",
                generator: torch.Generator | None = None) -> nn.Module:
    """Initialise every layer of ``net`` in place from the mean-field hyperparameters.

    Weights: ``gaussian`` draws i.i.d. ``N(0, sigma_w2 / fan_in)`` (for convolutions ``N(0, sigma_w2 * v_beta / c_in)``
    at kernel offset ``beta``, with ``v`` the kernel variance vector ``kernel`` from
    :func:`meanfield.kernels.kernel_variance`); ``orthogonal`` uses Haar orthogonal matrices
    (``torch.nn.init.orthogonal_``) for linear layers and :func:`validate.init.conv_orthogonal_` (paper 002,
    Algorithm 1) for convolutions; ``delta-orthogonal`` uses :func:`validate.init.delta_orthogonal_` for convolutions
    and, having no spatial extent to be a delta in, plain orthogonal matrices for linear layers. Orthogonal kinds use
    ``gain = sqrt(sigma_w2)`` (gain multiplies the standard deviation, as in ``torch.nn.init``), times
    ``sqrt(fan_out / fan_in)`` for layers that widen (the input layer, the first convolution): an orthogonal matrix with
    orthonormal columns has entries of variance ``1 / fan_out``, and the factor restores the mean-field variance
    ``sigma_w2 / fan_in``, so that every layer maps a pre-activation length ``q`` as the Gaussian init does.
    Biases: i.i.d. ``N(0, sigma_b2)``. The readout is initialised like the hidden layers.

    Parameters
    ----------
    net : FCNet or VanillaCNN (any module of ``nn.Linear`` and ``nn.Conv2d`` layers)
    sigma_w2, sigma_b2 : float
        Weight and bias variances (``sigma_w2 > 0``, ``sigma_b2 >= 0``).
    init : {"gaussian", "orthogonal", "delta-orthogonal"}
    kernel : str or array_like
        Kernel variance vector for Gaussian convolutions (``"uniform"``, ``"delta"``, ``"GS0"`` .. ``"GS4"`` or values).
    generator : torch.Generator, optional

    Returns
    -------
    net
    """
    if not (math.isfinite(sigma_w2) and sigma_w2 > 0):
        raise ValueError(f"sigma_w2 must be a positive finite number, got {sigma_w2!r}")
    if not (math.isfinite(sigma_b2) and sigma_b2 >= 0):
        raise ValueError(f"sigma_b2 must be a non-negative finite number, got {sigma_b2!r}")
    if init not in INITS:
        raise ValueError(f"init must be one of {', '.join(INITS)}, got {init!r}")
    gain = math.sqrt(sigma_w2)
    for module in net.modules():
        if isinstance(module, nn.Linear):
            if init == "gaussian":
                module.weight.normal_(0.0, math.sqrt(sigma_w2 / module.in_features), generator=generator)
            else:
                widen = max(1.0, module.out_features / module.in_features)
                nn.init.orthogonal_(module.weight, gain=gain * math.sqrt(widen), generator=generator)
        elif isinstance(module, nn.Conv2d):
            if init == "gaussian":
                from meanfield.kernels import kernel_variance

                v = kernel_variance(kernel, module.kernel_size[0], ndim=2)
                _gaussian_conv_(module.weight, sigma_w2, v, generator)
            else:
                from validate import init as initializers

                fill_ = initializers.conv_orthogonal_ if init == "orthogonal" else initializers.delta_orthogonal_
                widen = max(1.0, module.out_channels / module.in_channels)
                fill_(module.weight, gain=gain * math.sqrt(widen), generator=generator)
        else:
            continue
        if module.bias is not None:
            module.bias.normal_(0.0, math.sqrt(sigma_b2), generator=generator)
    return net
