"""Norm-preservation figures: singular values of periodic conv operators for several kernel constructions, and the
eigenvalues of the training-mode batch-norm Jacobian against the structure papers 000/001 derive."""

from __future__ import annotations

import numpy as np
import pandas as pd

import rmt

from .style import new_figure, series_style, styled


@styled
def conv_isometry(channels: int = 64, kernel_size: int = 3, image_size: int = 16, seed: int = 0):
    """Singular values of the periodic conv operator (``image_size`` x ``image_size`` input, circular padding).

    Constructions: i.i.d. Gaussian taps of variance ``1 / (channels * kernel_size**2)`` (so ``sigma_w2 = 1``), the
    orthogonal kernel of paper 002's Algorithm 1, Delta-Orthogonal, and the Gaussian kernel after paper 003's Procrustes
    projection clipped back to its ``k x k`` support.

    Returns
    -------
    (matplotlib.figure.Figure, pandas.DataFrame)
        Columns ``construction, singular_value``.
    """
    rng = np.random.default_rng(seed)
    shape = (image_size, image_size)
    fan_in = channels * kernel_size**2
    gaussian = rng.normal(0.0, 1.0 / np.sqrt(fan_in), size=(channels, channels, kernel_size, kernel_size))
    kernels = {
        r"Gaussian ($\sigma_w^2 = 1$)": gaussian,
        "orthogonal (Algorithm 1)": rmt.orthogonal_conv_kernel(channels, channels, kernel_size, rng=rng),
        "Delta-Orthogonal": rmt.delta_orthogonal_kernel(channels, channels, kernel_size, rng=rng),
        "Procrustes, clipped": rmt.procrustes_project(gaussian, shape, clip=True).kernel,
    }
    data = pd.concat(
        [pd.DataFrame({"construction": name, "singular_value": rmt.conv_singular_values(k, shape).ravel()})
         for name, k in kernels.items()],
        ignore_index=True,
    )
    fig, axes = new_figure(width=4.4, height=3.1)
    ax = axes[0, 0]
    # Algorithm 1 and Delta-Orthogonal are both exact isometries (every s = 1): draw them with different widths,
    # line styles and staggered markers so the one underneath stays visible.
    widths = (1.2, 3.2, 1.2, 1.2)
    for i, (name, rows) in enumerate(data.groupby("construction", sort=False)):
        s = np.sort(rows["singular_value"].to_numpy())
        style = series_style(i)
        fraction = np.arange(1, s.size + 1) / s.size
        ax.plot(s, fraction, color=style["color"], ls=style["ls"], lw=widths[i], alpha=0.55 if i == 1 else 1.0,
                drawstyle="steps-post", marker=style["marker"], ms=4, markevery=(0.1 + 0.2 * i, 0.25), label=name)
    ax.set(xlabel="singular value $s$ of the conv operator", ylabel="cumulative fraction of singular values",
           title=rf"periodic conv operators: $c={channels}$ channels," + "\n"
                 rf"${kernel_size}\times{kernel_size}$ kernel, ${image_size}\times{image_size}$ input")
    ax.legend(frameon=False, loc="upper left", title="kernel")
    return fig, data


def isometry_tables(data: pd.DataFrame) -> dict[str, pd.DataFrame]:
    """Report table: spread of the conv-operator singular values per kernel construction (1 = isometry)."""
    table = data.groupby("construction", sort=False)["singular_value"].agg(["min", "median", "max", "std"])
    return {"Conv-operator singular values per kernel construction": table.reset_index()}


@styled
def batchnorm_eigenvalues(batch: int = 32, gamma: float = 1.0, eps_values: tuple[float, ...] = (0.0, 0.1, 1.0),
                          seed: int = 0):
    """Eigenvalues of one feature's batch-norm Jacobian, with the predicted ``rho`` and ``rho eps / (var + eps)``.

    Returns
    -------
    (matplotlib.figure.Figure, pandas.DataFrame)
        Columns ``eps, index, eigenvalue, rho, second, variance, gamma, rank``.
    """
    x = np.random.default_rng(seed).normal(size=batch)
    frames = []
    for eps in eps_values:
        spec = rmt.batchnorm_spectrum(x, gamma=gamma, eps=eps)
        frames.append(pd.DataFrame({"eps": eps, "index": np.arange(batch), "eigenvalue": spec.eigenvalues,
                                    "rho": spec.rho, "second": spec.second, "variance": x.var(), "gamma": gamma,
                                    "rank": spec.rank}))
    data = pd.concat(frames, ignore_index=True)
    fig, axes = new_figure(ncols=len(eps_values), width=2.2, height=2.6, sharey=True)
    for i, (ax, (eps, rows)) in enumerate(zip(axes[0], data.groupby("eps"), strict=True)):
        style = series_style(i)
        ax.plot(rows["index"], rows["eigenvalue"], ls="none", marker=style["marker"], ms=2.5, color=style["color"],
                label="eigenvalues")
        ax.axhline(rows["rho"].iloc[0], color="black", lw=0.8, ls=":", label=r"$\rho$ ($m-2$ times)")
        ax.axhline(rows["second"].iloc[0], color="black", lw=0.8, ls="--", label=r"$\rho\,\epsilon/(v+\epsilon)$")
        ax.set(xlabel="index (ascending)", title=rf"$\epsilon = {eps:g}$")
    axes[0, 0].set_ylabel("eigenvalue of the BN Jacobian")
    axes[0, 0].legend(frameon=False, loc="center right", fontsize=6)
    fig.suptitle(rf"training-mode batch-norm Jacobian of one feature: $m = {batch}$, $\gamma = {gamma:g}$, "
                 rf"batch variance $v = {x.var():.3f}$", fontsize=9)
    return fig, data


def batchnorm_tables(data: pd.DataFrame) -> dict[str, pd.DataFrame]:
    """Report table: predicted eigenvalues and how many sampled eigenvalues match each (batch-norm eigenstructure)."""
    rows = []
    for eps, group in data.groupby("eps"):
        ev = group["eigenvalue"].to_numpy()
        rho, second = group["rho"].iloc[0], group["second"].iloc[0]
        tol = 1e-9 * max(1.0, rho)
        rows.append({"eps": eps, "batch variance": group["variance"].iloc[0], "rho": rho,
                     "eigenvalues = rho": int(np.sum(np.abs(ev - rho) < tol)),
                     "rho eps/(var+eps)": second, "eigenvalues = rho eps/(var+eps)": int(np.sum(np.abs(ev - second)
                                                                                           < tol)),
                     "eigenvalues = 0": int(np.sum(np.abs(ev) < tol)), "rank": int(group["rank"].iloc[0]),
                     "m": len(group)})
    return {"Batch-norm Jacobian eigenstructure (predicted rho m-2 times, rho eps/(var+eps) once, 0 once)":
            pd.DataFrame(rows)}
