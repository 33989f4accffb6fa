"""Fixed points, susceptibilities and depth scales against closed forms, the scipy reference and identities."""

import math
import warnings

import numpy as np
import pytest
import reference as ref

import meanfield as mf
from meanfield.solver import GRID_THRESHOLD, solver_for

KEYS = ("q_star", "c_star", "chi_1", "chi_c", "xi_q", "xi_c")


def test_tanh_critical_reference_value():
    sw2, q = mf.critical_sigma_w2("tanh", 0.05)
    assert sw2 == pytest.approx(1.7609546, abs=5e-8)
    assert q == pytest.approx(0.570048, abs=5e-7)
    assert mf.chi_1("tanh", sw2, 0.05) == pytest.approx(1.0, abs=1e-13)
    assert mf.critical_point("tanh", q) == pytest.approx((sw2, 0.05), rel=1e-12)


def test_erf_critical_at_pi_over_4():
    sw2, q = mf.critical_sigma_w2("erf", 0.0)
    assert sw2 == pytest.approx(math.pi / 4, rel=1e-14) and q == 0.0


def test_relu_and_linear_closed_forms():
    for sw2, sb2 in [(0.5, 0.1), (1.5, 0.05), (1.99, 2.0)]:
        p = mf.mean_field_point("relu", sw2, sb2)
        assert p.q_star == pytest.approx(sb2 / (1 - sw2 / 2), rel=1e-14)
        assert p.chi_1 == pytest.approx(sw2 / 2, rel=1e-15) and p.c_star == 1.0 and p.phase == "ordered"
    p = mf.mean_field_point("linear", 0.5, 0.3)
    assert p.q_star == pytest.approx(0.6, rel=1e-14) and p.chi_1 == 0.5
    with pytest.warns(mf.NoFixedPointWarning):
        p = mf.mean_field_point("relu", 2.5, 0.1)
    assert p.q_star == math.inf and not p.q_star_finite and math.isnan(p.c_star)


@pytest.mark.parametrize("name,sw2,sb2", [
    ("tanh", 4.0, 1.0),          # chaotic, q* ~ 3.4
    ("tanh", 1.5, 0.05),         # ordered
    ("tanh", 1.7627, 0.05),      # chaotic, 0.1% above the critical line (c* ~ 0.998)
    ("relu", 1.5, 0.05),
    ("x*tanh(x)", 1.2, 0.1),
])
def test_against_independent_reference(name, sw2, sb2):
    expected = ref.point(name, sw2, sb2)
    got = mf.mean_field_point(name, sw2, sb2).to_dict()
    for key in KEYS:
        assert got[key] == pytest.approx(expected[key], rel=1e-9), key


@pytest.mark.slow
@pytest.mark.parametrize("name,sw2,sb2", [("tanh", 5.0, 2.0), ("tanh", 1.8, 0.0), ("tanh", 2.5, 0.3), ("erf", 2.5, 0.3),
                                          ("erf", 4.0, 1.0), ("x*tanh(x)", 0.9, 0.5)])
def test_against_reference_more_points(name, sw2, sb2):
    test_against_independent_reference(name, sw2, sb2)


NEAR_CRITICAL_KEYS = ("c_star", "chi_c", "xi_c")


def _near_critical_chaotic(name, sb2, offsets):
    """Chaotic points at relative offsets above the critical sigma_w2 (1 - chi_c ~ 0.4 * offset for tanh)."""
    crit, _ = mf.critical_sigma_w2(name, sb2)
    return [crit * (1.0 + off) for off in offsets]


@pytest.mark.parametrize("offset", [1e-3, 1e-4])
def test_near_critical_chaotic_scalar_and_grid(offset):
    # c* -> 1 and chi_c -> 1 next to the critical line: the undivided fixed-point equation is ill-conditioned there
    # (slope q (1 - chi_c)); both paths must still match the (well-conditioned) reference to 1e-9 relative
    (sw2,) = _near_critical_chaotic("tanh", 0.05, [offset])
    expected = ref.point("tanh", sw2, 0.05)
    assert 1.0 - expected["chi_c"] < 0.5 * offset  # really next to the critical line
    scalar = mf.mean_field_point("tanh", sw2, 0.05).to_dict()
    assert scalar["phase"] == "chaotic"
    eng = solver_for(mf.get_activation("tanh"))
    n = GRID_THRESHOLD + 1  # forces the Chebyshev-table / Numba path
    grid = eng.solve(np.full(n, sw2), np.full(n, 0.05))
    for key in KEYS:
        assert scalar[key] == pytest.approx(expected[key], rel=1e-9), key
        assert grid[key][0] == pytest.approx(expected[key], rel=1e-9), key
    # 1 - chi_c itself to 1e-9 relative (chi_c alone would pass at 1e-9 with a 1e-9 absolute error)
    for got in (scalar["chi_c"], grid["chi_c"][0]):
        assert 1.0 - got == pytest.approx(1.0 - expected["chi_c"], rel=1e-9)


