"""Trainability figure (paper 002 Figure 2; Schoenholz et al. 2017): final test accuracy over (sigma_w^2, depth) with
the predicted depth scale 6 xi_c overlaid. Real training (``validate``, PyTorch); the default is a small CPU run."""

from __future__ import annotations

import os

import numpy as np
import pandas as pd

import meanfield
from validate.trainability import summarize_trainability, trainability

from .style import new_figure


def trainability_heatmap(results: str | os.PathLike | pd.DataFrame | None = None, *, activation: str = "tanh",
                         sigma_b2: float = 0.05, sigma_w2=(1.0, 1.5, 2.0, 2.5, 3.0, 3.5, 4.0), depth=(4, 8, 16, 32, 64),
                         steps: int = 300, data: str = "digits", width: int = 64, seed: int = 0):
    """Heatmap of final test accuracy with the curve ``depth = 6 xi_c(sigma_w^2)``.

    Parameters
    ----------
    results : path, DataFrame or None
        A finished run (a folder with ``trainability.parquet``, or its table) to plot; None trains the default grid
        here: fully connected tanh networks of ``width`` on ``data`` for ``steps`` SGD steps (about a minute or two
        on two CPU cores). Paper 002's full setting is ``python -m validate trainability`` on a GPU
        (docs/validation.md).

    Returns
    -------
    (matplotlib.figure.Figure, pandas.DataFrame)
        One row per cell: ``sigma_w2, sigma_b2, depth, xi_c, final_test_accuracy, trains, predicted``.
    """
    if results is None:
        table = trainability(model="fc", activation=activation, sigma_w2=sigma_w2, sigma_b2=sigma_b2, depth=depth,
                             steps=steps, data=data, width=width, seed=seed, device="auto", progress=False)
    elif isinstance(results, pd.DataFrame):
        table = results
    else:
        table = pd.read_parquet(os.path.join(results, "trainability.parquet"))
    summary = summarize_trainability(table)
    cells = summary.cells
    sb2 = float(cells["sigma_b2"].iloc[0])
    cells = cells[cells["sigma_b2"] == sb2]
    grid = cells.pivot(index="depth", columns="sigma_w2", values="final_test_accuracy")
    fig, axes = new_figure(width=4.2, height=3.2)
    ax = axes[0, 0]
    mesh = ax.pcolormesh(grid.columns, grid.index, grid.to_numpy(), cmap="magma", shading="nearest", vmin=0, vmax=1)
    fig.colorbar(mesh, ax=ax, label="final test accuracy")
    act = table["activation"].iloc[0]
    sw2 = np.linspace(grid.columns.min(), grid.columns.max(), 400)
    ax.plot(sw2, 6 * meanfield.xi_c(act, sw2, sb2), color="cyan", lw=1.5, label=r"$6\,\xi_c$")
    ax.set_yscale("log")
    depths = grid.index.to_numpy(dtype=float)
    if depths.size > 1:  # cell edges halfway (geometrically) between depths, so no cell is cut
        ax.set_ylim(depths[0] * np.sqrt(depths[0] / depths[1]), depths[-1] * np.sqrt(depths[-1] / depths[-2]))
    ax.set(xlabel=r"$\sigma_w^2$", ylabel="depth $L$",
           title=f"{act}, $\\sigma_b^2={sb2:g}$; fitted boundary {summary.fitted_multiplier:.1f} $\\xi_c$, "
              f"rule agrees in {summary.agreement:.0%} of cells")
    ax.legend(frameon=False, labelcolor="cyan")
    return fig, cells
