"""Norm-preserving and critical initialisers for PyTorch models (the ``torch.nn.init`` conventions).

In-place initialisers end in ``_``, return the tensor (or module) they change and take ``generator=``. ``gain``
multiplies the standard deviation, as in ``torch.nn.init``: critical weights of variance ``sigma_w2`` mean
``gain = sqrt(sigma_w2)``. Kernels are built by the numpy constructions of :mod:`rmt` (seeded from the torch
generator, so ``torch.manual_seed`` or ``generator=`` make them reproducible) and copied to the weight's device and
dtype. :func:`procrustes_` and :func:`orthonormal_penalty` compute in torch on the tensor's device (GPU included).
"""

from __future__ import annotations

import math
import warnings
from collections.abc import Sequence

import numpy as np
import torch
from torch import nn

import meanfield
import rmt

__all__ = [
    "conv_orthogonal_",
    "critical_",
    "delta_orthogonal_",
    "orthonormal_",
    "orthonormal_penalty",
    "procrustes_",
]

_CONVS = (nn.Conv1d, nn.Conv2d, nn.Conv3d)


def _numpy_rng(generator: torch.Generator | None) -> np.random.Generator:
    """A numpy generator seeded from ``generator`` (or torch's global RNG when None)."""
    device = generator.device if generator is not None else "cpu"
    seed = torch.randint(0, 2**62, (1,), generator=generator, device=device).item()
    return np.random.default_rng(int(seed))


def _conv_weight(weight: torch.Tensor, name: str) -> tuple[int, int, tuple[int, ...]]:
    if not isinstance(weight, torch.Tensor):
        raise TypeError(f"{name} expects a torch.Tensor, got {type(weight).__name__}")
    if weight.dim() not in (3, 4, 5):
        raise ValueError(
            f"{name} expects a conv weight of shape (c_out, c_in, *kernel) with 1-3 spatial axes, "
            f"got {tuple(weight.shape)}"
        )
    return weight.shape[0], weight.shape[1], tuple(weight.shape[2:])


def _copy_(weight: torch.Tensor, array: np.ndarray) -> torch.Tensor:
    with torch.no_grad():
        weight.copy_(torch.from_numpy(np.ascontiguousarray(array)).to(dtype=weight.dtype, device=weight.device))
    return weight


def delta_orthogonal_(
    weight: torch.Tensor, gain: float = 1.0, generator: torch.Generator | None = None
) -> torch.Tensor:
    """Delta-Orthogonal initialisation (paper 002, Sec. 4) of a conv weight ``(c_out, c_in, *k)``, odd ``k``, in place.

    Zero except the spatial centre, which holds ``gain`` times a Haar (semi-)orthogonal ``c_out x c_in`` matrix; with
    circular padding ``k // 2`` every singular value of the convolution equals ``gain`` (see
    :func:`rmt.delta_orthogonal_kernel`). Returns ``weight``.
    """
    c_out, c_in, k = _conv_weight(weight, "delta_orthogonal_")
    kernel = rmt.delta_orthogonal_kernel(c_out, c_in, k, ndim=len(k), gain=gain, rng=_numpy_rng(generator))
    return _copy_(weight, kernel)


def conv_orthogonal_(weight: torch.Tensor, gain: float = 1.0, generator: torch.Generator | None = None) -> torch.Tensor:
    """Orthogonal convolution kernel (paper 002, Algorithm 1) for a conv weight ``(c_out, c_in, *k)``, in place.

    Needs ``c_in <= c_out``. With circular padding ``k // 2`` (odd ``k``) the convolution is ``gain`` times an
    isometry for every input size (see :func:`rmt.orthogonal_conv_kernel`). Returns ``weight``.
    """
    c_out, c_in, k = _conv_weight(weight, "conv_orthogonal_")
    kernel = rmt.orthogonal_conv_kernel(c_out, c_in, k, ndim=len(k), gain=gain, rng=_numpy_rng(generator))
    return _copy_(weight, kernel)