@pytest.mark.slow
@pytest.mark.parametrize("name,sb2,offset", [("tanh", 0.05, 1e-5), ("tanh", 1.0, 1e-4),
                                             ("tanh", 0.3, 1e-4), ("x*tanh(x)", 0.1, 1e-4)])
def test_near_critical_chaotic_more_points(name, sb2, offset):
    (sw2,) = _near_critical_chaotic(name, sb2, [offset])
    expected = ref.point(name, sw2, sb2)
    scalar = mf.mean_field_point(name, sw2, sb2).to_dict()
    grid = solver_for(mf.get_activation(name)).solve(np.full(65, sw2), np.full(65, sb2))
    for key in NEAR_CRITICAL_KEYS:
        assert scalar[key] == pytest.approx(expected[key], rel=1e-9), key
        assert grid[key][0] == pytest.approx(expected[key], rel=1e-9), key


def test_grid_path_matches_scalar_path():
    sw2 = np.linspace(0.5, 5.0, 12)
    sb2 = np.linspace(0.0, 2.0, 9)
    grid = mf.mean_field_grid("tanh", sw2, sb2)
    assert len(grid) == 108 and list(grid.columns[:2]) == ["sigma_w2", "sigma_b2"]
    eng = solver_for(mf.get_activation("tanh"))
    for row in grid.iloc[::7].itertuples():
        point = eng.point(row.sigma_w2, row.sigma_b2)
        for j, key in enumerate(KEYS):
            assert getattr(row, key) == pytest.approx(point[j], rel=1e-10, abs=1e-13), key
        assert row.phase == point[6]


def test_identities():
    # slope of the c-map at c = 1 is chi_1 (finite difference of the exact two-point kernel)
    sw2, sb2 = 2.0, 0.2
    p = mf.mean_field_point("tanh", sw2, sb2)
    q, eps = p.q_star, 1e-6
    k1 = mf.gaussian_kernel("tanh", q, q, q)
    k0 = mf.gaussian_kernel("tanh", q, q, (1 - eps) * q)
    assert sw2 * (k1 - k0) / (eps * q) == pytest.approx(p.chi_1, rel=1e-5)
    # chi_c <= chi_1 in the chaotic phase; q* increases with sigma_w2
    grid = mf.mean_field_grid("tanh", np.linspace(0.5, 5, 20), np.linspace(0.0, 2.0, 5))
    chaotic = grid[grid.phase == "chaotic"]
    assert len(chaotic) > 10 and np.all(chaotic.chi_c <= chaotic.chi_1)
    assert np.all(chaotic.c_star < 1) and np.all(chaotic.xi_c > 0)
    for _, sub in grid.groupby("sigma_b2"):
        assert np.all(np.diff(sub.q_star.to_numpy()) >= 0)


def test_iterate_maps_converges_to_fixed_point():
    p = mf.mean_field_point("tanh", 4.0, 1.0)  # xi_c = 12.5: 250 layers shrink the distance to c* by e^-20
    table = mf.iterate_maps("tanh", 4.0, 1.0, q0=2.0, c0=0.3, depth=250)
    assert list(table.columns) == ["layer", "q", "c"] and len(table) == 251
    assert table.q.iloc[-1] == pytest.approx(p.q_star, rel=1e-12)
    assert table.c.iloc[-1] == pytest.approx(p.c_star, rel=1e-7)
    # the approach to c* is geometric with rate chi_c
    gaps = np.abs(table.c.to_numpy()[150:153] - p.c_star)
    assert gaps[2] / gaps[1] == pytest.approx(p.chi_c, rel=1e-3)


def test_errors():
    with pytest.raises(ValueError, match="sigma_w2"):
        mf.q_star("tanh", -1.0, 0.1)
    with pytest.raises(ValueError, match="sigma_b2"):
        mf.q_star("tanh", 1.0, float("nan"))
    with pytest.raises(ValueError, match="sigma_b2"):
        mf.critical_point("sigmoid", 0.0)  # sigma_w2 = 16 would need sigma_b2 = -4
    with pytest.raises(ValueError, match="c0"):
        mf.iterate_maps("tanh", 1.0, 0.1, 1.0, 1.5, 3)


def test_xi_c_infinite_at_exact_criticality_and_warning_free_ordered():
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        p = mf.mean_field_point("tanh", 1.0, 0.0)
    assert p.phase == "critical" and p.xi_c == math.inf
