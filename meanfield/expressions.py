"""Safe parsing of activation expressions in ``x`` into sympy, and the check that they are defined on the real line.

User input is data, never code: :func:`parse_expression` reads a string with its own tokenizer and recursive-descent
parser and builds the sympy expression node by node. Nothing is passed to ``eval``, ``sympify`` or ``parse_expr``
(which evaluate Python), so ``"__import__('os').system('...')"`` is a syntax error, not a command.

Grammar (whitespace is ignored)::

    expression := term (("+" | "-") term)*
    term       := unary (("*" | "/") unary)*
    unary      := ("+" | "-") unary | power
    power      := atom (("**" | "^") unary)?        # right-associative: 2**3**2 = 2**9; -x**2 = -(x**2)
    atom       := number | "x" | constant | function "(" expression ")" | "(" expression ")"
    number     := 12 | 1.5 | .5 | 1e-9 | 2.5E+3
    constant   := pi | E

``^`` is a power, as in mathematics (not Python's exclusive or). Implicit multiplication (``2x``) is an error. Functions
(one argument each): see :data:`FUNCTION_NAMES`; callers may add more (the built-in activations, so that
``"gelu(2*x)"`` works). Constant sub-expressions are evaluated as they are built and must stay real and finite
(``|value| <= 1e300``), so a power tower such as ``9**9**9**9`` is refused at once instead of exhausting memory.

:func:`real_line_singularities` finds the points where an expression is not defined on the whole real line: poles
(a denominator with a real zero: ``1/(x-1)``, ``tan(x)``), logarithms and non-integer powers of a quantity that is not
positive everywhere (``log(x)``, ``sqrt(x)``, ``x**x``). Each such condition is decided exactly where sympy can (real
roots of polynomials by Sturm sequences, :func:`sympy.solveset` over the reals for small expressions) and otherwise
numerically on a dense grid of ``[-1e6, 1e6]`` with local refinement of near-zeros.
"""

from __future__ import annotations

import math
import re
from collections.abc import Callable, Mapping

import numpy as np

__all__ = ["ExpressionError", "FUNCTION_NAMES", "CONSTANT_NAMES", "MAX_LENGTH", "MAX_DEPTH", "parse_expression",
           "real_line_singularities", "derivative_functions"]

#: Longest accepted expression (characters).
MAX_LENGTH = 1000
#: Deepest accepted nesting of parentheses, function calls, powers and unary signs.
MAX_DEPTH = 60
#: Largest magnitude of a constant sub-expression (float64 range).
MAX_CONSTANT = 1e300
#: Longest integer literal (digits).
MAX_DIGITS = 300
#: Most nodes of the expression written out as a tree (built-in activations used as functions repeat their argument:
#: ``gelu`` nested n deep has 2^n copies of ``x``).
MAX_NODES = 5000


class ExpressionError(ValueError):
    """An activation expression that is malformed, uses a name outside the whitelist, or is not defined on the whole
    real line. ``text`` is the expression and ``position`` the character offset of the problem (or None)."""

    def __init__(self, message: str, text: str = "", position: int | None = None):
        super().__init__(message)
        self.text = text
        self.position = position


def _functions() -> dict[str, Callable]:
    import sympy

    def unevaluated(func):
        # sympy's automatic evaluation of nested function calls can take time exponential in the nesting depth
        # (tanh nested ten deep: a minute); the parser folds constants itself, so the nodes are built as written
        def build(arg):
            return func(arg, evaluate=False)

        return build

    def sigmoid(a):
        return 1 / (1 + sympy.exp(-a, evaluate=False))

    table = {name: unevaluated(func) for name, func in (
        ("sin", sympy.sin), ("cos", sympy.cos), ("tan", sympy.tan), ("sinh", sympy.sinh), ("cosh", sympy.cosh),
        ("tanh", sympy.tanh), ("atan", sympy.atan), ("arctan", sympy.atan), ("asinh", sympy.asinh),
        ("arcsinh", sympy.asinh), ("exp", sympy.exp), ("log", sympy.log), ("ln", sympy.log), ("erf", sympy.erf),
        ("erfc", sympy.erfc), ("abs", sympy.Abs), ("Abs", sympy.Abs))}
    table["sqrt"] = sympy.sqrt
    table["sigmoid"] = sigmoid
    return table


