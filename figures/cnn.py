"""Convolutional mean-field figures (paper 002, section 2.1): Figure S4's Fourier-mode decay of the covariance, exact
iteration against the linearised prediction, and the depth scale of every Fourier mode for the GS kernel family."""

from __future__ import annotations

import numpy as np
import pandas as pd

import meanfield

from .style import new_figure, series_style, styled


@styled
def figure_s4(depth: int = 60, anchor_layer: int | None = None):
    """``|Fourier coefficient|`` of the first cyclic diagonal of ``Sigma* - Sigma^l`` against depth, one curve per mode:
    exact iteration (markers) beside the linearised decay ``(chi_c* |lambda_k|)^l`` (paper 002, eqn. 2.12; parameters
    :data:`meanfield.FIGURE_S4`: erf, ``sigma_w^2 = 2.25``, ``sigma_b^2 = 0.25``, ``v = [0.025, 0.950, 0.025]``,
    ``n = 10``).

    The prediction is drawn through the exact value at ``anchor_layer`` (default ``depth // 2``) rather than at layer
    0: the first twenty or so layers are a nonlinear transient (the deviation is not yet small), after which each mode
    decays at its predicted rate. The right panel is the ratio exact / prediction: flat where the rates agree, 1 from
    the anchor on.

    Returns
    -------
    (matplotlib.figure.Figure, pandas.DataFrame)
        :func:`meanfield.covariance_mode_decay`'s table (``layer, k, abs_lambda, exact_abs, linear_abs, ...``) plus
        ``anchored_abs`` (the prediction through the exact value at ``anchor_layer``) and ``ratio``.
    """
    if anchor_layer is None:
        anchor_layer = depth // 2
    if not 0 <= anchor_layer <= depth:
        raise ValueError(f"anchor_layer must be in [0, depth={depth}], got {anchor_layer!r}")
    p = meanfield.FIGURE_S4
    table = meanfield.covariance_mode_decay(meanfield.figure_s4_covariance(), p["activation"], p["sigma_w2"],
                                            p["sigma_b2"], np.array(p["v"]), depth)
    at_anchor = table[table["layer"] == anchor_layer].set_index("k")
    scale = (at_anchor["exact_abs"] / at_anchor["linear_abs"]).reindex(table["k"]).to_numpy()
    table = table.assign(anchor_layer=anchor_layer, anchored_abs=table["linear_abs"].to_numpy() * scale)
    with np.errstate(divide="ignore", invalid="ignore"):
        table["ratio"] = table["exact_abs"] / table["anchored_abs"]
    fig, axes = new_figure(ncols=2, width=3.4, height=2.9)
    left, right = axes[0]
    shown = sorted(k for k in table["k"].unique() if k <= p["n"] // 2)  # modes k and n - k coincide
    for i, k in enumerate(shown):
        rows = table[table["k"] == k]
        style = series_style(i)
        lam = rows["abs_lambda"].iloc[0]
        left.semilogy(rows["layer"], rows["anchored_abs"], color=style["color"], ls=style["ls"], lw=1,
                      label=rf"$k={k}$, $|\lambda_k|={lam:.3f}$")
        left.semilogy(rows["layer"][::3], rows["exact_abs"][::3], ls="none", marker=style["marker"], ms=2.5,
                      color=style["color"])
        right.plot(rows["layer"], rows["ratio"], color=style["color"], ls=style["ls"], lw=1)
    for ax in (left, right):
        ax.axvline(anchor_layer, color="0.6", lw=0.7, ls=":")
        ax.set_xlabel("depth $l$ (layers)")
    left.set(ylabel=r"$|\hat\epsilon^{\,l}_1(k)|$",
             title=r"exact (markers) vs $(\chi_{c^*}|\lambda_k|)^{l}$ (lines)"
             + f"\nlines through layer {anchor_layer}")
    right.set(ylabel="exact / linearised", title="ratio exact / linearised\n(flat: decay rate as predicted)")
    right.axhline(1.0, color="black", lw=0.6)
    right.set_ylim(0.5, 1.5)
    left.legend(frameon=False, fontsize=6)
    v = ", ".join(f"{x:g}" for x in p["v"])
    fig.suptitle(f"paper 002 Fig. S4: {p['activation']}, " + rf"$\sigma_w^2={p['sigma_w2']:g}$, "
                 rf"$\sigma_b^2={p['sigma_b2']:g}$, $v=[{v}]$, $n={p['n']}$", fontsize=9)
    return fig, table


@styled
def mode_depth_scales(activation: str = "tanh", sigma_b2: float = 0.05, n: int = 16, kernel_size: int = 3,
                      offsets: tuple[float, ...] = (0.9, 0.98, 1.02, 1.1)):
    """Depth scale ``xi_k = -1 / log(chi_c* |lambda_k|)`` of every Fourier mode of a 1-D image of ``n`` pixels, for the
    GS0 (delta) .. GS4 (uniform) kernels, at weight variances ``offset * sigma_w2_critical`` (paper 002, eqn. 2.12).

    A mode with ``lambda_k = 0`` (it is erased in one layer) has ``xi_k = 0``; it is marked at the bottom of the log
    axis instead of being drawn as a line falling off it.

    Returns
    -------
    (matplotlib.figure.Figure, pandas.DataFrame)
        Columns ``kernel, offset, sigma_w2, k, lambda_real, lambda_imag, abs_lambda, xi`` (and the parameters
        ``activation, sigma_b2, n, critical_sigma_w2``).
    """
    critical, _ = meanfield.critical_sigma_w2(activation, sigma_b2)
    name = meanfield.get_activation(activation).name
    frames = []
    kernels = ("GS0", "GS1", "GS2", "GS3", "GS4")
    for kernel in kernels:
        v = meanfield.kernel_variance(kernel, kernel_size, ndim=1)
        for offset in offsets:
            scales = meanfield.fourier_depth_scales(activation, offset * critical, sigma_b2, v, n)
            frames.append(scales.table.assign(kernel=kernel, sigma_w2=offset * critical, offset=offset))
    data = pd.concat(frames, ignore_index=True).assign(activation=name, sigma_b2=sigma_b2, n=n,
                                                       critical_sigma_w2=critical)
    half = data[data["k"] <= n // 2]
    positive = half.loc[half["xi"] > 0, "xi"]
    floor = 10 ** np.floor(np.log10(positive.min()) - 0.3)
    fig, axes = new_figure(ncols=len(offsets), width=2.3, height=2.6, sharey=True)
    for ax, offset in zip(axes[0], offsets, strict=True):
        for i, kernel in enumerate(kernels):
            rows = half[(half["offset"] == offset) & (half["kernel"] == kernel)]
            style = series_style(i)
            xi = rows["xi"].where(rows["xi"] > 0)  # xi = 0 breaks the line instead of diving off the axis
            ax.semilogy(rows["k"], xi, color=style["color"], ls=style["ls"], marker=style["marker"], ms=2.5, lw=0.8,
                        label=kernel)
            zero = rows[rows["xi"] == 0]
            if len(zero):
                ax.plot(zero["k"], np.full(len(zero), floor), ls="none", marker="v", ms=4,
                        color=style["color"], clip_on=False)
        ax.set(xlabel="Fourier mode $k$", title=rf"$\sigma_w^2 = {offset:g}\,\sigma_{{w,c}}^2$")
    axes[0, 0].set_ylim(floor, 1.5 * positive.max())
    axes[0, 0].set_ylabel(r"depth scale $\xi_k$ (layers)")
    handles, labels = axes[0, 0].get_legend_handles_labels()
    fig.legend(handles, labels, loc="outside right center", frameon=False,
               title="kernel\n(▼ at the axis:\n" + r"$\xi_k = 0$)")
    fig.suptitle(f"{name}, " + rf"$\sigma_b^2={sigma_b2:g}$, $n={n}$, $k={kernel_size}$; critical "
                 rf"$\sigma_{{w,c}}^2={critical:.4g}$", fontsize=9)
    return fig, data


def mode_depth_tables(data: pd.DataFrame) -> dict[str, pd.DataFrame]:
    """Report table: ``xi_k`` (layers) of the GS0..GS4 kernels per Fourier mode, at each ``sigma_w2 / sigma_w2_c``."""
    n = int(data["n"].iloc[0])
    half = data[data["k"] <= n // 2]
    wide = half.pivot_table(index=["offset", "kernel"], columns="k", values="xi", aggfunc="first")
    wide.columns = [f"k={k}" for k in wide.columns]
    wide = wide.reset_index().rename(columns={"offset": "sigma_w2 / sigma_w2_c"})
    title = (f"Fourier-mode depth scales xi_k (layers), {data['activation'].iloc[0]}, "
             f"sigma_b2 = {data['sigma_b2'].iloc[0]:g}, n = {n}, critical sigma_w2 = "
             f"{data['critical_sigma_w2'].iloc[0]:.4g}")
    return {title: wide}


def figure_s4_tables(data: pd.DataFrame) -> dict[str, pd.DataFrame]:
    """Report table: each mode's ``|lambda_k|`` and the exact / linearised ratio at a few depths."""
    layers = sorted({int(data["anchor_layer"].iloc[0]), int(data["layer"].max())} | {0})
    rows = data[data["layer"].isin(layers)]
    wide = rows.pivot_table(index=["k", "abs_lambda"], columns="layer", values="ratio", aggfunc="first")
    wide.columns = [f"ratio at l={c}" for c in wide.columns]
    return {"Figure S4: exact / linearised decay of each mode (1 = linear theory holds)": wide.reset_index()}
