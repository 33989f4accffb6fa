"""Fully connected mean-field figures: the (sigma_w^2, sigma_b^2) phase diagram, the critical lines of every built-in
activation, and the q- and c-map convergence.

References: Poole et al. (2016); Schoenholz et al. (2017), Figure 1 (depth scale xi_c over the phase diagram).
"""

from __future__ import annotations

import warnings

import numpy as np
import pandas as pd
from matplotlib.colors import LogNorm

import meanfield

from .style import SEQUENTIAL_CMAP, new_figure, progress_bar, series_style, styled

#: Bias variances of the critical-point table in the report.
TABLE_SIGMA_B2 = (0.0, 0.05, 0.25, 1.0)


def critical_line_by_q(activation, sigma_b2_max: float, num: int = 200) -> pd.DataFrame:
    """The critical line ``chi_1 = 1`` from ``sigma_b2 = 0`` to ``sigma_b2_max``, sampled uniformly in ``q*``.

    Each point is :func:`meanfield.critical_point` at one ``q*`` (Poole et al. 2016, Eq. 7 with the length map's
    fixed point, Eq. 3), so the line is smooth also where ``sigma_w2`` rises steeply for a tiny ``sigma_b2`` (tanh near
    the origin), which a uniform grid in ``sigma_b2`` misses. Positively homogeneous activations (relu, linear), whose
    critical line is ``sigma_w2 = const`` with ``q* = inf`` for ``sigma_b2 > 0``, give that vertical segment.

    Returns
    -------
    pandas.DataFrame
        Columns ``sigma_b2, sigma_w2, q_star``, increasing in ``sigma_b2``; empty when there is no critical point.
        Where the length map has several fixed points (gelu, swish) a point whose ``q*`` is not the one the map
        converges to is not critical; each run of such points is one all-NaN row, a gap in the drawn line.
    """
    act = meanfield.get_activation(activation)
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", meanfield.NoFixedPointWarning)
            sw2_end, q_end = meanfield.critical_sigma_w2(act, sigma_b2_max)
    except meanfield.FixedPointError:
        return pd.DataFrame({"sigma_b2": [], "sigma_w2": [], "q_star": []})
    if not np.isfinite(q_end):  # homogeneous: chi_1 does not depend on q
        sw2_0, _ = meanfield.critical_sigma_w2(act, 0.0)
        return pd.DataFrame({"sigma_b2": [0.0, sigma_b2_max], "sigma_w2": [sw2_0, sw2_end],
                             "q_star": [0.0, np.inf]})
    # uniform in q* plus a geometric ladder near 0, where sigma_b2 grows like a power of q*; then halve the q*-steps
    # wherever a step moves further than 1.5 / num of the line's extent (arc-length-like spacing)
    qs = np.unique(np.concatenate([np.linspace(0.0, q_end, num), q_end * np.geomspace(1e-6, 1.0, num // 4)]))
    points: dict[float, tuple[float, float]] = {}
    for _ in range(6):
        for q in qs:
            if q not in points:
                try:
                    points[q] = meanfield.critical_point(act, q)
                except (ValueError, meanfield.FixedPointError):  # sigma_b2 < 0 at this q*, or q* not attracting
                    points[q] = (np.nan, np.nan)
        q_sorted = np.array(sorted(points))
        xy = np.array([points[q] for q in q_sorted])
        if np.isnan(xy).all():
            break
        extent = np.nanmax(xy, axis=0) - np.nanmin(xy, axis=0)
        steps = np.nan_to_num(np.abs(np.diff(xy, axis=0)) / np.where(extent > 0, extent, 1.0)).max(axis=1)
        coarse = np.flatnonzero(steps > 1.5 / num)
        if coarse.size == 0:
            break
        qs = 0.5 * (q_sorted[coarse] + q_sorted[coarse + 1])
    rows = [(sb2, sw2, q) for q, (sw2, sb2) in sorted(points.items())]
    line = pd.DataFrame(rows, columns=["sigma_b2", "sigma_w2", "q_star"])
    finite = np.isfinite(line["sigma_w2"].to_numpy())
    keep = np.zeros(len(line), dtype=bool)  # q* where critical_point raised (not attracting) is a gap too
    keep[finite] = _attracting(act, line[finite].reset_index(drop=True))
    if not keep.any():
        return line.iloc[:0].reset_index(drop=True)
    first, last = np.flatnonzero(keep)[[0, -1]]
    line, keep = line.iloc[first:last + 1].reset_index(drop=True), keep[first:last + 1]
    # a run of points whose q* the map does not reach becomes one all-NaN row: a gap in the drawn line
    gap_start = ~keep & np.concatenate([[True], keep[:-1]])
    line.loc[~keep, :] = np.nan
    return line[keep | gap_start].reset_index(drop=True)


def _attracting(act, line: pd.DataFrame) -> np.ndarray:
    """Mask of the rows whose ``q_star`` is the fixed point the length map converges to at their variances.

    A point of :func:`meanfield.critical_point` has ``chi_1 = 1`` at its own ``q*``; where the length map has several
    fixed points (gelu, swish) that ``q*`` may not be the one the network reaches, and the point is not critical.
    """
    if line.empty:
        return np.zeros(0, dtype=bool)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", meanfield.NoFixedPointWarning)
        reached = np.asarray(meanfield.q_star(act, line["sigma_w2"].to_numpy(), line["sigma_b2"].to_numpy()))
    q = line["q_star"].to_numpy()
    return np.isclose(reached, q, rtol=1e-6, atol=1e-9)


@styled
def phase_diagram(activation: str = "tanh", sigma_w2: tuple[float, float, int] = (0.5, 4.0, 160),
                  sigma_b2: tuple[float, float, int] = (0.0, 2.0, 120), progress: bool = False):
    """Heatmap of the correlation depth scale xi_c (variances on both axes) with the critical line chi_1 = 1.

    Parameters
    ----------
    activation : str
        Any activation :func:`meanfield.get_activation` accepts.
    sigma_w2, sigma_b2 : (start, stop, num)
        Grid of weight and bias variances.
    progress : bool
        Show a progress bar over the grid.

    Returns
    -------
    (matplotlib.figure.Figure, pandas.DataFrame)
        The grid (``source = "grid"``, columns of :func:`meanfield.mean_field_grid`) and the critical line sampled by
        ``q*`` (``source = "critical_line"``: ``sigma_w2, sigma_b2, q_star``).
    """
    sw2 = np.linspace(*sigma_w2)
    sb2 = np.linspace(*sigma_b2)
    grid = meanfield.mean_field_grid(activation, sw2, sb2, progress=progress)
    line = critical_line_by_q(activation, sb2[-1])
    xi = grid.pivot(index="sigma_b2", columns="sigma_w2", values="xi_c").to_numpy()
    xi = np.where(np.isfinite(xi), xi, np.nan)
    name = meanfield.get_activation(activation).name
    fig, axes = new_figure(width=4.2, height=3.2)
    ax = axes[0, 0]
    mesh = ax.pcolormesh(sw2, sb2, np.clip(xi, 0.3, 1e3), norm=LogNorm(vmin=0.3, vmax=1e3), cmap=SEQUENTIAL_CMAP,
                         shading="auto", rasterized=True)
    fig.colorbar(mesh, ax=ax, label=r"correlation depth scale $\xi_c$ (layers)")
    ax.plot(line["sigma_w2"], line["sigma_b2"], color="white", lw=1.6, label=r"critical line $\chi_1 = 1$")
    ax.set_xlim(sw2[0], sw2[-1])
    ax.set_ylim(sb2[0], sb2[-1])
    ax.set_xlabel(r"weight variance $\sigma_w^2$")
    ax.set_ylabel(r"bias variance $\sigma_b^2$")
    ax.set_title(f"{name}: " + r"$\xi_c$ over $(\sigma_w^2, \sigma_b^2)$" + "\nordered left, chaotic right")
    ax.legend(loc="upper left", frameon=False, labelcolor="white")
    data = pd.concat([grid.assign(source="grid"), line.assign(source="critical_line")], ignore_index=True)
    return fig, data


def _critical_rows(act, sigma_b2_values) -> list[dict]:
    rows = []
    for sb2 in sigma_b2_values:
        try:
            with warnings.catch_warnings():
                warnings.simplefilter("ignore", meanfield.NoFixedPointWarning)
                sw2, q = meanfield.critical_sigma_w2(act, sb2)
            note = "" if np.isfinite(q) else "positively homogeneous: chi_1 = 1 on the whole line, q* = inf"
        except meanfield.FixedPointError as err:
            sw2, q, note = np.nan, np.nan, f"no critical point: {err}"
        if np.isfinite(q) and not _attracting(act, pd.DataFrame({"sigma_w2": [sw2], "sigma_b2": [sb2],
                                                                "q_star": [q]}))[0]:
            chi = float(meanfield.chi_1(act, sw2, sb2))
            note = (f"at sigma_b2 = {sb2:g}: chi_1 = 1 holds at q* = {q:.4g}, but the length map converges to "
                    f"q* = {float(meanfield.q_star(act, sw2, sb2)):.4g} where chi_1 = {chi:.4g} (several fixed points)")
        rows.append({"activation": act.name, "sigma_b2": float(sb2), "sigma_w2": sw2, "q_star": q, "note": note})
    return rows


@styled
def critical_lines(sigma_b2_max: float = 1.0, num: int = 50, table_sigma_b2: tuple[float, ...] = TABLE_SIGMA_B2,
                   progress: bool = False):
    """Critical lines ``chi_1 = 1`` of every built-in activation, sampled by ``q*``, with the critical points at
    ``table_sigma_b2`` marked (the report's table of critical initialisations).

    Returns
    -------
    (matplotlib.figure.Figure, pandas.DataFrame)
        Columns ``activation, kind ("line" | "point"), sigma_b2, sigma_w2, q_star, note``; ``note`` explains a missing
        critical point (softplus has ``chi_1 < 1`` everywhere) or an infinite ``q*`` (relu-like activations).
    """
    frames = []
    names = meanfield.builtin_activation_names()
    for name in progress_bar(names, desc="critical lines", unit="activation", enabled=progress):
        act = meanfield.get_activation(name)
        line = critical_line_by_q(act, sigma_b2_max, num)
        frames.append(line.assign(activation=act.name, kind="line", note=""))
        frames.append(pd.DataFrame(_critical_rows(act, table_sigma_b2)).assign(kind="point"))
    data = pd.concat(frames, ignore_index=True)[["activation", "kind", "sigma_b2", "sigma_w2", "q_star", "note"]]
    fig, axes = new_figure(width=5.4, height=3.6)
    ax = axes[0, 0]
    drawn = list(data.loc[data["kind"] == "line", "activation"].unique())
    for i, name in enumerate(drawn):
        style = series_style(i)
        line = data[(data["activation"] == name) & (data["kind"] == "line")]
        points = data[(data["activation"] == name) & (data["kind"] == "point")].dropna(subset=["sigma_w2"])
        points = points[~points["note"].str.contains("several fixed points")]  # not critical: table only (†)
        ax.plot(line["sigma_w2"], line["sigma_b2"], color=style["color"], ls=style["ls"], lw=1.3, label=name)
        ax.plot(points["sigma_w2"], points["sigma_b2"], ls="none", marker=style["marker"], ms=3.5,
                color=style["color"])
    ax.set_xscale("log")
    ax.set_ylim(0, sigma_b2_max * 1.02)
    ax.set_xlabel(r"critical weight variance $\sigma_w^2$ (log scale)")
    ax.set_ylabel(r"bias variance $\sigma_b^2$")
    missing = sorted(set(data["activation"]) - set(drawn))
    if missing:
        ax.text(0.98, 0.02, f"no critical point: {', '.join(missing)}", transform=ax.transAxes, ha="right",
                va="bottom", fontsize=7)
    ax.set_title(r"critical lines $\chi_1 = 1$ of the built-in activations" + "\n(markers: the tabulated points)")
    fig.legend(loc="outside right center", frameon=False)
    return fig, data


def _cell(sigma_w2: float, q_star: float, note: str) -> str:
    if not np.isfinite(sigma_w2):
        return "none"
    flag = " †" if "several fixed points" in note else ""
    return f"{sigma_w2:.4f} (q*={q_star:.4g}){flag}"


def critical_point_tables(data: pd.DataFrame) -> dict[str, pd.DataFrame]:
    """Report table: critical ``sigma_w2`` (and ``q*``) of each built-in activation at the tabulated ``sigma_b2``."""
    points = data[data["kind"] == "point"].assign(note=lambda d: d["note"].fillna(""))  # "" reads back as NaN
    cells = [_cell(w, q, n) for w, q, n in zip(points["sigma_w2"], points["q_star"], points["note"], strict=True)]
    wide = points.assign(cell=cells).pivot(index="activation", columns="sigma_b2", values="cell")
    wide.columns = [f"sigma_b2 = {b:g}" for b in wide.columns]
    notes = points[points["note"] != ""].groupby("activation")["note"].agg(lambda n: "; ".join(dict.fromkeys(n)))
    wide["note"] = notes.reindex(wide.index).fillna("")
    return {"Critical sigma_w2 (chi_1 = 1) of each built-in activation, q* in brackets († not critical at the "
            "attracting fixed point: see note)": wide.reset_index()}


@styled
def map_convergence(activation: str = "tanh", sigma_b2: float = 0.05, sigma_w2s: tuple[float, ...] | None = None,
                    q0: float = 3.0, c0: float = 0.2, depth: int = 40):
    """Layer-by-layer q^l and c^l from (q0, c0) for weight variances in each phase, against their fixed points.

    Parameters
    ----------
    sigma_w2s : tuple of float, optional
        Weight variances; default ``(1.0, critical, 3.0)`` with the critical one from
        :func:`meanfield.critical_sigma_w2` (ordered, critical and chaotic for tanh at ``sigma_b2 = 0.05``).

    Returns
    -------
    (matplotlib.figure.Figure, pandas.DataFrame)
        Columns ``sigma_w2, layer, q, c, q_star, c_star, chi_1, xi_q, xi_c, phase``.
    """
    if sigma_w2s is None:
        sigma_w2s = (1.0, meanfield.critical_sigma_w2(activation, sigma_b2)[0], 3.0)
    frames = []
    for sw2 in sigma_w2s:
        trace = meanfield.iterate_maps(activation, sw2, sigma_b2, q0, c0, depth)
        point = meanfield.mean_field_point(activation, sw2, sigma_b2)
        frames.append(trace.assign(sigma_w2=sw2, q_star=point.q_star, c_star=point.c_star, chi_1=point.chi_1,
                                   xi_q=point.xi_q, xi_c=point.xi_c, phase=point.phase))
    data = pd.concat(frames, ignore_index=True)
    name = meanfield.get_activation(activation).name
    fig, axes = new_figure(ncols=2, width=3.3, height=2.7)
    for i, (sw2, rows) in enumerate(data.groupby("sigma_w2", sort=False)):
        style = series_style(i)
        label = f"{rows['phase'].iloc[0]} " + rf"($\sigma_w^2={sw2:.4g}$)"
        for ax, col, star in ((axes[0, 0], "q", "q_star"), (axes[0, 1], "c", "c_star")):
            ax.plot(rows["layer"], rows[col], color=style["color"], ls=style["ls"], lw=1.2, label=label)
            # the fixed point as a marker in the right margin, side by side: equal fixed points (c* = 1 in the
            # ordered and the critical phase) stay visible
            ax.plot(depth + 2.5 + 2.5 * i, rows[star].iloc[0], marker=style["marker"], color=style["color"], ms=5,
                    ls="none", clip_on=False)
    for ax in axes[0]:
        ax.axvline(depth + 1, color="0.7", lw=0.6)
        ax.set_xlim(0, depth + 2.5 + 2.5 * len(sigma_w2s))
        ax.set_xlabel("layer $l$")
    axes[0, 0].set(ylabel=r"length $q^l$", title=f"length map ({name}, " + rf"$\sigma_b^2={sigma_b2:g}$)")
    axes[0, 1].set(ylabel=r"correlation $c^l$", title=r"correlation map; markers right: $q^*$, $c^*$")
    handles, labels = axes[0, 0].get_legend_handles_labels()
    fig.legend(handles, labels, loc="outside lower center", ncols=len(labels), frameon=False)
    return fig, data


def depth_scale_tables(data: pd.DataFrame) -> dict[str, pd.DataFrame]:
    """Report table: fixed points, ``chi_1`` and depth scales ``xi_q``, ``xi_c`` at the map-convergence points."""
    table = data.groupby("sigma_w2", sort=False).first().reset_index()
    return {"Fixed points and depth scales (layers) at the map-convergence points":
            table[["phase", "sigma_w2", "q_star", "c_star", "chi_1", "xi_q", "xi_c"]]}