#: Functions of one argument an expression may call (besides any the caller adds).
FUNCTION_NAMES = ("sin", "cos", "tan", "sinh", "cosh", "tanh", "atan", "arctan", "asinh", "arcsinh", "exp", "log",
                  "ln", "sqrt", "erf", "erfc", "abs", "Abs", "sigmoid")
#: Named constants.
CONSTANT_NAMES = ("pi", "E")

_TOKEN = re.compile(r"""
    (?P<space>\s+)
  | (?P<number>(?:[0-9]+\.?[0-9]*|\.[0-9]+)(?:[eE][+-]?[0-9]+)?)
  | (?P<name>[A-Za-z_][A-Za-z0-9_]*)
  | (?P<op>\*\*|[-+*/^(),])
""", re.VERBOSE)


def _tokenize(text: str) -> list[tuple[str, str, int]]:
    tokens = []
    pos = 0
    while pos < len(text):
        m = _TOKEN.match(text, pos)
        if m is None:
            raise ExpressionError(f"unexpected character {text[pos]!r} at position {pos} (allowed: x, "
                                  "numbers, + - * / ** ^, parentheses and function names)", text, pos)
        if m.lastgroup != "space":
            tokens.append((m.lastgroup, m.group(), pos))
        pos = m.end()
    tokens.append(("end", "", len(text)))
    return tokens


