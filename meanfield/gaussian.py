"""Gaussian expectations of activations: the public names of the engine's lower layers in one place.

The engine lives in modules that each hold one concept (``docs/architecture.md``): rules and one-dimensional
expectations in :mod:`meanfield.quadrature`, Hermite coefficients in :mod:`meanfield.hermite`, Mehler's series in
:mod:`meanfield.mehler`, 2-D quadrature in :mod:`meanfield.kernel_quadrature`, closed forms in
:mod:`meanfield.closed_forms` and the two-point kernel in :mod:`meanfield.two_point`. This module re-exports their
public names under the import path they have always had (``from meanfield.gaussian import gaussian_kernel``).
"""

from __future__ import annotations

from .hermite import hermite_coefficients
from .kernel_quadrature import KERNEL_MAX_NODES, kernel_quadrature
from .mehler import MehlerKernel
from .quadrature import (
    GL_NODES,
    GL_NODES_CHECK,
    QUAD_RTOL,
    Z_MAX,
    QuadratureWarning,
    gaussian_expectation,
    gaussian_nodes,
    standard_normal_rule,
)
from .two_point import gaussian_kernel

__all__ = [
    "GL_NODES",
    "GL_NODES_CHECK",
    "KERNEL_MAX_NODES",
    "QUAD_RTOL",
    "Z_MAX",
    "MehlerKernel",
    "QuadratureWarning",
    "gaussian_expectation",
    "gaussian_kernel",
    "gaussian_nodes",
    "hermite_coefficients",
    "kernel_quadrature",
    "standard_normal_rule",
]
