"""Activation functions for mean-field calculations: built-ins and user expressions in ``x``.

An :class:`Activation` carries numpy-vectorised float64 callables for phi, phi' and phi'', the points where phi' or
phi'' jump (``kinks``), the name of a closed-form Gaussian kernel where one exists (erf, relu, leaky_relu, linear), and
phi as a sympy expression (``expr``, built on first use, so that built-in activations never import sympy).

User expressions are parsed by :func:`meanfield.expressions.parse_expression` (a restricted grammar, never ``eval``),
checked to be finite, real and twice differentiable on the whole real line (poles such as ``tan(x)`` or ``1/(x-1)`` and
domain limits such as ``log(x)`` are refused up front); phi, phi' and phi'' are then evaluated by forward-mode
differentiation of the expression tree (:func:`meanfield.expressions.derivative_functions`).
"""

from __future__ import annotations

import functools
import inspect
import math
import re
import sys
from collections.abc import Callable
from dataclasses import dataclass, field

import numpy as np

from .expressions import (
    FUNCTION_NAMES,
    ExpressionError,
    derivative_functions,
    parse_expression,
    real_line_singularities,
)

__all__ = ["Activation", "ActivationError", "get_activation", "builtin_activation_names"]

_SELU_ALPHA = 1.6732632423543772848170429916717
_SELU_SCALE = 1.0507009873554804934193349852946
_SQRT_2PI = math.sqrt(2.0 * math.pi)


class ActivationError(ExpressionError):
    """An activation that cannot be used: unknown name, malformed or unsafe expression, or phi not finite, real and
    twice differentiable on the whole real line (a ValueError)."""


def __getattr__(name: str):
    if name == "X":  # the sympy symbol x of every expression (kept for older imports); sympy imported only here
        import sympy

        return sympy.Symbol("x")
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


@dataclass(frozen=True, eq=False)
class Activation:
    """A scalar activation function phi with its first two derivatives.

    Attributes
    ----------
    name : str
        Canonical name, e.g. ``"tanh"``, ``"leaky_relu(slope=0.1)"`` or the expression string ``"x*tanh(x)"``.
        ``get_activation(act.name)`` rebuilds the same activation.
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
    homogeneous : bool
        Whether phi is positively homogeneous of degree 1 (property, see below).
    symbolic : callable
        Builds ``expr`` (no arguments); use ``expr``.
    dphi_pieces : tuple of (lo, hi, amplitude, rate) or None
        phi' as a sum of pieces ``amplitude * exp(rate * x)`` on ``lo < x < hi`` (``lo``, ``hi`` may be infinite;
        zero elsewhere; each piece bounded), for kinked built-ins (ELU: ``((-inf, 0, alpha, 1), (0, inf, 1, 0))``); the
        two-point kernel of phi' is then exact (:mod:`meanfield.piecewise`). None when phi' has no such form.
    expr : sympy.Expr
        phi as a sympy expression in ``sympy.Symbol("x")`` (for symbolic work and for compiling to torch in
        :mod:`validate`); built, and sympy imported, on first access.
    """

    name: str
    phi: Callable[[np.ndarray], np.ndarray]
    dphi: Callable[[np.ndarray], np.ndarray]
    d2phi: Callable[[np.ndarray], np.ndarray]
    kinks: tuple[float, ...] = ()
    closed_form: str | None = None
    params: dict = field(default_factory=dict)
    oscillatory: bool = False
    symbolic: Callable[[], object] | None = field(default=None, repr=False)
    dphi_pieces: tuple[tuple[float, float, float, float], ...] | None = None

    @functools.cached_property
    def expr(self):
        """phi as a sympy expression in ``sympy.Symbol("x")``."""
        return self.symbolic()

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


def _symbolic(build: Callable) -> Callable[[], object]:
    """``build(sympy, x)`` wrapped into a no-argument builder that imports sympy only when called."""

    def make():
        import sympy

        return build(sympy, sympy.Symbol("x"))

    return make