class _Parser:
    def __init__(self, text: str, functions: Mapping[str, Callable], x=None):
        import sympy

        self.sympy = sympy
        self.x = sympy.Symbol("x") if x is None else x
        self.text = text
        self.functions = functions
        self.tokens = _tokenize(text)
        self.i = 0
        self.depth = 0
        self.sizes: dict = {}

    # -- helpers

    def error(self, message: str, pos: int | None = None) -> ExpressionError:
        if pos is None:
            pos = self.peek()[2]
        return ExpressionError(f"{message} at position {pos}", self.text, pos)

    def peek(self) -> tuple[str, str, int]:
        return self.tokens[self.i]

    def take(self) -> tuple[str, str, int]:
        tok = self.tokens[self.i]
        self.i += 1
        return tok

    def expect(self, value: str) -> None:
        kind, tok, pos = self.take()
        if tok != value:
            shown = "the end" if kind == "end" else repr(tok)
            raise self.error(f"expected {value!r}, found {shown}", pos)

    def enter(self) -> None:
        self.depth += 1
        if self.depth > MAX_DEPTH:
            raise self.error(f"expression nested more than {MAX_DEPTH} levels deep")

    def tree_size(self, node) -> int:
        """Number of nodes of ``node`` written out as a tree (shared sub-expressions counted each time they occur)."""
        size = self.sizes.get(node)
        if size is None:
            size = 1 + sum(self.tree_size(a) for a in node.args)
            self.sizes[node] = size
        return size

    def check_size(self, node, pos: int):
        if self.tree_size(node) > MAX_NODES:
            raise self.error(f"expression too large: more than {MAX_NODES} nodes when written out", pos)
        return node

    def constant(self, value, pos: int):
        """Check a constant sub-expression: real, finite and of magnitude <= MAX_CONSTANT."""
        sympy = self.sympy
        if value.free_symbols or not value.is_number:
            return value
        if value.has(sympy.zoo, sympy.nan, sympy.oo, -sympy.oo):
            raise self.error("division by zero or an undefined constant (such as log(0))", pos)
        try:
            approx = sympy.N(value, 17)
            if approx.has(sympy.zoo, sympy.nan, sympy.oo, -sympy.oo) or approx.is_finite is False:
                raise self.error("an infinite or undefined constant (such as log(0))", pos)
            number = complex(approx)
        except (TypeError, ValueError, OverflowError, ArithmeticError) as exc:
            if isinstance(exc, ExpressionError):
                raise
            raise self.error("a constant that cannot be evaluated to a real number", pos) from None
        if number.imag != 0.0 and abs(number.imag) > 1e-15 * max(1.0, abs(number.real)):
            raise self.error(f"a complex constant ({value}); the activation must be real", pos)
        if not math.isfinite(number.real) or abs(number.real) > MAX_CONSTANT:
            raise self.error(f"a constant out of range (|value| must be <= {MAX_CONSTANT:g})", pos)
        return value

    # -- grammar

    def parse(self):
        if len(self.text) > MAX_LENGTH:
            raise ExpressionError(f"expression longer than {MAX_LENGTH} characters", self.text, MAX_LENGTH)
        if self.peek()[0] == "end":
            raise ExpressionError("empty expression", self.text, 0)
        expr = self.check_size(self.expression(), 0)
        kind, tok, pos = self.peek()
        if kind != "end":
            if kind in ("number", "name") or tok == "(":
                raise self.error(f"missing operator before {tok!r} (write 2*x, not 2x)", pos)
            raise self.error(f"unexpected {tok!r}", pos)
        return expr

    def expression(self):
        expr = self.term()
        while self.peek()[1] in ("+", "-"):
            _, op, pos = self.take()
            rhs = self.term()
            expr = self.constant(expr + rhs if op == "+" else expr - rhs, pos)
        return expr

    def term(self):
        expr = self.unary()
        while self.peek()[1] in ("*", "/"):
            _, op, pos = self.take()
            rhs = self.unary()
            if op == "/" and rhs.is_number and rhs == 0:
                raise self.error("division by zero", pos)
            expr = self.constant(expr * rhs if op == "*" else expr / rhs, pos)
        return expr

    def unary(self):
        if self.peek()[1] in ("+", "-"):
            _, op, pos = self.take()
            self.enter()
            operand = self.unary()
            self.depth -= 1
            return -operand if op == "-" else operand
        return self.power()

    def power(self):
        base = self.atom()
        if self.peek()[1] in ("**", "^"):
            _, _, pos = self.take()
            self.enter()
            exponent = self.unary()
            self.depth -= 1
            if base.is_number and exponent.is_number:
                self.check_power_size(base, exponent, pos)
            return self.constant(base**exponent, pos)
        return base

    def check_power_size(self, base, exponent, pos: int) -> None:
        """Refuse a constant power whose magnitude is beyond float64 before sympy computes it exactly."""
        b = abs(complex(self.sympy.N(base, 17)))
        e = complex(self.sympy.N(exponent, 17)).real
        if b == 0.0:
            if e < 0:
                raise self.error("division by zero (0 to a negative power)", pos)
            return
        if abs(e * math.log10(b)) > 300:
            raise self.error(f"a constant out of range (|value| must be <= {MAX_CONSTANT:g})", pos)

    def atom(self):
        kind, tok, pos = self.take()
        sympy = self.sympy
        if kind == "number":
            return self.number(tok, pos)
        if tok == "(":
            self.enter()
            expr = self.expression()
            self.expect(")")
            self.depth -= 1
            return expr
        if kind == "name":
            if self.peek()[1] == "(":
                return self.call(tok, pos)
            if tok == "x":
                return self.x
            if tok == "pi":
                return sympy.pi
            if tok == "E":
                return sympy.E
            if tok in self.functions:
                raise self.error(f"function {tok!r} needs an argument in parentheses, e.g. {tok}(x)", pos)
            hint = " (write E or exp(1) for Euler's number)" if tok == "e" else ""
            raise self.error(f"unknown name {tok!r}{hint}; allowed: x, {', '.join(CONSTANT_NAMES)} and the functions "
                             f"{', '.join(sorted(self.functions))}", pos)
        if kind == "end":
            raise self.error("unexpected end of expression", pos)
        raise self.error(f"unexpected {tok!r}", pos)

    def number(self, tok: str, pos: int):
        sympy = self.sympy
        if re.fullmatch(r"[0-9]+", tok):
            if len(tok) > MAX_DIGITS:
                raise self.error(f"integer with more than {MAX_DIGITS} digits", pos)
            return self.constant(sympy.Integer(int(tok)), pos)
        value = float(tok)
        if not math.isfinite(value) or abs(value) > MAX_CONSTANT:
            raise self.error(f"number {tok!r} out of range (|value| must be <= {MAX_CONSTANT:g})", pos)
        mantissa = re.split(r"[eE]", tok)[0].replace(".", "").lstrip("0")
        return sympy.Float(tok, max(15, len(mantissa)))

    def call(self, name: str, pos: int):
        if name not in self.functions:
            raise self.error(f"unknown function {name!r}; allowed: {', '.join(sorted(self.functions))}", pos)
        self.expect("(")
        self.enter()
        if self.peek()[1] == ")":
            raise self.error(f"function {name!r} takes one argument, got none")
        arg = self.expression()
        if self.peek()[1] == ",":
            raise self.error(f"function {name!r} takes one argument")
        if self.peek()[1] == "=":
            raise self.error(f"function {name!r} takes one argument, not name=value parameters")
        self.expect(")")
        self.depth -= 1
        return self.check_size(self.constant(self.functions[name](arg), pos), pos)


