"""Random-matrix figures: Jacobian singular-value spectra (free probability vs sampled networks) and paper 002's
Figure S3 (periodic conv operators approach the Marchenko-Pastur law of a dense matrix as channels grow)."""

from __future__ import annotations

import numpy as np
import pandas as pd

import meanfield
import rmt

from .style import new_figure, progress_bar, series_style, styled


@styled
def jacobian_spectra(activation: str = "tanh", sigma_b2: float = 0.05, depths: tuple[int, ...] = (2, 8, 32),
                     width: int = 400, seed: int = 0, progress: bool = False):
    """Predicted density of ``lam`` (eigenvalues of ``J J^T``) at criticality beside one sampled network per depth.

    Drawn in ``log10(lam)`` (density times ``lam ln 10``), orthogonal and Gaussian weights side by side; the histogram
    is a ``width``-wide network at the same point (:func:`rmt.sample_jacobian_spectrum`). The x-axis covers the
    sampled eigenvalues from their 0.5% quantile up (deep Gaussian products put a tail of tiny predicted mass over
    hundreds of decades; the CSV has all of it).

    Returns
    -------
    (matplotlib.figure.Figure, pandas.DataFrame)
        Columns ``weights, depth, sigma_w2, width, source ("theory" | "sampled"), lam, density, mean, variance,
        support_lo, support_hi``: ``density`` on theory rows (NaN on sampled rows); ``mean, variance`` of the law
        (exact, :func:`rmt.jacobian_spectrum`) and ``support_lo, support_hi`` of its continuous part, on theory rows.
    """
    sigma_w2, _ = meanfield.critical_sigma_w2(activation, sigma_b2)
    name = meanfield.get_activation(activation).name
    rng = np.random.default_rng(seed)
    frames = []
    fig, axes = new_figure(ncols=2, width=3.6, height=3.0)
    units = [(w, d) for w in ("orthogonal", "gaussian") for d in depths]
    bar = progress_bar(total=len(units), desc="jacobian spectra", unit="network", enabled=progress)
    for ax, weights in zip(axes[0], ("orthogonal", "gaussian"), strict=True):
        sampled_range = [np.inf, -np.inf]
        for i, depth in enumerate(depths):
            bar.set_postfix_str(f"{weights} L={depth}")
            spec = rmt.jacobian_spectrum(activation, sigma_w2, sigma_b2, depth, weights=weights)
            sample = rmt.sample_jacobian_spectrum(activation, sigma_w2, sigma_b2, depth, width, weights=weights,
                                                  rng=rng)
            bar.update()
            lam = sample["lam"].to_numpy()
            log_lam = np.log10(lam[lam > 0])
            sampled_range = [min(sampled_range[0], np.quantile(log_lam, 0.005)), max(sampled_range[1], log_lam.max())]
            style = series_style(i)
            ax.plot(np.log10(spec.lam), spec.density * spec.lam * np.log(10.0), lw=1.2, color=style["color"],
                    ls=style["ls"], label=f"$L={depth}$")
            ax.hist(log_lam, bins=50, density=True, histtype="step", lw=0.8, color=style["color"], alpha=0.8)
            frames.append(pd.DataFrame({"weights": weights, "depth": depth, "source": "theory", "lam": spec.lam,
                                        "density": spec.density, "mean": spec.mean, "variance": spec.variance,
                                        "support_lo": spec.support[0], "support_hi": spec.support[1]}))
            frames.append(pd.DataFrame({"weights": weights, "depth": depth, "source": "sampled", "lam": lam,
                                        "density": np.nan}))
        pad = 0.05 * (sampled_range[1] - sampled_range[0])
        ax.set_xlim(sampled_range[0] - pad, sampled_range[1] + pad)
        ax.set(xlabel=r"$\log_{10}\lambda$ ($\lambda$: eigenvalue of $JJ^T$)", ylabel=r"density of $\log_{10}\lambda$",
               title=f"{name}, {weights} weights, width {width}\n" + rf"critical $\sigma_w^2={sigma_w2:.4g}$, "
               rf"$\sigma_b^2={sigma_b2:g}$")
        ax.legend(frameon=False, title="theory (line)\nsampled (steps)", loc="upper left")
    bar.close()
    data = pd.concat(frames, ignore_index=True).assign(sigma_w2=sigma_w2, sigma_b2=sigma_b2, width=width)
    return fig, data