def _vec(f: Callable) -> Callable[[np.ndarray], np.ndarray]:
    """Wrap a numpy function so it accepts scalars and lists and returns float64 arrays (0-d for scalars)."""

    def g(x):
        return f(np.asarray(x, dtype=np.float64))

    g.__name__ = getattr(f, "__name__", "phi")
    return g


# ---------------------------------------------------------------------------------------------------------------------
# Built-ins
# ---------------------------------------------------------------------------------------------------------------------


def _special():
    """scipy.special, imported on first use (it is not needed to import this module)."""
    from scipy import special

    return special


def _tanh() -> Activation:
    def dphi(x):
        # sech^2 x = 4 e / (1 + e)^2, e = exp(-2|x|): no cancellation in the tails (1 - tanh^2 is 0 beyond |x| ~ 19)
        e = np.exp(-2.0 * np.abs(x))
        return 4.0 * e / (1.0 + e) ** 2

    def d2phi(x):
        return -2.0 * np.tanh(x) * dphi(x)

    return Activation("tanh", _vec(np.tanh), _vec(dphi), _vec(d2phi), symbolic=_symbolic(lambda sp, x: sp.tanh(x)))


def _erf() -> Activation:
    def phi(x):
        return _special().erf(x)

    def dphi(x):
        return 2.0 / math.sqrt(math.pi) * np.exp(-x * x)

    def d2phi(x):
        return -4.0 / math.sqrt(math.pi) * x * np.exp(-x * x)

    return Activation("erf", _vec(phi), _vec(dphi), _vec(d2phi), closed_form="erf",
                      symbolic=_symbolic(lambda sp, x: sp.erf(x)))


def _leaky(slope: float, name: str) -> Activation:
    def phi(x):
        return np.where(x > 0, x, slope * x)

    def dphi(x):
        return np.where(x > 0, 1.0, slope)

    def d2phi(x):
        return np.zeros_like(x)

    def build(sp, x):
        return sp.Piecewise((x, x > 0), (sp.Float(slope) * x, True)) if slope != 0 else sp.Max(x, 0)

    pieces = ((-math.inf, 0.0, slope, 0.0), (0.0, math.inf, 1.0, 0.0)) if slope != 0 else ((0.0, math.inf, 1.0, 0.0),)
    return Activation(name, _vec(phi), _vec(dphi), _vec(d2phi), kinks=(0.0,), closed_form="leaky_relu",
                      params={"slope": slope}, symbolic=_symbolic(build), dphi_pieces=pieces)


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

    return Activation("hard_tanh", _vec(lambda x: np.clip(x, -1.0, 1.0)), _vec(dphi), _vec(d2phi),
                      kinks=(-1.0, 1.0), symbolic=_symbolic(lambda sp, x: sp.Min(1, sp.Max(-1, x))),
                      dphi_pieces=((-1.0, 1.0, 1.0, 0.0),))


def _linear() -> Activation:
    return Activation("linear", _vec(lambda x: x + 0.0), _vec(np.ones_like), _vec(np.zeros_like),
                      closed_form="linear", symbolic=_symbolic(lambda sp, x: x))


def _sigmoid() -> Activation:
    def phi(x):
        return _special().expit(x)

    def dphi(x):  # expit(x) expit(-x): no cancellation in 1 - expit(x) for large x
        return _special().expit(x) * _special().expit(-x)

    def d2phi(x):
        s, t = _special().expit(x), _special().expit(-x)
        return s * t * (t - s)

    return Activation("sigmoid", _vec(phi), _vec(dphi), _vec(d2phi),
                      symbolic=_symbolic(lambda sp, x: 1 / (1 + sp.exp(-x))))


def _softplus() -> Activation:
    def dphi(x):
        return _special().expit(x)

    def d2phi(x):
        s = _special().expit(x)
        return s * (1.0 - s)

    return Activation("softplus", _vec(lambda x: np.logaddexp(0.0, x)), _vec(dphi), _vec(d2phi),
                      symbolic=_symbolic(lambda sp, x: sp.log(1 + sp.exp(x))))


