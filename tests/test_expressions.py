"""User activation expressions: a restricted grammar (never eval'd); expressions singular on the real line refused."""

import os
import pathlib
import random
import subprocess
import sys
import time

import numpy as np
import pytest
import sympy

from meanfield import get_activation
from meanfield.activations import ActivationError
from meanfield.expressions import ExpressionError, parse_expression, real_line_singularities

ROOT = pathlib.Path(__file__).resolve().parents[1]
X = sympy.Symbol("x")


@pytest.mark.parametrize("text,expected", [
    ("x", X),
    ("tanh(2*x)", sympy.tanh(2 * X)),
    ("sin(3*x)", sympy.sin(3 * X)),
    ("x*tanh(x)", X * sympy.tanh(X)),
    ("x**2", X**2),
    ("x^2", X**2),
    ("-x**2", -(X**2)),
    ("2**3**2*x", 512 * X),
    ("2**-x", 2 ** (-X)),
    ("(x+1)*(x-1)/4", (X + 1) * (X - 1) / 4),
    ("1e-9*x", sympy.Float("1e-9") * X),
    (".5*x + 2.5E+1", sympy.Float("0.5") * X + sympy.Float(25)),
    ("exp(-x^2/2)*x", sympy.exp(-X**2 / 2) * X),
    ("pi*x + E", sympy.pi * X + sympy.E),
    ("  sqrt( 1 + x ** 2 ) ", sympy.sqrt(1 + X**2)),
    ("--x", X),
    ("sigmoid(x)", 1 / (1 + sympy.exp(-X))),
])
def test_parser_builds_the_expected_sympy_tree(text, expected):
    got = parse_expression(text)
    assert sympy.simplify(got - expected) == 0


@pytest.mark.parametrize("text,fragment", [
    ("__import__('os').system('touch FILE')", "unexpected character"),
    ("x.real", "unexpected character"),
    ("lambda: x", "unexpected character"),
    ("2x", "missing operator"),
    ("x y", "missing operator"),
    ("foo(x)", "unknown function 'foo'"),
    ("y", "unknown name 'y'"),
    ("e**x", "write E"),
    ("eval", "unknown name"),
    ("tanh", "needs an argument"),
    ("tanh()", "one argument"),
    ("tanh(x, x)", "one argument"),
    ("x+", "unexpected end"),
    ("(x", "expected ')'"),
    ("x)", "unexpected ')'"),
    ("", "empty"),
    ("1/0", "division by zero"),
    ("log(0)*x", "undefined constant"),
    ("exp(1000)*x", "out of range"),
    ("9**9**9**9", "out of range"),
    ("10.0**400*x", "out of range"),
    ("1e400*x", "out of range"),
    ("1" * 400, "digits"),
    ("(" * 100 + "x" + ")" * 100, "nested"),
    ("-" * 100 + "x", "nested"),
    ("x" + "+x" * 600, "longer than"),
    ("sqrt(-1)*x", "complex constant"),
    ("x\u0660", "unexpected character"),
])
def test_parser_rejects_with_a_clear_message(text, fragment):
    with pytest.raises(ExpressionError, match=fragment.replace("(", r"\(").replace(")", r"\)").replace("*", r"\*")):
        parse_expression(text)


@pytest.mark.parametrize("text", ["tanh(x)", "tanh(2*x)", "sin(3*x)", "x*tanh(x)", "1e-9*x", "x**2", "exp(x)",
                                  "x^3 + x", "gelu(2*x)", "2*swish(x)", "tan(sin(x))", "1/(x**4 - 3*x + 5)",
                                  "erf(x)/(1 + x**2)", "1/cosh(x)", "log(1 + exp(x))", "sqrt(1 + x**2)",
                                  "1/(exp(x) + exp(-x) - 1.5)", "atan(x)", "2**x"])
def test_valid_expressions_build_activations(text):
    act = get_activation(text)
    xs = np.linspace(-3.0, 3.0, 25)
    f = sympy.lambdify(X, act.expr, modules=["scipy", "numpy"])
    assert np.allclose(act.phi(xs), f(xs), rtol=1e-12, atol=1e-300)
    h = 1e-5
    assert np.allclose((act.phi(xs + h) - act.phi(xs - h)) / (2 * h), act.dphi(xs), rtol=1e-6, atol=1e-6)
    assert get_activation(act.name).name == act.name  # the canonical name parses back


