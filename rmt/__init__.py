"""Random-matrix theory of deep networks at initialization: Jacobian spectra and norm-preserving weights.

Imports only numpy/scipy/numba and :mod:`meanfield`; never torch.
"""

# --- Jacobian spectra (free probability, sampled networks) ---

# --- Norm preservation (conv operators, orthogonal kernels, Procrustes, batch norm) ---
