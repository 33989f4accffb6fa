"""The list of every figure the toolkit makes: name, what it shows, the function that draws it, its report tables,
the optional dependencies it needs, and the reduced settings of ``--quick``."""

from __future__ import annotations

import importlib
import inspect
from collections.abc import Callable
from dataclasses import dataclass

import pandas as pd

from meanfield.optional import MissingExtraError, require


@dataclass(frozen=True)
class FigureSpec:
    """One figure: ``module.function`` returns ``(matplotlib Figure, pandas DataFrame of the plotted numbers)``.

    Attributes
    ----------
    name, module, function, description : str
    tables : str or None
        Name of a function in ``module`` mapping the figure's DataFrame to ``{title: DataFrame}``, the key numbers
        shown as tables in ``report.html``.
    quick : tuple of (str, object)
        Keyword arguments of ``--quick``: smaller grids and samples, same code path (tests and a first look).
    requires : tuple of (module, extra, purpose)
        Optional dependencies, checked before any work; a missing one skips the figure with a message naming the
        extra (``pip install 'sigprop-theory[<extra>]'``).
    commands : tuple of str
        Other toolkit commands that reproduce the figure's key numbers (shown in the report).
    """

    name: str
    module: str
    function: str
    description: str
    tables: str | None = None
    quick: tuple[tuple[str, object], ...] = ()
    requires: tuple[tuple[str, str, str], ...] = ()
    commands: tuple[str, ...] = ()

    def missing_extras(self) -> list[str]:
        """Message for the first optional dependency that cannot be imported (empty when the figure can be made).

        Checked in order and stopping at the first missing one: later ones may import the earlier (scikit-learn
        probes torch) and fail in other ways when it is absent.
        """
        for module, extra, purpose in self.requires:
            try:
                require(module, extra, purpose)
            except MissingExtraError as err:
                return [str(err)]
        return []

    def load(self) -> Callable:
        return getattr(importlib.import_module(f"figures.{self.module}"), self.function)

    def load_tables(self) -> Callable[[pd.DataFrame], dict[str, pd.DataFrame]] | None:
        if self.tables is None:
            return None
        return getattr(importlib.import_module(f"figures.{self.module}"), self.tables)

    def arguments(self, function: Callable, *, quick: bool, progress: bool) -> dict:
        """Keyword arguments for ``function``: the ``--quick`` settings, and ``progress`` where it takes one."""
        kwargs = dict(self.quick) if quick else {}
        if "progress" in inspect.signature(function).parameters:
            kwargs["progress"] = progress
        return kwargs


_TORCH = ("torch", "validate", "the trainability figure (it trains PyTorch networks)")
_SKLEARN = ("sklearn", "validate", "the trainability figure's default data (scikit-learn's 8x8 digits)")

FIGURES: tuple[FigureSpec, ...] = (
    FigureSpec("phase_diagram", "phase", "phase_diagram",
               "tanh phase diagram: xi_c over (sigma_w^2, sigma_b^2) with the critical line sampled by q*",
               quick=(("sigma_w2", (0.5, 4.0, 36)), ("sigma_b2", (0.0, 2.0, 24))),
               commands=("python -m meanfield grid --help",)),
    FigureSpec("critical_lines", "phase", "critical_lines",
               "critical lines chi_1 = 1 of every built-in activation, and the table of critical points",
               tables="critical_point_tables", quick=(("num", 30),),
               commands=("python -m meanfield critical --activation tanh --sigma-b2 0.05",)),
    FigureSpec("map_convergence", "phase", "map_convergence",
               "q^l and c^l converging to (q*, c*) in the ordered, critical and chaotic phases",
               tables="depth_scale_tables", quick=(("depth", 20),),
               commands=("python -m meanfield point --activation tanh --sigma-w2 3 --sigma-b2 0.05",)),
    FigureSpec("figure_s4", "cnn", "figure_s4",
               "paper 002 Fig. S4: CNN covariance Fourier modes, exact iteration vs linearised decay (erf)",
               tables="figure_s4_tables", quick=(("depth", 30),)),
    FigureSpec("mode_depth_scales", "cnn", "mode_depth_scales",
               "depth scale of every Fourier mode for the GS0 (delta) .. GS4 (uniform) kernels, near criticality",
               tables="mode_depth_tables",
               commands=("python -m meanfield modes --activation tanh --sigma-w2 1.7 --sigma-b2 0.05 --kernel GS3 "
                         "--size 16 --ndim 1",)),
    FigureSpec("jacobian_spectra", "spectra", "jacobian_spectra",
               "critical tanh Jacobian spectra, free probability vs sampled networks, orthogonal and Gaussian",
               tables="spectrum_tables", quick=(("depths", (2, 8)), ("width", 80)),
               commands=("python -m rmt spectrum --activation tanh --sigma-w2 1.761 --sigma-b2 0.05 --depth 32 "
                         "--weights gaussian --json",)),
    FigureSpec("conv_operator_spectrum", "spectra", "conv_operator_figure",
               "paper 002 Fig. S3: periodic conv-operator singular values vs the Marchenko-Pastur law",
               quick=(("channels", (4, 16)), ("samples", 600))),
    FigureSpec("trainability", "trainability", "trainability_heatmap",
               "trainability heatmap (real training, small CPU default) with 6 xi_c overlaid (paper 002 Fig. 2)",
               tables="trainability_tables", requires=(_TORCH, _SKLEARN),
               quick=(("sigma_w2", (1.0, 2.5, 4.0)), ("depth", (2, 16)), ("steps", 30), ("width", 16)),
               commands=("python -m validate trainability --help",)),
    FigureSpec("conv_isometry", "norm", "conv_isometry",
               "conv-operator singular values: Gaussian, orthogonal (Alg. 1), Delta-Orthogonal, Procrustes-clipped",
               tables="isometry_tables", quick=(("channels", 8), ("image_size", 8))),
    FigureSpec("batchnorm_eigenvalues", "norm", "batchnorm_eigenvalues",
               "batch-norm Jacobian eigenvalues against rho and rho*eps/(var+eps)", tables="batchnorm_tables"),
)


def figure_names() -> list[str]:
    return [spec.name for spec in FIGURES]
