"""The grid kernel's schedule: blocks handed to free threads, c* warm-started along a block with a predicted series
degree, b_k from the tables by dot products, and settle_c from any starting c.

Every check compares against something computed independently of the schedule: the scalar path (Hermite
coefficients by quadrature, degrees doubling from c = 0), the scipy reference, the same points in another order or
on another number of threads, or exact values (c* = 0 for odd activations without bias).
"""

from __future__ import annotations

import numba
import numpy as np
import pytest
import reference as ref

import meanfield as mf
from meanfield.fixed_points import C_TOL, settle_c
from meanfield.grid import BLOCK, DONE, NEEDS_SCALAR, fetch_add, solve_points
from meanfield.hermite import hermite_rows
from meanfield.solver import KEYS, solver_for
from meanfield.tables import PANEL, Q_SERIES_MIN, chebyshev_basis, locate, table_rows

#: Smooth built-ins whose grid c* would come from the Chebyshev tables and the Mehler series.
TABLED = ["tanh", "gelu", "sigmoid", "softplus", "swish"]
#: Activations with a chaotic phase at finite q* for moderate variances: odd (c* = 0 without bias) and not.
SERIES = ["tanh", "tanh(x + 0.3)"]
VALUES = ("q_star", "c_star", "chi_1", "chi_c", "xi_q", "xi_c")


def _outer(sw2, sb2):
    w, b = np.meshgrid(sw2, sb2, indexing="ij")
    return w.ravel(), b.ravel()


@numba.njit(parallel=True)
def _claim_all(counter, n, owner):
    for w in numba.prange(4):
        while True:
            i = fetch_add(counter, 1)
            if i >= n:
                break
            owner[i] += 1 + w


def test_fetch_add_hands_out_each_index_once():
    n = 100_000
    counter = np.zeros(1, dtype=np.int64)
    owner = np.zeros(n, dtype=np.int64)
    _claim_all(counter, n, owner)
    assert counter[0] == n + 4  # every worker's last, failed claim counts too
    assert np.all(owner >= 1) and np.all(owner <= 4)  # claimed exactly once each (a second claim would add >= 2)


@pytest.mark.parametrize("name", TABLED)
def test_table_rows_match_direct_hermite_coefficients(name):
    """b_k by basis dot products at off-node q against Gauss-Hermite quadrature (the tables' own source)."""
    eng = solver_for(mf.get_activation(name))
    tab = eng.tables()
    tab.ensure(9.0)
    rng = np.random.default_rng(3)
    basis = np.empty(tab.b_coef.shape[2])
    for s in rng.uniform(PANEL, 3.0, 6):
        q = float(s * s)
        i, t = locate(q, tab.s_hi)
        k = int(tab.kmax[i])
        chebyshev_basis(t, basis)
        b = np.empty(k + 1)
        dsum, psum = table_rows(tab.b_coef, i, basis, 0, k, b)
        _, a = hermite_rows(eng.act, np.array([q]), k)
        exact = a[0] ** 2
        np.testing.assert_allclose(b, exact, rtol=1e-9, atol=1e-15 * exact.sum())
        assert psum == pytest.approx(b.sum(), rel=1e-14) and dsum == pytest.approx(np.arange(k + 1) @ b, rel=1e-14)


def _close(got, expected, rel=0.0, abs=0.0):
    """Equal NaN/inf pattern and finite values within tolerance."""
    if not np.isfinite(expected):
        return got == expected or (np.isnan(got) and np.isnan(expected))
    return got == pytest.approx(expected, rel=rel, abs=abs)


@pytest.mark.parametrize("name", SERIES)
def test_grid_matches_scalar_path_over_random_points(name):
    """Random points in random order (warm starts from unrelated neighbours), both phases, some without bias: the
    grid agrees with the scalar path (c* to 1e-12 absolute; 1 - chi_c relative, which carries xi_c's conditioning)."""
    rng = np.random.default_rng(11)
    sw2 = rng.uniform(0.3, 6.0, 40)
    sb2 = np.where(rng.random(40) < 0.2, 0.0, rng.uniform(0.0, 2.5, 40))
    eng = solver_for(mf.get_activation(name))
    grid = eng.solve(sw2, sb2)
    chaotic = 0
    for i in range(sw2.size):
        point = dict(zip(KEYS, eng.point(float(sw2[i]), float(sb2[i])), strict=True))
        assert grid["phase"][i] == point["phase"]
        assert _close(grid["q_star"][i], point["q_star"], rel=1e-11, abs=1e-14)
        assert _close(grid["c_star"][i], point["c_star"], abs=1e-12)
        assert _close(1 - grid["chi_c"][i], 1 - point["chi_c"], rel=1e-9, abs=1e-13)
        chaotic += point["phase"] == "chaotic" and np.isfinite(point["c_star"])
    assert chaotic >= 5