def test_kinked_builtins_only_alone():
    assert get_activation("elu(x)") is get_activation("elu")
    with pytest.raises(ActivationError, match="can only be used alone"):
        get_activation("elu(2*x)")
    with pytest.raises(ActivationError, match="can only be used alone"):
        get_activation("relu(tanh(x))")


def test_expressions_equal_to_builtins_are_the_builtins():
    assert get_activation("tanh(x)") is get_activation("tanh")
    assert get_activation("x") is get_activation("linear")
    assert get_activation("erf(x)").closed_form == "erf"
    assert get_activation("relu(x)") is get_activation("relu")
    assert get_activation("leaky_relu(slope=0.1)").params == {"slope": 0.1}
    assert get_activation(" leaky_relu( slope = 0.2 ) ").name == "leaky_relu(slope=0.2)"
    assert get_activation(sympy.tanh(X)) is get_activation("tanh")


@pytest.mark.parametrize("text", ["tan(x)", "1/(x-1)", "log(x)", "sqrt(x)", "1/x", "x**x", "x**(1/3)",
                                  "tanh(x)/x", "sin(x)/x", "1/(sin(x) + 1)", "1/(exp(x) + exp(-x) - 2)",
                                  "1/(tanh(x) - 0.5)", "log(sin(x) + 1.5)*0 + 1/(erf(x) - 0.25)", "tan(x/1000)",
                                  "1/(x**5 + x + 1)", "log(cos(x) + 1)", "(x - 2)**(-2)", "(-2)**x",
                                  "1/(x - tanh(3*x) + 1e-3)*0 + 1/(x*tanh(x) - 1)", "1/(x**2 - 1e-20)"])
def test_singular_expressions_are_rejected_up_front(text):
    start = time.perf_counter()
    with pytest.raises(ActivationError, match="real"):
        get_activation(text)
    assert time.perf_counter() - start < 30


def test_singularity_points_are_located():
    (reason, point), = real_line_singularities(parse_expression("1/(x - 1)"))
    assert point == pytest.approx(1.0)
    (reason, point), = real_line_singularities(parse_expression("tan(x)"))
    assert abs(np.cos(point)) < 1e-12
    assert real_line_singularities(parse_expression("x*tanh(x) + 1/(2 + sin(x))")) == []


def test_tan_is_rejected_through_the_cli_quickly():
    start = time.perf_counter()
    result = subprocess.run([sys.executable, "-m", "meanfield", "critical", "--activation", "tan(x)",
                             "--sigma-b2", "0.05"], capture_output=True, text=True, cwd=ROOT, timeout=120,
                            env={**os.environ, "PYTHONPATH": str(ROOT)})
    assert result.returncode == 2, result.stderr
    assert "--activation" in result.stderr and "real line" in result.stderr and "Traceback" not in result.stderr
    assert time.perf_counter() - start < 60


def test_cli_never_executes_the_activation(tmp_path):
    target = tmp_path / "FILE"
    payloads = [f"__import__('os').system('touch {target}')",
                f"sympy.sympify(\"__import__('os').system('touch {target}')\")",
                f"x; open('{target}', 'w')"]
    for payload in payloads:
        result = subprocess.run([sys.executable, "-m", "meanfield", "point", "--activation", payload,
                                 "--sigma-w2", "1.5", "--sigma-b2", "0.05"], capture_output=True, text=True,
                                cwd=tmp_path, timeout=120, env={**os.environ, "PYTHONPATH": str(ROOT)})
        assert result.returncode == 2
        assert "--activation" in result.stderr and "Traceback" not in result.stderr
        assert not target.exists()


_FUZZ_TOKENS = ["x", "x", "1", "2.5", "1e-3", "pi", "E", "+", "-", "*", "/", "**", "^", "(", ")", "(", ")", ",",
                "tanh", "exp", "log", "sqrt", "sin", "__import__", "os", "system", "eval", "exec", "open", "lambda",
                "'", '"', ".", "[", "]", "{", "}", ";", ":", "=", "import", "__class__", "__subclasses__", "getattr",
                "Symbol", "sympify", "\\", "\n", "#", "@", "!", "%", "&", "|", "~", "<", ">", "`", "$", " ", "9**9"]


