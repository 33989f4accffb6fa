"""Jacobian of training-mode batch normalisation over a batch and its eigenstructure (papers 000/001).

For one feature over a batch of ``m`` samples, ``y_i = gamma * xhat_i + beta`` with
``xhat_i = (x_i - mu) / sqrt(var + eps)``, ``mu`` the batch mean and ``var`` the biased batch variance
(as ``torch.nn.functional.batch_norm(training=True)``).
Differentiating gives (paper 000, Sec. 3.1; supplementary 001, Eqs. 4-6)

    J = dy / dx = rho * (I - (e e^T + xhat xhat^T) / m),    rho = gamma / sqrt(var + eps),    e = (1, ..., 1).

``e`` and ``xhat`` are orthogonal (``sum xhat = 0``) and ``|xhat|^2 = m var / (var + eps)``, so ``J`` is symmetric with
eigenvalue 0 on ``e``, ``rho * eps / (var + eps)`` on ``xhat`` and ``rho`` on the ``m - 2`` dimensional rest
(paper 001, Eqs. 7-10; exactly two zeros when ``eps = 0``, where ``U^2 = m U``).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

__all__ = ["BatchNormSpectrum", "batchnorm_jacobian", "batchnorm_spectrum"]


def _check_batch(x: np.ndarray, gamma, eps: float) -> tuple[np.ndarray, np.ndarray, float]:
    """``x`` as ``(m, d)``, ``gamma`` broadcast to ``(d,)``, checked ``eps``."""
    x = np.asarray(x)
    if not np.issubdtype(x.dtype, np.floating):
        if np.issubdtype(x.dtype, np.integer):
            x = x.astype(np.float64)
        else:
            raise TypeError(f"x must be a real floating-point array, got dtype {x.dtype}")
    if x.ndim not in (1, 2):
        raise ValueError(f"x must have shape (m,) or (m, d) (batch first), got shape {x.shape}")
    x2 = x.reshape(x.shape[0], -1)
    if x2.shape[0] < 2:
        raise ValueError(f"batch size m = x.shape[0] must be >= 2 for batch statistics, got {x2.shape[0]}")
    if not np.all(np.isfinite(x2)):
        raise ValueError("x must be finite")
    eps = float(eps)
    if not np.isfinite(eps) or eps < 0:
        raise ValueError(f"eps must be a finite number >= 0, got {eps!r}")
    gamma = np.broadcast_to(np.asarray(gamma, dtype=x2.dtype), (x2.shape[1],))
    if not np.all(np.isfinite(gamma)):
        raise ValueError("gamma must be finite")
    if eps == 0 and np.any(np.var(x2, axis=0) == 0):
        raise ValueError("x has a feature with zero batch variance; batch norm with eps = 0 is undefined there")
    return x2, gamma, eps


def batchnorm_jacobian(x: np.ndarray, gamma: float | np.ndarray = 1.0, eps: float = 0.0) -> np.ndarray:
    """Exact Jacobian ``dy_i / dx_j`` of training-mode batch norm for each feature over the batch.

    Parameters
    ----------
    x : ndarray, shape ``(m,)`` or ``(m, d)``
        Batch of ``m >= 2`` samples of one feature, or of ``d`` features (normalised independently).
    gamma : float or ndarray of shape ``(d,)``, default 1.0
        Scale; ``beta`` does not enter the Jacobian.
    eps : float, default 0.0
        Added to the (biased) batch variance.

    Returns
    -------
    ndarray, shape ``(m, m)`` for 1-D ``x`` or ``(d, m, m)``
        ``rho * (I - (e e^T + xhat xhat^T) / m)`` per feature (module docstring).
    """
    x_in = np.asarray(x)
    x2, gamma, eps = _check_batch(x, gamma, eps)
    m = x2.shape[0]
    var = np.var(x2, axis=0)
    xhat = ((x2 - x2.mean(axis=0)) / np.sqrt(var + eps)).T  # (d, m)
    rho = gamma / np.sqrt(var + eps)
    outer = 1.0 + xhat[:, :, None] * xhat[:, None, :]
    jac = rho[:, None, None] * (np.eye(m, dtype=x2.dtype) - outer / m)
    return jac[0] if x_in.ndim == 1 else jac


@dataclass(frozen=True)
class BatchNormSpectrum:
    """Eigenstructure of batch-norm Jacobians (from :func:`batchnorm_spectrum`).

    Attributes
    ----------
    eigenvalues : ndarray, shape ``(m,)`` or ``(d, m)``
        Ascending eigenvalues of the (symmetric) Jacobian of each feature.
    rank : int or ndarray of shape ``(d,)``
        Numerical rank: the number of ``|eigenvalue| > tol``.
    tol : float or ndarray of shape ``(d,)``
        Rank tolerance used, ``10 m eps(dtype) max(|rho|, max|eigenvalue|)`` unless given (numpy's ``matrix_rank``
        rule on the scale of ``J``, so an exactly-zero Jacobian, ``m = 2`` with ``eps = 0``, has rank 0).
    rho : float or ndarray of shape ``(d,)``
        ``gamma / sqrt(var + eps)``, the predicted ``m - 2``-fold eigenvalue.
    second : float or ndarray of shape ``(d,)``
        ``rho * eps / (var + eps)``, the predicted eigenvalue on ``xhat`` (0 for ``eps = 0``).
    """

    eigenvalues: np.ndarray
    rank: int | np.ndarray
    tol: float | np.ndarray
    rho: float | np.ndarray
    second: float | np.ndarray


def batchnorm_spectrum(
    x: np.ndarray, gamma: float | np.ndarray = 1.0, eps: float = 0.0, tol: float | None = None
) -> BatchNormSpectrum:
    """Eigenvalues and numerical rank of :func:`batchnorm_jacobian`, with the predicted values (papers 000/001).

    Parameters
    ----------
    x, gamma, eps
        As in :func:`batchnorm_jacobian`.
    tol : float, optional
        Absolute rank tolerance; default ``10 m eps(dtype) max(|rho|, max|eigenvalue|)`` per feature (the scale of
        ``J``, so an exactly-zero Jacobian has rank 0). With ``eps = 0`` the rank is ``m - 2``.

    Returns
    -------
    BatchNormSpectrum
        Scalars for 1-D ``x``, arrays over the ``d`` features otherwise.
    """
    x_in = np.asarray(x)
    jac = batchnorm_jacobian(x, gamma, eps)
    jac3 = jac.reshape(-1, *jac.shape[-2:])
    eig = np.linalg.eigvalsh(jac3)
    m = jac3.shape[-1]
    x2, gamma_b, eps = _check_batch(x, gamma, eps)
    var = np.var(x2, axis=0)
    rho = gamma_b / np.sqrt(var + eps)
    second = rho * eps / (var + eps)
    if tol is None:
        # relative to the scale of J (|rho|, its largest possible eigenvalue), not to max|eigenvalue|: for m = 2 and
        # eps = 0, J is exactly 0 and its computed eigenvalues are rounding noise
        scale = np.maximum(np.abs(rho), np.max(np.abs(eig), axis=-1))
        tols = 10.0 * m * np.finfo(eig.dtype).eps * scale  # J is formed with a few roundings per entry
    else:
        tol = float(tol)
        if not np.isfinite(tol) or tol < 0:
            raise ValueError(f"tol must be a finite number >= 0, got {tol!r}")
        tols = np.full(eig.shape[0], tol)
    rank = np.sum(np.abs(eig) > tols[:, None], axis=-1)
    if x_in.ndim == 1:
        return BatchNormSpectrum(eig[0], int(rank[0]), float(tols[0]), float(rho[0]), float(second[0]))
    return BatchNormSpectrum(eig, rank, tols, rho, second)