def parse_expression(text: str, functions: Mapping[str, Callable] | None = None, x=None):
    """Parse an expression in ``x`` into a sympy expression, without evaluating any Python.

    Parameters
    ----------
    text : str
        The expression, e.g. ``"x*tanh(x)"``, ``"sin(3*x)"``, ``"1e-9*x"``, ``"x^2"`` (see the module docstring for the
        grammar).
    functions : mapping of str to callable, optional
        Extra functions of one sympy argument (e.g. the built-in activations), added to :data:`FUNCTION_NAMES`.
    x : sympy.Expr, optional
        What the name ``x`` stands for (default ``sympy.Symbol("x")``): substitutes an argument into an expression
        built the same way as parsed text (used for the built-in activations called as functions).

    Returns
    -------
    sympy.Expr
        In the symbol ``sympy.Symbol("x")``.

    Raises
    ------
    ExpressionError
        (a ValueError) Malformed text, a name outside the whitelist, a constant that is not real and finite, an
        expression longer than :data:`MAX_LENGTH` or nested deeper than :data:`MAX_DEPTH`.
    """
    if not isinstance(text, str):
        raise TypeError(f"expression must be a string, got {type(text).__name__}")
    table = dict(_functions())
    if functions:
        table.update(functions)
    parser = _Parser(text, table, x)
    try:
        return parser.parse()
    except (ExpressionError, MemoryError):
        raise
    except Exception as exc:  # noqa: BLE001 - sympy failing inside a node: one clear error, never a traceback
        raise ExpressionError(f"cannot build the expression ({type(exc).__name__}: {exc})", text) from None


# ---------------------------------------------------------------------------------------------------------------------
# Definedness on the real line
# ---------------------------------------------------------------------------------------------------------------------

#: Grid of the numerical fallback: dense on [-100, 100], geometric out to 1e6.
_DENSE = np.linspace(-100.0, 100.0, 400_001)
_FAR = np.geomspace(100.0, 1e6, 4001)[1:]
_GRID = np.concatenate([-_FAR[::-1], _DENSE, _FAR])
#: Largest sympy operation count for which sympy's exact solvers are tried (they can take minutes on larger or nested
#: expressions: ``1 + exp(-sigmoid(sigmoid(...)))`` six deep took 140 s); beyond, the grid decides.
_SOLVE_MAX_OPS = 12


def _function_depth(expr) -> int:
    """Nesting depth of function applications (``exp(sin(x))``: 2; polynomials: 0)."""
    import sympy

    inner = max((_function_depth(a) for a in expr.args), default=0)
    return inner + 1 if isinstance(expr, sympy.Function) else inner


def _conditions(expr, x):
    """``(g, positive, reason)`` for every sub-expression that needs ``g != 0`` (a pole) or ``g > 0`` everywhere."""
    import sympy

    for node in sympy.preorder_traversal(expr):
        if isinstance(node, sympy.Pow):
            base, exp = node.args
            if not base.has(x):
                if exp.has(x):
                    yield base, True, f"{node}: a power with a variable exponent, whose base {base} must be positive"
                continue
            if exp.is_number:
                value = float(sympy.N(exp))
                if value == int(value):
                    if value < 0:
                        yield base, False, f"{node}: division by zero where {base} = 0"
                    continue
                yield base, True, f"{node}: a non-integer power of {base}, which must be positive"
            else:
                yield base, True, f"{node}: a power with a variable exponent, whose base {base} must be positive"
        elif isinstance(node, sympy.log):
            yield node.args[0], True, f"{node}: the logarithm of {node.args[0]}, which must be positive"
        elif isinstance(node, sympy.tan):
            yield sympy.cos(node.args[0]), False, f"{node}: tan has poles where cos({node.args[0]}) = 0"
        elif isinstance(node, (sympy.cot, sympy.csc)):
            yield sympy.sin(node.args[0]), False, f"{node}: poles where sin({node.args[0]}) = 0"
        elif isinstance(node, sympy.sec):
            yield sympy.cos(node.args[0]), False, f"{node}: poles where cos({node.args[0]}) = 0"


