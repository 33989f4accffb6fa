"""Norm-preservation figures: singular values of periodic conv operators for several kernel constructions, and the
eigenvalues of the training-mode batch-norm Jacobian against the structure papers 000/001 derive."""

from __future__ import annotations

import numpy as np
import pandas as pd

import rmt

from .style import new_figure


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
        "Gaussian (sigma_w2 = 1)": gaussian,
        "orthogonal (Algorithm 1)": rmt.orthogonal_conv_kernel(channels, channels, kernel_size, rng=rng),
        "Delta-Orthogonal": rmt.delta_orthogonal_kernel(channels, channels, kernel_size, rng=rng),
        "Procrustes, clipped": rmt.procrustes_project(gaussian, shape, clip=True).kernel,
    }
    data = pd.concat(
        [pd.DataFrame({"construction": name, "singular_value": rmt.conv_singular_values(k, shape).ravel()})
         for name, k in kernels.items()],
        ignore_index=True,
    )
    fig, axes = new_figure(width=4.2, height=3.0)
    ax = axes[0, 0]
    for name, rows in data.groupby("construction", sort=False):
        s = np.sort(rows["singular_value"].to_numpy())
        ax.plot(s, np.arange(1, s.size + 1) / s.size, label=name, drawstyle="steps-post")
    ax.set(xlabel="singular value of the conv operator", ylabel="cumulative fraction",
           title=f"c={channels}, {kernel_size}x{kernel_size} kernel, {image_size}x{image_size} periodic input")
    ax.legend(frameon=False, loc="lower right")
    return fig, data


def batchnorm_eigenvalues(batch: int = 32, gamma: float = 1.0, eps_values: tuple[float, ...] = (0.0, 0.1, 1.0),
                          seed: int = 0):
    """Eigenvalues of one feature's batch-norm Jacobian, with the predicted ``rho`` and ``rho eps / (var + eps)``.

    Returns
    -------
    (matplotlib.figure.Figure, pandas.DataFrame)
        Columns ``eps, index, eigenvalue, rho, second``.
    """
    x = np.random.default_rng(seed).normal(size=batch)
    frames = []
    for eps in eps_values:
        spec = rmt.batchnorm_spectrum(x, gamma=gamma, eps=eps)
        frames.append(pd.DataFrame({"eps": eps, "index": np.arange(batch), "eigenvalue": spec.eigenvalues,
                                    "rho": spec.rho, "second": spec.second}))
    data = pd.concat(frames, ignore_index=True)
    fig, axes = new_figure(width=4.2, height=3.0)
    ax = axes[0, 0]
    for eps, rows in data.groupby("eps"):
        (line,) = ax.plot(rows["index"], rows["eigenvalue"], "o", ms=3, label=rf"$\epsilon={eps:g}$")
        ax.axhline(rows["rho"].iloc[0], color=line.get_color(), lw=0.8, ls=":")
        ax.axhline(rows["second"].iloc[0], color=line.get_color(), lw=0.8, ls="--")
    ax.set(xlabel="eigenvalue index (ascending)", ylabel="eigenvalue",
           title=f"batch-norm Jacobian, m={batch}\n(dotted: rho; dashed: rho eps/(var+eps))")
    ax.legend(frameon=False)
    return fig, data