def _elu_like(alpha: float, scale: float, name: str, params: dict) -> Activation:
    def phi(x):
        return scale * np.where(x > 0, x, alpha * np.expm1(np.minimum(x, 0.0)))

    def dphi(x):
        return scale * np.where(x > 0, 1.0, alpha * np.exp(np.minimum(x, 0.0)))

    def d2phi(x):
        return scale * np.where(x > 0, 0.0, alpha * np.exp(np.minimum(x, 0.0)))

    def build(sp, x):
        expr = sp.Piecewise((x, x > 0), (sp.Float(alpha) * (sp.exp(x) - 1), True))
        return expr if scale == 1.0 else sp.Float(scale) * expr

    pieces = ((-math.inf, 0.0, scale * alpha, 1.0), (0.0, math.inf, scale, 0.0))
    return Activation(name, _vec(phi), _vec(dphi), _vec(d2phi), kinks=(0.0,), params=params,
                      symbolic=_symbolic(build), dphi_pieces=pieces)


def _elu(alpha: float = 1.0) -> Activation:
    alpha = _check_param("alpha", alpha)
    return _elu_like(alpha, 1.0, f"elu(alpha={alpha!r})", {"alpha": alpha})


def _selu() -> Activation:
    return _elu_like(_SELU_ALPHA, _SELU_SCALE, "selu", {})


def _gelu() -> Activation:
    def pdf(x):
        return np.exp(-0.5 * x * x) / _SQRT_2PI

    def phi(x):
        return x * _special().ndtr(x)

    def dphi(x):
        return _special().ndtr(x) + x * pdf(x)

    def d2phi(x):
        return (2.0 - x * x) * pdf(x)

    return Activation("gelu", _vec(phi), _vec(dphi), _vec(d2phi),
                      symbolic=_symbolic(lambda sp, x: x * (1 + sp.erf(x / sp.sqrt(2))) / 2))


def _swish() -> Activation:
    def phi(x):
        return x * _special().expit(x)

    def dphi(x):
        s = _special().expit(x)
        return s + x * s * (1.0 - s)

    def d2phi(x):
        s = _special().expit(x)
        return s * (1.0 - s) * (2.0 + x * (1.0 - 2.0 * s))

    return Activation("swish", _vec(phi), _vec(dphi), _vec(d2phi),
                      symbolic=_symbolic(lambda sp, x: x / (1 + sp.exp(-x))))


def _sin() -> Activation:
    return Activation("sin", _vec(np.sin), _vec(np.cos), _vec(lambda x: -np.sin(x)), oscillatory=True,
                      symbolic=_symbolic(lambda sp, x: sp.sin(x)))


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

#: Points where a user expression and its first two derivatives must be real and finite.
_TEST_POINTS = np.concatenate([np.linspace(-50.0, 50.0, 2001), [-1e-9, 1e-9, -1e-300, 1e-300]])


def _builtin_functions() -> dict[str, Callable]:
    """The built-in activations as functions of one sympy argument (``"gelu(2*x)"``, ``"2*swish(x)"``)."""
    import sympy

    x = sympy.Symbol("x")

    def as_function(name):
        def apply(arg):
            act = _builtin(name)
            if act.kinks:  # piecewise: allowed alone ("relu(x)" is relu), not inside or around an expression
                if arg == x:
                    return act.expr
                raise ExpressionError(f"the kinked built-in {name} can only be used alone, as {name!r} or "
                                      f"'{name}(x)', not applied to {arg}", str(arg))
            # substituted by parsing the built-in's own formula with x standing for the argument, so the result is
            # built exactly as if the user had written it out (and its name parses back to itself)
            return parse_expression(str(act.expr), x=arg)

        return apply

    names = [name for name in list(_BUILTINS) + list(_ALIASES) if name not in FUNCTION_NAMES]
    return {name: as_function(_ALIASES.get(name, name)) for name in names}


def _non_smooth(expr) -> bool:
    import sympy

    kinds = (sympy.Abs, sympy.sign, sympy.Heaviside, sympy.DiracDelta, sympy.Piecewise, sympy.Max, sympy.Min,
             sympy.floor, sympy.ceiling, sympy.Derivative, sympy.Subs, sympy.re, sympy.im, sympy.arg)
    return expr.has(*kinds)


