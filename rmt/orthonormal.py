"""Orthonormal filters (paper 000, Xie, Xiong & Pu 2017, Sec. 2): initialisation, regulariser, filter correlation.

A layer's weight ``W`` (torch layout ``(c_out, c_in, *kernel)`` for convolutions, ``(out, in)`` for dense layers) is
viewed as the paper's ``f_in x f_out`` matrix ``W_l`` with ``f_in = c_in * prod(kernel)`` and ``f_out = c_out``: its
columns are the filters. In torch layout that is ``M = W.reshape(c_out, f_in)``, filters as rows, ``W_l = M^T``.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from .checks import check_dim, check_finite_array
from .orthogonal import haar_orthogonal

__all__ = ["filter_correlation", "orthonormal_kernel", "orthonormal_penalty"]


def _filters(weight: np.ndarray, name: str = "weights") -> np.ndarray:
    """The ``(f_out, f_in)`` filter matrix ``M`` of one weight array of ndim >= 2."""
    weight = np.asarray(weight)
    if not np.issubdtype(weight.dtype, np.floating):
        raise TypeError(f"{name} must hold real floating-point arrays, got dtype {weight.dtype}")
    if weight.ndim < 2 or weight.size == 0:
        raise ValueError(f"{name} must have shape (c_out, c_in, *kernel) or (out, in), got shape {weight.shape}")
    check_finite_array(weight, name)
    return weight.reshape(weight.shape[0], -1)


def _weight_list(weights) -> tuple[list[np.ndarray], bool]:
    """A list of weight arrays and whether a single array was given."""
    if isinstance(weights, np.ndarray):
        return [weights], True
    if isinstance(weights, Sequence) and len(weights) > 0:
        return [np.asarray(w) for w in weights], False
    raise TypeError("weights must be an array or a non-empty sequence of arrays")


def orthonormal_kernel(
    c_out: int,
    c_in: int,
    kernel_size: int | Sequence[int] = (),
    rng: np.random.Generator | int | None = None,
) -> np.ndarray:
    """Orthonormal initialisation of paper 000 (Sec. 3.1): filters orthonormal, group-wise when ``f_in < f_out``.

    The paper draws the first filter and applies Gram-Schmidt channel by channel; Gram-Schmidt of Gaussian vectors is
    the QR decomposition with positive ``R`` diagonal, i.e. :func:`rmt.haar_orthogonal`. When ``f_in < f_out`` at most
    ``f_in`` filters can be orthonormal, so the filters are split, in order, into ``ceil(f_out / f_in)`` groups of
    ``f_in`` (the last one holds the remaining ``f_out mod f_in``), each orthonormalised independently (the paper's
    "group-wise orthogonalization").

    Parameters
    ----------
    c_out, c_in : int
        Output and input channels (``f_out = c_out``).
    kernel_size : int or sequence of int, default ``()``
        Spatial kernel shape; ``()`` gives a dense ``(c_out, c_in)`` weight. An int means a square ``k x k`` kernel.
    rng : numpy.random.Generator, int or None

    Returns
    -------
    ndarray, float64, shape ``(c_out, c_in, *kernel_size)``
        Unit-norm filters, pairwise orthogonal within each group (all of them when ``f_in >= f_out``).
    """
    c_out, c_in = check_dim(c_out, "c_out"), check_dim(c_in, "c_in")
    if isinstance(kernel_size, (int, np.integer)):
        kernel_size = (int(kernel_size),) * 2
    kernel_size = tuple(kernel_size)
    if any(isinstance(k, bool) or not isinstance(k, (int, np.integer)) or k < 1 for k in kernel_size):
        raise ValueError(f"kernel_size must be positive integers, got {kernel_size!r}")
    rng = np.random.default_rng(rng)
    f_in = c_in * int(np.prod(kernel_size, dtype=int))
    groups = [haar_orthogonal(min(f_in, c_out - start), f_in, rng) for start in range(0, c_out, f_in)]
    return np.concatenate(groups, axis=0).reshape(c_out, c_in, *kernel_size)


def orthonormal_penalty(weights, lam: float = 1.0) -> tuple[float, np.ndarray | list[np.ndarray]]:
    """Orthonormal regulariser of paper 000, Eq. 3, and its gradient.

    ``R = (lam / 2) * sum_l ||W_l^T W_l - I||_F^2`` with ``W_l`` the ``f_in x f_out`` filter matrix of layer ``l``
    (``W_l^T W_l = M M^T``, the ``f_out x f_out`` Gram matrix of the filters). Gradient with respect to the weight:
    ``2 lam (M M^T - I) M``, reshaped to the weight's shape.

    Parameters
    ----------
    weights : ndarray or sequence of ndarray
        One weight (``(c_out, c_in, *kernel)`` or ``(out, in)``) or a list of them.
    lam : float, default 1.0
        Regularisation coefficient lambda (>= 0).

    Returns
    -------
    value : float
    gradient : ndarray or list of ndarray
        Same structure and shapes as ``weights``.
    """
    lam = float(lam)
    if not np.isfinite(lam) or lam < 0:
        raise ValueError(f"lam must be a finite number >= 0, got {lam!r}")
    arrays, single = _weight_list(weights)
    value, grads = 0.0, []
    for w in arrays:
        m = _filters(w)
        resid = m @ m.T - np.eye(m.shape[0], dtype=m.dtype)
        value += 0.5 * lam * float(np.sum(resid * resid))
        grads.append((2.0 * lam * resid @ m).reshape(w.shape))
    return value, (grads[0] if single else grads)


def filter_correlation(weights) -> float:
    """Mean absolute cosine between distinct filters of a layer (paper 000, Sec. 4.2, the cosine statistic of Fig. 2).

    For each layer, ``|cos(v_i, v_j)| = |v_i . v_j| / (||v_i|| ||v_j||)`` over all pairs ``i < j`` of its ``c_out``
    filters (each of length ``f_in``); the result averages over all pairs of all layers given (the paper's ``N`` is the
    total pair count). Layers with a single filter contribute no pair.

    Parameters
    ----------
    weights : ndarray or sequence of ndarray
        One weight or a list of them, shapes as in :func:`orthonormal_penalty`.

    Returns
    -------
    float
        In ``[0, 1]``: 0 for orthogonal filters, 1 for parallel ones.
    """
    arrays, _ = _weight_list(weights)
    total, count = 0.0, 0
    for w in arrays:
        m = _filters(w)
        norms = np.linalg.norm(m, axis=1)
        if np.any(norms == 0):
            raise ValueError("weights contain an all-zero filter, whose cosine with other filters is undefined")
        cos = (m @ m.T) / np.outer(norms, norms)
        upper = np.triu_indices(m.shape[0], k=1)
        total += float(np.sum(np.abs(cos[upper])))
        count += upper[0].size
    if count == 0:
        raise ValueError("filter_correlation needs at least one layer with two or more filters")
    return total / count