def orthonormal_(weight: torch.Tensor, generator: torch.Generator | None = None) -> torch.Tensor:
    """Orthonormal filters (paper 000, Sec. 3.1), group-wise when ``f_in < f_out``, in place.

    ``weight`` is ``(out, in)`` or ``(c_out, c_in, *k)``; its rows reshaped to ``(c_out, f_in)`` become orthonormal
    (see :func:`rmt.orthonormal_kernel`). Returns ``weight``.
    """
    if not isinstance(weight, torch.Tensor) or weight.dim() < 2:
        raise ValueError("orthonormal_ expects a torch.Tensor of shape (out, in) or (c_out, c_in, *kernel)")
    c_out, c_in, *k = weight.shape
    kernel = rmt.orthonormal_kernel(c_out, c_in, tuple(k), rng=_numpy_rng(generator))
    return _copy_(weight, kernel)


def critical_(
    model: nn.Module,
    activation,
    sigma_b2: float = 0.0,
    init: str = "gaussian",
    generator: torch.Generator | None = None,
) -> nn.Module:
    """Initialise every ``nn.Linear`` and ``nn.Conv1d/2d/3d`` of ``model`` on the critical line, in place.

    ``sigma_w2`` is chosen by :func:`meanfield.critical_sigma_w2` (``chi_1 = 1`` at ``sigma_b2``) for ``activation``.
    Weights: ``init="gaussian"``: i.i.d. ``N(0, sigma_w2 / fan_in)`` with ``fan_in = c_in * prod(kernel)``;
    ``"orthogonal"``: ``gain = sqrt(sigma_w2)`` times an orthogonal matrix (``nn.init.orthogonal_``) for dense layers
    and an orthogonal conv kernel (:func:`conv_orthogonal_`, needs ``c_in <= c_out``) for convolutions;
    ``"delta_orthogonal"``: the same for dense layers, :func:`delta_orthogonal_` (odd kernels) for convolutions.
    All three give per-weight variance ``sigma_w2 / fan_in`` on average. Biases: i.i.d. ``N(0, sigma_b2)``.
    Other modules (normalisation, transposed convs, ...) are left untouched; grouped convs are rejected.

    Parameters
    ----------
    model : nn.Module
    activation : str, sympy expression or meanfield.Activation
        Passed to :func:`meanfield.critical_sigma_w2`.
    sigma_b2 : float, default 0.0
        Bias variance (``>= 0``).
    init : {"gaussian", "orthogonal", "delta_orthogonal"}
    generator : torch.Generator, optional

    Returns
    -------
    nn.Module
        ``model``; the chosen ``sigma_w2`` is ``meanfield.critical_sigma_w2(activation, sigma_b2)[0]``.
    """
    if init not in ("gaussian", "orthogonal", "delta_orthogonal"):
        raise ValueError(f"init must be 'gaussian', 'orthogonal' or 'delta_orthogonal', got {init!r}")
    if not isinstance(model, nn.Module):
        raise TypeError(f"model must be a torch.nn.Module, got {type(model).__name__}")
    sigma_b2 = float(sigma_b2)
    if not math.isfinite(sigma_b2) or sigma_b2 < 0:
        raise ValueError(f"sigma_b2 must be a finite number >= 0, got {sigma_b2!r}")
    sigma_w2, _ = meanfield.critical_sigma_w2(activation, sigma_b2)
    sigma_w2 = float(sigma_w2)
    if not math.isfinite(sigma_w2) or sigma_w2 <= 0:
        raise ValueError(f"no finite critical sigma_w2 for {activation!r} at sigma_b2={sigma_b2}: got {sigma_w2}")
    gain = math.sqrt(sigma_w2)
    for module in model.modules():
        if not isinstance(module, (nn.Linear, *_CONVS)):
            continue
        weight = module.weight
        conv = isinstance(module, _CONVS)
        if conv and module.groups != 1:
            raise ValueError(f"critical_ does not handle grouped convolutions (groups={module.groups}) in {module}")
        if init == "gaussian":
            fan_in = weight[0].numel()
            nn.init.normal_(weight, 0.0, math.sqrt(sigma_w2 / fan_in), generator=generator)
        elif not conv:
            nn.init.orthogonal_(weight, gain=gain, generator=generator)
        elif init == "orthogonal":
            conv_orthogonal_(weight, gain=gain, generator=generator)
        else:
            delta_orthogonal_(weight, gain=gain, generator=generator)
        if module.bias is not None:
            nn.init.normal_(module.bias, 0.0, math.sqrt(sigma_b2), generator=generator)
    return model


