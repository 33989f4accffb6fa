"""Mean-field theory of deep networks at initialization (fully connected and convolutional)."""

from .activations import Activation, builtin_activation_names, get_activation
from .fixed_points import CRITICAL_TOL, Q_STAR_MAX, FixedPointError, NoFixedPointWarning
from .hermite import hermite_coefficients
from .quadrature import QuadratureWarning, gaussian_expectation, gaussian_nodes
from .quantities import (
    MeanFieldPoint,
    c_star,
    chi_1,
    chi_c,
    critical_line,
    critical_point,
    critical_sigma_w2,
    iterate_maps,
    mean_field_grid,
    mean_field_point,
    phase,
    q_star,
    xi_c,
    xi_q,
)
from .two_point import gaussian_kernel

__all__ = [
    "Activation",
    "builtin_activation_names",
    "get_activation",
    "CRITICAL_TOL",
    "Q_STAR_MAX",
    "FixedPointError",
    "NoFixedPointWarning",
    "QuadratureWarning",
    "gaussian_expectation",
    "gaussian_kernel",
    "gaussian_nodes",
    "hermite_coefficients",
    "MeanFieldPoint",
    "c_star",
    "chi_1",
    "chi_c",
    "critical_line",
    "critical_point",
    "critical_sigma_w2",
    "iterate_maps",
    "mean_field_grid",
    "mean_field_point",
    "phase",
    "q_star",
    "xi_c",
    "xi_q",
]

# --- Convolutional mean field (meanfield.conv) ---
from .conv import (  # noqa: E402
    FIGURE_S4,
    FourierDepthScales,
    covariance_mode_decay,
    cyclic_diagonal_modes,
    figure_s4_covariance,
    fixed_point_covariance,
    fourier_depth_scales,
    fourier_eigenvalues,
    propagate_covariance,
    sample_conv_covariance,
)
from .kernels import KERNEL_NAMES, kernel_variance, validate_kernel_variance  # noqa: E402

__all__ += [
    "FourierDepthScales",
    "FIGURE_S4",
    "covariance_mode_decay",
    "figure_s4_covariance",
    "cyclic_diagonal_modes",
    "fixed_point_covariance",
    "fourier_depth_scales",
    "fourier_eigenvalues",
    "propagate_covariance",
    "sample_conv_covariance",
    "KERNEL_NAMES",
    "kernel_variance",
    "validate_kernel_variance",
]
