"""Edges of the fully connected mean-field core (issue 10): each test failed on the engine before the rebuild.

xi_c next to the critical line, stable critical lines, positively homogeneous activations without a finite q*, huge
and tiny variances, scalar and grid paths agreeing, q* alone, the disk cache and imports in fresh processes.
"""

import math
import pathlib
import pkgutil
import subprocess
import sys
import warnings

import numpy as np
import pytest

import meanfield as mf
from meanfield.solver import GRID_THRESHOLD, solver_for

ROOT = pathlib.Path(__file__).resolve().parents[1]
SMOOTH = ["tanh", "erf", "sigmoid", "softplus", "gelu", "swish", "sin"]
KEYS = ("q_star", "c_star", "chi_1", "chi_c", "xi_q", "xi_c")


def _grid(name, sw2, sb2):
    """The table / Numba path (more than GRID_THRESHOLD points) at paired points."""
    sw2, sb2 = np.broadcast_arrays(np.asarray(sw2, float), np.asarray(sb2, float))
    reps = GRID_THRESHOLD // sw2.size + 1
    out = solver_for(mf.get_activation(name)).solve(np.tile(sw2, reps), np.tile(sb2, reps))
    return {k: v[: sw2.size] for k, v in out.items()}


def _scalar(name, sw2, sb2):
    solver = solver_for(mf.get_activation(name))
    rows = [solver.point(float(a), float(b)) for a, b in zip(np.atleast_1d(sw2), np.atleast_1d(sb2), strict=True)]
    return {k: np.array([r[j] for r in rows], dtype=object if k == "phase" else float)
            for j, k in enumerate(KEYS + ("phase",))}


# --- xi_c next to the critical line ----------------------------------------------------------------------------------


@pytest.mark.parametrize("path", [_scalar, _grid])
def test_xi_c_positive_through_the_critical_band_tanh_zero_bias(path):
    # chi_1 - 1 ~ q*^2 ~ 1e-13 here: inside the band |chi_1 - 1| <= 1e-10 c* used to be set to 1 with chi_1 > 1
    sw2 = np.concatenate([[1.000001], 1.0 + np.geomspace(1e-6, 1e-4, 40)])
    out = path("tanh", sw2, np.zeros_like(sw2))
    assert np.all(out["chi_1"] > 1.0)
    assert np.all(out["chi_c"] < 1.0)
    assert np.all(np.isfinite(out["xi_c"])) and np.all(out["xi_c"] > 0)
    # odd phi, no bias: c* = 0 and chi_c = sigma_w2 E[phi'(u)]^2, computed here by 1-D quadrature
    assert np.all(out["c_star"] == 0.0)
    for w, q, chic in zip(sw2[:5], out["q_star"][:5], out["chi_c"][:5], strict=True):
        s = math.sqrt(q)
        mean = mf.gaussian_expectation(lambda z: 1.0 - np.tanh(s * z) ** 2, q)  # noqa: B023
        assert 1.0 - chic == pytest.approx(1.0 - w * mean**2, rel=1e-3)
    # the divergence: xi_c decreases monotonically away from the critical line
    assert np.all(np.diff(out["xi_c"][1:]) < 0)


@pytest.mark.parametrize("path", [_scalar, _grid])
@pytest.mark.parametrize("name", ["tanh", "erf", "sin", "0.5*tanh(x)+0.1*sin(x)"])
def test_odd_activation_without_bias_c_star_zero_and_chi_c_exact(path, name):
    """Odd phi, sigma_b2 = 0, chaotic: c* = 0 and chi_c = sigma_w2 E[phi'(u)]^2 (a 1-D expectation), at every q*."""
    act = mf.get_activation(name)
    sw2 = np.linspace(1.1, 6.0, 9) / float(act.dphi(0.0)) ** 2  # chaotic: sigma_w2 phi'(0)^2 > 1
    out = path(name, sw2, np.zeros_like(sw2))
    assert np.all(out["chi_1"] > 1.0)
    for w, q, c, chic in zip(sw2, out["q_star"], out["c_star"], out["chi_c"], strict=True):
        assert c == 0.0
        s = math.sqrt(q)
        mean = mf.gaussian_expectation(lambda z: act.dphi(s * z), q)  # noqa: B023
        assert chic == pytest.approx(w * mean**2, rel=1e-11), (w, q)


