"""The figure runner and the figures themselves: every registered figure resolves, files and data are written, bad
flags exit 2, and each figure's plotted numbers agree with independent ones (closed forms, the scipy reference of
tests/reference.py, identities) and its layout is what a paper needs (no clipped text, no value off a log axis)."""

import inspect
import io
import re

import matplotlib
import numpy as np
import pandas as pd
import pytest
import reference as ref
from matplotlib.lines import Line2D

import meanfield
from figures import FIGURES
from figures.cli import main
from figures.cnn import figure_s4, mode_depth_scales
from figures.norm import batchnorm_eigenvalues, batchnorm_tables, conv_isometry
from figures.phase import critical_line_by_q, critical_lines, critical_point_tables, map_convergence, phase_diagram
from figures.spectra import conv_operator_figure, jacobian_spectra, spectrum_tables
from figures.style import OKABE_ITO


def _text_inside_canvas(fig) -> list[str]:
    """What a saved file would clip: the drawn extent (texts, legends, colour bars, unclipped markers) beyond the
    canvas, as a list of the offending sides."""
    fig.savefig(io.BytesIO(), format="png")  # lays the figure out as savefig does
    tight = fig.get_tightbbox(fig.canvas.get_renderer())  # inches
    width, height = fig.get_size_inches()
    eps = 0.02
    sides = {"left": tight.x0 < -eps, "bottom": tight.y0 < -eps, "right": tight.x1 > width + eps,
             "top": tight.y1 > height + eps}
    return [side for side, out in sides.items() if out]


def test_every_registered_figure_resolves_to_a_function():
    for spec in FIGURES:
        function = spec.load()
        assert callable(function), spec.name
        assert spec.tables is None or callable(spec.load_tables()), spec.name
        for key, _ in spec.quick:  # --quick names real parameters
            assert key in inspect.signature(function).parameters, (spec.name, key)


def test_batchnorm_figure_writes_images_and_the_predicted_eigenvalues(tmp_path):
    assert main(["--only", "batchnorm_eigenvalues", "--out", str(tmp_path), "--formats", "png"]) == 0
    assert (tmp_path / "batchnorm_eigenvalues.png").stat().st_size > 1000
    data = pd.read_csv(tmp_path / "batchnorm_eigenvalues.csv")
    # Independent prediction from the batch itself: m - 2 eigenvalues equal gamma / sqrt(var + eps).
    x = np.random.default_rng(0).normal(size=32)
    for eps, rows in data.groupby("eps"):
        rho = 1.0 / np.sqrt(x.var() + eps)
        top = np.sort(rows["eigenvalue"].to_numpy())[2:]
        np.testing.assert_allclose(top, rho, rtol=1e-10)
    table = next(iter(batchnorm_tables(data).values()))
    assert (table["eigenvalues = rho"] == 30).all()
    # eps = 0 has a second zero eigenvalue (on xhat), eps > 0 only the mean direction
    assert table.set_index("eps")["eigenvalues = 0"].to_dict() == {0.0: 2, 0.1: 1, 1.0: 1}
    # eps = 0: the second eigenvalue is 0 too, so rho eps / (var + eps) and 0 count the same eigenvector
    assert table.loc[table["eps"] > 0, "eigenvalues = rho eps/(var+eps)"].eq(1).all()
    np.testing.assert_allclose(table["rho eps/(var+eps)"], table["rho"] * table["eps"] / (x.var() + table["eps"]))


@pytest.mark.parametrize("argv", [["--only", "no_such_figure"], ["--formats", "bmp"], ["--only", ","]])
def test_bad_flags_exit_2(argv, tmp_path, capsys):
    with pytest.raises(SystemExit) as err:
        main([*argv, "--out", str(tmp_path)])
    assert err.value.code == 2
    assert "--" in capsys.readouterr().err


def test_out_that_is_a_file_exits_2(tmp_path, capsys):
    path = tmp_path / "a-file"
    path.write_text("x")
    with pytest.raises(SystemExit) as err:
        main(["--only", "batchnorm_eigenvalues", "--out", str(path)])
    assert err.value.code == 2
    assert "--out" in capsys.readouterr().err


