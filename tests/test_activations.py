"""Activations: built-ins, aliases, parameters, user expressions and their error cases."""

import numpy as np
import pytest

from meanfield import builtin_activation_names, get_activation

SMOOTH = ["tanh", "erf", "linear", "sigmoid", "softplus", "gelu", "swish", "sin", "x*tanh(x)", "exp(-x**2)*x + x"]


@pytest.mark.parametrize("name", SMOOTH)
def test_derivatives_match_finite_differences(name):
    act = get_activation(name)
    x = np.linspace(-4.0, 4.0, 41)
    h = 1e-5
    fd1 = (act.phi(x + h) - act.phi(x - h)) / (2 * h)
    fd2 = (act.dphi(x + h) - act.dphi(x - h)) / (2 * h)
    assert np.max(np.abs(fd1 - act.dphi(x))) < 1e-8
    assert np.max(np.abs(fd2 - act.d2phi(x))) < 1e-8


@pytest.mark.parametrize("name", ["relu", "leaky_relu", "hard_tanh", "elu", "selu"])
def test_kinked_derivatives_away_from_kinks(name):
    act = get_activation(name)
    x = np.linspace(-3.05, 3.05, 62)  # avoids the kinks at 0 and +-1
    h = 1e-6
    fd1 = (act.phi(x + h) - act.phi(x - h)) / (2 * h)
    assert np.max(np.abs(fd1 - act.dphi(x))) < 1e-7
    assert act.kinks


def test_expressions_agree_with_numpy_callables():
    import sympy

    for name in builtin_activation_names():
        act = get_activation(name)
        f = sympy.lambdify(sympy.Symbol("x"), act.expr, modules=["scipy", "numpy"])
        x = np.linspace(-3.0, 3.0, 13)
        assert np.allclose(f(x), act.phi(x), rtol=1e-12, atol=1e-12), name


def test_aliases_case_and_parameters():
    assert get_activation("SiLU") is get_activation("swish")
    assert get_activation("hardtanh").name == "hard_tanh"
    leaky = get_activation("leaky_relu", slope=0.2)
    assert leaky.name == "leaky_relu(slope=0.2)"
    assert get_activation(leaky.name) is leaky
    assert float(leaky.phi(-1.0)) == pytest.approx(-0.2)
    assert float(get_activation("elu(alpha=0.5)").phi(-50.0)) == pytest.approx(-0.5)
    assert float(get_activation("selu").phi(1.0)) == pytest.approx(1.0507009873554805)
    assert get_activation(leaky) is leaky


def test_user_expression_round_trip():
    act = get_activation("x*tanh(x)")
    assert act.name == "x*tanh(x)"
    assert float(act.d2phi(0.0)) == pytest.approx(2.0)
    assert not act.oscillatory
    assert get_activation("sin").oscillatory


@pytest.mark.parametrize("bad", ["foo", "x*y", "abs(x)", "Max(x, 0)", "1/x", "log(x)", "sqrt(x)", "exp(x**2)",
                                 "x+", "2", "I*x"])
def test_bad_expressions_raise_value_error(bad):
    with pytest.raises(ValueError, match="activation"):
        get_activation(bad)


def test_bad_parameters():
    with pytest.raises(TypeError):
        get_activation("tanh", slope=0.1)
    with pytest.raises(TypeError):
        get_activation("leaky_relu", alpha=0.1)
    with pytest.raises(ValueError):
        get_activation("leaky_relu", slope=float("nan"))
    with pytest.raises(TypeError):
        get_activation(3.0)


def test_sigmoid_derivative_keeps_relative_accuracy_in_both_tails():
    """phi' = expit(x) expit(-x): 1 - expit(x) cancelled to 0 beyond x = 37.

    Closed form: exp(-|x|) / (1 + exp(-|x|))^2."""
    act = get_activation("sigmoid")
    x = np.array([-60.0, -40.0, 20.0, 40.0, 60.0, 700.0])
    expected = np.exp(-np.abs(x)) / (1.0 + np.exp(-np.abs(x))) ** 2
    np.testing.assert_allclose(act.dphi(x), expected, rtol=1e-14)
    s = 1.0 / (1.0 + np.exp(-x))
    np.testing.assert_allclose(act.d2phi(x[:-1]), (expected * (1 - 2 * s))[:-1], rtol=1e-12)