def _from_sympy(expr, text: str) -> Activation:
    """The :class:`Activation` of a parsed expression (checks, derivatives, compiled callables)."""
    import sympy

    x = sympy.Symbol("x")
    others = expr.free_symbols - {x}
    if others:
        names = ", ".join(sorted(str(s) for s in others))
        raise ActivationError(f"activation {text!r} must be a function of x only (also depends on {names})", text)
    if not expr.has(x):
        raise ActivationError(f"activation {text!r} does not depend on x", text)
    for name in _BUILTINS:  # an expression that is a built-in gets the built-in (closed forms, fast callables)
        if expr == _builtin(name).expr:
            return _builtin(name)
    if _non_smooth(expr):
        raise ActivationError(f"activation {text!r} is not twice differentiable (abs, sign, max/min and piecewise "
                              "parts are not allowed in expressions; use a built-in such as relu, leaky_relu, "
                              "hard_tanh, elu for kinked activations)", text)
    if expr.has(sympy.I, sympy.zoo, sympy.nan, sympy.oo):
        raise ActivationError(f"activation {text!r} is not real and finite", text)
    singular = real_line_singularities(expr)
    if singular:
        reason, point = singular[0]
        where = f" (at x = {point:.6g})" if point is not None else ""
        raise ActivationError(f"activation {text!r} is not defined on the whole real line{where}: {reason}; an "
                              "activation must be finite and twice differentiable for every real x", text)
    try:
        funcs = derivative_functions(expr)
    except ExpressionError as exc:
        raise ActivationError(f"activation {text!r}: {exc}", text) from None
    for label, f in zip(("phi", "phi'", "phi''"), funcs, strict=True):
        values = np.asarray(f(_TEST_POINTS), dtype=np.float64)
        bad = ~np.isfinite(values)
        if bad.any():
            raise ActivationError(f"activation {text!r}: {label} is not finite and real at "
                                  f"x = {_TEST_POINTS[bad][0]:g} (it must be defined on the whole real line)", text)
    _check_growth(text, expr)
    return Activation(str(expr), *(_vec(f) for f in funcs), oscillatory=_is_oscillatory(*funcs),
                      symbolic=lambda: expr)


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


def _check_growth(text: str, expr) -> None:
    """Reject phi growing like exp(a x^2): the Gaussian expectation E[phi(sqrt(q) z)^2] must exist for every q."""
    import mpmath
    import sympy

    f = sympy.lambdify(sympy.Symbol("x"), expr, modules="mpmath")
    with mpmath.workdps(30):
        for x0 in (-1e4, 1e4):
            try:
                value = mpmath.mpf(abs(mpmath.mpc(f(mpmath.mpf(x0)))))
            except Exception:  # noqa: BLE001 - mpmath overflow or unsupported function: skip this check
                continue
            rate = mpmath.log(1 + value) / x0**2
            if not mpmath.isfinite(rate) or rate > 1e-3:
                raise ActivationError(f"activation {text!r} grows too fast (like exp(a x^2)); E[phi(h)^2] would be "
                                      "infinite for large variances", text)


def _from_expression(text: str) -> Activation:
    try:
        expr = parse_expression(text, functions=_builtin_functions())
    except ExpressionError as exc:
        raise ActivationError(f"activation {text.strip()!r} is neither a built-in "
                              f"({', '.join(builtin_activation_names())}) nor an expression in x: {exc}",
                              text, exc.position) from None
    try:
        return _from_sympy(expr, text.strip())
    except (ActivationError, MemoryError):
        raise
    except Exception as exc:  # noqa: BLE001 - sympy's analysis can fail in many ways; the user gets one clear error
        raise ActivationError(f"activation {text.strip()!r}: the expression could not be analysed "
                              f"({type(exc).__name__}: {exc}); simplify it", text) from None


# ---------------------------------------------------------------------------------------------------------------------
# Lookup
# ---------------------------------------------------------------------------------------------------------------------

_CACHE: dict[str, Activation] = {}
_CALL = re.compile(r"^\s*([A-Za-z_][A-Za-z0-9_\-]*)\s*\((.*)\)\s*$", re.DOTALL)
_PARAM = re.compile(r"^\s*([A-Za-z_][A-Za-z0-9_]*)\s*=\s*(\S+)\s*$")