def test_progress_lines_carry_elapsed_time_and_count(tmp_path, capsys):
    assert main(["--only", "batchnorm_eigenvalues,conv_isometry", "--quick", "--out", str(tmp_path),
                 "--formats", "png", "--no-report"]) == 0
    out = capsys.readouterr().out
    assert re.search(r"\[figures +\d+\.\d s\] 1/2 conv_isometry: .* \.\.\.", out)
    assert re.search(r"\[figures +\d+\.\d s\] 2/2 batchnorm_eigenvalues: done in \d+\.\d s", out)
    assert not (tmp_path / "report.html").exists()


# ------------------------------------------------------------------------------------------------ phase figures


@pytest.mark.parametrize("activation", ["tanh", "erf", "elu", "gelu", "hard_tanh"])
def test_critical_line_points_have_chi_1_equal_to_1(activation):
    line = critical_line_by_q(activation, 1.0, num=60).dropna()  # NaN rows: gaps (see critical_line_by_q)
    assert np.all(np.diff(line["sigma_b2"]) >= -1e-12)
    assert line["sigma_b2"].iloc[-1] == pytest.approx(1.0, rel=1e-6)
    if activation not in ("gelu", "swish"):  # these have several fixed points near sigma_b2 = 0 (see below)
        assert line["sigma_b2"].iloc[0] == 0.0
    inner = line[line["sigma_b2"] > 1e-6]
    chi = meanfield.chi_1(activation, inner["sigma_w2"].to_numpy(), inner["sigma_b2"].to_numpy())
    np.testing.assert_allclose(chi, 1.0, atol=1e-7)
    # q* of every point is the fixed point the length map reaches there (not another root of it)
    np.testing.assert_allclose(meanfield.q_star(activation, line["sigma_w2"].to_numpy(), line["sigma_b2"].to_numpy()),
                               line["q_star"], rtol=1e-6, atol=1e-9)
    if activation in ("gelu", "swish"):  # several fixed points: the line has gaps (checked above point by point)
        return
    # smooth, also next to sigma_b2 = 0 where sigma_w2 rises steeply (a uniform sigma_b2 grid drew one straight
    # segment from (1.0, 0) to (1.51, 0.017) for tanh)
    line = critical_line_by_q(activation, 1.0).dropna()  # the figure's default sampling
    assert (line["sigma_b2"] < 0.05).sum() >= 10
    assert np.max(np.abs(np.diff(line["sigma_w2"]))) < 0.03


@pytest.mark.parametrize("activation", ["tanh", "erf", "hard_tanh"])
def test_critical_line_against_the_scipy_reference(activation):
    phi, dphi, _, kinks = ref.ACTIVATIONS[activation]
    line = critical_line_by_q(activation, 1.0, num=40)
    for _, row in line.iloc[[5, 20, -1]].iterrows():
        q = ref.q_star(activation, row["sigma_w2"], row["sigma_b2"])
        assert q == pytest.approx(row["q_star"], rel=1e-7)
        chi = row["sigma_w2"] * ref.expect(lambda x: dphi(x) ** 2, q, kinks)
        assert chi == pytest.approx(1.0, abs=1e-8)


def test_critical_line_of_tanh_starts_at_1_and_relu_is_vertical():
    tanh = critical_line_by_q("tanh", 0.5)
    assert tanh["sigma_w2"].iloc[0] == pytest.approx(1.0)  # tanh'(0)^2 = 1
    relu = critical_line_by_q("relu", 0.5)
    np.testing.assert_allclose(relu["sigma_w2"], 2.0)  # E[relu'^2] = 1/2 at every q
    assert critical_line_by_q("softplus", 0.5).empty


def test_phase_diagram_line_and_grid_and_layout():
    fig, data = phase_diagram(sigma_w2=(0.5, 4.0, 12), sigma_b2=(0.0, 2.0, 8))
    grid = data[data["source"] == "grid"]
    line = data[data["source"] == "critical_line"]
    assert len(grid) == 96 and len(line) > 50
    assert line["sigma_b2"].min() == 0.0 and line["sigma_b2"].max() == pytest.approx(2.0)
    drawn = [ln for ln in fig.axes[0].get_lines() if "critical" in ln.get_label()][0]
    np.testing.assert_allclose(drawn.get_xdata(), line["sigma_w2"])
    assert _text_inside_canvas(fig) == []  # the Python API path: constrained layout keeps titles inside
    matplotlib.pyplot.close(fig)


