"""Procrustes projection of convolution kernels onto norm-preserving ones (paper 003, Sec. 3, ProcResNet).

Per spatial frequency the kernel's DFT matrix ``A`` (see :func:`rmt.conv_operators.conv_symbol`) is replaced by
``target * A (A^H A)^{-1/2}``, the closest matrix (Frobenius norm) whose singular values all equal ``target``
(the orthogonal Procrustes problem; its polar factor ``U V^H`` for ``A = U S V^H``). ``target = sqrt(2)`` makes a
Conv-ReLU pair norm-preserving (paper 003, Eq. 10); the authors' public code also scales the target by
``sqrt(c_out / c_in)``, which callers pass in ``target`` when they want it.
"""

from __future__ import annotations

import warnings
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from .checks import check_finite_array, check_int, check_kernel, check_positive, check_shape
from .conv_operators import conv_singular_values, symbol_from_poly

__all__ = ["ProcrustesResult", "default_max_iter", "newton_schulz_polar", "procrustes_project"]


@dataclass(frozen=True)
class ProcrustesResult:
    """Outcome of :func:`procrustes_project`.

    Attributes
    ----------
    kernel : ndarray
        Projected kernel, shape ``(c_out, c_in, *kernel_size)`` when clipped, ``(c_out, c_in, *input_shape)`` otherwise.
    iterations : int
        Newton-Schulz iterations run (0 for ``method="svd"``).
    converged : bool
        Whether every frequency met the tolerance (always True for ``"svd"``).
    residual : float
        Final ``max |G - I|`` over the entries of the scaled Gram matrices ``G`` of all frequencies (0 for ``"svd"``).
    singular_values : ndarray, shape ``(*input_shape, min(c_out, c_in))``
        Singular values of the periodic operator of the returned ``kernel`` on ``input_shape`` (computed afresh).
    deviation : float
        ``max |singular_values - target|``: machine precision without clipping, the clipping error with it.
    target : float
    """

    kernel: np.ndarray
    iterations: int
    converged: bool
    residual: float
    singular_values: np.ndarray
    deviation: float
    target: float


def default_max_iter(dtype) -> int:
    """Newton-Schulz iterations that bring a singular value ``sqrt(eps)`` times the largest to convergence.

    Small singular values grow by 3/2 per step, then converge quadratically: ``log(1 / sqrt(eps)) / log(1.5) + 10``
    (54 for float64, 30 for float32). Smaller singular values are treated as numerically zero: they do not converge.
    """
    eps = np.finfo(dtype).eps
    return int(np.ceil(np.log(1 / np.sqrt(eps)) / np.log(1.5))) + 10


def newton_schulz_polar(
    a: np.ndarray, tol: float | None = None, max_iter: int | None = None
) -> tuple[np.ndarray, int, bool, float]:
    """Polar factor ``A (A^H A)^{-1/2}`` of a batch of matrices by the Newton-Schulz iteration (matrix products only).

    ``X <- X (3 I - X^H X) / 2`` (``(3 I - X X^H) X / 2`` for wide matrices), the iteration paper 003 uses (its
    reference [24], Higham's coupled form for ``(A^H A)^{-1/2}`` gives the same ``X_k = A Z_k``). The whole batch is
    first divided by the largest ``min(||A||_F, sqrt(||A||_1 ||A||_inf))``, an upper bound of the largest singular
    value, so every singular value starts in ``(0, 1]``, inside the basin ``(0, sqrt(3))``; small singular values then
    grow by 3/2 per step and converge quadratically near 1 (about ``log(cond) / log(1.5) + 6`` iterations, ``cond``
    the condition number of the whole batch, i.e. of the convolution operator). One common scale keeps a matrix that is
    zero up to rounding (e.g. a kernel whose taps sum to zero, at frequency 0) near zero, so it fails to converge
    instead of being projected from rounding noise.

    Parameters
    ----------
    a : ndarray, shape ``(..., rows, cols)``
        Real or complex matrices.
    tol : float, optional
        Stop when every entry of ``G - I`` is below ``tol`` in absolute value, ``G`` the (smaller) Gram matrix.
        Default ``100 * sqrt(min(rows, cols)) * eps(dtype)``.
    max_iter : int, optional
        Default :func:`default_max_iter` of the dtype: singular values below about ``sqrt(eps)`` times the largest
        count as zero (the iteration does not converge). Raise it to resolve smaller ones.

    Returns
    -------
    x : ndarray, same shape and dtype as ``a``
    iterations : int
    converged : bool
    residual : float
        Final ``max |G - I|``. A rank-deficient matrix never converges (its zero singular values stay zero).
    """
    a = np.asarray(a)
    if not np.issubdtype(a.dtype, np.inexact):
        a = a.astype(np.float64)
    if a.ndim < 2 or a.size == 0:
        raise ValueError(f"a must be a non-empty array of matrices, shape (..., rows, cols), got shape {a.shape}")
    rows, cols = a.shape[-2:]
    tall = rows >= cols
    r = min(rows, cols)
    check_finite_array(a, "a")
    if tol is None:
        tol = 100.0 * np.sqrt(r) * np.finfo(a.dtype).eps
    else:
        tol = check_positive(tol, "tol")
    if max_iter is None:
        max_iter = default_max_iter(a.dtype)
    max_iter = check_int(max_iter, "max_iter", 1)
    fro = np.sqrt(np.sum(np.abs(a) ** 2, axis=(-2, -1)))
    bound = np.sqrt(np.abs(a).sum(axis=-2).max(axis=-1) * np.abs(a).sum(axis=-1).max(axis=-1))
    scale = float(np.max(np.minimum(fro, bound), initial=0.0))
    x = a / (scale if scale > 0 else 1.0)
    eye = np.eye(r, dtype=a.dtype)
    residual = np.inf
    for iteration in range(max_iter + 1):
        xh = np.ascontiguousarray(x.conj().mT)  # contiguous operands keep the batched matmul on BLAS
        gram = xh @ x if tall else x @ xh
        residual = float(np.max(np.abs(gram - eye)))
        if residual <= tol or iteration == max_iter:
            break
        x = x @ (1.5 * eye - 0.5 * gram) if tall else (1.5 * eye - 0.5 * gram) @ x
    return x, iteration, bool(residual <= tol), residual