def test_fuzz_parser_gives_expressions_or_clean_errors(tmp_path, monkeypatch):
    """Thousands of random strings: a sympy expression or an ExpressionError (a ValueError), never another
    exception, never a side effect (no file appears, os.system is never called)."""
    monkeypatch.chdir(tmp_path)
    calls = []
    monkeypatch.setattr(os, "system", lambda *a: calls.append(a))
    rng = random.Random(1234)
    outcomes = {"ok": 0, "error": 0}
    for _ in range(3000):
        text = "".join(rng.choice(_FUZZ_TOKENS) for _ in range(rng.randint(1, 14)))
        try:
            expr = parse_expression(text)
        except ExpressionError as exc:
            assert isinstance(exc, ValueError) and str(exc)
            outcomes["error"] += 1
        else:
            assert isinstance(expr, sympy.Expr) and expr.free_symbols <= {X}
            outcomes["ok"] += 1
    assert outcomes["ok"] > 20 and outcomes["error"] > 1000
    assert not calls and list(tmp_path.iterdir()) == []


def test_fuzz_get_activation_raises_only_activation_errors(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    rng = random.Random(99)
    bad = ["__import__", "os.system('touch F')", "open('F','w')", "exec('1')", "().__class__", "[x]", "{x: 1}",
           "x if x else 1", "x; 1", "f'{x}'", "x.__class__", "x==1", "not x", "x and 1", "*x", "**x", "x**", "()",
           "relu(slope=)", "leaky_relu(slope=a)", "leaky_relu(x, slope=1)", "tanh(x", "sin(3x)", "\x00", "x\x00"]
    for text in bad + ["".join(rng.choice(bad) for _ in range(3)) for _ in range(200)]:
        try:
            get_activation(text)
        except ActivationError as exc:
            assert isinstance(exc, ValueError) and "activation" in str(exc)
        except TypeError as exc:  # wrong parameter names
            assert "param" in str(exc)
    assert list(tmp_path.iterdir()) == []


def test_homogeneous_flag():
    for name in ("relu", "leaky_relu", "linear", "2*x", "x/3"):
        assert get_activation(name).homogeneous, name
    for name in ("tanh", "erf", "elu", "gelu", "x + 1", "x**3", "sin"):
        assert not get_activation(name).homogeneous, name


def test_builtins_do_not_import_sympy():
    code = ("import sys; from meanfield.activations import get_activation; "
            "act = get_activation('leaky_relu(slope=0.2)'); get_activation('tanh').phi(1.0); "
            "assert 'sympy' not in sys.modules; "
            "act.expr; assert 'sympy' in sys.modules")
    subprocess.run([sys.executable, "-c", code], check=True, cwd=ROOT, env={**os.environ, "PYTHONPATH": str(ROOT)})


@pytest.mark.parametrize("text", ["x*tanh(x)", "tanh(tanh(tanh(x)))", "2**x", "(x**2 + 1)**(x/100)", "(x**2+1)**(-1.5)",
                                  "log(1 + exp(x))", "atan(x)*asinh(x)", "erfc(x)*erf(x/2)", "tan(sin(x))",
                                  "1/(3 + sin(x)*tanh(x/10))", "x**3 - x**2 + 7", "sqrt(1 + x**2)*exp(-x**2/4)",
                                  "sinh(x/5)*cos(3*x)", "x**2*x**-1 + 1e-9*x", "pi**x/E", "gelu(2*x) + swish(x)"])
def test_forward_mode_derivatives_match_sympy(text):
    from meanfield.expressions import derivative_functions

    expr = get_activation(text).expr
    phi, dphi, d2phi = derivative_functions(expr)
    xs = np.linspace(-3.0, 3.0, 61)
    for f, order in ((phi, 0), (dphi, 1), (d2phi, 2)):
        exact = sympy.lambdify(X, sympy.diff(expr.doit(), X, order), modules=["scipy", "numpy"])
        want = np.broadcast_to(np.asarray(exact(xs), dtype=float), xs.shape)
        np.testing.assert_allclose(f(xs), want, rtol=1e-12, atol=1e-13 * (1 + np.max(np.abs(want))))


def test_deep_nesting_is_fast_or_refused():
    start = time.perf_counter()
    for template in ("tanh(U)", "sigmoid(U)", "gelu(U)", "1/(1 + U**2)", "log(1 + exp(U))", "tan(sin(U))"):
        text = "x"
        for _ in range(12):
            text = template.replace("U", f"({text})")
        try:
            get_activation(text)
        except ActivationError as exc:
            assert "too large" in str(exc) or "longer than" in str(exc) or "nested" in str(exc), exc
    assert time.perf_counter() - start < 120