@pytest.mark.parametrize("name,sb2", [("tanh", 0.05), ("sigmoid", 0.1), ("erf", 0.3), ("tanh", 1.0)])
def test_xi_c_continuous_and_diverging_on_both_sides(name, sb2):
    crit, _ = mf.critical_sigma_w2(name, sb2)
    offsets = np.array([1e-9, 1e-8, 1e-7, 1e-6, 1e-5])
    for path in (_scalar, _grid):
        above = path(name, crit * (1.0 + offsets), np.full(offsets.size, sb2))
        below = path(name, crit * (1.0 - offsets), np.full(offsets.size, sb2))
        assert np.all(above["chi_c"] < 1.0) and np.all(above["xi_c"] > 0), path
        assert np.all(below["xi_c"] > 0)
        # chaotic side: c* -> 1 and 1 - chi_c -> chi_1 - 1 (expand the divided map at c = 1); ordered side:
        # xi_c = -1/log(chi_1) ~ 1/(1 - chi_1)
        ratio = (1.0 - above["chi_c"]) / (above["chi_1"] - 1.0)
        assert np.all(np.abs(ratio[:3] - 1.0) < 1e-3), ratio
        assert np.all(np.abs(below["xi_c"] * (1.0 - below["chi_1"]) - 1.0) < 1e-4)


def test_scalar_and_grid_paths_agree_at_random_points_and_near_critical():
    rng = np.random.default_rng(7)
    for name in ["tanh", "sigmoid", "softplus", "swish", "erf", "sin"]:
        sw2 = rng.uniform(0.3, 6.0, 12)
        sb2 = rng.uniform(0.0, 2.0, 12)
        if name in ("tanh", "sigmoid"):
            crit = [mf.critical_sigma_w2(name, b)[0] for b in sb2[:4]]
            sw2[:4] = np.array(crit) * (1.0 + np.array([1e-11, -1e-11, 1e-7, -1e-7]))
        scalar, grid = _scalar(name, sw2, sb2), _grid(name, sw2, sb2)
        assert list(scalar["phase"]) == list(grid["phase"]), name
        for key in KEYS:
            finite = np.isfinite(scalar[key])
            assert np.array_equal(finite, np.isfinite(grid[key])), (name, key)
            got, want = grid[key][finite], scalar[key][finite]
            if key.startswith("xi"):  # -1/log(chi) next to chi = 1 carries the 1e-16 rounding of chi: compare 1/xi
                got, want = 1.0 / got, 1.0 / want
            np.testing.assert_allclose(got, want, rtol=1e-9, atol=1e-14, err_msg=f"{name} {key}")
        np.testing.assert_array_equal(np.sign(grid["xi_c"]), np.sign(scalar["xi_c"]))
        assert not np.any(grid["xi_c"] < 0)


# --- the critical line is a line of stable fixed points -------------------------------------------------------------


@pytest.mark.parametrize("name", ["gelu", "swish", "x*tanh(x)", "exp(x)", "x**2", "tanh", "sigmoid", "softplus",
                                  "erf", "sin", "selu", "elu", "hard_tanh"])
@pytest.mark.parametrize("sb2", [0.0, 0.05, 0.3])
def test_critical_line_is_stable_or_a_clear_error(name, sb2):
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", mf.NoFixedPointWarning)
            sw2, q = mf.critical_sigma_w2(name, sb2)
    except mf.FixedPointError as err:
        assert "unstable" in str(err) or "no point" in str(err)
        return
    point = mf.mean_field_point(name, sw2, sb2)  # the q-map from below reaches the same q*, with chi_1 = 1
    assert point.q_star == pytest.approx(q, rel=1e-7, abs=1e-12)
    assert point.chi_1 == pytest.approx(1.0, abs=1e-8)
    assert mf.critical_point(name, q) == pytest.approx((sw2, sb2), rel=1e-6, abs=1e-12)


def test_gelu_critical_line_never_returns_the_unstable_fixed_point():
    # the engine used to return q* = 0.722, an unstable fixed point (point() there finds q* = 0.186, chi_1 = 0.77)
    with pytest.raises(mf.FixedPointError, match="unstable"):
        mf.critical_point("gelu", 0.7222)
    try:
        sw2, q = mf.critical_sigma_w2("gelu", 0.05)
    except mf.FixedPointError as err:
        assert "unstable" in str(err)
    else:
        assert mf.q_star("gelu", sw2, 0.05) == pytest.approx(q, rel=1e-7)


