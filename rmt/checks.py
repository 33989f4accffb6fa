"""Argument checks shared by the :mod:`rmt` modules (one place for each rule and each error message).

Every check returns the value in canonical form or raises ``TypeError``/``ValueError`` naming the argument and its
valid range; none of them computes anything else.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import numpy as np

__all__ = [
    "WEIGHT_ENSEMBLES",
    "check_depth",
    "check_dim",
    "check_finite_array",
    "check_int",
    "check_kernel",
    "check_positive",
    "check_shape",
    "check_sigma_b2",
    "check_weights",
    "is_positively_homogeneous",
]

WEIGHT_ENSEMBLES = ("gaussian", "orthogonal")


def check_weights(weights: str) -> str:
    """Return ``weights`` if it names a supported ensemble, else raise ``ValueError`` naming the argument."""
    if not isinstance(weights, str) or weights not in WEIGHT_ENSEMBLES:
        raise ValueError(f"weights must be one of {WEIGHT_ENSEMBLES}, got {weights!r}")
    return weights


def check_positive(value: float, name: str) -> float:
    """Return ``value`` as a float if it is finite and > 0, else raise naming ``name``."""
    try:
        value = float(value)
    except (TypeError, ValueError) as exc:
        raise TypeError(f"{name} must be a positive real number, got {value!r}") from exc
    if not math.isfinite(value) or value <= 0:
        raise ValueError(f"{name} must be finite and > 0, got {value}")
    return value


def check_sigma_b2(value: float, name: str = "sigma_b2") -> float:
    """Return a bias variance as a float if it is finite and >= 0, else raise naming ``name``."""
    try:
        value = float(value)
    except (TypeError, ValueError) as exc:
        raise TypeError(f"{name} must be a real number >= 0, got {value!r}") from exc
    if not math.isfinite(value) or value < 0:
        raise ValueError(f"{name} must be finite and >= 0, got {value}")
    return value


def check_int(value, name: str, minimum: int = 1) -> int:
    """Return ``value`` as an int if it is an integer (not a bool) ``>= minimum``, else raise naming ``name``."""
    if isinstance(value, bool) or not isinstance(value, (int, np.integer)):
        raise TypeError(f"{name} must be an integer >= {minimum}, got {value!r}")
    if value < minimum:
        raise ValueError(f"{name} must be an integer >= {minimum}, got {value}")
    return int(value)


def check_depth(depth) -> int:
    """Number of layers, an integer ``>= 1``."""
    return check_int(depth, "depth", 1)


def check_dim(value: int, name: str) -> int:
    """A matrix dimension or channel count: a positive integer (``ValueError`` otherwise, naming ``name``)."""
    if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or value < 1:
        raise ValueError(f"{name} must be a positive integer, got {value!r}")
    return int(value)


def check_finite_array(array, name: str) -> np.ndarray:
    """``array`` as an ndarray; raise ``ValueError`` naming ``name`` if any entry is NaN or infinite."""
    array = np.asarray(array)
    if np.issubdtype(array.dtype, np.number) and not np.all(np.isfinite(array)):
        bad = int(np.size(array) - np.count_nonzero(np.isfinite(array)))
        raise ValueError(f"{name} must be finite; it has {bad} NaN or infinite entr{'y' if bad == 1 else 'ies'}")
    return array


def check_kernel(kernel: np.ndarray, name: str = "kernel") -> np.ndarray:
    """Return ``kernel`` as a finite float array of shape ``(c_out, c_in, *k)`` with 1 to 3 spatial axes."""
    kernel = np.asarray(kernel)
    if not np.issubdtype(kernel.dtype, np.floating):
        if np.issubdtype(kernel.dtype, np.integer) or kernel.dtype == bool:
            kernel = kernel.astype(np.float64)
        else:
            raise TypeError(f"{name} must be a real floating-point array, got dtype {kernel.dtype}")
    if kernel.ndim not in (3, 4, 5):
        raise ValueError(
            f"{name} must have shape (c_out, c_in, *kernel_size) with 1 to 3 spatial axes (ndim 3-5), "
            f"got shape {kernel.shape}"
        )
    if min(kernel.shape) < 1:
        raise ValueError(f"{name} must have no empty axis, got shape {kernel.shape}")
    return check_finite_array(kernel, name)


def check_shape(value: int | Sequence[int], ndim: int, name: str, minimum: int = 1) -> tuple[int, ...]:
    """Broadcast an int (same along every spatial axis) or check a sequence of ``ndim`` ints ``>= minimum``."""
    if isinstance(value, (int, np.integer)):
        value = (int(value),) * ndim
    try:
        shape = tuple(int(v) for v in value)
    except (TypeError, ValueError, OverflowError) as exc:
        raise TypeError(f"{name} must be an int or a sequence of {ndim} ints, got {value!r}") from exc
    if len(shape) != ndim or any(s != v for s, v in zip(shape, value, strict=False)):
        raise ValueError(f"{name} must have {ndim} integer entries (one per spatial axis), got {value!r}")
    if min(shape) < minimum:
        raise ValueError(f"{name} entries must be >= {minimum}, got {shape}")
    return shape


_HOMOGENEITY_X = np.array([-5.3, -1.7, -0.31, 0.29, 1.9, 4.7])
_HOMOGENEITY_T = np.array([1e-3, 0.37, 2.9, 1e3])


def is_positively_homogeneous(act) -> bool:
    """True if ``phi(t x) = t phi(x)`` for all ``t > 0`` (ReLU, leaky ReLU, linear, ``1e-9*x``, ``max(x, 0) - x``...).

    Then ``phi'(h)`` depends only on the sign of ``h``, so ``D^2`` has the same law at every ``q > 0`` and the
    Jacobian spectrum needs no fixed point ``q*``. Uses ``act.homogeneous`` when the activation provides it; otherwise
    a numerical check of the identity at fixed points and scales (exact to rounding for such activations).

    Parameters
    ----------
    act : meanfield.Activation
    """
    flag = getattr(act, "homogeneous", None)
    if flag is not None:
        return bool(flag)
    with np.errstate(all="ignore"):
        base = np.asarray(act.phi(_HOMOGENEITY_X), dtype=np.float64)
        scaled = np.asarray(act.phi(_HOMOGENEITY_T[:, None] * _HOMOGENEITY_X[None, :]), dtype=np.float64)
    if not np.all(np.isfinite(base)) or not np.all(np.isfinite(scaled)):
        return False
    expected = _HOMOGENEITY_T[:, None] * base[None, :]
    scale = np.abs(expected) + _HOMOGENEITY_T[:, None] * np.max(np.abs(base))
    return bool(np.max(np.abs(scaled - expected) / np.where(scale > 0, scale, 1.0)) <= 1e-12) and bool(
        np.max(np.abs(base)) > 0)
