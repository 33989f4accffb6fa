"""Random-matrix figures: Jacobian singular-value spectra (free probability vs sampled networks) and paper 002's
Figure S3 (periodic conv operators approach the Marchenko-Pastur law of a dense matrix as channels grow)."""

from __future__ import annotations

import numpy as np
import pandas as pd

import meanfield
import rmt

from .style import new_figure


def jacobian_spectra(activation: str = "tanh", sigma_b2: float = 0.05, depths: tuple[int, ...] = (2, 8, 32),
                     width: int = 400, seed: int = 0):
    """Predicted density of ``lam`` (eigenvalues of ``J J^T``) at criticality beside one sampled network per depth.

    Drawn in ``log10(lam)`` (density times ``lam ln 10``), orthogonal and Gaussian weights side by side; the histogram
    is a ``width``-wide network at the same point (:func:`rmt.sample_jacobian_spectrum`).

    Returns
    -------
    (matplotlib.figure.Figure, pandas.DataFrame)
        Columns ``weights, depth, source ("theory" | "sampled"), lam, density``; sampled rows have NaN density.
    """
    sigma_w2, _ = meanfield.critical_sigma_w2(activation, sigma_b2)
    rng = np.random.default_rng(seed)
    frames = []
    fig, axes = new_figure(ncols=2, width=3.6, height=2.9)
    for ax, weights in zip(axes[0], ("orthogonal", "gaussian"), strict=True):
        lower = 0.0
        for depth in depths:
            spec = rmt.jacobian_spectrum(activation, sigma_w2, sigma_b2, depth, weights=weights)
            sample = rmt.sample_jacobian_spectrum(activation, sigma_w2, sigma_b2, depth, width, weights=weights,
                                                  rng=rng)
            lam = sample["lam"].to_numpy()
            log_density = spec.density * spec.lam * np.log(10.0)
            (line,) = ax.plot(np.log10(spec.lam), log_density, lw=1.2, label=f"L={depth}")
            # Show the central 99% of the predicted law: deep Gaussian products keep a tail of tiny mass over
            # hundreds of decades (the CSV has all of it).
            cdf = spec.cdf(spec.lam)
            lower = min(lower, np.log10(spec.lam[np.searchsorted(cdf, 0.005)]))
            ax.hist(np.log10(lam[lam > 0]), bins=50, density=True, histtype="step", lw=0.8, color=line.get_color())
            frames.append(pd.DataFrame({"weights": weights, "depth": depth, "source": "theory", "lam": spec.lam,
                                        "density": spec.density}))
            frames.append(pd.DataFrame({"weights": weights, "depth": depth, "source": "sampled", "lam": lam,
                                        "density": np.nan}))
        ax.set_xlim(lower, None)
        ax.set(xlabel=r"$\log_{10}\lambda$ ($\lambda$: eigenvalue of $JJ^T$)", ylabel=r"density of $\log_{10}\lambda$",
               title=f"{activation}, {weights} weights, critical ($\\sigma_b^2={sigma_b2:g}$)")
        ax.legend(frameon=False, title="theory (line), sampled (steps)")
    return fig, pd.concat(frames, ignore_index=True)


def conv_operator_figure(channels: tuple[int, ...] = (4, 16, 64), image_size: int = 26, kernel_size: int = 5,
                         seed: int = 0):
    """Paper 002 Figure S3: singular values of random periodic 1-D conv operators vs the dense-matrix law.

    Returns
    -------
    (matplotlib.figure.Figure, pandas.DataFrame)
        Columns ``channels, matrix ("conv" | "dense" | "law"), s, density`` (density only on the law rows).
    """
    samples, law = rmt.conv_operator_spectrum(channels, image_size=image_size, kernel_size=kernel_size, rng=seed)
    fig, axes = new_figure(ncols=len(channels), width=2.6, height=2.4)
    for ax, c in zip(axes[0], channels, strict=True):
        rows = samples[samples["channels"] == c]
        for matrix, color in (("conv", "C0"), ("dense", "C1")):
            ax.hist(rows.loc[rows["matrix"] == matrix, "s"], bins=40, density=True, histtype="step", color=color,
                    label=matrix)
        ax.plot(law["s"], law["density"], "k", lw=1, label="Marchenko-Pastur")
        ax.set(xlabel="singular value $s$", title=f"c = {c}, n = {image_size}, k = {kernel_size}")
    axes[0, 0].set_ylabel("density")
    axes[0, 0].legend(frameon=False)
    data = pd.concat([samples.assign(density=np.nan), law.assign(channels=0, matrix="law")], ignore_index=True)
    return fig, data
