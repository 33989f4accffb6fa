"""The list of every figure the toolkit makes: name, what it shows, and the function that draws it."""

from __future__ import annotations

import importlib
from collections.abc import Callable
from dataclasses import dataclass


@dataclass(frozen=True)
class FigureSpec:
    """One figure: ``module.function`` returns ``(matplotlib Figure, pandas DataFrame of the plotted numbers)``."""

    name: str
    module: str
    function: str
    description: str

    def load(self) -> Callable:
        return getattr(importlib.import_module(f"figures.{self.module}"), self.function)


FIGURES: tuple[FigureSpec, ...] = (
    FigureSpec("phase_diagram", "phase", "phase_diagram",
               "tanh phase diagram: xi_c over (sigma_w^2, sigma_b^2) with the critical line"),
    FigureSpec("map_convergence", "phase", "map_convergence",
               "q^l and c^l converging to (q*, c*) in the ordered, critical and chaotic phases"),
    FigureSpec("figure_s4", "cnn", "figure_s4",
               "paper 002 Fig. S4: CNN covariance Fourier modes, exact iteration vs linearised decay (erf)"),
    FigureSpec("mode_depth_scales", "cnn", "mode_depth_scales",
               "depth scale of every Fourier mode for the GS0 (delta) .. GS4 (uniform) kernels, near criticality"),
    FigureSpec("jacobian_spectra", "spectra", "jacobian_spectra",
               "critical tanh Jacobian spectra, free probability vs sampled networks, orthogonal and Gaussian"),
    FigureSpec("conv_operator_spectrum", "spectra", "conv_operator_figure",
               "paper 002 Fig. S3: periodic conv-operator singular values vs the Marchenko-Pastur law"),
    FigureSpec("trainability", "trainability", "trainability_heatmap",
               "trainability heatmap (real training, small CPU default) with 6 xi_c overlaid (paper 002 Fig. 2)"),
    FigureSpec("conv_isometry", "norm", "conv_isometry",
               "conv-operator singular values: Gaussian, orthogonal (Alg. 1), Delta-Orthogonal, Procrustes-clipped"),
    FigureSpec("batchnorm_eigenvalues", "norm", "batchnorm_eigenvalues",
               "batch-norm Jacobian eigenvalues against rho and rho*eps/(var+eps)"),
)


def figure_names() -> list[str]:
    return [spec.name for spec in FIGURES]