def _newton_schulz_polar(a: torch.Tensor, tol: float, max_iter: int) -> tuple[torch.Tensor, int, float]:
    """Torch twin of :func:`rmt.procrustes.newton_schulz_polar` (same scaling and stopping rule)."""
    rows, cols = a.shape[-2:]
    tall = rows >= cols
    fro = torch.linalg.matrix_norm(a)
    bound = torch.sqrt(torch.linalg.matrix_norm(a, ord=1) * torch.linalg.matrix_norm(a, ord=float("inf")))
    scale = torch.minimum(fro, bound).max().item()
    x = a / (scale if scale > 0 else 1.0)
    eye = torch.eye(min(rows, cols), dtype=a.dtype, device=a.device)
    residual = math.inf
    for iteration in range(max_iter + 1):
        xh = x.mH
        gram = xh @ x if tall else x @ xh
        residual = (gram - eye).abs().max().item()
        if residual <= tol or iteration == max_iter:
            break
        x = x @ (1.5 * eye - 0.5 * gram) if tall else (1.5 * eye - 0.5 * gram) @ x
    return x, iteration, residual


def procrustes_(
    conv: nn.Module | torch.Tensor,
    input_shape: int | Sequence[int],
    target: float = 1.0,
    method: str = "newton-schulz",
    clip: bool = True,
    tol: float | None = None,
    max_iter: int | None = None,
) -> torch.Tensor:
    """Procrustes projection (paper 003, Sec. 3) of a conv weight, in place, in torch on the weight's device.

    The torch version of :func:`rmt.procrustes_project` with ``clip=True`` (the kernel keeps its shape; call it every
    ``T`` training steps as ProcResNet does): per frequency of the periodic ``input_shape`` grid the kernel's DFT matrix
    ``A`` becomes ``target * A (A^H A)^{-1/2}`` by Newton-Schulz (or SVD), then the kernel is cut back to its ``k``
    taps. Clipping is exact only for ``1 x 1`` kernels; measure the result with :func:`rmt.conv_singular_values`.
    ``target = sqrt(2)`` for Conv-ReLU. The projection concerns the stride-1 operator of the kernel.

    Parameters
    ----------
    conv : nn.Conv1d/2d/3d or torch.Tensor
        The layer (its ``weight`` is changed) or a weight ``(c_out, c_in, *k)``.
    input_shape : int or sequence of int
        Spatial size of the layer's input (>= kernel size on every axis); an int means every axis.
    target : float, default 1.0
    method : {"newton-schulz", "svd"}
    clip : bool, default True
        Only True is possible in place (the weight keeps its shape); False raises.
    tol, max_iter
        As in :func:`rmt.procrustes.newton_schulz_polar`. Non-convergence warns (``RuntimeWarning``).

    Returns
    -------
    torch.Tensor
        The projected weight (the same tensor object).
    """
    weight = conv.weight if isinstance(conv, nn.Module) else conv
    c_out, c_in, k = _conv_weight(weight, "procrustes_")
    if not clip:
        raise ValueError("procrustes_ works in place, so clip must be True; use rmt.procrustes_project(clip=False)")
    if method not in ("newton-schulz", "svd"):
        raise ValueError(f"method must be 'newton-schulz' or 'svd', got {method!r}")
    target = float(target)
    if not math.isfinite(target) or target <= 0:
        raise ValueError(f"target must be a positive finite number, got {target!r}")
    ndim = len(k)
    n = (int(input_shape),) * ndim if isinstance(input_shape, (int, np.integer)) else tuple(int(v) for v in input_shape)
    if len(n) != ndim or any(kk > nn for kk, nn in zip(k, n, strict=True)):
        raise ValueError(f"input_shape must have {ndim} entries each >= the kernel size {k}, got {input_shape!r}")
    if not weight.is_floating_point():
        raise TypeError(f"procrustes_ needs a floating-point weight, got {weight.dtype}")
    if not bool(torch.isfinite(weight).all()):
        raise ValueError("procrustes_: the conv weight must be finite; it has NaN or infinite entries")
    if tol is not None:
        tol = rmt.checks.check_positive(tol, "tol")
    if max_iter is not None:
        max_iter = rmt.checks.check_int(max_iter, "max_iter", 1)
    with torch.no_grad():
        work = weight.detach().to(torch.float64 if weight.dtype == torch.float64 else torch.float32)
        index = [(torch.arange(kk, device=work.device) - kk // 2) % nn for kk, nn in zip(k, n, strict=True)]
        grids = torch.meshgrid(*index, indexing="ij")
        placed = torch.zeros((c_out, c_in, *n), dtype=work.dtype, device=work.device)
        placed[(slice(None), slice(None), *grids)] = work
        spatial = tuple(range(2, 2 + ndim))
        symbol = torch.fft.rfftn(placed, dim=spatial).movedim((0, 1), (-2, -1))
        if method == "svd":
            u, _, vh = torch.linalg.svd(symbol, full_matrices=False)
            polar = u @ vh
        else:
            if tol is None:
                tol = 100.0 * math.sqrt(min(c_out, c_in)) * torch.finfo(work.dtype).eps
            if max_iter is None:
                max_iter = rmt.procrustes.default_max_iter(np.float64 if work.dtype == torch.float64 else np.float32)
            polar, iterations, residual = _newton_schulz_polar(symbol, tol, max_iter)
            if residual > tol:
                warnings.warn(
                    f"Newton-Schulz did not converge in {iterations} iterations (max |G - I| = {residual:.3g}); "
                    "the convolution operator is (numerically) rank deficient",
                    RuntimeWarning,
                    stacklevel=2,
                )
        full = torch.fft.irfftn((target * polar).movedim((-2, -1), (0, 1)), s=n, dim=spatial)
        weight.copy_(full[(slice(None), slice(None), *grids)].to(weight.dtype))
    return weight


def orthonormal_penalty(model: nn.Module | Sequence[torch.Tensor], lam: float = 1.0) -> torch.Tensor:
    """Orthonormal regulariser of paper 000, Eq. 3, as a differentiable torch scalar.

    ``(lam / 2) * sum_l ||M_l M_l^T - I||_F^2`` over the weights of every ``nn.Linear`` and ``nn.Conv1d/2d/3d`` in
    ``model`` (or over the given tensors), ``M_l = W_l.reshape(c_out, -1)`` the filters as rows (the paper's
    ``W_l^T W_l``). Computed on the weights' device; add it to the loss (numpy twin: :func:`rmt.orthonormal_penalty`).
    """
    if isinstance(model, nn.Module):
        weights = [m.weight for m in model.modules() if isinstance(m, (nn.Linear, *_CONVS))]
    else:
        weights = list(model)
    if not weights:
        raise ValueError("orthonormal_penalty found no Linear or Conv weights")
    total = None
    for w in weights:
        m = w.reshape(w.shape[0], -1)
        resid = m @ m.T - torch.eye(m.shape[0], dtype=m.dtype, device=m.device)
        term = 0.5 * lam * (resid * resid).sum()
        total = term if total is None else total + term
    return total
