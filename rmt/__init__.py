"""Random-matrix theory of deep networks at initialization: Jacobian spectra and norm-preserving weights.

Imports only numpy/scipy/numba and :mod:`meanfield`; never torch.
"""

# --- Jacobian spectra (free probability, sampled networks) ---
from rmt import checks  # noqa: F401  (shared argument checks, public)
from rmt.layers import Layers, network_layers  # noqa: F401
from rmt.sampling import conv_operator_spectrum, sample_jacobian_spectrum  # noqa: F401
from rmt.spectrum import JacobianSpectrum, jacobian_moments, jacobian_spectrum  # noqa: F401
from rmt.transforms import (  # noqa: F401
    D2Law,
    d2_law,
    d2_moment_generating,
    d2_moments,
    d2_s_transform,
    d2_stieltjes,
    fixed_point_variance,
    marchenko_pastur_density,
    marchenko_pastur_edges,
    weight_moment_generating,
    weight_s_transform,
    weight_stieltjes,
)

# isort: split
# --- Norm preservation (conv operators, orthogonal kernels, Procrustes, batch norm) ---
# isort: split
from rmt.batchnorm import BatchNormSpectrum, batchnorm_jacobian, batchnorm_spectrum  # noqa: F401
from rmt.conv_operators import conv_operator_matrix, conv_singular_values, conv_symbol  # noqa: F401
from rmt.orthogonal import delta_orthogonal_kernel, haar_orthogonal, orthogonal_conv_kernel  # noqa: F401
from rmt.orthonormal import filter_correlation, orthonormal_kernel, orthonormal_penalty  # noqa: F401
from rmt.procrustes import ProcrustesResult, newton_schulz_polar, procrustes_project  # noqa: F401