def test_critical_points_table_explains_missing_points():
    fig, data = critical_lines(num=12, table_sigma_b2=(0.0, 0.05))
    table = next(iter(critical_point_tables(data).values())).set_index("activation")
    assert set(table.index) == {meanfield.get_activation(a).name for a in meanfield.builtin_activation_names()}
    assert table.loc["softplus", "sigma_b2 = 0.05"] == "none" and "no critical point" in table.loc["softplus", "note"]
    assert "q*=inf" in table.loc["relu", "sigma_b2 = 0.05"] and "homogeneous" in table.loc["relu", "note"]
    points = data[(data["kind"] == "point") & data["sigma_w2"].notna() & np.isfinite(data["q_star"])
                  & (data["sigma_b2"] > 0)]
    for _, row in points.iterrows():
        chi = meanfield.chi_1(row["activation"], row["sigma_w2"], row["sigma_b2"])
        if "several fixed points" in row["note"]:  # flagged: chi_1 = 1 only at a fixed point the map does not reach
            assert abs(chi - 1.0) > 1e-6 and f"chi_1 = {chi:.4g}" in row["note"]
        else:
            assert chi == pytest.approx(1.0, abs=1e-8)
    assert _text_inside_canvas(fig) == []
    matplotlib.pyplot.close(fig)


def test_map_convergence_labels_phases_and_shows_both_unit_fixed_points():
    fig, data = map_convergence(depth=15)
    phases = list(data.groupby("sigma_w2", sort=False)["phase"].first())
    assert phases == ["ordered", "critical", "chaotic"]
    labels = [t.get_text() for t in fig.legends[0].get_texts()]
    assert [lab.split()[0] for lab in labels] == phases
    # c* = 1 in the ordered and the critical phase: both fixed-point markers are drawn, at different x
    markers = [ln for ln in fig.axes[1].get_lines() if ln.get_marker() not in ("None", "", None)
               and len(ln.get_xdata()) == 1]
    at_one = [ln for ln in markers if ln.get_ydata()[0] == pytest.approx(1.0)]
    assert len(at_one) == 2 and at_one[0].get_xdata()[0] != at_one[1].get_xdata()[0]
    # the fixed points drawn are the independently computed q* (scipy reference), and q^l approaches them
    for sw2, rows in data.groupby("sigma_w2"):
        assert rows["q_star"].iloc[0] == pytest.approx(ref.q_star("tanh", sw2, 0.05), rel=1e-9)
        assert rows["q"].iloc[-1] == pytest.approx(rows["q_star"].iloc[0], rel=1e-2)
    assert _text_inside_canvas(fig) == []
    matplotlib.pyplot.close(fig)


# -------------------------------------------------------------------------------------------------- CNN figures


def test_figure_s4_anchored_prediction_decays_at_chi_c_lambda():
    fig, data = figure_s4(depth=24, anchor_layer=8)
    p = meanfield.FIGURE_S4
    chi_c = meanfield.mean_field_point(p["activation"], p["sigma_w2"], p["sigma_b2"]).chi_c
    for _, rows in data.groupby("k"):
        rows = rows.sort_values("layer")
        at = rows[rows["layer"] == 8].iloc[0]
        assert at["anchored_abs"] == pytest.approx(at["exact_abs"], rel=1e-12)
        rate = rows["anchored_abs"].to_numpy()[1:] / rows["anchored_abs"].to_numpy()[:-1]
        np.testing.assert_allclose(rate, chi_c * rows["abs_lambda"].iloc[0], rtol=1e-10)
    assert "2.25" in fig._suptitle.get_text() and "n=10" in fig._suptitle.get_text().replace(" ", "")
    assert _text_inside_canvas(fig) == []
    matplotlib.pyplot.close(fig)


def test_mode_depth_scales_keeps_xi_zero_on_the_log_axis():
    fig, data = mode_depth_scales()
    zero = data[data["xi"] == 0]
    assert len(zero) and (zero["abs_lambda"] < 1e-12).all()  # GS3 has lambda_k = 0 at one mode
    # the zero mode is xi_c of the fully connected network at every kernel
    for sw2, rows in data[data["k"] == 0].groupby("sigma_w2"):
        np.testing.assert_allclose(rows["xi"], meanfield.xi_c("tanh", sw2, 0.05), rtol=1e-10)
    for ax in fig.axes:
        bottom, top = ax.get_ylim()
        for line in ax.get_lines():
            y = np.asarray(line.get_ydata(), dtype=float)
            y = y[np.isfinite(y)]
            assert (y >= bottom * (1 - 1e-9)).all() and (y <= top).all()
    title = fig._suptitle.get_text()
    for piece in ("tanh", "0.05", "n=16", "critical", f"{data['critical_sigma_w2'].iloc[0]:.4g}"):
        assert piece in title.replace(" ", "") or piece in title
    assert _text_inside_canvas(fig) == []
    matplotlib.pyplot.close(fig)


