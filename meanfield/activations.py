"""Activation functions for mean-field calculations: built-ins and user expressions in ``x``.

An :class:`Activation` carries the sympy expression of phi (for symbolic work and for compiling to torch elsewhere),
numpy-vectorised float64 callables for phi, phi' and phi'', the points where phi' or phi'' jump (``kinks``), and the
name of a closed-form Gaussian kernel where one exists (erf, relu, leaky_relu, linear).

User expressions are parsed with sympy; phi' and phi'' are derived symbolically and compiled to Numba ufuncs.
"""

from __future__ import annotations

import functools
import inspect
import math
import re
from collections.abc import Callable
from dataclasses import dataclass, field

import mpmath
import numba
import numpy as np
import sympy
from scipy import special

__all__ = ["Activation", "get_activation", "builtin_activation_names", "X"]

#: The symbol every activation expression is written in.
X = sympy.Symbol("x")

_SELU_ALPHA = 1.6732632423543772848170429916717
_SELU_SCALE = 1.0507009873554804934193349852946
_SQRT_2PI = math.sqrt(2.0 * math.pi)


@dataclass(frozen=True, eq=False)
class Activation:
    """A scalar activation function phi with its first two derivatives.

    Attributes
    ----------
    name : str
        Canonical name, e.g. ``"tanh"``, ``"leaky_relu(slope=0.1)"`` or the expression string ``"x*tanh(x)"``.
        ``get_activation(act.name)`` rebuilds the same activation.
    expr : sympy.Expr
        phi as a sympy expression in ``sympy.Symbol("x")``.
    phi, dphi, d2phi : callable
        numpy-vectorised float64 callables (arrays in, arrays of the same shape out). At a kink, ``dphi`` and ``d2phi``
        return one of the one-sided values and ``d2phi`` omits the Dirac masses (the engine never needs them).
    kinks : tuple of float
        Points where phi' or phi'' jump (ReLU: ``(0.0,)``, hard tanh: ``(-1.0, 1.0)``); empty for smooth phi.
    closed_form : str or None
        ``"erf"``, ``"leaky_relu"`` (ReLU is slope 0), ``"linear"`` or None: which closed-form Gaussian kernel applies.
    params : dict
        Parameters of a built-in (``{"slope": 0.1}``), empty otherwise.
    oscillatory : bool
        True if phi keeps varying on the unit scale for large ``|x|`` (sin, or exponential growth); the quadrature
        then keeps panels of width ``1`` in ``x`` everywhere instead of coarsening beyond ``|x| = 40``.
    """

    name: str
    expr: sympy.Expr
    phi: Callable[[np.ndarray], np.ndarray]
    dphi: Callable[[np.ndarray], np.ndarray]
    d2phi: Callable[[np.ndarray], np.ndarray]
    kinks: tuple[float, ...] = ()
    closed_form: str | None = None
    params: dict = field(default_factory=dict)
    oscillatory: bool = False

    def __repr__(self) -> str:
        return f"Activation({self.name!r})"

    @functools.cached_property
    def homogeneous(self) -> bool:
        """Whether phi is positively homogeneous of degree 1, ``phi(a x) = a phi(x)`` for ``a > 0`` (relu, leaky_relu,
        linear, expressions such as ``2*x``): then ``E[phi'(sqrt(q) z)^2]`` does not depend on ``q`` and
        ``E[phi(sqrt(q) z)^2]`` is proportional to ``q`` (checked numerically on a grid of ``x``)."""
        if self.closed_form in ("leaky_relu", "linear"):
            return True
        x = np.linspace(-8.0, 8.0, 41)
        with np.errstate(all="ignore"):
            base = np.asarray(self.phi(x), dtype=np.float64)
            return all(np.allclose(self.phi(a * x), a * base, rtol=1e-12, atol=0.0) for a in (0.5, 3.0))


