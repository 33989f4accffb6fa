"""Every figure of the toolkit, from one command: ``python -m figures --out DIR``.

Each figure function returns ``(matplotlib.figure.Figure, pandas.DataFrame)``; the command saves the figure as PNG and
PDF and the plotted numbers as CSV beside it, and writes ``DIR/report.html`` with every figure and its key numbers as
tables. ``python -m figures --list`` names them; docs/figures.md describes each.
"""

from .registry import FIGURES, FigureSpec, figure_names

__all__ = ["FIGURES", "FigureSpec", "figure_names"]
