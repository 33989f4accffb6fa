"""``solve_q_star(..., guess=)``: the tables' q* polished by Newton gives the same q* as the search from q = 0."""

from __future__ import annotations

import math

import numpy as np
import pytest

from meanfield.activations import get_activation
from meanfield.fixed_points import solve_q_star
from meanfield.solver import solver_for

NAMES = ["tanh", "hard_tanh", "elu", "selu", "softplus", "sigmoid", "gelu"]


@pytest.mark.parametrize("name", NAMES)
def test_guess_from_tables_gives_the_searched_q_star(name):
    solver = solver_for(get_activation(name))
    rng = np.random.default_rng(7)
    sw2 = np.exp(rng.uniform(np.log(0.2), np.log(8.0), 12))
    sb2 = rng.uniform(0.0, 2.0, 12)
    for a, b in zip(sw2, sb2, strict=True):
        full = solve_q_star(solver.moments, a, b)
        if not math.isfinite(full) or full == 0.0:
            continue
        for guess in (full * (1 + 3e-13), full * (1 - 3e-13)):
            assert solve_q_star(solver.moments, a, b, guess=guess) == pytest.approx(full, rel=1e-14, abs=0.0)


@pytest.mark.parametrize("guess", [0.5, 3.0, 1e6, math.inf, math.nan, -1.0, 0.0])
def test_a_wrong_guess_falls_back_to_the_full_search(guess):
    """The bracket around a wrong guess does not hold: the search from q = 0 decides (tanh at (2, 0.1): q* ~ 1.08)."""
    moments = solver_for(get_activation("tanh")).moments
    full = solve_q_star(moments, 2.0, 0.1)
    assert solve_q_star(moments, 2.0, 0.1, guess=guess) == full


def test_single_kinked_points_match_the_scalar_search():
    """``solve`` passes the tables' q* of points it hands to the scalar path; the result equals ``point`` without."""
    cases = [("hard_tanh", 2.0, 0.1), ("selu", 1.2, 0.0), ("elu", 1.9, 0.0), ("elu", 1.5, 0.5),
             ("hard_tanh", 1e6, 1e-6)]
    for name, a, b in cases:
        solver = solver_for(get_activation(name))
        ref = solver.point(a, b)
        got = solver.solve(np.array([a]), np.array([b]))
        for key, value in zip(("q_star", "c_star", "chi_1", "chi_c", "xi_q", "xi_c"), ref[:6], strict=True):
            assert got[key][0] == pytest.approx(value, rel=1e-12, abs=1e-15, nan_ok=True), (name, key)
