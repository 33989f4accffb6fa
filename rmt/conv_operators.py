"""Periodic (circular) convolution operators: explicit matrices and their singular values via the FFT.

Conventions (shared by every norm-preservation module in :mod:`rmt`):

* kernels are in the torch layout ``(c_out, c_in, *kernel_size)`` with 1, 2 or 3 spatial axes;
* the convolution is torch's cross-correlation with circular padding ``p = k // 2`` per axis,
  ``y[o, i] = sum_{c, d} W[o, c, d] x[c, (s * i + d - p) mod n]`` (``s`` the stride), i.e. exactly
  ``torch.nn.functional.conv2d(F.pad(x, (p, p, p, p), mode="circular"), W, stride=s)`` for odd ``k``. For even ``k``
  torch returns one extra output row per axis; the operator here keeps the first ``n / s``.
* inputs and outputs are flattened in C order from shapes ``(c_in, *input_shape)`` and ``(c_out, *output_shape)``.

Taps that reach further than the input (``k > n``) wrap around (aliasing), which is the exact periodic operator.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from .checks import check_kernel, check_shape

__all__ = ["conv_operator_matrix", "conv_singular_values", "conv_symbol"]


def _geometry(kernel: np.ndarray, input_shape, stride) -> tuple[tuple[int, ...], tuple[int, ...], tuple[int, ...]]:
    """Checked ``(input_shape, stride, output_shape)`` for ``kernel``; the stride must divide the input size."""
    ndim = kernel.ndim - 2
    n = check_shape(input_shape, ndim, "input_shape")
    s = check_shape(stride, ndim, "stride")
    if any(ni % si for ni, si in zip(n, s, strict=True)):
        raise ValueError(f"stride {s} must divide input_shape {n} exactly for a periodic strided convolution")
    return n, s, tuple(ni // si for ni, si in zip(n, s, strict=True))


def _polyphase(kernel: np.ndarray, n: tuple[int, ...], s: tuple[int, ...], m: tuple[int, ...]) -> np.ndarray:
    """The kernel's taps placed on the periodic output grid, split by input phase: shape ``(c_out, c_in, *s, *m)``.

    Tap ``d`` of an axis acts at input offset ``o = d - k // 2``; writing ``o = s t + r`` with ``0 <= r < s``, it lands
    at phase ``r`` and shift ``t mod m``, so the strided convolution is an unstrided one over ``m = n / s``
    with ``c_in * prod(s)`` input channels (taps longer than the input add up: aliasing).
    """
    c_out, c_in, *k = kernel.shape
    ndim = len(k)
    poly = np.zeros((c_out, c_in, *s, *m), dtype=kernel.dtype)
    phases, shifts = [], []
    for axis in range(ndim):
        offset = np.arange(k[axis]) - k[axis] // 2
        phase = offset % s[axis]
        shift = ((offset - phase) // s[axis]) % m[axis]
        bcast = [1] * ndim
        bcast[axis] = -1
        phases.append(phase.reshape(bcast))
        shifts.append(shift.reshape(bcast))
    np.add.at(poly, (slice(None), slice(None), *phases, *shifts), kernel)
    return poly


def symbol_from_poly(poly: np.ndarray, half: bool) -> np.ndarray:
    """DFT over the last ``ndim`` axes of a ``(c_out, c_in, *s, *m)`` array, as ``(*freq, c_out, c_in * prod(s))``.

    ``half=True`` uses the real FFT (last axis ``m_last // 2 + 1`` frequencies); the rest follow by conjugate symmetry.
    """
    c_out, c_in = poly.shape[:2]
    ndim = (poly.ndim - 2) // 2
    spatial = tuple(range(2 + ndim, 2 + 2 * ndim))
    symbol = np.fft.rfftn(poly, axes=spatial) if half else np.fft.fftn(poly, axes=spatial)
    symbol = np.moveaxis(symbol, spatial, tuple(range(ndim)))  # (*freq, c_out, c_in, *s)
    return symbol.reshape(*symbol.shape[:ndim], c_out, -1)


def _mirror_half(values: np.ndarray, shape: tuple[int, ...]) -> np.ndarray:
    """Expand per-frequency values from the real-FFT half grid to the full grid ``shape`` (values at ``m`` and ``-m``
    agree, e.g. singular values of complex-conjugate symbols)."""
    grids = np.meshgrid(*(np.arange(s) for s in shape), indexing="ij")
    upper = grids[-1] > shape[-1] // 2
    index = tuple(np.where(upper, (-g) % s, g) for g, s in zip(grids, shape, strict=True))
    return values[index]


def conv_symbol(kernel: np.ndarray, input_shape: int | Sequence[int], stride: int | Sequence[int] = 1) -> np.ndarray:
    """Per-frequency matrices of the periodic convolution (its block-diagonalisation by the DFT).

    The operator is unitarily equivalent to the block-diagonal matrix whose blocks are returned here
    (Sedghi, Gupta & Long 2019, Theorem 6; used by paper 003, Sec. 3). With stride ``s`` the input is split into its
    ``prod(s)`` polyphase components, which turns the strided convolution into an unstrided one with
    ``c_in * prod(s)`` input channels on the ``n / s`` grid, so the result stays exact.

    Parameters
    ----------
    kernel : ndarray, shape ``(c_out, c_in, *k)``
        Real kernel, torch layout, 1 to 3 spatial axes.
    input_shape : int or sequence of int
        Spatial input size ``(n,)``, ``(n1, n2)`` or ``(n1, n2, n3)``; an int means the same size on every axis.
    stride : int or sequence of int
        Stride per axis; must divide ``input_shape``.

    Returns
    -------
    ndarray, complex, shape ``(*output_shape, c_out, c_in * prod(stride))``
        Entry ``[f]`` is ``sum_d W[:, :, d] exp(-2 pi i f . t(d) / (n / s))`` over the taps ``d``, placed in the
        column block of the tap's input phase, where ``t(d)`` is the tap's shift (module docstring). The operator maps
        the input's DFT component at ``f`` through ``conj(symbol[f])``. Complex64 for float32 kernels, complex128 for
        float64.
    """
    kernel = check_kernel(kernel)
    n, s, m = _geometry(kernel, input_shape, stride)
    return symbol_from_poly(_polyphase(kernel, n, s, m), half=False)


def conv_singular_values(
    kernel: np.ndarray, input_shape: int | Sequence[int], stride: int | Sequence[int] = 1
) -> np.ndarray:
    """Singular values of the periodic convolution operator, one batched SVD per spatial frequency.

    Sedghi et al. (2019), Theorem 6 (paper 003, Sec. 3): the singular values of the ``(c_out n) x (c_in n)`` operator
    are the union over the spatial frequencies of those of the ``c_out x c_in`` DFT matrices of the kernel. The kernel
    is real, so the matrices at ``f`` and ``-f`` are complex conjugates: only the real-FFT half is decomposed.

    Parameters
    ----------
    kernel : ndarray, shape ``(c_out, c_in, *k)``
        Real kernel, torch layout, 1 to 3 spatial axes; float32 or float64 (the result has the same dtype).
    input_shape : int or sequence of int
        Spatial input size ``(n,)``, ``(n, n)`` / ``(n1, n2)`` or ``(n1, n2, n3)``; an int means every axis.
    stride : int or sequence of int, default 1
        Supported exactly (polyphase decomposition, see :func:`conv_symbol`) when it divides ``input_shape``.

    Returns
    -------
    ndarray, shape ``(*output_shape, r)`` with ``r = min(c_out, c_in * prod(stride))``
        Singular values per frequency, descending. Without stride, ``output_shape = input_shape`` and
        ``r = min(c_out, c_in)``; entry ``[f]`` belongs to the input's DFT frequency ``f`` (numpy's FFT order).
    """
    kernel = check_kernel(kernel)
    n, s, m = _geometry(kernel, input_shape, stride)
    half = np.linalg.svd(symbol_from_poly(_polyphase(kernel, n, s, m), half=True), compute_uv=False)
    return _mirror_half(half, m).astype(kernel.dtype, copy=False)  # float16 is transformed in float32


def conv_operator_matrix(
    kernel: np.ndarray, input_shape: int | Sequence[int], stride: int | Sequence[int] = 1
) -> np.ndarray:
    """The explicit matrix of the periodic convolution (for tests and small cases).

    Parameters
    ----------
    kernel : ndarray, shape ``(c_out, c_in, *k)``
        Real kernel, torch layout, 1 to 3 spatial axes.
    input_shape : int or sequence of int
        Spatial input size; an int means every axis.
    stride : int or sequence of int, default 1
        Must divide ``input_shape``.

    Returns
    -------
    ndarray, shape ``(c_out * prod(output_shape), c_in * prod(input_shape))``, kernel dtype
        ``M`` with ``y.ravel() = M @ x.ravel()`` for ``x`` of shape ``(c_in, *input_shape)`` and ``y`` of shape
        ``(c_out, *output_shape)``; equals torch's ``conv{1,2,3}d`` with circular padding ``k // 2`` (module docstring).
        Memory grows as ``c_out c_in prod(n)^2``: meant for small inputs.
    """
    kernel = check_kernel(kernel)
    n, s, m = _geometry(kernel, input_shape, stride)
    c_out, c_in, *k = kernel.shape
    # one 0/1 selection matrix per axis and tap: row i picks input (s i + d - p) mod n
    selections = []
    for axis in range(len(k)):
        rows = np.arange(m[axis])[:, None]
        cols = (s[axis] * rows + np.arange(k[axis])[None, :] - k[axis] // 2) % n[axis]  # (m, k)
        sel = np.zeros((k[axis], m[axis], n[axis]), dtype=kernel.dtype)
        np.add.at(sel, (np.arange(k[axis])[None, :], rows, cols), 1)
        selections.append(sel)
    matrix = np.zeros((c_out * int(np.prod(m)), c_in * int(np.prod(n))), dtype=kernel.dtype)
    for tap in np.ndindex(*k):
        shift = np.ones((1, 1), dtype=kernel.dtype)
        for axis, d in enumerate(tap):
            shift = np.kron(shift, selections[axis][d])
        matrix += np.kron(kernel[(slice(None), slice(None), *tap)], shift)
    return matrix
