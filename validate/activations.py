"""Compile a :class:`meanfield.Activation` to a differentiable torch function.

Built-in activations map to the matching torch op (by ``Activation.name``); anything else, including user expressions
such as ``"x*tanh(x)"``, is compiled from ``Activation.expr`` (a sympy expression in ``Symbol("x")``) with
:func:`sympy.lambdify` and a torch namespace. Every compiled function is checked against the activation's own
numpy ``phi`` on a grid before it is returned, so a mis-mapped built-in or an expression torch cannot evaluate fails
loudly at compile time instead of training the wrong network.
"""

from __future__ import annotations

import functools
from collections.abc import Callable

import numpy as np
import sympy
import torch
import torch.nn.functional as F

__all__ = ["torch_activation"]

_BUILTIN_OPS: dict[str, Callable[[torch.Tensor], torch.Tensor]] = {
    "tanh": torch.tanh,
    "erf": torch.erf,
    "relu": torch.relu,
    "hard_tanh": F.hardtanh,
    "linear": lambda x: x,
    "sigmoid": torch.sigmoid,
    "softplus": F.softplus,
    "elu": F.elu,
    "selu": F.selu,
    "gelu": F.gelu,
    "swish": F.silu,
    "silu": F.silu,
    "sin": torch.sin,
}


def _tensor_args(*args):
    ref = next(a for a in args if isinstance(a, torch.Tensor))
    return [a if isinstance(a, torch.Tensor) else torch.as_tensor(a, dtype=ref.dtype, device=ref.device) for a in args]


def _max(*args):
    return functools.reduce(torch.maximum, _tensor_args(*args))


def _min(*args):
    return functools.reduce(torch.minimum, _tensor_args(*args))


def _heaviside(x, h0=0.5):
    return torch.heaviside(x, torch.as_tensor(float(h0), dtype=x.dtype, device=x.device))


_SYMPY_TO_TORCH = {"Max": _max, "Min": _min, "Heaviside": _heaviside}


def _lambdify(expr: sympy.Expr) -> Callable[[torch.Tensor], torch.Tensor]:
    x = sympy.Symbol("x")
    free = expr.free_symbols - {x}
    if free:
        raise ValueError(f"activation expression {expr} has free symbols {sorted(map(str, free))} besides x")
    # evalf turns exact constants (sqrt(2), pi, 1/2) into floats, which torch functions accept in products and sums.
    func = sympy.lambdify(x, sympy.N(expr, 17), modules=[_SYMPY_TO_TORCH, "torch"])

    def compiled(t: torch.Tensor) -> torch.Tensor:
        out = func(t)
        if not isinstance(out, torch.Tensor):  # a constant expression
            out = torch.full_like(t, float(out))
        return out

    return compiled


def torch_activation(activation, *, check: bool = True) -> Callable[[torch.Tensor], torch.Tensor]:
    """Return a torch function computing ``activation`` elementwise (differentiable, any float dtype and device).

    Parameters
    ----------
    activation : str or meanfield.Activation
        Anything :func:`meanfield.get_activation` accepts: a built-in name, a built-in with parameters, or a sympy
        expression in ``x``.
    check : bool
        Compare against ``activation.phi`` (float64 numpy) on 201 points in [-6, 6]; raise if they differ by more than
        1e-9 relative.

    Returns
    -------
    callable mapping a tensor to a tensor of the same shape.

    Raises
    ------
    ValueError if the expression cannot be compiled or disagrees with ``phi``.
    """
    from meanfield.activations import get_activation

    act = get_activation(activation)
    func = _BUILTIN_OPS.get(act.name) or _lambdify(act.expr)
    if check:
        grid = np.linspace(-6.0, 6.0, 201)
        try:
            got = func(torch.as_tensor(grid, dtype=torch.float64)).detach().cpu().numpy()
        except Exception as exc:
            raise ValueError(f"activation {act.name!r}: torch cannot evaluate {act.expr} ({exc})") from exc
        want = np.asarray(act.phi(grid), dtype=np.float64)
        if not np.allclose(got, want, rtol=1e-9, atol=1e-9):
            worst = float(np.max(np.abs(got - want)))
            raise ValueError(f"activation {act.name!r}: compiled torch function differs from phi by {worst:.3g}")
    return func