# --- positively homogeneous activations -----------------------------------------------------------------------------


@pytest.mark.parametrize("spec,d", [("relu", 0.5), ("leaky_relu(slope=0.2)", 0.52), ("linear", 1.0), ("2*x", 4.0),
                                    ("1e-9*x", 1e-18)])
def test_homogeneous_chi_1_reported_without_finite_q_star(spec, d):
    act = mf.get_activation(spec)
    assert act.homogeneous
    sw2 = np.array([0.5, 1.5, 3.0, 7.0]) / d
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", mf.NoFixedPointWarning)
        grid = mf.mean_field_grid(act, sw2, [0.0, 0.1])
        point = mf.mean_field_point(act, 3.0 / d, 0.1)
    np.testing.assert_allclose(grid.chi_1, np.repeat(sw2, 2) * d, rtol=1e-12)
    assert point.chi_1 == pytest.approx(3.0, rel=1e-12) and point.phase == "chaotic"
    assert not point.q_star_finite and math.isinf(point.q_star)


def test_homogeneous_flag_of_builtins():
    flags = {name: mf.get_activation(name).homogeneous for name in mf.builtin_activation_names()}
    assert {n for n, f in flags.items() if f} == {"relu", "leaky_relu", "linear"}
    assert not mf.get_activation("x*tanh(x)").homogeneous


# --- huge and tiny variances -----------------------------------------------------------------------------------------


def test_tanh_at_huge_weight_variance():
    p = mf.mean_field_point("tanh", 1e6, 0.0)
    q = p.q_star
    v = mf.gaussian_expectation(lambda z: np.tanh(math.sqrt(q) * z) ** 2, q, oscillatory=False)
    assert q == pytest.approx(1e6 * v, rel=1e-12) and 9.9e5 < q < 1e6
    dmean = mf.gaussian_expectation(lambda z: 1.0 - np.tanh(math.sqrt(q) * z) ** 2, q, oscillatory=False)
    assert p.c_star == pytest.approx(0.0, abs=1e-12)  # odd phi without bias
    assert p.chi_c == pytest.approx(1e6 * dmean**2, rel=1e-9)
    assert p.xi_c == pytest.approx(-1.0 / math.log(p.chi_c), rel=1e-9)


def test_sin_at_huge_weight_variance():
    p = mf.mean_field_point("sin", 1e6, 0.2)
    assert p.q_star == pytest.approx(0.5e6 + 0.2, rel=1e-14)
    assert p.chi_1 == pytest.approx(0.5e6, rel=1e-14)
    assert p.chi_c == 0.0 or p.chi_c < 1e-100  # sigma_w2 E[cos u1 cos u2] = sigma_w2 exp(-q) cosh(q c)
    assert p.phase == "chaotic" and p.xi_c >= 0


@pytest.mark.parametrize("name", ["tanh", "sigmoid", "gelu", "1e-9*x", "relu", "sin"])
def test_tiny_variances_give_finite_depth_scales(name):
    p = mf.mean_field_point(name, 1e-17, 0.1)
    assert p.phase == "ordered" and math.isfinite(p.xi_q) and p.xi_q > 0 and math.isfinite(p.xi_c)
    p = mf.mean_field_point("1e-9*x", 1.0, 0.1)
    assert p.q_star == pytest.approx(0.1, rel=1e-15) and p.chi_1 == pytest.approx(1e-18, rel=1e-12)
    assert p.xi_q == pytest.approx(-1.0 / math.log(1e-18), rel=1e-12)


def test_bad_degree_and_variance_are_clear_errors():
    with pytest.raises(ValueError, match="kmax"):
        mf.hermite_coefficients("tanh", 1.0, 10**7)
    with pytest.raises(ValueError, match="variance"):
        mf.gaussian_expectation(np.cos, q=-1)
    with pytest.raises(ValueError, match="variance"):
        mf.gaussian_expectation(np.cos, q=math.nan)


# --- q* alone, caches, imports ---------------------------------------------------------------------------------------


