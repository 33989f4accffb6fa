"""Fully connected mean-field figures: the (sigma_w^2, sigma_b^2) phase diagram and the q- and c-map convergence.

References: Poole et al. (2016); Schoenholz et al. (2017), Figure 1 (depth scale xi_c over the phase diagram).
"""

from __future__ import annotations

import numpy as np
import pandas as pd
from matplotlib.colors import LogNorm

import meanfield

from .style import new_figure


def phase_diagram(activation: str = "tanh", sigma_w2: tuple[float, float, int] = (0.5, 4.0, 160),
                  sigma_b2: tuple[float, float, int] = (0.0, 2.0, 120)):
    """Heatmap of the correlation depth scale xi_c (variances on both axes) with the critical line chi_1 = 1.

    Parameters
    ----------
    activation : str
        Any activation :func:`meanfield.get_activation` accepts.
    sigma_w2, sigma_b2 : (start, stop, num)
        Grid of weight and bias variances.

    Returns
    -------
    (matplotlib.figure.Figure, pandas.DataFrame)
        The figure and the grid it draws (one row per point, as :func:`meanfield.mean_field_grid` returns it).
    """
    sw2 = np.linspace(*sigma_w2)
    sb2 = np.linspace(*sigma_b2)
    grid = meanfield.mean_field_grid(activation, sw2, sb2)
    line = meanfield.critical_line(activation, sb2)
    xi = grid.pivot(index="sigma_b2", columns="sigma_w2", values="xi_c").to_numpy()
    xi = np.where(np.isfinite(xi), xi, np.nan)
    fig, axes = new_figure(width=4.2, height=3.2)
    ax = axes[0, 0]
    mesh = ax.pcolormesh(sw2, sb2, np.clip(xi, 0.1, 1e3), norm=LogNorm(vmin=0.3, vmax=1e3), cmap="viridis",
                         shading="auto")
    fig.colorbar(mesh, ax=ax, label=r"$\xi_c$ (layers)")
    ax.plot(line["sigma_w2"], line["sigma_b2"], color="white", lw=1.5, label=r"critical line $\chi_1 = 1$")
    ax.set_xlim(sw2[0], sw2[-1])
    ax.set_ylim(sb2[0], sb2[-1])
    ax.set_xlabel(r"$\sigma_w^2$")
    ax.set_ylabel(r"$\sigma_b^2$")
    ax.set_title(f"{activation}: correlation depth scale (ordered left, chaotic right)")
    ax.legend(loc="upper left", frameon=False, labelcolor="white")
    data = grid.merge(line.rename(columns={"sigma_w2": "critical_sigma_w2", "q_star": "critical_q_star"}),
                      on="sigma_b2", how="left")
    return fig, data


def map_convergence(activation: str = "tanh", sigma_b2: float = 0.05, sigma_w2s: tuple[float, ...] = (1.0, 1.76, 3.0),
                    q0: float = 3.0, c0: float = 0.2, depth: int = 40):
    """Layer-by-layer q^l and c^l from (q0, c0) for weight variances in both phases, against their fixed points.

    Returns
    -------
    (matplotlib.figure.Figure, pandas.DataFrame)
        Columns ``sigma_w2, layer, q, c, q_star, c_star``.
    """
    frames = []
    for sw2 in sigma_w2s:
        trace = meanfield.iterate_maps(activation, sw2, sigma_b2, q0, c0, depth)
        point = meanfield.mean_field_point(activation, sw2, sigma_b2)
        frames.append(trace.assign(sigma_w2=sw2, q_star=point.q_star, c_star=point.c_star))
    data = pd.concat(frames, ignore_index=True)
    fig, axes = new_figure(ncols=2)
    for sw2, rows in data.groupby("sigma_w2"):
        (line,) = axes[0, 0].plot(rows["layer"], rows["q"], label=rf"$\sigma_w^2={sw2:g}$")
        axes[0, 0].axhline(rows["q_star"].iloc[0], color=line.get_color(), ls=":", lw=0.8)
        axes[0, 1].plot(rows["layer"], rows["c"], color=line.get_color())
        axes[0, 1].axhline(rows["c_star"].iloc[0], color=line.get_color(), ls=":", lw=0.8)
    axes[0, 0].set(xlabel="layer $l$", ylabel="$q^l$", title=f"length map ({activation}, $\\sigma_b^2={sigma_b2:g}$)")
    axes[0, 1].set(xlabel="layer $l$", ylabel="$c^l$", title="correlation map (dotted: fixed points)")
    axes[0, 0].legend(frameon=False)
    return fig, data
