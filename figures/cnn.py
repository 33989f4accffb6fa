"""Convolutional mean-field figures (paper 002, section 2.1): Figure S4's Fourier-mode decay of the covariance, exact
iteration against the linearised prediction, and the depth scale of every Fourier mode for the GS kernel family."""

from __future__ import annotations

import numpy as np
import pandas as pd

import meanfield

from .style import new_figure


def figure_s4(depth: int = 60):
    """``|Fourier coefficient|`` of the first cyclic diagonal of ``Sigma* - Sigma^l`` against depth, one curve per mode,
    exact iteration (markers) beside ``(chi_c* lambda_k)^l`` (lines): erf, ``sigma_w^2 = 2.25``, ``sigma_b^2 = 0.25``,
    ``v = [0.025, 0.950, 0.025]``, ``n = 10``.

    Returns
    -------
    (matplotlib.figure.Figure, pandas.DataFrame)
        :func:`meanfield.covariance_mode_decay`'s table (``layer, k, abs_lambda, exact_abs, linear_abs, ...``).
    """
    p = meanfield.FIGURE_S4
    table = meanfield.covariance_mode_decay(meanfield.figure_s4_covariance(), p["activation"], p["sigma_w2"],
                                            p["sigma_b2"], np.array(p["v"]), depth)
    fig, axes = new_figure(width=4.2, height=3.2)
    ax = axes[0, 0]
    for k, rows in table.groupby("k"):
        if k > p["n"] // 2:  # modes k and n - k coincide for a real symmetric perturbation
            continue
        (line,) = ax.semilogy(rows["layer"], rows["linear_abs"], lw=1, label=f"k={k}")
        ax.semilogy(rows["layer"][::3], rows["exact_abs"][::3], "o", ms=2.5, color=line.get_color())
    ax.set(xlabel="depth $l$", ylabel=r"$|\hat\epsilon^l_1(k)|$",
           title="paper 002 Fig. S4 (erf): exact (dots) vs $(\\chi_{c^*}\\lambda_k)^l$ (lines)")
    ax.legend(frameon=False, ncols=2)
    return fig, table


def mode_depth_scales(activation: str = "tanh", sigma_b2: float = 0.05, n: int = 16, kernel_size: int = 3,
                      offsets: tuple[float, ...] = (0.9, 0.98, 1.02, 1.1)):
    """Depth scale ``xi_k = -1 / log(chi_c* |lambda_k|)`` of every Fourier mode of a 1-D image of ``n`` pixels, for the
    GS0 (delta) .. GS4 (uniform) kernels, at weight variances ``offset * sigma_w2_critical``.

    Returns
    -------
    (matplotlib.figure.Figure, pandas.DataFrame)
        Columns ``kernel, sigma_w2, k, abs_lambda, xi``.
    """
    critical, _ = meanfield.critical_sigma_w2(activation, sigma_b2)
    frames = []
    for name in ("GS0", "GS1", "GS2", "GS3", "GS4"):
        v = meanfield.kernel_variance(name, kernel_size, ndim=1)
        for offset in offsets:
            scales = meanfield.fourier_depth_scales(activation, offset * critical, sigma_b2, v, n)
            frames.append(scales.table.assign(kernel=name, sigma_w2=offset * critical, offset=offset))
    data = pd.concat(frames, ignore_index=True)
    fig, axes = new_figure(ncols=len(offsets), width=2.4, height=2.5, sharey=True)
    for ax, offset in zip(axes[0], offsets, strict=True):
        for name, rows in data[data["offset"] == offset].groupby("kernel"):
            rows = rows[rows["k"] <= n // 2]
            ax.semilogy(rows["k"], rows["xi"], "o-", ms=2.5, lw=0.8, label=name)
        ax.set(xlabel="Fourier mode $k$", title=rf"$\sigma_w^2 = {offset:g}\,\sigma_{{w,c}}^2$")
    axes[0, 0].set_ylabel(r"depth scale $\xi_k$ (layers)")
    axes[0, 0].legend(frameon=False)
    return fig, data.drop(columns="offset")