def _vec(f: Callable) -> Callable[[np.ndarray], np.ndarray]:
    """Wrap a numpy function so it accepts scalars and lists and returns float64 arrays (0-d for scalars)."""

    def g(x):
        return f(np.asarray(x, dtype=np.float64))

    g.__name__ = getattr(f, "__name__", "phi")
    return g


# ---------------------------------------------------------------------------------------------------------------------
# Built-ins
# ---------------------------------------------------------------------------------------------------------------------


def _tanh() -> Activation:
    def dphi(x):
        return 1.0 - np.tanh(x) ** 2

    def d2phi(x):
        t = np.tanh(x)
        return -2.0 * t * (1.0 - t * t)

    return Activation("tanh", sympy.tanh(X), _vec(np.tanh), _vec(dphi), _vec(d2phi))


def _erf() -> Activation:
    def dphi(x):
        return 2.0 / math.sqrt(math.pi) * np.exp(-x * x)

    def d2phi(x):
        return -4.0 / math.sqrt(math.pi) * x * np.exp(-x * x)

    return Activation("erf", sympy.erf(X), _vec(special.erf), _vec(dphi), _vec(d2phi), closed_form="erf")


def _leaky(slope: float, name: str) -> Activation:
    def phi(x):
        return np.where(x > 0, x, slope * x)

    def dphi(x):
        return np.where(x > 0, 1.0, slope)

    def d2phi(x):
        return np.zeros_like(x)

    expr = sympy.Piecewise((X, X > 0), (sympy.Float(slope) * X, True)) if slope != 0 else sympy.Max(X, 0)
    return Activation(name, expr, _vec(phi), _vec(dphi), _vec(d2phi), kinks=(0.0,), closed_form="leaky_relu",
                      params={"slope": slope})


def _relu() -> Activation:
    return _leaky(0.0, "relu")


def _leaky_relu(slope: float = 0.01) -> Activation:
    slope = _check_param("slope", slope)
    return _leaky(slope, f"leaky_relu(slope={slope!r})")


def _hard_tanh() -> Activation:
    def dphi(x):
        return np.where(np.abs(x) < 1.0, 1.0, 0.0)

    def d2phi(x):
        return np.zeros_like(x)

    expr = sympy.Min(1, sympy.Max(-1, X))
    return Activation("hard_tanh", expr, _vec(lambda x: np.clip(x, -1.0, 1.0)), _vec(dphi), _vec(d2phi),
                      kinks=(-1.0, 1.0))


def _linear() -> Activation:
    return Activation("linear", X, _vec(lambda x: x + 0.0), _vec(np.ones_like), _vec(np.zeros_like),
                      closed_form="linear")


def _sigmoid() -> Activation:
    def dphi(x):
        s = special.expit(x)
        return s * (1.0 - s)

    def d2phi(x):
        s = special.expit(x)
        return s * (1.0 - s) * (1.0 - 2.0 * s)

    return Activation("sigmoid", 1 / (1 + sympy.exp(-X)), _vec(special.expit), _vec(dphi), _vec(d2phi))


def _softplus() -> Activation:
    def d2phi(x):
        s = special.expit(x)
        return s * (1.0 - s)

    return Activation("softplus", sympy.log(1 + sympy.exp(X)), _vec(lambda x: np.logaddexp(0.0, x)),
                      _vec(special.expit), _vec(d2phi))


def _elu_like(alpha: float, scale: float, name: str, params: dict) -> Activation:
    def phi(x):
        return scale * np.where(x > 0, x, alpha * np.expm1(np.minimum(x, 0.0)))

    def dphi(x):
        return scale * np.where(x > 0, 1.0, alpha * np.exp(np.minimum(x, 0.0)))

    def d2phi(x):
        return scale * np.where(x > 0, 0.0, alpha * np.exp(np.minimum(x, 0.0)))

    expr = sympy.Float(scale) * sympy.Piecewise((X, X > 0), (sympy.Float(alpha) * (sympy.exp(X) - 1), True))
    if scale == 1.0:
        expr = sympy.Piecewise((X, X > 0), (sympy.Float(alpha) * (sympy.exp(X) - 1), True))
    return Activation(name, expr, _vec(phi), _vec(dphi), _vec(d2phi), kinks=(0.0,), params=params)