def _real_zero(g, x) -> tuple[bool | None, float | None]:
    """Whether ``g`` has a real zero: (True, a zero), (False, None), or (None, None) if undecided exactly."""
    import sympy

    poly = None
    if g.is_polynomial(x) and _function_depth(g) == 0 and sympy.count_ops(g) <= _SOLVE_MAX_OPS:
        try:
            poly = sympy.Poly(g, x)
        except sympy.PolynomialError:
            poly = None
    if poly is not None and poly.degree() <= 50 and all(c.is_real for c in poly.all_coeffs()):
        if poly.count_roots() == 0:
            return False, None
        roots = [complex(r) for r in sympy.Poly(poly.as_expr(), x).nroots(n=15)]
        real = [r.real for r in roots if abs(r.imag) <= 1e-9 * max(1.0, abs(r))]
        return True, (min(real, key=abs) if real else None)
    if sympy.count_ops(g) > _SOLVE_MAX_OPS or _function_depth(g) > 1:
        return None, None
    xr = sympy.Symbol("x", real=True)
    try:
        solutions = sympy.solveset(g.subs(x, xr), xr, sympy.S.Reals)
    except Exception:  # noqa: BLE001 - sympy's solver raises many types; the numerical check decides instead
        return None, None
    if solutions is sympy.S.EmptySet:
        return False, None
    if isinstance(solutions, sympy.FiniteSet) and all(s.is_real for s in solutions):
        return True, float(min(solutions, key=lambda s: abs(float(s))))
    if isinstance(solutions, sympy.ImageSet):
        base = solutions.lamda.expr.subs(solutions.lamda.variables[0], 0)
        if base.is_real:
            return True, float(base)
    if isinstance(solutions, sympy.Union) and all(isinstance(a, sympy.ImageSet) for a in solutions.args):
        points = [a.lamda.expr.subs(a.lamda.variables[0], 0) for a in solutions.args]
        if all(p.is_real for p in points):
            return True, float(min(points, key=lambda p: abs(float(p))))
    return None, None


def _numeric_zero(g, x) -> float | None:
    """A real zero of ``g`` found on the grid (a sign change or a refined near-zero), nan if numpy cannot evaluate
    ``g``, or None."""
    import sympy
    from scipy.optimize import minimize_scalar

    f = sympy.lambdify(x, g, modules=["scipy", "numpy"])
    with np.errstate(all="ignore"):
        try:
            values = np.broadcast_to(np.asarray(f(_GRID), dtype=np.complex128), _GRID.shape)
        except Exception:  # noqa: BLE001 - a function numpy cannot evaluate on the grid: treat as undefined there
            return float("nan")
        # overflowing or complex values are not zeros of g (a sub-expression's own condition covers a complex one);
        # the grid is searched on the points where g is real and finite
        keep = np.isfinite(values) & (np.abs(values.imag) <= 1e-12 * np.maximum(1.0, np.abs(values.real)))
        grid = _GRID[keep]
        v = values.real[keep]
        if v.size < 3:
            return None
        zero = v == 0.0
        if zero.any():
            return float(grid[zero][np.argmin(np.abs(grid[zero]))])
        flips = np.nonzero(np.sign(v[1:]) != np.sign(v[:-1]))[0]
        if flips.size:
            i = flips[np.argmin(np.abs(grid[flips]))]
            return float(grid[i])
        a = np.abs(v)
        scale = float(np.median(a))
        minima = np.nonzero((a[1:-1] <= a[:-2]) & (a[1:-1] <= a[2:]) & (a[1:-1] < 1e-2 * max(scale, 1e-300)))[0] + 1
        for i in minima[np.argsort(a[minima])][:50]:
            lo, hi = grid[i - 1], grid[i + 1]
            res = minimize_scalar(lambda t: float(abs(np.real(f(t)))), bounds=(lo, hi), method="bounded",
                                  options={"xatol": 1e-14 * max(1.0, abs(grid[i]))})
            if res.fun <= 1e-12 * max(scale, 1e-300):
                return float(res.x)
    return None


