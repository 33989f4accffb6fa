"""Shared plotting set-up: a non-interactive backend, a paper-ready style, one way to save a figure with its data."""

from __future__ import annotations

import pathlib

import matplotlib

matplotlib.use("Agg")  # figures are files; never open a window

import matplotlib.pyplot as plt  # noqa: E402
import pandas as pd  # noqa: E402

RC = {
    "figure.dpi": 110,
    "savefig.dpi": 200,
    "font.size": 9,
    "axes.titlesize": 9,
    "axes.labelsize": 9,
    "legend.fontsize": 7,
    "xtick.labelsize": 8,
    "ytick.labelsize": 8,
    "axes.spines.top": False,
    "axes.spines.right": False,
}


def figure_style():
    """Context manager applying the toolkit's plotting style; wrap both drawing and saving in it."""
    return plt.rc_context(RC)


def new_figure(ncols: int = 1, nrows: int = 1, width: float = 3.4, height: float = 2.8, **kwargs):
    """A figure of ``nrows x ncols`` panels, each ``width x height`` inches (constrained layout)."""
    fig, axes = plt.subplots(nrows, ncols, figsize=(width * ncols, height * nrows), squeeze=False, **kwargs)
    fig.set_layout_engine("constrained")
    return fig, axes


def save_figure(fig, data: pd.DataFrame | None, out_dir: pathlib.Path, name: str,
                formats: tuple[str, ...] = ("png", "pdf")) -> list[pathlib.Path]:
    """Write ``fig`` as ``out_dir/name.{png,pdf}`` and the plotted numbers as ``out_dir/name.csv``.

    Returns the paths written. The CSV holds every number drawn, so a figure can be re-plotted or checked without
    recomputing it.
    """
    out_dir = pathlib.Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    written = []
    for fmt in formats:
        path = out_dir / f"{name}.{fmt}"
        fig.savefig(path)
        written.append(path)
    plt.close(fig)
    if data is not None:
        path = out_dir / f"{name}.csv"
        data.to_csv(path, index=False)
        written.append(path)
    return written
