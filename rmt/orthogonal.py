"""Random orthogonal matrices and orthogonal convolution kernels (paper 002: Algorithm 1 and Delta-Orthogonal).

Kernels use the torch layout ``(c_out, c_in, *kernel_size)`` and the periodic cross-correlation of
:mod:`rmt.conv_operators`. ``gain`` multiplies the standard deviation as in ``torch.nn.init``: every singular value of
the resulting operator equals ``gain`` (critical weights of variance ``sigma_w2`` mean ``gain = sqrt(sigma_w2)``).
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from .checks import check_dim, check_shape

__all__ = ["delta_orthogonal_kernel", "haar_orthogonal", "orthogonal_conv_kernel"]


def _check_ndim(ndim: int) -> int:
    if isinstance(ndim, bool) or not isinstance(ndim, (int, np.integer)) or ndim not in (1, 2, 3):
        raise ValueError(f"ndim (number of spatial axes) must be 1, 2 or 3, got {ndim!r}")
    return int(ndim)


def _check_gain(gain: float) -> float:
    gain = float(gain)
    if not np.isfinite(gain) or gain <= 0:
        raise ValueError(f"gain must be a positive finite number, got {gain!r}")
    return gain


def haar_orthogonal(rows: int, cols: int, rng: np.random.Generator | int | None = None) -> np.ndarray:
    """A Haar-distributed (semi-)orthogonal matrix.

    QR decomposition of a standard Gaussian matrix with the signs of ``R``'s diagonal moved into ``Q``
    (Mezzadri 2007), which makes ``Q`` exactly Haar on the orthogonal group (or the Stiefel manifold).

    Parameters
    ----------
    rows, cols : int
        Matrix shape. ``rows >= cols``: orthonormal columns; ``rows < cols``: orthonormal rows.
    rng : numpy.random.Generator, int or None
        Random source (seed or generator).

    Returns
    -------
    ndarray, float64, shape ``(rows, cols)``
    """
    rows, cols = check_dim(rows, "rows"), check_dim(cols, "cols")
    rng = np.random.default_rng(rng)
    big, small = max(rows, cols), min(rows, cols)
    q, r = np.linalg.qr(rng.standard_normal((big, small)))
    q = q * np.where(np.diagonal(r) < 0, -1.0, 1.0)
    return q if rows >= cols else q.T


def _symmetric_projection(c: int, rng: np.random.Generator) -> np.ndarray:
    """``Q diag(mask) Q^T``, ``Q`` Haar, ``mask`` fair random 0/1: a random symmetric projection (paper 002)."""
    q = haar_orthogonal(c, c, rng)
    keep = q[:, rng.random(c) < 0.5]
    return keep @ keep.T


def orthogonal_conv_kernel(
    c_out: int,
    c_in: int,
    kernel_size: int | Sequence[int],
    ndim: int = 2,
    gain: float = 1.0,
    rng: np.random.Generator | int | None = None,
) -> np.ndarray:
    """A random kernel whose periodic convolution operator is an isometry times ``gain`` (paper 002, Algorithm 1).

    Kautsky & Turcajova (1994) block construction: a ``c_out x c_out`` block kernel ``H`` is built as the block
    convolution (polynomial product) of ``sum_j (k_j - 1)`` two-tap factors ``P + (I - P) z_j``, one per step along
    spatial axis ``j``, with ``P`` a random symmetric projection. Each factor is unitary on the unit circle
    ``|z_j| = 1``, so the product is paraunitary: ``H(z)^H H(z) = I`` at every frequency. The taps are then multiplied
    by a Haar ``c_out x c_in`` matrix with orthonormal columns and by ``gain``. Because the DFT frequencies of any
    periodic input lie on the unit circle, the operator has all ``c_in`` singular values per frequency equal to
    ``gain`` for every input size (tap ``d`` acts at offset ``d - k // 2`` as in torch's cross-correlation; the offset
    only multiplies the symbol by a phase). Factors alternate between the axes as in the TensorFlow implementation
    of the paper's authors.

    Parameters
    ----------
    c_out, c_in : int
        Channels, ``c_in <= c_out`` (an isometry from fewer to more channels).
    kernel_size : int or sequence of int
        Taps per spatial axis (any size >= 1; torch needs odd sizes for same-size circular padding).
    ndim : int, default 2
        Spatial axes, 1, 2 or 3.
    gain : float, default 1.0
        Multiplies the standard deviation: every singular value of the operator equals ``gain``.
    rng : numpy.random.Generator, int or None

    Returns
    -------
    ndarray, float64, shape ``(c_out, c_in, *kernel_size)``
        Cost ``O(prod(k) * sum(k) * c_out^3)``.
    """
    c_out, c_in = check_dim(c_out, "c_out"), check_dim(c_in, "c_in")
    ndim = _check_ndim(ndim)
    k = check_shape(kernel_size, ndim, "kernel_size")
    gain = _check_gain(gain)
    if c_in > c_out:
        raise ValueError(f"orthogonal_conv_kernel needs c_in <= c_out (an isometry), got c_in={c_in} > c_out={c_out}")
    rng = np.random.default_rng(rng)
    eye = np.eye(c_out)
    block = np.zeros((*k, c_out, c_out))  # H[d] as a (c_out x c_out) matrix per tap
    block[(0,) * ndim] = eye
    degree = [0] * ndim  # current polynomial degree along each axis
    for step in range(max(k) - 1):
        for axis in range(ndim):
            if step >= k[axis] - 1:
                continue
            proj = _symmetric_projection(c_out, rng)
            active = tuple(slice(0, deg + 1) for deg in degree)
            current = block[active].copy()
            shifted = list(active)
            shifted[axis] = slice(1, degree[axis] + 2)
            block[active] = current @ proj
            block[tuple(shifted)] += current @ (eye - proj)
            degree[axis] += 1
    taps = block @ haar_orthogonal(c_out, c_in, rng)  # (*k, c_out, c_in)
    return gain * np.moveaxis(taps, (ndim, ndim + 1), (0, 1))


def delta_orthogonal_kernel(
    c_out: int,
    c_in: int,
    kernel_size: int | Sequence[int],
    ndim: int = 2,
    gain: float = 1.0,
    rng: np.random.Generator | int | None = None,
) -> np.ndarray:
    """Delta-Orthogonal kernel (paper 002, Sec. 4): zero except the spatial centre, a Haar (semi-)orthogonal matrix.

    The operator's symbol is the same ``c_out x c_in`` matrix at every frequency, so all ``min(c_out, c_in)`` singular
    values per frequency equal ``gain`` (an isometry when ``c_in <= c_out``; with ``c_in > c_out`` the rows are
    orthonormal, as for ``torch.nn.init.orthogonal_``).

    Parameters
    ----------
    c_out, c_in : int
        Channels.
    kernel_size : int or sequence of int
        Odd taps per spatial axis (a centre tap must exist).
    ndim : int, default 2
        Spatial axes, 1, 2 or 3.
    gain : float, default 1.0
        Multiplies the standard deviation: every singular value equals ``gain``.
    rng : numpy.random.Generator, int or None

    Returns
    -------
    ndarray, float64, shape ``(c_out, c_in, *kernel_size)``
    """
    c_out, c_in = check_dim(c_out, "c_out"), check_dim(c_in, "c_in")
    ndim = _check_ndim(ndim)
    k = check_shape(kernel_size, ndim, "kernel_size")
    gain = _check_gain(gain)
    if any(kk % 2 == 0 for kk in k):
        raise ValueError(f"delta_orthogonal_kernel needs odd kernel sizes (a centre tap), got kernel_size={k}")
    kernel = np.zeros((c_out, c_in, *k))
    kernel[(slice(None), slice(None), *(kk // 2 for kk in k))] = gain * haar_orthogonal(c_out, c_in, rng)
    return kernel
