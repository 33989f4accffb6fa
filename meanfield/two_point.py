"""The two-point kernel ``E[phi(h1) phi(h2)]``, ``(h1, h2) ~ N(0, [[q1, q12], [q12, q2]])``: one entry point that picks
the closed form (:mod:`meanfield.closed_forms`), the 2-D quadrature for kinked activations
(:mod:`meanfield.kernel_quadrature`) or Mehler's series for smooth ones (:mod:`meanfield.mehler`)."""

from __future__ import annotations

import numpy as np

from .activations import Activation, get_activation
from .closed_forms import closed_kernel
from .kernel_quadrature import check_covariances, kernel_quadrature
from .mehler import MehlerKernel

__all__ = ["gaussian_kernel", "mehler_kernel"]

#: One :class:`MehlerKernel` per activation (the most recently used ones), shared by :func:`gaussian_kernel` calls.
_MEHLER_KERNELS: dict[Activation, MehlerKernel] = {}
MEHLER_KERNELS_MAX = 16


def mehler_kernel(act: Activation) -> MehlerKernel:
    """The shared :class:`MehlerKernel` of an activation (least recently used ones are dropped)."""
    kernel = _MEHLER_KERNELS.pop(act, None)
    if kernel is None:
        kernel = MehlerKernel(act)
        if len(_MEHLER_KERNELS) >= MEHLER_KERNELS_MAX:
            del _MEHLER_KERNELS[next(iter(_MEHLER_KERNELS))]
    _MEHLER_KERNELS[act] = kernel  # re-inserted last: the dict is ordered by last use
    return kernel


def gaussian_kernel(activation, q1, q2, q12):
    """Two-point Gaussian kernel ``E[phi(h1) phi(h2)]`` with ``(h1, h2) ~ N(0, [[q1, q12], [q12, q2]])``.

    Closed forms are used where the activation has one: erf (arcsine kernel, Williams 1997), relu / leaky relu
    (arc-cosine kernel, Cho & Saul 2009), linear (``q12``), sin. Activations with kinks: a conditional 2-D composite
    Gauss-Legendre quadrature split at the kinks (about 1e-13 relative for q up to ~100; ~2.5 ms per pair). Smooth
    activations: Mehler's series by :class:`meanfield.mehler.MehlerKernel` (one cached instance per activation), with
    the same quadrature for pairs its truncation bound cannot settle; fast for many pairs with few distinct variances.

    Parameters
    ----------
    activation : str or Activation
    q1, q2 : array_like
        Variances (``>= 0``).
    q12 : array_like
        Covariance, ``|q12| <= sqrt(q1 q2)``. All three broadcast together.

    Returns
    -------
    float or ndarray
        Broadcast shape of the inputs (a float for scalar inputs).

    Raises
    ------
    ValueError
        Negative or non-finite variances, or a covariance matrix that is not positive semi-definite.
    FloatingPointError
        Variances too large for the quadrature (see :data:`meanfield.kernel_quadrature.KERNEL_MAX_NODES`; typically a
        diverging iteration).
    """
    act = get_activation(activation)
    q1, q2, q12 = check_covariances(q1, q2, q12)
    value = closed_kernel(act, q1, q2, q12)
    if value is None:
        flat = (q1.ravel(), q2.ravel(), q12.ravel())
        if act.kinks:
            value = kernel_quadrature(act.phi, act.phi, act.kinks, *flat, oscillatory=act.oscillatory)
            value = value.reshape(q1.shape)
        else:
            value = mehler_kernel(act).evaluate(*flat).reshape(q1.shape)
    value = np.asarray(value, dtype=np.float64)
    return float(value) if value.ndim == 0 else value