def real_line_singularities(expr) -> list[tuple[str, float | None]]:
    """Where a sympy expression in ``x`` fails to be defined (finite, real, smooth) on the whole real line.

    Every pole (a negative integer power of something with a real zero; ``tan``), logarithm and non-integer or variable
    power gives a condition ``g != 0`` or ``g > 0`` on a sub-expression ``g``. Each is decided exactly where possible
    (Sturm count of real roots for polynomials; :func:`sympy.solveset` over the reals for expressions of at most
    ``_SOLVE_MAX_OPS`` operations) and otherwise on a grid of ``[-1e6, 1e6]`` (step 5e-4 on ``[-100, 100]``): a sign
    change, a non-finite value, or a local minimum of ``|g|`` refined to below ``1e-12`` times its typical size.

    Returns
    -------
    list of (reason, x0)
        One entry per violated condition with a point ``x0`` where it fails (None if unknown); empty if none.
    """
    import sympy

    x = sympy.Symbol("x")
    found = []
    for g, positive, reason in _conditions(expr, x):
        if not g.has(x):
            value = complex(sympy.N(g, 17))
            if (positive and not (value.real > 0 and value.imag == 0)) or value == 0:
                found.append((reason, None))
            continue
        exact, point = _real_zero(g, x)
        if exact is None:
            point = _numeric_zero(g, x)
            exact = point is not None
        if exact:
            found.append((reason, None if point is None or math.isnan(point) else point))
            continue
        if positive:
            with np.errstate(all="ignore"):
                value = complex(sympy.N(g.subs(x, 0), 17))
            if not value.real > 0 or value.imag != 0:
                found.append((reason, 0.0))
    return found


# ---------------------------------------------------------------------------------------------------------------------
# Numerical phi, phi', phi'' by forward-mode differentiation of the expression tree
# ---------------------------------------------------------------------------------------------------------------------

_SQRT_PI = math.sqrt(math.pi)


def _unary_rules() -> dict:
    """sympy function class -> (f, f', f'') on numpy arrays, each taking the argument ``u`` (and f's value ``v``)."""
    import sympy
    from scipy import special

    def erf_d1(u, v):
        return 2.0 / _SQRT_PI * np.exp(-u * u)

    return {
        sympy.sin: (np.sin, lambda u, v: np.cos(u), lambda u, v: -v),
        sympy.cos: (np.cos, lambda u, v: -np.sin(u), lambda u, v: -v),
        sympy.tan: (np.tan, lambda u, v: 1.0 + v * v, lambda u, v: 2.0 * v * (1.0 + v * v)),
        sympy.sinh: (np.sinh, lambda u, v: np.cosh(u), lambda u, v: v),
        sympy.cosh: (np.cosh, lambda u, v: np.sinh(u), lambda u, v: v),
        sympy.tanh: (np.tanh, lambda u, v: 1.0 - v * v, lambda u, v: -2.0 * v * (1.0 - v * v)),
        sympy.atan: (np.arctan, lambda u, v: 1.0 / (1.0 + u * u), lambda u, v: -2.0 * u / (1.0 + u * u) ** 2),
        sympy.asinh: (np.arcsinh, lambda u, v: 1.0 / np.sqrt(1.0 + u * u), lambda u, v: -u / (1.0 + u * u) ** 1.5),
        sympy.exp: (np.exp, lambda u, v: v, lambda u, v: v),
        sympy.log: (np.log, lambda u, v: 1.0 / u, lambda u, v: -1.0 / (u * u)),
        sympy.erf: (special.erf, erf_d1, lambda u, v: -2.0 * u * erf_d1(u, v)),
        sympy.erfc: (special.erfc, lambda u, v: -erf_d1(u, v), lambda u, v: 2.0 * u * erf_d1(u, v)),
    }


