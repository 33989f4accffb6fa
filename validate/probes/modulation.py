"""Backward-error modulation (paper 000, section 3.3 "Modulation"; formulas.md "Batch normalization").

For consecutive parametric layers ``l`` and ``l + 1`` (in forward order) with backward errors ``delta^l = dE/dh^l`` at
their outputs, let ``q^l = mean(delta^l ** 2)`` be the error second moment. When ``q^{l+1}`` (the error arriving from
above, already modulated) and ``q^l`` mismatch, i.e. ``|log(q^{l+1} / q^l)| > log(1 + tolerance)``, the error of layer
``l`` is rescaled by ``rho = sqrt(q^{l+1} / q^l)`` before it reaches the layer's weights and the layers below, so its
second moment matches the layer above; otherwise it passes unchanged. The forward pass is untouched. As in the
paper, modulation is meant for the first ``iterations`` training steps only (call :meth:`Modulation.step` once per
step); afterwards the hooks pass errors through.

Because back-propagation is linear in the error, the modulated error of layer ``l`` is ``C_l delta^l_raw`` with
``C_l = prod_{k >= l} rho_k`` and ``rho_k`` computed from the raw second moments (the scale from above cancels in the
ratio); the tests check this against plain autograd.
"""

from __future__ import annotations

import math

import torch
from torch import nn

__all__ = ["Modulation", "parametric_layers"]

_PARAMETRIC = (nn.Linear, nn.Conv1d, nn.Conv2d, nn.Conv3d)


def parametric_layers(model: nn.Module) -> list[nn.Module]:
    """Every ``nn.Linear`` and ``nn.Conv1d/2d/3d`` of ``model`` in ``model.modules()`` order."""
    return [m for m in model.modules() if isinstance(m, _PARAMETRIC)]


class Modulation:
    """Backward-error modulation between consecutive parametric layers of ``model`` (hooks; the model is unchanged).

    Parameters
    ----------
    model : nn.Module
    layers : sequence of nn.Module, optional
        The parametric layers (default :func:`parametric_layers`). "Consecutive" means consecutive in the order the
        layers run in each forward pass (a plain stack's order).
    iterations : int or None
        Modulate while ``self.iteration < iterations`` (None: always). :meth:`step` advances ``iteration``.
    tolerance : float
        Relative mismatch of second moments below which an error passes unchanged (>= 0; 0 modulates every layer).

    Attributes
    ----------
    moments, factors : list of float
        Per layer (forward order) of the last backward pass: the second moment of the error arriving at the layer's
        output (before its own factor) and the factor ``rho_l`` applied (1.0 when none).
    """

    def __init__(self, model: nn.Module, layers=None, iterations: int | None = None, tolerance: float = 0.1):
        if not isinstance(model, nn.Module):
            raise TypeError(f"model must be a torch.nn.Module, got {type(model).__name__}")
        tolerance = float(tolerance)
        if not math.isfinite(tolerance) or tolerance < 0:
            raise ValueError(f"tolerance must be a finite number >= 0, got {tolerance!r}")
        if iterations is not None and (isinstance(iterations, bool) or int(iterations) != iterations
                                       or iterations < 0):
            raise ValueError(f"iterations must be an integer >= 0 or None, got {iterations!r}")
        self.layers = list(parametric_layers(model) if layers is None else layers)
        if not self.layers:
            raise ValueError("Modulation found no parametric (Linear/Conv) layers")
        self.iterations = None if iterations is None else int(iterations)
        self.tolerance = tolerance
        self.iteration = 0
        self.enabled = True
        self._order: list[int] = []
        self._moments: dict[int, float] = {}
        self.moments: list[float] = []
        self.factors: list[float] = []
        self._handles = [model.register_forward_pre_hook(self._new_pass)]
        self._handles += [layer.register_forward_hook(self._on_output) for layer in self.layers]

    @property
    def active(self) -> bool:
        """Whether the next backward pass is modulated."""
        return self.enabled and (self.iterations is None or self.iteration < self.iterations)

    def step(self) -> None:
        """Count one training iteration."""
        self.iteration += 1

    def remove(self) -> None:
        """Remove every hook (the model is as before)."""
        for handle in self._handles:
            handle.remove()
        self._handles = []

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.remove()

    def _new_pass(self, _module, _inputs):
        self._order = []
        self._moments = {}
        self.moments = []
        self.factors = []

    def _on_output(self, _module, _inputs, output):
        if not (self.active and torch.is_grad_enabled() and isinstance(output, torch.Tensor)
                and output.requires_grad):
            return None
        position = len(self._order)
        self._order.append(position)
        self.moments.append(math.nan)
        self.factors.append(1.0)
        output.register_hook(lambda grad, i=position: self._modulate(i, grad))
        return None

    def _modulate(self, i: int, grad: torch.Tensor) -> torch.Tensor:
        q = float(grad.detach().double().pow(2).mean())
        self.moments[i] = q
        above = self._moments.get(i + 1)
        factor = 1.0
        if above is not None and q > 0 and above > 0 and abs(math.log(above / q)) > math.log1p(self.tolerance):
            factor = math.sqrt(above / q)
        self.factors[i] = factor
        self._moments[i] = q * factor * factor
        return grad * factor if factor != 1.0 else grad