def _elu(alpha: float = 1.0) -> Activation:
    alpha = _check_param("alpha", alpha)
    return _elu_like(alpha, 1.0, f"elu(alpha={alpha!r})", {"alpha": alpha})


def _selu() -> Activation:
    return _elu_like(_SELU_ALPHA, _SELU_SCALE, "selu", {})


def _gelu() -> Activation:
    def pdf(x):
        return np.exp(-0.5 * x * x) / _SQRT_2PI

    def phi(x):
        return x * special.ndtr(x)

    def dphi(x):
        return special.ndtr(x) + x * pdf(x)

    def d2phi(x):
        return (2.0 - x * x) * pdf(x)

    expr = X * (1 + sympy.erf(X / sympy.sqrt(2))) / 2
    return Activation("gelu", expr, _vec(phi), _vec(dphi), _vec(d2phi))


def _swish() -> Activation:
    def phi(x):
        return x * special.expit(x)

    def dphi(x):
        s = special.expit(x)
        return s + x * s * (1.0 - s)

    def d2phi(x):
        s = special.expit(x)
        return s * (1.0 - s) * (2.0 + x * (1.0 - 2.0 * s))

    return Activation("swish", X / (1 + sympy.exp(-X)), _vec(phi), _vec(dphi), _vec(d2phi))


def _sin() -> Activation:
    return Activation("sin", sympy.sin(X), _vec(np.sin), _vec(np.cos), _vec(lambda x: -np.sin(x)), oscillatory=True)


_BUILTINS: dict[str, Callable[..., Activation]] = {
    "tanh": _tanh,
    "erf": _erf,
    "relu": _relu,
    "leaky_relu": _leaky_relu,
    "hard_tanh": _hard_tanh,
    "linear": _linear,
    "sigmoid": _sigmoid,
    "softplus": _softplus,
    "elu": _elu,
    "selu": _selu,
    "gelu": _gelu,
    "swish": _swish,
    "sin": _sin,
}

_ALIASES = {
    "silu": "swish",
    "hardtanh": "hard_tanh",
    "leakyrelu": "leaky_relu",
    "identity": "linear",
}


def builtin_activation_names() -> list[str]:
    """Names of the built-in activations (aliases: silu = swish, hardtanh = hard_tanh, leakyrelu, identity = linear)."""
    return sorted(_BUILTINS)


def _check_param(name: str, value) -> float:
    if isinstance(value, bool) or not isinstance(value, (int, float, np.integer, np.floating)):
        raise TypeError(f"activation parameter {name} must be a real number, got {value!r}")
    value = float(value)
    if not math.isfinite(value):
        raise ValueError(f"activation parameter {name} must be finite, got {value!r}")
    return value


# ---------------------------------------------------------------------------------------------------------------------
# User expressions
# ---------------------------------------------------------------------------------------------------------------------

_NON_SMOOTH = (sympy.Abs, sympy.sign, sympy.Heaviside, sympy.DiracDelta, sympy.Piecewise, sympy.Max, sympy.Min,
               sympy.floor, sympy.ceiling, sympy.Derivative, sympy.Subs, sympy.re, sympy.im, sympy.arg)

#: Points where a user expression, its derivatives, are checked to be real and finite.
_TEST_POINTS = np.concatenate([np.linspace(-50.0, 50.0, 2001), [-1e-9, 1e-9, -1e-300, 1e-300]])