def test_q_star_alone_does_not_solve_the_correlation_map(monkeypatch):
    import meanfield.solver as solver_module

    def refuse(*args, **kwargs):
        raise AssertionError("q_star solved for c*")

    monkeypatch.setattr(solver_module, "correlation_fixed_point", refuse)
    q = mf.q_star("0.1*sin(x)+tanh(x)", 3.0, 0.1)  # a user expression, chaotic there: the scalar path
    s = math.sqrt(q)
    assert q == pytest.approx(3.0 * mf.gaussian_expectation(lambda z: (np.tanh(s * z) + 0.1 * np.sin(s * z)) ** 2, q)
                              + 0.1, rel=1e-12)
    with pytest.raises(AssertionError, match="solved for c"):  # the patch is live: a full point does need c*
        mf.mean_field_point("0.1*sin(x)+tanh(x)", 3.0, 0.1)
    out = solver_for(mf.get_activation("tanh")).solve(np.full(100, 3.0), np.full(100, 0.1), q_only=True)
    assert np.all(np.isnan(out["c_star"])) and out["q_star"][0] == pytest.approx(mf.mean_field_point("tanh", 3.0, 0.1)
                                                                                 .q_star, rel=1e-12)


def _run(code: str, env_extra: dict) -> str:
    import os

    env = {**os.environ, "PYTHONPATH": str(ROOT), **env_extra}
    return subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=env, check=True,
                          cwd=ROOT).stdout


def test_tables_cached_on_disk_and_safe_when_corrupt(tmp_path):
    env = {"SIGPROP_CACHE_DIR": str(tmp_path)}
    code = ("import meanfield as mf; from meanfield.solver import solver_for; "
            "t = solver_for(mf.get_activation('softplus')).tables(); print(t.kmax.size); t.ensure(0.3); "
            "print(repr(float(t.moment_coef.sum())), repr(float(t.b_coef.sum())), t.kmax.size)")
    first = _run(code, env).split()
    files = list(tmp_path.glob("fc-tables-*.npz"))
    assert first[0] == "0" and first[3] == "3" and len(files) == 1
    second = _run(code, env).split()
    assert second[0] == "3" and second[1:] == first[1:]  # loaded, not rebuilt; the same numbers
    files[0].write_bytes(b"PK\x03\x04 truncated")
    third = _run(code, env).split()
    assert third == first  # the corrupt file is ignored and rebuilt
    assert int(_run(code, env).split()[0]) > 0


MODULES = sorted(m.name for m in pkgutil.iter_modules(mf.__path__) if m.name != "__main__")


@pytest.mark.parametrize("module", MODULES)
def test_each_module_imports_first_in_a_fresh_process(module):
    _run(f"import meanfield.{module}", {})


def test_import_meanfield_does_not_import_pandas():
    out = _run("import sys, meanfield; print('pandas' in sys.modules)", {})
    assert out.strip() == "False"


@pytest.mark.parametrize("name", ["tanh", "erf", "sigmoid", "elu", "selu", "sin", "hard_tanh", "gelu", "softplus"])
def test_xi_c_positive_and_scaling_just_past_the_critical_line(name):
    """Chaotic side within 1e-12..1e-7 of chi_1 = 1: xi_c > 0 and ~ 1/(chi_1 - 1) on both paths. Kinked activations
    put 1 - c* ~ (chi_1 - 1)^2 below double precision in c (hard_tanh, selu gave xi_c ~ -2e9 at 1e-9); the sin closed
    form lost 1 - c* to cancellation (xi_c -1.6e10 at 1e-10)."""
    try:
        sw, _ = mf.critical_sigma_w2(name, 0.1)
    except mf.FixedPointError:
        pytest.skip(f"{name} has no stable critical point at sigma_b2 = 0.1")
    eps = np.array([1e-12, 1e-10, 1e-9, 1e-8, 1e-7])
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        scalar = np.array([float(mf.xi_c(name, sw * (1 + e), 0.1)) for e in eps])
        grid = mf.mean_field_grid(name, sw * (1 + eps), [0.1])["xi_c"].to_numpy()
    for xi in (scalar, grid):
        assert np.all(xi > 0), xi
        scaled = (xi * eps)[1:]  # 1e-12 is next to rounding of chi_1 itself: sign only
        np.testing.assert_allclose(scaled, scaled[-1], rtol=2e-3)