def spectrum_tables(data: pd.DataFrame) -> dict[str, pd.DataFrame]:
    """Report table: mean, variance and edges of each predicted law beside the sampled network's."""
    rows = []
    for (weights, depth), group in data.groupby(["weights", "depth"], sort=False):
        theory = group[group["source"] == "theory"].iloc[0]
        lam = group.loc[group["source"] == "sampled", "lam"].to_numpy()
        rows.append({"weights": weights, "depth L": depth, "mean (theory)": theory["mean"],
                     "mean (sampled)": lam.mean(), "variance (theory)": theory["variance"],
                     "variance (sampled)": lam.var(), "lower edge (theory)": theory["support_lo"],
                     "min (sampled)": lam.min(), "upper edge (theory)": theory["support_hi"],
                     "max (sampled)": lam.max()})
    first = data.iloc[0]
    return {f"Spectrum of J J^T: moments and edges (critical sigma_w2 = {first['sigma_w2']:.4g}, sigma_b2 = "
            f"{first['sigma_b2']:g}, sampled width {first['width']})": pd.DataFrame(rows)}


@styled
def conv_operator_figure(channels: tuple[int, ...] = (4, 16, 64), image_size: int = 26, kernel_size: int = 5,
                         samples: int = 2000, bins: int = 40, seed: int = 0, progress: bool = False):
    """Paper 002 Figure S3: singular values of random periodic 1-D conv operators vs the dense-matrix law.

    Each channel count is drawn ``max(1, round(samples / (image_size * c)))`` times (one draw of ``c = 4`` has only
    ``4 n`` singular values), and the histograms pool the draws.

    Returns
    -------
    (matplotlib.figure.Figure, pandas.DataFrame)
        The drawn curves: columns ``channels, matrix ("conv" | "dense" | "law"), s, density, draws, count``; ``s`` is
        the bin centre of a histogram (density per unit ``s``, ``count`` values pooled over ``draws`` draws) or a
        point of the Marchenko-Pastur density (``law``, the same for every ``c``).
    """
    rng = np.random.default_rng(seed)
    hist_frames, law = [], None
    fig, axes = new_figure(ncols=len(channels), width=2.5, height=2.4, sharey=True)
    for ax, c in zip(axes[0], progress_bar(channels, desc="conv operators", unit="c", enabled=progress),
                     strict=True):
        draws = max(1, round(samples / (image_size * c)))
        pooled, law = rmt.conv_operator_spectrum([c] * draws, image_size=image_size, kernel_size=kernel_size, rng=rng)
        edges = np.linspace(0.0, max(2.0, pooled["s"].max()) * 1.001, bins + 1)
        for i, matrix in enumerate(("conv", "dense")):
            s = pooled.loc[pooled["matrix"] == matrix, "s"].to_numpy()
            density, _ = np.histogram(s, bins=edges, density=True)
            style = series_style(i)
            ax.stairs(density, edges, color=style["color"], ls=style["ls"], lw=1.1,
                      label=f"{matrix} ({'periodic' if matrix == 'conv' else 'i.i.d.'})")
            hist_frames.append(pd.DataFrame({"channels": c, "matrix": matrix, "s": 0.5 * (edges[1:] + edges[:-1]),
                                             "density": density, "draws": draws, "count": s.size}))
        ax.plot(law["s"], law["density"], color="black", lw=0.9, label="Marchenko-Pastur")
        ax.set(xlabel="singular value $s$", title=f"$c = {c}$ ({draws} draw{'s' if draws > 1 else ''})")
    axes[0, 0].set_ylabel("density")
    handles, labels = axes[0, 0].get_legend_handles_labels()
    fig.legend(handles, labels, loc="outside lower center", ncols=3, frameon=False)
    fig.suptitle(f"paper 002 Fig. S3: periodic 1-D conv operators, $n = {image_size}$, $k = {kernel_size}$, "
                 r"$\sigma_w^2 = 1$", fontsize=9)
    data = pd.concat([*hist_frames, law.assign(channels=0, matrix="law", draws=0, count=0)], ignore_index=True)
    return fig, data