@pytest.mark.parametrize("name", SERIES)
def test_results_do_not_depend_on_order_or_threads(name):
    sw2, sb2 = _outer(np.linspace(0.5, 5.0, 37), np.linspace(0.0, 2.0, 29))
    eng = solver_for(mf.get_activation(name))
    base = eng.solve(sw2, sb2)
    threads = numba.get_num_threads()
    try:
        numba.set_num_threads(1)
        serial = eng.solve(sw2, sb2)
    finally:
        numba.set_num_threads(threads)
    for key in VALUES:  # the same blocks on any number of threads: identical numbers
        np.testing.assert_array_equal(serial[key], base[key])
    order = np.random.default_rng(5).permutation(sw2.size)
    shuffled = eng.solve(sw2[order], sb2[order])
    transposed = np.lexsort((sw2, sb2))  # sigma_b2-major
    rows = eng.solve(sw2[transposed], sb2[transposed])
    for other, idx in ((shuffled, order), (rows, transposed)):
        np.testing.assert_array_equal(other["q_star"], base["q_star"][idx])
        np.testing.assert_allclose(other["c_star"], base["c_star"][idx], rtol=0, atol=1e-13)
        np.testing.assert_allclose(1 - other["chi_c"], 1 - base["chi_c"][idx], rtol=1e-10, atol=1e-14)
        assert list(other["phase"]) == list(base["phase"][idx])


@pytest.mark.parametrize("name", SERIES)
def test_odd_or_not_c_star_at_zero_bias(name):
    """sigma_b2 = 0 between other points of a block: c* = 0 exactly for odd tanh (the warm start comes from c* > 0
    of the previous column), and the scalar path's value otherwise."""
    sw2, sb2 = _outer(np.linspace(1.2, 5.0, 24), np.linspace(0.0, 2.0, 9))
    eng = solver_for(mf.get_activation(name))
    grid = eng.solve(sw2, sb2)
    zero = np.flatnonzero((sb2 == 0.0) & (grid["phase"] == "chaotic") & np.isfinite(grid["q_star"]))
    assert zero.size >= 5
    for i in zero:
        expected = eng.point(float(sw2[i]), 0.0)[1]
        if name == "tanh":
            assert grid["c_star"][i] == 0.0 and expected == 0.0
        else:
            assert _close(grid["c_star"][i], expected, abs=1e-12)


def test_settle_c_from_any_start_finds_the_same_root():
    """settle_c from starting points all over [0, 1] returns the root it finds from c = 0 (to rounding), including
    c* = 0 exactly (odd activation, no bias), where Newton's steps from far shrink slowly at first."""
    act = mf.get_activation("tanh")
    eng = solver_for(act)
    checked = 0
    for sw2, sb2 in [(3.0, 0.0), (5.0, 0.0), (3.0, 0.3), (4.0, 1.5), (1.9, 0.05)]:
        q = float(mf.q_star("tanh", sw2, sb2))
        v, d, _ = eng.moments(q)
        _, a = hermite_rows(act, np.array([q]), 1024)
        b = a[0] ** 2
        root = settle_c(b, 1024, q, sw2, sb2, sw2 * d, q * d, v, 0.0)
        assert root[2] <= 1e-14
        for c0 in np.linspace(0.0, 1.0, 21):
            got = settle_c(b, 1024, q, sw2, sb2, sw2 * d, q * d, v, float(c0))
            assert got[0] == pytest.approx(root[0], abs=4e-16), c0
            assert got[1] == pytest.approx(root[1], rel=1e-12, abs=1e-16), c0
            if sb2 == 0.0:
                assert got[0] == 0.0
            checked += 1
    assert checked == 105


def test_near_critical_column_against_reference():
    """A column of sigma_b2 through a block passes close above the critical line: the point nearest to it, solved
    with the degree predicted from its neighbours, matches the scipy reference (xi_c to 1e-9 where
    1 - chi_c ~ 1e-4)."""
    sb2 = 0.5
    crit, _ = mf.critical_sigma_w2("tanh", sb2)
    sw2 = np.full(BLOCK, crit * (1 + 2e-4))
    col = np.linspace(sb2 - 0.2, sb2 + 0.2, BLOCK)
    col[BLOCK // 2] = sb2
    grid = solver_for(mf.get_activation("tanh")).solve(sw2, col)
    i = BLOCK // 2
    expected = ref.point("tanh", float(sw2[i]), sb2)
    assert 1 - grid["chi_c"][i] < 1e-3
    for key in VALUES:
        assert grid[key][i] == pytest.approx(expected[key], rel=1e-9), key


def test_kernel_settles_every_point_across_blocks():
    """The kernel itself (no scalar fallback) settles every point of a grid spanning several blocks, both phases and
    the near-critical band (status DONE), except chaotic points with q* below the tables' series range; its values
    match the scalar path."""
    sw2, sb2 = _outer(np.linspace(0.5, 5.0, 3 * BLOCK // 8 + 1), np.linspace(0.0, 2.0, 8))
    eng = solver_for(mf.get_activation("tanh"))
    tab = eng.tables()
    tab.ensure(9.0)
    out = np.full((sw2.size, 6), np.nan)
    solve_points(tab.moment_coef, tab.b_coef, tab.kmax, tab.s_hi, np.array(eng.moments(0.0)), sw2, sb2, C_TOL, True,
                 out, 2)
    small = (out[:, 2] > 1.0) & (out[:, 0] < Q_SERIES_MIN)
    assert np.all(out[~small, 5] == DONE) and np.all(out[small, 5] == NEEDS_SCALAR)
    for i in np.flatnonzero(~small)[::9]:
        point = eng.point(float(sw2[i]), float(sb2[i]))
        assert out[i, 1] == pytest.approx(point[1], abs=1e-12) and out[i, 3] == pytest.approx(point[3], abs=1e-12)