# ------------------------------------------------------------------------------------------------------ spectra


def test_jacobian_spectra_titles_axes_and_moments():
    fig, data = jacobian_spectra(depths=(2,), width=60)
    for ax, weights in zip(fig.axes, ("orthogonal", "gaussian"), strict=True):
        assert weights in ax.get_title() and "width 60" in ax.get_title() and "sigma_w" in ax.get_title()
        lam = data[(data["weights"] == weights) & (data["source"] == "sampled")]["lam"]
        log_lam = np.log10(lam[lam > 0])
        lo, hi = ax.get_xlim()
        low = np.quantile(log_lam, 0.005)
        span = log_lam.max() - low
        assert low - 0.2 * span <= lo <= low and log_lam.max() <= hi <= log_lam.max() + 0.2 * span
    table = next(iter(spectrum_tables(data).values()))
    # at criticality the mean eigenvalue of J J^T is chi_1^L = 1 (closed form)
    np.testing.assert_allclose(table["mean (theory)"], 1.0, rtol=1e-8)
    np.testing.assert_allclose(table["mean (sampled)"], 1.0, rtol=0.35)
    assert (table["upper edge (theory)"] > 0).all()
    assert _text_inside_canvas(fig) == []
    matplotlib.pyplot.close(fig)


def test_conv_operator_figure_pools_draws_and_fills_density():
    fig, data = conv_operator_figure(channels=(4, 16), samples=800)
    assert data["density"].notna().all()
    hist = data[data["matrix"] != "law"]
    assert hist.loc[hist["channels"] == 4, "draws"].iloc[0] == round(800 / (26 * 4))
    for _, rows in hist.groupby(["channels", "matrix"]):
        width = np.diff(rows["s"].to_numpy())[0]
        assert (rows["density"] * width).sum() == pytest.approx(1.0, rel=1e-9)  # a normalised histogram
        assert rows["count"].iloc[0] == 26 * rows["channels"].iloc[0] * rows["draws"].iloc[0]
    assert fig.legends and all(ax.get_legend() is None for ax in fig.axes)  # the legend sits below, not on bars
    assert _text_inside_canvas(fig) == []
    matplotlib.pyplot.close(fig)


# ---------------------------------------------------------------------------------------------- norm figures


def test_conv_isometry_keeps_both_isometries_visible():
    fig, data = conv_isometry(channels=8, image_size=8)
    lines = {ln.get_label(): ln for ln in fig.axes[0].get_lines()}
    alg1, delta = lines["orthogonal (Algorithm 1)"], lines["Delta-Orthogonal"]
    np.testing.assert_allclose(data.loc[data["construction"] == "orthogonal (Algorithm 1)", "singular_value"], 1.0,
                               atol=1e-10)
    assert (alg1.get_linestyle(), alg1.get_linewidth(), alg1.get_marker()) != \
        (delta.get_linestyle(), delta.get_linewidth(), delta.get_marker())
    assert alg1.get_linewidth() > delta.get_linewidth()  # the one underneath is wider
    assert any("$" in label for label in lines)  # math text
    assert _text_inside_canvas(fig) == []
    matplotlib.pyplot.close(fig)


def test_batchnorm_series_are_separate_panels_with_math_title():
    fig, data = batchnorm_eigenvalues()
    assert len(fig.axes) == 3 and all("$" in ax.get_title() for ax in fig.axes)
    assert "$" in fig._suptitle.get_text()
    assert _text_inside_canvas(fig) == []
    matplotlib.pyplot.close(fig)


