"""Trainability figure (paper 002 Figure 2; Schoenholz et al. 2017): final test accuracy over (sigma_w^2, depth) with
the predicted depth scale 6 xi_c overlaid. Real training (``validate``, PyTorch); the default is a small CPU run."""

from __future__ import annotations

import os

import numpy as np
import pandas as pd
from matplotlib import patheffects
from matplotlib.ticker import FixedFormatter, FixedLocator, NullLocator

import meanfield
from validate.trainability import summarize_trainability, trainability

from .style import OKABE_ITO, SEQUENTIAL_CMAP, new_figure, styled

OUTLINE = [patheffects.withStroke(linewidth=3.0, foreground="black")]


@styled
def trainability_heatmap(results: str | os.PathLike | pd.DataFrame | None = None, *, activation: str = "tanh",
                         sigma_b2: float = 0.05, sigma_w2=(1.0, 1.5, 2.0, 2.5, 3.0, 3.5, 4.0), depth=(4, 8, 16, 32, 64),
                         steps: int = 300, data: str = "digits", width: int = 64, seed: int = 0,
                         progress: bool = False):
    """Heatmap of final test accuracy with the curve ``depth = 6 xi_c(sigma_w^2)``.

    Parameters
    ----------
    results : path, DataFrame or None
        A finished run (a folder with ``trainability.parquet``, or its table) to plot; None trains the default grid
        here: fully connected tanh networks of ``width`` on ``data`` for ``steps`` SGD steps (about a minute or two
        on two CPU cores). Paper 002's full setting is ``python -m validate trainability`` on a GPU
        (docs/validation.md).
    progress : bool
        Show the training engine's progress bar (networks trained).

    Returns
    -------
    (matplotlib.figure.Figure, pandas.DataFrame)
        One row per cell: ``sigma_w2, sigma_b2, depth, xi_c, final_test_accuracy, trains, predicted``, the boundary
        of its column (``predicted_depth = 6 xi_c, deepest_trained, shallowest_failed``) and the summary of the grid
        (``agreement`` with "trains iff L < 6 xi_c", ``fitted_multiplier`` a of the best boundary ``L = a xi_c``,
        ``fitted_lo, fitted_hi, fitted_agreement``).
    """
    if results is None:
        table = trainability(model="fc", activation=activation, sigma_w2=sigma_w2, sigma_b2=sigma_b2, depth=depth,
                             steps=steps, data=data, width=width, seed=seed, device="auto", progress=progress)
    elif isinstance(results, pd.DataFrame):
        table = results
    else:
        table = pd.read_parquet(os.path.join(results, "trainability.parquet"))
    summary = summarize_trainability(table)
    cells = summary.cells
    sb2 = float(cells["sigma_b2"].iloc[0])
    cells = cells[cells["sigma_b2"] == sb2]
    cells = cells.merge(summary.boundary.drop(columns="xi_c"), on=["sigma_w2", "sigma_b2"], how="left").assign(
        agreement=summary.agreement, multiplier=summary.multiplier, fitted_multiplier=summary.fitted_multiplier,
        fitted_lo=summary.fitted_interval[0], fitted_hi=summary.fitted_interval[1],
        fitted_agreement=summary.fitted_agreement)
    grid = cells.pivot(index="depth", columns="sigma_w2", values="final_test_accuracy")
    sw2s = grid.columns.to_numpy(dtype=float)
    depths = grid.index.to_numpy(dtype=float)
    fig, axes = new_figure(width=4.4, height=3.3)
    ax = axes[0, 0]
    # explicit cell edges: arithmetic midpoints in sigma_w2, geometric in depth (the axis is logarithmic), so the
    # cells tile the axes exactly
    mesh = ax.pcolormesh(_edges(sw2s, geometric=False), _edges(depths, geometric=True), grid.to_numpy(),
                         cmap=SEQUENTIAL_CMAP, shading="flat", vmin=0, vmax=1)
    fig.colorbar(mesh, ax=ax, label="final test accuracy")
    act = table["activation"].iloc[0]
    curve = np.linspace(sw2s.min(), sw2s.max(), 400)
    ax.plot(curve, 6 * meanfield.xi_c(act, curve, sb2), color="white", lw=1.6,
            path_effects=OUTLINE, label=r"$L = 6\,\xi_c$")
    if np.isfinite(summary.fitted_multiplier):
        ax.plot(curve, summary.fitted_multiplier * meanfield.xi_c(act, curve, sb2), color=OKABE_ITO[1], lw=1.4,
                ls="--", path_effects=OUTLINE, label=rf"fitted $L = {summary.fitted_multiplier:.1f}\,\xi_c$")
    ax.set_yscale("log")
    edges = _edges(depths, geometric=True)
    ax.set_ylim(edges[0], edges[-1])
    ax.set_xlim(_edges(sw2s, geometric=False)[[0, -1]])
    labelled = spaced_depths(depths)
    ax.yaxis.set_major_locator(FixedLocator(labelled))
    ax.yaxis.set_major_formatter(FixedFormatter([f"{d:g}" for d in labelled]))
    ax.yaxis.set_minor_locator(NullLocator())
    ax.set(xlabel=r"weight variance $\sigma_w^2$", ylabel="depth $L$ (layers)",
           title=f"{act}, " + rf"$\sigma_b^2={sb2:g}$" + f": trains iff $L < 6\\xi_c$ in {summary.agreement:.0%} "
                 "of cells")
    fig.legend(loc="outside lower center", ncols=2, frameon=False)  # below the axes: no cell hidden
    return fig, cells