def _compile(expr: sympy.Expr) -> Callable[[np.ndarray], np.ndarray]:
    """Compile a sympy expression in x to a Numba float64 ufunc (numpy/scipy lambdify if Numba cannot)."""
    try:
        scalar = sympy.lambdify(X, expr, modules="math")
        ufunc = numba.vectorize(["float64(float64)"])(scalar)
        ufunc(np.zeros(1))
        return _vec(ufunc)
    except Exception:  # noqa: BLE001 - any failure of the fast path falls back to numpy
        f = sympy.lambdify(X, expr, modules=["scipy", "numpy"])
        return _vec(lambda x: np.broadcast_to(np.asarray(f(x), dtype=np.float64), np.shape(x)).copy())


def _from_expression(text: str) -> Activation:
    from sympy.parsing.sympy_parser import parse_expr, standard_transformations

    try:
        expr = parse_expr(text, local_dict={"x": X}, transformations=standard_transformations, evaluate=True)
    except Exception as exc:  # noqa: BLE001 - sympy raises many types on malformed input
        raise ValueError(f"activation: cannot parse {text!r} as a built-in name or an expression in x "
                         f"(built-ins: {', '.join(builtin_activation_names())})") from exc
    if not isinstance(expr, sympy.Expr):
        raise ValueError(f"activation: {text!r} is not an expression in x")
    others = expr.free_symbols - {X}
    if others:
        names = ", ".join(sorted(str(s) for s in others))
        if len(others) == 1 and not expr.has(X) and str(expr) == text.strip():
            raise ValueError(f"activation: unknown activation {text!r}; built-ins: "
                             f"{', '.join(builtin_activation_names())}, or an expression in x")
        raise ValueError(f"activation: expression {text!r} must be a function of x only (also depends on {names})")
    if not expr.has(X):
        raise ValueError(f"activation: expression {text!r} does not depend on x")
    xr = sympy.Symbol("x", real=True)
    real_expr = expr.subs(X, xr)
    derivs = [real_expr, sympy.diff(real_expr, xr), sympy.diff(real_expr, xr, 2)]
    for d in derivs:
        if d.has(*_NON_SMOOTH) or d.has(sympy.I) or d.has(sympy.zoo) or d.has(sympy.nan):
            raise ValueError(f"activation: expression {text!r} is not twice differentiable with real values "
                             "(no abs, sign, max/min, piecewise or complex parts; use a built-in such as relu, "
                             "leaky_relu, hard_tanh, elu for kinked activations)")
    exprs = [expr] + [d.subs(xr, X) for d in derivs[1:]]
    funcs = [_compile(e) for e in exprs]
    with np.errstate(all="ignore"):
        for label, f in zip(("phi", "phi'", "phi''"), funcs, strict=True):
            values = np.asarray(f(_TEST_POINTS))
            bad = ~np.isfinite(values)
            if bad.any():
                raise ValueError(f"activation: {label} of {text!r} is not finite and real at "
                                 f"x = {_TEST_POINTS[bad][0]:g} (it must be defined on the whole real line)")
    _check_growth(text, expr)
    return Activation(str(expr), expr, *funcs, oscillatory=_is_oscillatory(*funcs))


def _is_oscillatory(phi, dphi, d2phi) -> bool:
    """Whether phi still varies on the unit scale for |x| >= 40: phi'' changes sign repeatedly there, or
    ``x^2 |phi''(x)|`` is not small compared with ``|phi(x)| + 1`` (exponential growth)."""
    x = np.geomspace(40.0, 1e4, 400)
    with np.errstate(all="ignore"):
        for side in (x, -x):
            d2 = np.asarray(d2phi(side))
            big = side**2 * np.abs(d2) > 1e3 * (np.abs(np.asarray(phi(side))) + 1.0)
            flips = np.count_nonzero(np.diff(np.sign(d2[np.abs(d2) > 1e-300])))
            if flips > 4 or np.any(big) or not np.all(np.isfinite(d2)):
                return True
    return False