def derivative_functions(expr) -> tuple[Callable, Callable, Callable]:
    """numpy callables for phi, phi' and phi'' of a sympy expression in ``x``, by forward-mode differentiation.

    Each node of the expression tree (shared sub-expressions once) carries the jet ``(v, v', v'')`` of its value
    with respect to ``x``; sums, products, powers and the whitelisted functions combine jets by the chain and product
    rules (for ``w = f(u)``: ``w' = f'(u) u'``, ``w'' = f''(u) u'^2 + f'(u) u''``). The cost is linear in the size of
    the expression, unlike symbolic second derivatives, which grow quadratically with nesting and took sympy minutes
    for ``tanh`` nested ten deep. Values at which the expression overflows come out as inf/nan without warnings.

    Raises
    ------
    ExpressionError
        The expression contains an operation without a differentiation rule here.
    """
    import sympy

    x = sympy.Symbol("x")
    rules = _unary_rules()
    program: list[tuple] = []  # (kind, payload, argument slots); slot i holds node i's jet
    slots: dict = {}

    def emit(node) -> int:
        if node in slots:
            return slots[node]
        if node == x:
            op = ("x", None, ())
        elif not node.has(x):
            op = ("const", float(sympy.N(node, 17)), ())
        elif isinstance(node, sympy.Add):
            op = ("add", None, tuple(emit(a) for a in node.args))
        elif isinstance(node, sympy.Mul):
            op = ("mul", None, tuple(emit(a) for a in node.args))
        elif isinstance(node, sympy.Pow):
            base, exponent = node.args
            if exponent.has(x):  # u**w = exp(w log u), u > 0 (checked by real_line_singularities)
                base_slot, exponent_slot = emit(base), emit(exponent)
                program.append(("func", rules[sympy.log], (base_slot,)))
                program.append(("mul", None, (exponent_slot, len(program) - 1)))
                program.append(("func", rules[sympy.exp], (len(program) - 1,)))
                slots[node] = len(program) - 1
                return slots[node]
            op = ("pow", float(sympy.N(exponent, 17)), (emit(base),))
        elif type(node) in rules:
            op = ("func", rules[type(node)], (emit(node.args[0]),))
        else:
            raise ExpressionError(f"no differentiation rule for {node} (function {type(node).__name__})", str(expr))
        program.append(op)
        slots[node] = len(program) - 1
        return slots[node]

    root = emit(expr)

    def evaluate(h, order: int):
        h = np.asarray(h, dtype=np.float64)
        zero = np.zeros_like(h)
        jets: list[tuple] = []
        with np.errstate(all="ignore"):
            for kind, payload, args in program:
                if kind == "x":
                    jet = (h, np.ones_like(h), zero)
                elif kind == "const":
                    jet = (np.full_like(h, payload), zero, zero)
                elif kind == "add":
                    parts = [jets[i] for i in args]
                    jet = tuple(sum(p[k] for p in parts) if k <= order else None for k in range(3))
                elif kind == "mul":
                    jet = jets[args[0]]
                    for i in args[1:]:
                        (a, a1, a2), (b, b1, b2) = jet, jets[i]
                        jet = (a * b,
                               a1 * b + a * b1 if order >= 1 else None,
                               a2 * b + 2.0 * a1 * b1 + a * b2 if order >= 2 else None)
                elif kind == "pow":
                    (u, u1, u2), c = jets[args[0]], payload
                    if c == 1.0:
                        jet = (u, u1, u2)
                    else:
                        p1 = c * u ** (c - 1.0) if order >= 1 else None
                        p2 = (c * (c - 1.0) * u ** (c - 2.0) if c != 2.0 else np.full_like(h, 2.0)) \
                            if order >= 2 else None
                        jet = (u**c, p1 * u1 if order >= 1 else None,
                               p2 * u1 * u1 + p1 * u2 if order >= 2 else None)
                else:
                    f, d1, d2 = payload
                    u, u1, u2 = jets[args[0]]
                    v = f(u)
                    g1 = d1(u, v) if order >= 1 else None
                    jet = (v, g1 * u1 if order >= 1 else None,
                           d2(u, v) * u1 * u1 + g1 * u2 if order >= 2 else None)
                jets.append(jet)
        return jets[root][order]

    def phi(h):
        return evaluate(h, 0)

    def dphi(h):
        return evaluate(h, 1)

    def d2phi(h):
        return evaluate(h, 2)

    return phi, dphi, d2phi