def _edges(centres: np.ndarray, geometric: bool) -> np.ndarray:
    """Cell edges around sorted ``centres``: midpoints (geometric means when ``geometric``), mirrored at the ends."""
    x = np.log(centres) if geometric else np.asarray(centres, dtype=float)
    if x.size == 1:
        inner, first, last = np.array([]), x[0] - 0.5, x[0] + 0.5
    else:
        inner = 0.5 * (x[1:] + x[:-1])
        first, last = x[0] - (inner[0] - x[0]), x[-1] + (x[-1] - inner[-1])
    out = np.concatenate([[first], inner, [last]])
    return np.exp(out) if geometric else out


def trainability_tables(data: pd.DataFrame) -> dict[str, pd.DataFrame]:
    """Report tables: agreement with "trains iff L < 6 xi_c" and the fitted boundary; per-column boundary."""
    first = data.iloc[0]
    summary = pd.DataFrame([{"cells": len(data), "agreement with L < 6 xi_c": first["agreement"],
                             "fitted multiplier a (L = a xi_c)": first["fitted_multiplier"],
                             "best interval of a": f"[{first['fitted_lo']:.3g}, {first['fitted_hi']:.3g}]",
                             "agreement at fitted a": first["fitted_agreement"]}])
    boundary = data.groupby("sigma_w2", sort=True).first().reset_index()[
        ["sigma_w2", "xi_c", "predicted_depth", "deepest_trained", "shallowest_failed"]]
    return {"Trainability: agreement and fitted boundary": summary,
            "Trainability boundary per sigma_w2 (predicted_depth = 6 xi_c)": boundary}


def spaced_depths(depths, min_ratio: float = 1.12) -> list:
    """The grid depths to label on the log depth axis: each at least ``min_ratio`` times the last one labelled (so
    labels never overlap), always including the deepest."""
    depths = sorted(depths)
    chosen = [depths[0]]
    for depth in depths[1:]:
        if depth >= chosen[-1] * min_ratio:
            chosen.append(depth)
    if chosen[-1] != depths[-1]:
        if depths[-1] < chosen[-1] * min_ratio and len(chosen) > 1:
            chosen[-1] = depths[-1]
        else:
            chosen.append(depths[-1])
    return chosen