def _check_growth(text: str, expr: sympy.Expr) -> None:
    """Reject phi growing like exp(a x^2): the Gaussian expectation E[phi(sqrt(q) z)^2] must exist for every q."""
    f = sympy.lambdify(X, expr, modules="mpmath")
    with mpmath.workdps(30):
        for x0 in (-1e4, 1e4):
            try:
                value = mpmath.mpf(abs(mpmath.mpc(f(mpmath.mpf(x0)))))
            except Exception:  # noqa: BLE001 - mpmath overflow or unsupported function: skip this check
                continue
            rate = mpmath.log(1 + value) / x0**2
            if not mpmath.isfinite(rate) or rate > 1e-3:
                raise ValueError(f"activation: {text!r} grows too fast (like exp(a x^2)); E[phi(h)^2] would be "
                                 "infinite for large variances")


# ---------------------------------------------------------------------------------------------------------------------
# Lookup
# ---------------------------------------------------------------------------------------------------------------------

_CACHE: dict[str, Activation] = {}
_CALL = re.compile(r"^\s*([A-Za-z_\-]+)\s*\((.*)\)\s*$")


def _normalise(name: str) -> str:
    key = name.strip().lower().replace("-", "_")
    return _ALIASES.get(key, key)


def _parse_params(text: str) -> dict:
    params = {}
    for part in filter(None, (p.strip() for p in text.split(","))):
        key, sep, value = part.partition("=")
        if not sep:
            raise ValueError(f"activation: parameters must be written name=value, got {part!r}")
        try:
            params[key.strip()] = float(value)
        except ValueError:
            raise ValueError(f"activation: parameter {key.strip()} must be a number, got {value.strip()!r}") from None
    return params


def get_activation(spec: str | Activation, **params) -> Activation:
    """Return the :class:`Activation` for a built-in name, a parametrised name or an expression in ``x``.

    Parameters
    ----------
    spec : str or Activation
        A built-in name (case-insensitive; ``tanh, erf, relu, leaky_relu, hard_tanh, linear, sigmoid, softplus, elu,
        selu, gelu, swish, sin``; aliases ``silu, hardtanh, leakyrelu, identity``), a name with parameters
        (``"leaky_relu(slope=0.1)"``, ``"elu(alpha=0.5)"``), or a sympy expression in ``x`` such as ``"x*tanh(x)"``.
        An :class:`Activation` is returned unchanged.
    **params
        Parameters of a built-in: ``slope`` for leaky_relu (default 0.01, as torch), ``alpha`` for elu (default 1).

    Returns
    -------
    Activation

    Raises
    ------
    ValueError
        Unknown name, malformed expression, an expression that depends on other symbols, is not twice
        differentiable, is not real and finite on the real line, or grows like exp(a x^2).
    TypeError
        Wrong parameter names or types.
    """
    if isinstance(spec, Activation):
        if params:
            raise TypeError("get_activation: parameters cannot be given with an Activation instance")
        return spec
    if not isinstance(spec, str):
        raise TypeError(f"activation must be a name, an expression string or an Activation, got {type(spec).__name__}")
    if not spec.strip():
        raise ValueError("activation must not be empty")
    match = _CALL.match(spec)
    key = _normalise(spec)
    if match and _normalise(match.group(1)) in _BUILTINS:
        key = _normalise(match.group(1))
        params = {**_parse_params(match.group(2)), **params}
    if key in _BUILTINS:
        factory = _BUILTINS[key]
        allowed = set(inspect.signature(factory).parameters)
        if set(params) - allowed:
            raise TypeError(f"activation {key} takes parameters {sorted(allowed) or 'none'}, got {sorted(params)}")
        act = factory(**params)
        cached = _CACHE.get(act.name)
        if cached is None:
            _CACHE[act.name] = act
            cached = act
        return cached
    if params:
        raise TypeError(f"parameters {sorted(params)} given for {spec!r}, which is not a built-in activation")
    cached = _CACHE.get("expr:" + spec.strip())
    if cached is None:
        cached = _from_expression(spec)
        _CACHE["expr:" + spec.strip()] = cached
    return cached