def procrustes_project(
    kernel: np.ndarray,
    input_shape: int | Sequence[int],
    target: float = 1.0,
    method: str = "newton-schulz",
    clip: bool = True,
    tol: float | None = None,
    max_iter: int | None = None,
) -> ProcrustesResult:
    """Project a kernel so that its periodic convolution operator has all singular values equal to ``target``.

    Paper 003, Sec. 3 (Eqs. 8-9): per frequency ``A -> target * A (A^H A)^{-1/2}`` (for ``c_out < c_in`` the polar
    factor ``U V^H``, whose rows are orthonormal), by Newton-Schulz (:func:`newton_schulz_polar`) or exactly by SVD.
    The projected operator is again a convolution, but generally with a kernel as large as the input. The kernel is
    real, so only the real-FFT half of the frequencies is projected; the inverse real FFT returns a real kernel.

    Parameters
    ----------
    kernel : ndarray, shape ``(c_out, c_in, *k)``
        Real kernel (torch layout, 1 to 3 spatial axes, float32 or float64; the result keeps the dtype).
    input_shape : int or sequence of int
        Periodic input size, every entry ``>= k`` along its axis; an int means every axis.
    target : float, default 1.0
        Singular value to impose (``sqrt(2)`` for Conv-ReLU).
    method : {"newton-schulz", "svd"}
    clip : bool, default True
        True: cut the full kernel back to the original ``k`` taps (offsets ``-k//2 .. k-1-k//2``), as the authors'
        implementation does; exact only when the full kernel vanishes outside them (e.g. ``1 x 1`` kernels), so the
        result's ``deviation`` measures the error. False: return the exact full-support kernel of shape
        ``(c_out, c_in, *input_shape)``, tap ``d`` at offset ``d - n // 2`` (the :mod:`rmt.conv_operators` convention;
        for odd ``n`` this is torch's circular convolution with padding ``n // 2``).
    tol, max_iter
        Newton-Schulz stopping rule (see :func:`newton_schulz_polar`); ignored by ``"svd"``. Non-convergence warns
        (``RuntimeWarning``) and sets ``converged=False``; it happens when the operator is (numerically) rank deficient
        (a singular value below about ``sqrt(eps)`` times the largest, for the default ``max_iter``), where the
        projection is not unique and those singular values stay near zero.

    Returns
    -------
    ProcrustesResult
    """
    kernel = check_kernel(kernel)
    c_out, c_in, *k = kernel.shape
    ndim = len(k)
    n = check_shape(input_shape, ndim, "input_shape")
    if any(kk > nn for kk, nn in zip(k, n, strict=True)):
        raise ValueError(f"input_shape {n} must be at least the kernel size {tuple(k)} along every axis")
    target = float(target)
    if not np.isfinite(target) or target <= 0:
        raise ValueError(f"target must be a positive finite number, got {target!r}")
    if method not in ("newton-schulz", "svd"):
        raise ValueError(f"method must be 'newton-schulz' or 'svd', got {method!r}")
    if tol is not None:
        tol = check_positive(tol, "tol")
    if max_iter is not None:
        max_iter = check_int(max_iter, "max_iter", 1)

    # kernel placed at its offsets on the periodic grid (the stride-1 polyphase array)
    placed = np.zeros((c_out, c_in, *n), dtype=kernel.dtype)
    index = np.ix_(*((np.arange(kk) - kk // 2) % nn for kk, nn in zip(k, n, strict=True)))
    placed[(slice(None), slice(None), *index)] = kernel
    symbol = symbol_from_poly(placed.reshape(c_out, c_in, *(1,) * ndim, *n), half=True)  # (*half, c_out, c_in)

    iterations, converged, residual = 0, True, 0.0
    if method == "svd":
        u, _, vh = np.linalg.svd(symbol, full_matrices=False)
        polar = u @ vh
    else:
        polar, iterations, converged, residual = newton_schulz_polar(symbol, tol=tol, max_iter=max_iter)
        if not converged:
            warnings.warn(
                f"Newton-Schulz did not converge in {iterations} iterations (max |G - I| = {residual:.3g}); "
                "the convolution operator is (numerically) rank deficient",
                RuntimeWarning,
                stacklevel=2,
            )
    spatial = tuple(range(2, 2 + ndim))
    full = np.fft.irfftn(np.moveaxis(target * polar, (ndim, ndim + 1), (0, 1)), s=n, axes=spatial)
    full = full.astype(kernel.dtype, copy=False)
    if clip:
        result = full[(slice(None), slice(None), *index)]
    else:
        result = np.roll(full, tuple(nn // 2 for nn in n), axis=spatial)
    sv = conv_singular_values(result, n)
    return ProcrustesResult(
        kernel=result,
        iterations=iterations,
        converged=converged,
        residual=residual,
        singular_values=sv,
        deviation=float(np.max(np.abs(sv - target))),
        target=target,
    )