def test_series_colours_are_the_colour_blind_safe_palette():
    fig, _ = batchnorm_eigenvalues()
    allowed = {matplotlib.colors.to_hex(c) for c in (*OKABE_ITO, "white", "black")}
    for line in fig.findobj(Line2D):
        if not line.get_visible() or not len(line.get_xdata()):
            continue
        assert matplotlib.colors.to_hex(line.get_color()) in allowed, line.get_label()
    matplotlib.pyplot.close(fig)


# ----------------------------------------------------------------------------------------------- trainability


def _fake_trainability_results() -> pd.DataFrame:
    """A finished run, made up: cells train iff depth < 6 xi_c (no training here)."""
    rows = []
    for sw2 in (1.0, 1.75, 2.5):
        xi = float(meanfield.xi_c("tanh", sw2, 0.05))
        for depth in (4, 16, 64):
            acc = 0.9 if depth < 6 * xi else 0.1
            rows.append({"model": "fc", "activation": "tanh", "init": "gaussian", "sigma_w2": sw2, "sigma_b2": 0.05,
                         "depth": depth, "seed": 0, "step": 10, "loss": 1.0, "train_accuracy": acc,
                         "test_accuracy": acc, "xi_c": xi, "diverged": False, "chance": 0.1})
    return pd.DataFrame(rows)


def test_trainability_heatmap_ticks_edges_and_title():
    pytest.importorskip("torch")
    from figures.trainability import trainability_heatmap, trainability_tables

    fig, cells = trainability_heatmap(_fake_trainability_results())
    ax = fig.axes[0]
    assert [t.get_text() for t in ax.get_yticklabels()] == ["4", "16", "64"]
    bottom, top = ax.get_ylim()
    assert bottom == pytest.approx(2.0) and top == pytest.approx(128.0)  # geometric cell edges
    mesh = ax.collections[0]
    y = mesh.get_coordinates()[..., 1]
    assert y.min() == pytest.approx(bottom) and y.max() == pytest.approx(top)  # no white strip
    tables = trainability_tables(cells)
    summary = tables["Trainability: agreement and fitted boundary"]
    assert summary["agreement with L < 6 xi_c"].iloc[0] == 1.0
    assert _text_inside_canvas(fig) == []
    matplotlib.pyplot.close(fig)


def test_long_figures_show_a_progress_bar_per_unit_of_work(capsys):
    fig, _ = conv_operator_figure(channels=(4, 8), samples=50, progress=True)
    err = capsys.readouterr().err
    assert "conv operators" in err and "2/2" in err
    matplotlib.pyplot.close(fig)
    fig, _ = conv_operator_figure(channels=(4,), samples=50)  # off by default (library use)
    assert "conv operators" not in capsys.readouterr().err
    matplotlib.pyplot.close(fig)


def test_trainability_depth_labels_never_crowd_and_keep_the_ends():
    pytest.importorskip("torch")
    import numpy as np

    from figures.trainability import spaced_depths

    for depths in (list(np.unique(np.round(np.linspace(10, 300, 16)).astype(int))), [4, 16, 64], [10, 11, 12, 13],
                   list(range(2, 40)), [5, 600]):
        chosen = spaced_depths(depths)
        assert chosen[0] == min(depths) and chosen[-1] == max(depths)
        assert set(chosen) <= set(depths)
        ratios = np.array(chosen[1:]) / np.array(chosen[:-1])
        assert (ratios >= 1.12 - 1e-12).all() or len(chosen) <= 2


def test_critical_line_breaks_where_no_stable_critical_point_exists():
    """gelu and swish at sigma_b2 = 0.05 have chi_1 = 1 only at unstable fixed points (meanfield raises there): the
    drawn line must break (a NaN row) instead of joining the q* = 0 point to the stable branch across that region."""
    from figures.phase import critical_line_by_q

    for name in ("gelu", "swish"):
        line = critical_line_by_q(name, 1.0)
        finite = line.dropna()
        assert line["sigma_w2"].isna().any(), name
        for left, right in zip(line.index[:-1], line.index[1:], strict=True):
            a, b = line.loc[left], line.loc[right]
            if a.notna().all() and b.notna().all():  # a drawn segment never spans sigma_b2 = 0.05 here
                assert not (min(a.sigma_b2, b.sigma_b2) < 0.05 < max(a.sigma_b2, b.sigma_b2)), (name, a, b)
        with pytest.raises(meanfield.FixedPointError):
            meanfield.critical_sigma_w2(name, 0.05)
        assert len(finite) > 10
