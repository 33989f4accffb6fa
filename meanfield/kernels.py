"""Kernel variance vectors ``v`` of convolutional layers (Xiao et al. 2018, paper 002, section 2.1.6).

A convolution kernel of odd size ``k`` (1-D) or ``k1 x k2`` (2-D) has weights
``w_ij(beta) ~ N(0, sigma_w2 * v_beta / c)`` at kernel offset ``beta``, with ``v_beta >= 0`` and ``sum(v) = 1``.
``v`` is stored as an array of the kernel's shape whose centre entry is offset ``beta = 0`` (entry ``i`` of a 1-D
kernel of size ``k`` is offset ``i - k // 2``).

Named kernels:

- ``"uniform"``: ``v_beta = 1 / k`` (1-D) or ``1 / k**2`` (2-D), the usual i.i.d. initialization (paper 002, eqn. 2.3).
- ``"delta"``: one-hot at the centre; every Fourier eigenvalue of ``A_v`` is 1 (paper 002, section 2.3.2).
- ``"GS0"`` ... ``"GS4"``: GS0 is the delta, GS4 the uniform kernel, and GS1-GS3 "interpolate between" them (paper 002,
  section 3.3). The paper does not state the interpolation; we use the linear mixture
  ``GS_j = (1 - j/4) * delta + (j/4) * uniform``, whose Fourier eigenvalues ``lambda = (1 - t) + t * lambda_uniform``
  (``t = j/4``) move monotonically from all-ones (GS0) to the uniform kernel's (GS4), the ordering the paper's
  Figure 4(b) describes.
"""

from __future__ import annotations

import re
from collections.abc import Sequence

import numpy as np

__all__ = ["KERNEL_NAMES", "kernel_variance", "validate_kernel_variance"]

KERNEL_NAMES = ("uniform", "delta", "GS0", "GS1", "GS2", "GS3", "GS4")

_SUM_TOLERANCE = 1e-6
_GS_PATTERN = re.compile(r"^gs([0-4])$", re.IGNORECASE)


def validate_kernel_variance(v: np.ndarray | Sequence, *, name: str = "v") -> np.ndarray:
    """Check a kernel variance vector and return it as a float64 array.

    Parameters
    ----------
    v : array_like, shape (k,) or (k1, k2)
        Variances per kernel offset; every axis must have odd length (centre = offset 0).
    name : str
        Argument name used in error messages.

    Returns
    -------
    numpy.ndarray
        ``v`` as float64, rescaled so that it sums to 1 exactly (it must already sum to 1 within 1e-6).

    Raises
    ------
    ValueError
        If ``v`` is not 1-D or 2-D, has an even or zero length along an axis, has non-finite or negative entries,
        or does not sum to 1 within 1e-6.
    TypeError
        If ``v`` is not numeric.
    """
    try:
        arr = np.asarray(v, dtype=np.float64)
    except (TypeError, ValueError) as exc:
        raise TypeError(f"{name} must be an array of numbers, got {v!r}") from exc
    if arr.ndim not in (1, 2):
        raise ValueError(f"{name} must be 1-D (1-D kernels) or 2-D (2-D kernels), got {arr.ndim} dimensions")
    if any(size % 2 == 0 for size in arr.shape):
        raise ValueError(f"{name} must have an odd length along every axis (centre = offset 0), got shape {arr.shape}")
    if not np.all(np.isfinite(arr)):
        raise ValueError(f"{name} must be finite, got {arr.tolist()}")
    if np.any(arr < 0):
        raise ValueError(f"{name} must be non-negative (variances), got {arr.tolist()}")
    total = float(arr.sum())
    if abs(total - 1.0) > _SUM_TOLERANCE:
        raise ValueError(f"{name} must sum to 1 (within {_SUM_TOLERANCE:g}), got sum {total!r}")
    return arr / total


def _parse_vector_string(text: str) -> np.ndarray:
    try:
        return np.array([float(part) for part in text.split(",")], dtype=np.float64)
    except ValueError as exc:
        raise ValueError(
            f"kernel {text!r} is neither a name ({', '.join(KERNEL_NAMES)}) nor a comma-separated list of numbers"
        ) from exc


def kernel_variance(name_or_vector: str | np.ndarray | Sequence, size: int | None = None, ndim: int = 1) -> np.ndarray:
    """Kernel variance vector ``v`` of a 1-D or 2-D convolution kernel (paper 002, section 2.1.6).

    Parameters
    ----------
    name_or_vector : str or array_like
        ``"uniform"``, ``"delta"``, ``"GS0"`` ... ``"GS4"`` (case-insensitive; see the module docstring for the GS
        family), a comma-separated string such as ``"0.1,0.8,0.1"``, or an array of shape ``(k,)`` or ``(k1, k2)``.
    size : int, optional
        Kernel size ``k`` (odd, >= 1) for a named kernel; default 3. For an explicit vector it is inferred, and if given
        must equal the vector's length along every axis.
    ndim : {1, 2}
        Spatial dimension of the convolution. A 1-D vector with ``ndim=2`` gives the separable 2-D kernel
        ``outer(v, v)`` (it sums to 1 and is non-negative when ``v`` is). A 2-D array implies ``ndim=2``.

    Returns
    -------
    numpy.ndarray, shape (k,) or (k, k) (or the given array's shape), float64
        Non-negative, sums to 1, centre entry = offset 0.

    Raises
    ------
    ValueError
        Unknown name, even or non-positive ``size``, ``ndim`` not 1 or 2, or an invalid vector
        (see :func:`validate_kernel_variance`).

    Examples
    --------
    >>> kernel_variance("uniform", 3)
    array([0.33333333, 0.33333333, 0.33333333])
    >>> kernel_variance("0.1,0.8,0.1", ndim=2).shape
    (3, 3)
    """
    if ndim not in (1, 2) or isinstance(ndim, bool):
        raise ValueError(f"ndim must be 1 or 2, got {ndim!r}")
    if size is not None and (isinstance(size, bool) or not isinstance(size, (int, np.integer))):
        raise TypeError(f"size must be an odd positive integer, got {size!r}")
    if size is not None and (size < 1 or size % 2 == 0):
        raise ValueError(f"size must be an odd positive integer (kernel size k), got {size}")

    if isinstance(name_or_vector, str):
        text = name_or_vector.strip()
        lowered = text.lower()
        gs = _GS_PATTERN.match(text)
        if lowered in ("uniform", "delta") or gs:
            k = 3 if size is None else int(size)
            delta = np.zeros((k,) * ndim)
            delta[(k // 2,) * ndim] = 1.0
            uniform = np.full((k,) * ndim, 1.0 / k**ndim)
            if lowered == "uniform":
                return uniform
            if lowered == "delta":
                return delta
            t = int(gs.group(1)) / 4.0
            return (1.0 - t) * delta + t * uniform
        arr = _parse_vector_string(text)
    else:
        arr = name_or_vector
    v = validate_kernel_variance(arr, name="kernel variance vector")
    if size is not None and any(length != size for length in v.shape):
        raise ValueError(f"size={size} does not match the kernel variance vector of shape {v.shape}")
    if v.ndim == 1 and ndim == 2:
        v = np.outer(v, v)
    return v