def _normalise(name: str) -> str:
    key = name.strip().lower().replace("-", "_")
    return _ALIASES.get(key, key)


def _parse_params(text: str) -> dict | None:
    """``name=value, ...`` as a dict of floats; None if ``text`` is not a parameter list (then it is an argument)."""
    if "=" not in text:
        return None if text.strip() else {}
    params = {}
    for part in (p.strip() for p in text.split(",")):
        m = _PARAM.match(part)
        if not m:
            raise ActivationError(f"activation parameters must be written name=value, got {part!r}", text)
        key, value = m.groups()
        try:
            params[key] = float(value)
        except ValueError:
            raise ActivationError(f"activation parameter {key} must be a number, got {value!r}", text) from None
    return params


def _builtin(key: str, **params) -> Activation:
    factory = _BUILTINS[key]
    allowed = set(inspect.signature(factory).parameters)
    if set(params) - allowed:
        raise TypeError(f"activation {key} takes parameters {sorted(allowed) or 'none'}, got {sorted(params)}")
    act = factory(**params)
    return _CACHE.setdefault(act.name, act)


def get_activation(spec, **params) -> Activation:
    """Return the :class:`Activation` for a built-in name, a parametrised name or an expression in ``x``.

    Parameters
    ----------
    spec : str or Activation or sympy.Expr
        A built-in name (case-insensitive; ``tanh, erf, relu, leaky_relu, hard_tanh, linear, sigmoid, softplus, elu,
        selu, gelu, swish, sin``; aliases ``silu, hardtanh, leakyrelu, identity``), a name with parameters
        (``"leaky_relu(slope=0.1)"``, ``"elu(alpha=0.5)"``), or an expression in ``x`` such as ``"x*tanh(x)"``,
        ``"tanh(2*x)"``, ``"1e-9*x"`` or ``"x^2"`` (grammar: :mod:`meanfield.expressions`; the built-ins may be called
        as functions, ``"gelu(2*x)"``). The text is parsed, never evaluated as Python. A sympy expression in
        ``Symbol("x")`` is read through its string form. An :class:`Activation` is returned unchanged.
    **params
        Parameters of a built-in: ``slope`` for leaky_relu (default 0.01, as torch), ``alpha`` for elu (default 1).

    Returns
    -------
    Activation
        An expression equal to a built-in's (``"tanh(x)"``, ``"x"``) returns that built-in.

    Raises
    ------
    ActivationError
        (a ValueError) Unknown name, malformed or disallowed expression (names outside the whitelist, implicit
        multiplication), an expression that depends on other symbols, is not twice differentiable, has a pole or a
        domain limit on the real line (``tan(x)``, ``1/(x-1)``, ``log(x)``, ``sqrt(x)``), is not real and finite on
        the real line, or grows like exp(a x^2).
    TypeError
        Wrong parameter names or types.
    """
    if isinstance(spec, Activation):
        if params:
            raise TypeError("get_activation: parameters cannot be given with an Activation instance")
        return spec
    sympy = sys.modules.get("sympy")
    if sympy is not None and isinstance(spec, sympy.Basic) and not params:
        spec = str(spec)
    if not isinstance(spec, str):
        raise TypeError(f"activation must be a name, an expression string or an Activation, got {type(spec).__name__}")
    if not spec.strip():
        raise ActivationError("activation must not be empty", spec)
    key = _normalise(spec)
    if key in _BUILTINS:
        return _builtin(key, **params)
    match = _CALL.match(spec)
    if match and _normalise(match.group(1)) in _BUILTINS:
        parsed = _parse_params(match.group(2))
        if parsed is not None:
            return _builtin(_normalise(match.group(1)), **{**parsed, **params})
    if params:
        raise TypeError(f"parameters {sorted(params)} given for {spec!r}, which is not a built-in activation")
    cached = _CACHE.get("expr:" + spec.strip())
    if cached is None:
        cached = _from_expression(spec)
        _CACHE["expr:" + spec.strip()] = cached
    return cached
