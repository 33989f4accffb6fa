"""Shared plotting set-up: a non-interactive backend, one paper-ready style (colour-blind-safe palette, math text),
and one way to save a figure with its data.

The palette is Okabe & Ito's (2008) eight colours, safe for the common colour-vision deficiencies; series that need
more than colour (overlapping curves, print in grey) also get a line style and marker from :data:`LINESTYLES` and
:data:`MARKERS`. Every figure is laid out by matplotlib's constrained layout, so titles and colour bars are never
clipped, also when a figure made through the Python API is saved with ``fig.savefig``.
"""

from __future__ import annotations

import contextlib
import functools
import io
import os
import pathlib
import tempfile

import matplotlib

matplotlib.use("Agg")  # figures are files; never open a window

import matplotlib.pyplot as plt  # noqa: E402
import pandas as pd  # noqa: E402
from cycler import cycler  # noqa: E402

#: Okabe-Ito colours (black last: it is kept for theory curves and reference lines).
OKABE_ITO = ("#0072B2", "#E69F00", "#009E73", "#D55E00", "#CC79A7", "#56B4E9", "#F0E442", "#000000")
PALETTE = OKABE_ITO[:7]
#: Colours of series drawn as lines or markers: the palette without the yellow (too light on white), then black.
SERIES_COLORS = OKABE_ITO[:6] + OKABE_ITO[7:]
LINESTYLES = ("-", "--", "-.", ":")
MARKERS = ("o", "s", "^", "D", "v", "P", "X")
#: Sequential colour map for heatmaps (perceptually uniform, readable in grey and by colour-blind readers).
SEQUENTIAL_CMAP = "cividis"

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
    "axes.prop_cycle": cycler(color=PALETTE),
    "image.cmap": SEQUENTIAL_CMAP,
    "mathtext.fontset": "dejavusans",
    "figure.constrained_layout.use": True,
}


def figure_style():
    """Context manager applying the toolkit's plotting style; wrap both drawing and saving in it."""
    return plt.rc_context(RC)


def styled(function):
    """Decorator: run a figure function inside :func:`figure_style`, so fonts and colours are the toolkit's also
    when it is called from Python rather than from ``python -m figures``."""

    @functools.wraps(function)
    def wrapper(*args, **kwargs):
        with figure_style():
            return function(*args, **kwargs)

    return wrapper


def progress_bar(iterable=None, *, total: int | None = None, desc: str = "", unit: str = "it",
                 enabled: bool = True):
    """A tqdm progress bar on stderr (one per unit of work inside a long figure); a no-op wrapper when disabled."""
    from tqdm.auto import tqdm

    return tqdm(iterable, total=total, desc=desc, unit=unit, disable=not enabled, leave=False, dynamic_ncols=True,
                mininterval=0)  # every unit is drawn (units are few and slow)


def series_style(i: int) -> dict:
    """Colour, line style and marker of the ``i``-th series: distinguishable without colour too."""
    return {"color": SERIES_COLORS[i % len(SERIES_COLORS)], "ls": LINESTYLES[i % len(LINESTYLES)],
            "marker": MARKERS[i % len(MARKERS)]}


def new_figure(ncols: int = 1, nrows: int = 1, width: float = 3.4, height: float = 2.8, **kwargs):
    """A figure of ``nrows x ncols`` panels, each ``width x height`` inches, in the toolkit's style.

    The style (palette, fonts) is applied while the figure is built and constrained layout is set on the figure
    itself, so a figure made from Python and saved with ``fig.savefig`` looks like the one ``python -m figures``
    writes (titles and colour bars inside the canvas).
    """
    with figure_style():
        fig, axes = plt.subplots(nrows, ncols, figsize=(width * ncols, height * nrows), squeeze=False, **kwargs)
    fig.set_layout_engine("constrained")
    for ax in axes.flat:
        ax.set_prop_cycle(RC["axes.prop_cycle"])
    return fig, axes


def _atomic_write(path: pathlib.Path, write) -> None:
    """Call ``write(file_object)`` on a temporary file beside ``path``, then rename it over ``path``."""
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "wb") as fh:
            write(fh)
        os.replace(tmp, path)
    except BaseException:
        with contextlib.suppress(OSError):
            os.unlink(tmp)
        raise


def write_bytes_atomic(path: str | os.PathLike, data: bytes) -> pathlib.Path:
    """Write ``data`` to ``path`` atomically (a reader never sees a half-written file)."""
    path = pathlib.Path(path)
    _atomic_write(path, lambda fh: fh.write(data))
    return path


def save_figure(fig, data: pd.DataFrame | None, out_dir: pathlib.Path, name: str,
                formats: tuple[str, ...] = ("png", "pdf")) -> list[pathlib.Path]:
    """Write ``fig`` as ``out_dir/name.{png,pdf}`` and the plotted numbers as ``out_dir/name.csv``, each atomically.

    Returns the paths written. The CSV holds every number drawn, so a figure can be re-plotted or checked without
    recomputing it.
    """
    out_dir = pathlib.Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    written = []
    for fmt in formats:
        buffer = io.BytesIO()
        fig.savefig(buffer, format=fmt)
        written.append(write_bytes_atomic(out_dir / f"{name}.{fmt}", buffer.getvalue()))
    plt.close(fig)
    if data is not None:
        written.append(write_bytes_atomic(out_dir / f"{name}.csv", data.to_csv(index=False).encode()))
    return written
