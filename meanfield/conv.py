"""Convolutional mean field: the covariance map over spatial positions and its Fourier-mode depth scales.

Xiao, Bahri, Sohl-Dickstein, Schoenholz, Pennington (2018), *Dynamical Isometry and a Mean Field Theory of CNNs*
(paper 002), section 2.1 and supplementary Figure S4; formulas restated in ``docs/formulas.md``.

A CNN with ``c -> infinity`` channels, periodic (circular) padding, kernel variance vector ``v`` (see
:mod:`meanfield.kernels`), weights ``w_ij(beta) ~ N(0, sigma_w2 * v_beta / c)`` and biases ``N(0, sigma_b2)`` maps the
covariance of its pre-activations over spatial positions ``a, a'`` of one input as (paper 002, eqns. 2.3, 2.5, 2.13)

    Sigma^{l+1} = A_v * C(Sigma^l),
    C(Sigma)_{a,a'} = sigma_w2 * E[phi(h_a) phi(h_a')] + sigma_b2,   (h_a, h_a') ~ N(0, Sigma restricted to {a, a'}),
    (A_v * M)_{a,a'} = sum_beta v_beta M_{a+beta, a'+beta}           (indices modulo the image size n).

Layouts. For 1-D images of ``n`` pixels a covariance is an ``(n, n)`` array. For 2-D ``n x n`` images it is either an
``(n, n, n, n)`` array ``Sigma[a1, a2, a1', a2']`` or the same array flattened row-major to ``(n**2, n**2)``
(position ``(a1, a2)`` -> index ``a1 * n + a2``). Which one is meant follows from ``v``: a 1-D ``v`` means 1-D images,
a 2-D ``v`` 2-D images.

Fourier modes. ``A_v`` moves entries along the cyclic diagonals ``D_d(a) = Sigma[a, a + d]`` (offset ``d``) and acts on
each diagonal as a circular cross-correlation with ``v``, so the discrete Fourier coefficients
``hat D_d(k) = sum_a D_d(a) exp(-2 pi i k.a / n)`` are its eigenvectors with eigenvalue
``lambda_k = sum_beta v_beta exp(+2 pi i k.beta / n)`` (the complex conjugate of the DFT of ``v``, paper 002 eqn. 2.11:
``lambda = F(A_v)^*``); each ``lambda_k`` occurs once per offset, i.e. ``n`` (1-D) or ``n**2`` (2-D) times on the
space of covariances. Near the fixed point ``Sigma* = q* [(1 - c*) I + c* 1 1^T]`` the off-diagonal deviations
``eps = Sigma* - Sigma`` evolve as ``hat eps^l_d(k) = (chi_c* lambda_k)^l hat eps^0_d(k)`` (paper 002, eqn. 2.12) and
each mode has the depth scale ``xi_k = -1 / log(chi_c* |lambda_k|)``.
"""

from __future__ import annotations

import itertools
from dataclasses import dataclass, field
from numbers import Integral, Real
from typing import TYPE_CHECKING

import numpy as np

from .activations import get_activation
from .fixed_points import Q_STAR_MAX
from .kernels import validate_kernel_variance
from .quantities import mean_field_point
from .two_point import gaussian_kernel

if TYPE_CHECKING:  # pandas is imported only when a DataFrame is built
    import pandas as pd

__all__ = [
    "FourierDepthScales",
    "covariance_mode_decay",
    "cyclic_diagonal_modes",
    "fixed_point_covariance",
    "fourier_depth_scales",
    "fourier_eigenvalues",
    "propagate_covariance",
    "sample_conv_covariance",
]

# |lambda| within this of 1 is taken as exactly 1 (the zero mode sums v, which is 1 up to rounding).
_UNIT_TOLERANCE = 1e-13


# ----------------------------------------------------------------------------------------------------- validation


def _check_variances(sigma_w2, sigma_b2) -> tuple[float, float]:
    out = []
    for name, value in (("sigma_w2", sigma_w2), ("sigma_b2", sigma_b2)):
        if isinstance(value, bool) or not isinstance(value, Real):
            raise TypeError(f"{name} must be a real number, got {value!r}")
        value = float(value)
        if not np.isfinite(value) or value < 0:
            raise ValueError(f"{name} must be a finite variance >= 0, got {value!r}")
        out.append(value)
    return out[0], out[1]


def _check_count(value, name: str, minimum: int) -> int:
    if isinstance(value, bool) or not isinstance(value, Integral):
        raise TypeError(f"{name} must be an integer >= {minimum}, got {value!r}")
    if value < minimum:
        raise ValueError(f"{name} must be an integer >= {minimum}, got {value}")
    return int(value)


def _check_image_size(n, v: np.ndarray) -> int:
    n = _check_count(n, "n", 1)
    if max(v.shape) > n:
        raise ValueError(f"image size n={n} must be at least the kernel size {max(v.shape)} (kernel shape {v.shape})")
    return n


def _as_covariance(Sigma0, v: np.ndarray) -> tuple[np.ndarray, int, tuple[int, ...]]:
    """Return ``(S, n, shape)``: ``S`` the covariance as an ``(N, N)`` matrix over flattened positions
    (``N = n**ndim``), ``n`` the image side, ``shape`` the caller's layout."""
    try:
        arr = np.asarray(Sigma0, dtype=np.float64)
    except (TypeError, ValueError) as exc:
        raise TypeError(f"Sigma0 must be an array of numbers, got {type(Sigma0).__name__}") from exc
    ndim = v.ndim
    shape = arr.shape
    if ndim == 1:
        if arr.ndim != 2 or shape[0] != shape[1]:
            raise ValueError(f"Sigma0 must have shape (n, n) for 1-D images (1-D v), got {shape}")
        n = shape[0]
    elif arr.ndim == 4:
        if len(set(shape)) != 1:
            raise ValueError(f"Sigma0 must have shape (n, n, n, n) or (n**2, n**2) for 2-D images, got {shape}")
        n = shape[0]
    elif arr.ndim == 2 and shape[0] == shape[1] and round(np.sqrt(shape[0])) ** 2 == shape[0]:
        n = round(np.sqrt(shape[0]))
    else:
        raise ValueError(f"Sigma0 must have shape (n, n, n, n) or (n**2, n**2) for 2-D images (2-D v), got {shape}")
    n = _check_image_size(n, v)
    S = arr.reshape(n**ndim, n**ndim)
    if not np.all(np.isfinite(S)):
        raise ValueError("Sigma0 must be finite")
    scale = max(float(np.max(np.abs(S))), np.finfo(float).tiny)
    if not np.allclose(S, S.T, rtol=0, atol=1e-12 * scale):
        raise ValueError("Sigma0 must be symmetric (a covariance matrix)")
    if np.linalg.eigvalsh(S)[0] < -1e-10 * scale:
        raise ValueError("Sigma0 must be positive semi-definite (a covariance matrix)")
    return S, n, shape


def _offset_index(n: int, ndim: int) -> np.ndarray:
    """``(N, N)`` integer array: flat index of the offset ``a' - a (mod n)`` for flat positions ``a, a'``."""
    coords = np.array(list(itertools.product(range(n), repeat=ndim)))  # (N, ndim), row-major
    diff = (coords[None, :, :] - coords[:, None, :]) % n
    return np.ravel_multi_index(tuple(np.moveaxis(diff, -1, 0)), (n,) * ndim)


def _is_translation_invariant(S: np.ndarray, offset_index: np.ndarray) -> bool:
    scale = max(float(np.max(np.abs(S))), np.finfo(float).tiny)
    return bool(np.allclose(S, S[0][offset_index], rtol=0, atol=1e-13 * scale))


# ----------------------------------------------------------------------------------------------- Fourier modes


def _fixed_point(activation, sigma_w2: float, sigma_b2: float):
    point = mean_field_point(activation, sigma_w2, sigma_b2)
    if not np.isfinite(point.q_star):
        name = get_activation(activation).name
        raise ValueError(f"no finite fixed point q* for {name} at sigma_w2={sigma_w2}, sigma_b2={sigma_b2}")
    return point



def fourier_eigenvalues(v, n) -> np.ndarray:
    """Eigenvalues ``lambda_k`` of the averaging operator ``A_v`` on an ``n`` (1-D) or ``n x n`` (2-D) periodic image.

    ``lambda_k = sum_beta v_beta exp(+2 pi i k.beta / n)`` (paper 002, eqn. 2.11 and section 2.1.6: the complex
    conjugate of the DFT of ``v`` placed on the periodic image, kernel centre at offset 0). ``lambda_k`` is the
    eigenvalue of the Fourier mode ``exp(+2 pi i k.a / n)`` along every cyclic diagonal of a covariance, so on the space
    of ``n x n`` (1-D) covariances each value occurs ``n`` times (``n**2`` times in 2-D): in the paper's indexing
    ``lambda_{alpha, alpha'} = lambda_{(alpha + alpha') mod n}``.

    Parameters
    ----------
    v : array_like, shape (k,) or (k1, k2)
        Kernel variance vector (non-negative, sums to 1, odd sizes); see :func:`meanfield.kernels.kernel_variance`.
    n : int
        Image side, at least the kernel size.

    Returns
    -------
    numpy.ndarray, complex128, shape (n,) or (n, n)
        ``lambda[k]`` (``lambda[k1, k2]`` in 2-D) for frequencies ``k = 0 .. n-1``. ``lambda[0] = 1``,
        ``|lambda| <= 1``; real when ``v`` is symmetric under ``beta -> -beta``.
    """
    v = validate_kernel_variance(v)
    n = _check_image_size(n, v)
    periodic = np.zeros((n,) * v.ndim)
    index = np.ix_(*[(np.arange(size) - size // 2) % n for size in v.shape])
    np.add.at(periodic, index, v)
    return np.fft.ifftn(periodic) * n**v.ndim


@dataclass(frozen=True)
class FourierDepthScales:
    """Depth scales of the Fourier modes of a CNN's covariance (paper 002, eqn. 2.12); see :func:`fourier_depth_scales`.

    Attributes
    ----------
    eigenvalues : numpy.ndarray, complex, shape (n,) or (n, n)
        ``lambda_k`` of ``A_v`` (:func:`fourier_eigenvalues`).
    xi : numpy.ndarray, float, shape (n,) or (n, n)
        ``xi_k = -1 / log(chi_c* |lambda_k|)``: ``inf`` where ``chi_c* |lambda_k| = 1``, ``0`` where ``lambda_k = 0``.
    q_star, c_star, chi_c, xi_c : float
        The fully connected fixed point and its correlation slope / depth scale (``xi[0] == xi_c``).
    v : numpy.ndarray
        The kernel variance vector.
    """

    eigenvalues: np.ndarray
    xi: np.ndarray
    q_star: float
    c_star: float
    chi_c: float
    xi_c: float
    v: np.ndarray = field(repr=False)

    @property
    def table(self) -> pd.DataFrame:
        """One row per mode: ``k`` (1-D) or ``k1, k2`` (2-D), ``lambda_real``, ``lambda_imag``, ``abs_lambda``,
        ``xi``."""
        ndim = self.eigenvalues.ndim
        n = self.eigenvalues.shape[0]
        names = ["k"] if ndim == 1 else ["k1", "k2"]
        ks = np.array(list(itertools.product(range(n), repeat=ndim)))
        lam = self.eigenvalues.ravel()
        data = {name: ks[:, i] for i, name in enumerate(names)}
        data.update(lambda_real=lam.real, lambda_imag=lam.imag, abs_lambda=np.abs(lam), xi=self.xi.ravel())
        import pandas as pd

        return pd.DataFrame(data)


def fourier_depth_scales(activation, sigma_w2, sigma_b2, v, n) -> FourierDepthScales:
    """Depth scale of every Fourier mode of the covariance of a random CNN, ``xi_k = -1 / log(chi_c* |lambda_k|)``.

    Paper 002, eqn. 2.12 and section 2.1.6. Computed as ``1 / (1/xi_c - log|lambda_k|)`` so the zero mode
    (``lambda = 1``) reproduces the fully connected ``xi_c`` exactly, also next to the critical line where
    ``chi_c* -> 1``; a delta kernel (all ``lambda = 1``) gives ``xi_c`` for every mode.

    Parameters
    ----------
    activation : str or Activation
        Passed to :func:`meanfield.get_activation`.
    sigma_w2, sigma_b2 : float
        Weight and bias variances (``gain = sqrt(sigma_w2)`` in ``torch.nn.init`` terms).
    v : array_like, shape (k,) or (k1, k2)
        Kernel variance vector.
    n : int
        Image side (``n`` pixels in 1-D, ``n x n`` in 2-D).

    Returns
    -------
    FourierDepthScales
        ``.eigenvalues`` and ``.xi`` shaped like the modes (``(n,)`` or ``(n, n)``), ``.table`` as a DataFrame.

    Raises
    ------
    ValueError
        Invalid ``v``, ``n`` or variances, or no finite fixed point ``q*`` at these parameters.
    """
    sigma_w2, sigma_b2 = _check_variances(sigma_w2, sigma_b2)
    lam = fourier_eigenvalues(v, n)
    point = _fixed_point(activation, sigma_w2, sigma_b2)
    abs_lam = np.abs(lam)
    abs_lam[abs_lam > 1.0 - _UNIT_TOLERANCE] = 1.0
    with np.errstate(divide="ignore"):
        inverse_xi = 1.0 / point.xi_c - np.log(abs_lam)  # -log(chi_c |lambda|) = 1/xi_c - log|lambda| >= 0
        xi = 1.0 / inverse_xi
    return FourierDepthScales(
        eigenvalues=lam,
        xi=xi,
        q_star=float(point.q_star),
        c_star=float(point.c_star),
        chi_c=float(point.chi_c),
        xi_c=float(point.xi_c),
        v=validate_kernel_variance(v),
    )


def cyclic_diagonal_modes(M, ndim: int = 1) -> np.ndarray:
    """Fourier coefficients of the cyclic diagonals of covariance-shaped arrays (paper 002, Figure S4).

    ``out[..., d, k] = sum_a M[..., a, (a + d) % n] exp(-2 pi i k a / n)`` (1-D), and in 2-D
    ``out[..., d1, d2, k1, k2] = sum_{a1, a2} M[..., a1, a2, a1 + d1, a2 + d2] exp(-2 pi i (k1 a1 + k2 a2) / n)``
    (numpy's unnormalised DFT). Under the linearised CNN map each coefficient is multiplied by ``chi lambda_k`` per
    layer.

    Parameters
    ----------
    M : array_like, shape (..., n, n) for ``ndim=1`` or (..., n, n, n, n) for ``ndim=2``
        E.g. ``eps^l = Sigma* - Sigma^l`` for a stack of layers (reshape the flattened 2-D layout first).
    ndim : {1, 2}
        Spatial dimension of the images.

    Returns
    -------
    numpy.ndarray, complex128, shape (..., n, n) or (..., n, n, n, n)
        Axes: offsets ``d`` then frequencies ``k``.
    """
    if ndim not in (1, 2) or isinstance(ndim, bool):
        raise ValueError(f"ndim must be 1 or 2, got {ndim!r}")
    M = np.asarray(M, dtype=np.float64)
    if M.ndim < 2 * ndim or len(set(M.shape[M.ndim - 2 * ndim :])) != 1:
        expected = "(..., n, n)" if ndim == 1 else "(..., n, n, n, n)"
        raise ValueError(f"M must have shape {expected} for ndim={ndim}, got {M.shape}")
    n = M.shape[-1]
    r = np.arange(n)
    if ndim == 1:
        d, a = np.ix_(r, r)
        diagonals = M[..., a, (a + d) % n]  # (..., d, a)
        return np.fft.fft(diagonals, axis=-1)
    d1, d2, a1, a2 = np.ix_(r, r, r, r)
    diagonals = M[..., a1, a2, (a1 + d1) % n, (a2 + d2) % n]  # (..., d1, d2, a1, a2)
    return np.fft.fft2(diagonals, axes=(-2, -1))


# ------------------------------------------------------------------------------------------- covariance map


def fixed_point_covariance(activation, sigma_w2, sigma_b2, n, ndim: int = 1) -> np.ndarray:
    """``Sigma* = q* [(1 - c*) I + c* 1 1^T]``, the fixed point of the CNN covariance map (paper 002, eqn. 2.4).

    Returns
    -------
    numpy.ndarray, shape (n, n) for ``ndim=1`` or (n, n, n, n) for ``ndim=2``
    """
    sigma_w2, sigma_b2 = _check_variances(sigma_w2, sigma_b2)
    n = _check_count(n, "n", 1)
    if ndim not in (1, 2) or isinstance(ndim, bool):
        raise ValueError(f"ndim must be 1 or 2, got {ndim!r}")
    point = _fixed_point(activation, sigma_w2, sigma_b2)
    q, c = float(point.q_star), float(point.c_star)
    N = n**ndim
    S = q * ((1.0 - c) * np.eye(N) + c)
    return S.reshape((n,) * (2 * ndim))


FIGURE_S4 = {"activation": "erf", "sigma_w2": 2.25, "sigma_b2": 0.25, "v": (0.025, 0.950, 0.025), "n": 10}
"""Paper 002 supplementary Figure S4: erf, ``sigma_w = 3/2``, ``sigma_b = 1/2``, ``v``, 1-D images of ``n = 10``."""


def figure_s4_covariance(scale: float = 1.0) -> np.ndarray:
    """``Sigma^0`` of paper 002 Figure S4 (``docs/formulas.md``), shape ``(10, 10)``.

    ``Sigma^0 = Sigma* - scale * eps^0``, where ``eps^0`` lives on the first cyclic diagonal (and its mirror, so
    ``Sigma^0`` is symmetric) with DFT ``-(1/6) [1, r, r^3, r^5, r^4, r^2, r^4, r^5, r^3, r]``, ``r = 2/3``, and
    ``Sigma*`` is :func:`fixed_point_covariance` at the :data:`FIGURE_S4` setting.
    """
    r = 2.0 / 3.0
    dft = -np.array([1, r, r**3, r**5, r**4, r**2, r**4, r**5, r**3, r]) / 6.0
    diagonal = np.fft.ifft(dft).real
    p = FIGURE_S4
    a = np.arange(p["n"])
    eps = np.zeros((p["n"], p["n"]))
    eps[a, (a + 1) % p["n"]] = diagonal
    eps[(a + 1) % p["n"], a] = diagonal
    return fixed_point_covariance(p["activation"], p["sigma_w2"], p["sigma_b2"], p["n"]) - scale * eps


def _average_along_diagonals(C: np.ndarray, v: np.ndarray, n: int) -> np.ndarray:
    """``(A_v * C)_{a,a'} = sum_beta v_beta C_{a+beta, a'+beta}`` for an ``(N, N)`` matrix over flattened positions."""
    ndim = v.ndim
    image = C.reshape((n,) * (2 * ndim))
    out = np.zeros_like(image)
    centre = np.array(v.shape) // 2
    axes = tuple(range(2 * ndim))
    for beta in zip(*np.nonzero(v), strict=True):
        shift = tuple(-(np.array(beta) - centre)) * 2
        out += v[beta] * np.roll(image, shift, axis=axes)
    return out.reshape(C.shape)


def _layer_kernel(act, q1: np.ndarray, q2: np.ndarray, q12: np.ndarray, layer: int) -> np.ndarray:
    """``E[phi(h1) phi(h2)]`` for the pairs of one layer by the core's :func:`meanfield.gaussian_kernel`, naming the
    layer when the core gives up (variances beyond its quadrature's range, i.e. a diverging iteration)."""
    try:
        return gaussian_kernel(act, q1, q2, q12)
    except FloatingPointError as err:
        raise FloatingPointError(f"layer {layer}: {err}") from err


def _check_finite_layer(values: np.ndarray, variance: float, layer: int) -> None:
    """Raise when the covariance overflows or its largest variance exceeds the core's ``Q_STAR_MAX`` (diverging)."""
    if not np.all(np.isfinite(values)) or variance > Q_STAR_MAX:
        raise FloatingPointError(
            f"the covariance diverges: at layer {layer} a variance exceeds {Q_STAR_MAX:g} or overflows; "
            "no finite fixed point at these parameters, or use fewer layers"
        )


def propagate_covariance(Sigma0, activation, sigma_w2, sigma_b2, v, depth) -> np.ndarray:
    """Iterate the CNN covariance map ``Sigma^{l+1} = A_v * C(Sigma^l)`` exactly (paper 002, eqns. 2.3, 2.5, 2.13).

    ``C`` is the 2-D Gaussian integral for every pair of positions, evaluated for all distinct (upper-triangle) pairs of
    a layer at once by the core's :func:`meanfield.gaussian_kernel` (closed forms; for smooth activations its
    :class:`meanfield.mehler.MehlerKernel` series, which reuses the Hermite coefficients while the layer's distinct
    variances repeat, with a per-pair error bound and quadrature fallback, ~1e-12 relative). When ``Sigma0`` is
    translation invariant (``Sigma0[a, a']`` depends only on ``a' - a`` modulo ``n``, checked to 1e-13 relative),
    every layer is too and ``A_v`` acts on it as the identity (``sum v = 1``), so only the ``n`` (1-D) or ``n**2``
    (2-D) distinct entries of one row are iterated, each by the fully connected map; otherwise all ``N (N + 1) / 2``
    pairs are.

    Parameters
    ----------
    Sigma0 : array_like
        Pre-activation covariance over positions at layer 0: ``(n, n)`` (1-D), or ``(n, n, n, n)`` or
        ``(n**2, n**2)`` (2-D, row-major positions); symmetric positive semi-definite. See the module docstring.
    activation : str or Activation
        Passed to :func:`meanfield.get_activation`.
    sigma_w2, sigma_b2 : float
        Weight and bias variances.
    v : array_like, shape (k,) or (k1, k2)
        Kernel variance vector; its dimension sets the image dimension. ``n`` must be at least the kernel size.
    depth : int
        Number of layers, >= 0.

    Returns
    -------
    numpy.ndarray, shape (depth + 1, *Sigma0.shape)
        ``Sigma^0 .. Sigma^depth`` in the layout of ``Sigma0``.

    Raises
    ------
    ValueError, TypeError
        Invalid arguments (shapes, non-symmetric or indefinite ``Sigma0``, invalid ``v``, negative variances).
    FloatingPointError
        If the covariance overflows (no finite fixed point, e.g. ReLU with ``sigma_w2 > 2``).
    """
    v = validate_kernel_variance(v)
    sigma_w2, sigma_b2 = _check_variances(sigma_w2, sigma_b2)
    depth = _check_count(depth, "depth", 0)
    act = get_activation(activation)
    S, n, shape = _as_covariance(Sigma0, v)
    offsets = _offset_index(n, v.ndim)
    if _is_translation_invariant(S, offsets):
        layers = _propagate_translation_invariant(S, act, sigma_w2, sigma_b2, offsets, depth)
    else:
        layers = _propagate_general(S, act, sigma_w2, sigma_b2, v, n, depth)
    return layers.reshape((depth + 1, *shape))


def _propagate_translation_invariant(S, act, sigma_w2, sigma_b2, offsets, depth) -> np.ndarray:
    """Iterate only ``S[0, d]`` (one entry per offset ``d``); ``A_v`` is the identity on invariant covariances."""
    N = S.shape[0]
    rows = np.empty((depth + 1, N))
    rows[0] = row = S[0]
    with np.errstate(over="ignore", invalid="ignore"):
        for layer in range(1, depth + 1):
            q = np.full(N, row[0])
            row = sigma_w2 * _layer_kernel(act, q, q, row, layer) + sigma_b2
            _check_finite_layer(row, row[0], layer)
            rows[layer] = row
    return rows[:, offsets]


def _propagate_general(S, act, sigma_w2, sigma_b2, v, n, depth) -> np.ndarray:
    """Iterate all ``N (N + 1) / 2`` distinct pairs of positions, then average along the diagonals."""
    N = S.shape[0]
    upper = np.triu_indices(N)
    out = np.empty((depth + 1, N, N))
    out[0] = S
    with np.errstate(over="ignore", invalid="ignore"):
        for layer in range(1, depth + 1):
            q = np.diag(S)
            values = sigma_w2 * _layer_kernel(act, q[upper[0]], q[upper[1]], S[upper], layer) + sigma_b2
            _check_finite_layer(values, float(np.max(np.diag(S))), layer)
            C = np.empty((N, N))
            C[upper] = values
            C[upper[1], upper[0]] = values
            S = _average_along_diagonals(C, v, n)
            out[layer] = S
    return out


def covariance_mode_decay(Sigma0, activation, sigma_w2, sigma_b2, v, depth, offset=None) -> pd.DataFrame:
    """Fourier modes of one cyclic diagonal of ``eps^l = Sigma* - Sigma^l``, exact iteration beside linearisation.

    The exact ``eps^l`` comes from :func:`propagate_covariance`; the linearised prediction is
    ``(chi_c* lambda_k)^l hat eps^0_d(k)`` (paper 002, eqn. 2.12; supplementary Figure S4 plots ``|hat eps^l_1(k)|``
    against ``l``). The prediction is the off-diagonal eigen-dynamics, valid when ``eps`` is small and its main diagonal
    vanishes (a main-diagonal deviation evolves at rate ``chi_q*`` and feeds the off-diagonal ones). Second-order terms
    decay like ``chi_c*^2`` (two zero modes), so modes with ``|lambda_k| < chi_c*`` are eventually dominated by them:
    their relative error grows with depth however small ``eps`` is.

    Parameters
    ----------
    Sigma0, activation, sigma_w2, sigma_b2, v, depth
        As in :func:`propagate_covariance`.
    offset : int or tuple of two ints, optional
        Non-zero cyclic diagonal offset ``d`` (``(d1, d2)`` in 2-D); default the first cyclic diagonal, ``1`` in 1-D
        and ``(0, 1)`` in 2-D.

    Returns
    -------
    pandas.DataFrame
        One row per layer and mode: ``layer``, ``k`` (or ``k1``, ``k2``), ``abs_lambda``, ``exact_abs``
        (``|hat eps^l_d(k)|``), ``linear_abs`` (``|hat eps^0_d(k)| (chi_c* |lambda_k|)^l``) and ``relative_error``
        (``|exact - linear| / |linear|`` of the complex coefficients; NaN where the prediction is 0).
    """
    v = validate_kernel_variance(v)
    ndim = v.ndim
    _, n, _ = _as_covariance(Sigma0, v)
    layers = propagate_covariance(Sigma0, activation, sigma_w2, sigma_b2, v, depth)
    layers = layers.reshape((-1,) + (n,) * (2 * ndim))
    if offset is None:
        offset = 1 if ndim == 1 else (0, 1)
    offset_tuple = (offset,) if ndim == 1 and isinstance(offset, Integral) else tuple(offset)
    if len(offset_tuple) != ndim or not all(isinstance(d, Integral) for d in offset_tuple):
        raise ValueError(f"offset must be an integer (1-D) or a pair of integers (2-D), got {offset!r}")
    offset_tuple = tuple(int(d) % n for d in offset_tuple)
    if not any(offset_tuple):
        raise ValueError("offset must be a non-zero cyclic diagonal (the main diagonal evolves at rate chi_q*)")
    sigma_star = fixed_point_covariance(activation, sigma_w2, sigma_b2, n, ndim)
    modes = cyclic_diagonal_modes(sigma_star - layers, ndim)[(slice(None), *offset_tuple)]  # (depth + 1, n[, n])
    lam = fourier_eigenvalues(v, n)
    rate = float(_fixed_point(activation, *_check_variances(sigma_w2, sigma_b2)).chi_c) * lam
    layer_index = np.arange(depth + 1).reshape((-1,) + (1,) * ndim)
    linear = modes[0] * rate**layer_index
    with np.errstate(divide="ignore", invalid="ignore"):
        relative = np.where(linear != 0, np.abs(modes - linear) / np.abs(linear), np.nan)
    ks = np.array(list(itertools.product(range(n), repeat=ndim)))
    names = ["k"] if ndim == 1 else ["k1", "k2"]
    table = {"layer": np.repeat(np.arange(depth + 1), n**ndim)}
    table.update({name: np.tile(ks[:, i], depth + 1) for i, name in enumerate(names)})
    table.update(
        abs_lambda=np.tile(np.abs(lam).ravel(), depth + 1),
        exact_abs=np.abs(modes).ravel(),
        linear_abs=np.abs(linear).ravel(),
        relative_error=relative.ravel(),
    )
    import pandas as pd

    return pd.DataFrame(table)


# -------------------------------------------------------------------------------------------- sampled networks


def sample_conv_covariance(
    Sigma0, activation, sigma_w2, sigma_b2, v, depth, *, channels: int = 256, draws: int = 16, rng=None
) -> np.ndarray:
    """Empirical spatial covariance of the pre-activations of sampled finite random CNNs (Monte Carlo check).

    Each draw samples a CNN with ``channels`` channels per layer, circular padding, weights
    ``w_ij(beta) ~ N(0, sigma_w2 * v_beta / channels)`` and biases ``b_j ~ N(0, sigma_b2)``, and layer-0
    pre-activations ``h^0_j ~ N(0, Sigma0)`` independently per channel; it records
    ``Sigma^l_{a,a'} = (1/channels) sum_j h^l_j(a) h^l_j(a')`` for ``l = 0 .. depth``. As ``channels -> infinity`` the
    mean over draws tends to :func:`propagate_covariance` (with ``O(1/channels)`` bias and sampling error
    ``~ q / sqrt(channels * draws)``).

    Several input covariances may be stacked on a leading axis (``Sigma0`` of shape ``(m, *cov_shape)``); they then go
    through the same networks from the same standard-normal draws (common random numbers), so differences between them,
    such as ``eps^l = Sigma*^l - Sigma^l``, have far smaller sampling error than each one.

    Parameters
    ----------
    Sigma0 : array_like
        One covariance in a layout accepted by :func:`propagate_covariance`, or a stack ``(m, *that shape)``.
    activation, sigma_w2, sigma_b2, v, depth
        As in :func:`propagate_covariance`.
    channels : int
        Channels per layer (>= 1).
    draws : int
        Independent networks (>= 1).
    rng : numpy.random.Generator, int or None
        Random source (passed to ``numpy.random.default_rng``).

    Returns
    -------
    numpy.ndarray, shape (draws, depth + 1, *Sigma0.shape)
        Per-draw empirical covariances (mean over axis 0 estimates the mean-field covariance).
    """
    v = validate_kernel_variance(v)
    sigma_w2, sigma_b2 = _check_variances(sigma_w2, sigma_b2)
    depth = _check_count(depth, "depth", 0)
    channels = _check_count(channels, "channels", 1)
    draws = _check_count(draws, "draws", 1)
    rng = np.random.default_rng(rng)
    act = get_activation(activation)
    arr = np.asarray(Sigma0, dtype=np.float64)
    single_ndim = 2 if v.ndim == 1 else (4 if arr.ndim in (4, 5) else 2)
    stacked = arr.ndim == single_ndim + 1
    members = [_as_covariance(S, v) for S in (arr if stacked else arr[None])]
    n = members[0][1]
    if any(member[1] != n for member in members):
        raise ValueError("stacked covariances must all have the same image size")
    N = n**v.ndim
    factors = []  # h^0 = factor @ z, z ~ N(0, I), with the symmetric square root factor = Sigma0^(1/2), continuous in
    for S, _, _ in members:  # Sigma0 (unlike eigenvector factors), so nearby stacked inputs give nearby h^0
        w, U = np.linalg.eigh(S)
        factors.append((U * np.sqrt(np.clip(w, 0.0, None))) @ U.T)
    factors = np.stack(factors)  # (m, N, N)
    taps = list(zip(*np.nonzero(v), strict=True))
    centre = np.array(v.shape) // 2
    image_axes = tuple(range(-v.ndim, 0))
    result = np.empty((draws, depth + 1, len(members), N, N))
    for draw in range(draws):
        z = rng.standard_normal((channels, N))
        h = np.einsum("ca,mba->mcb", z, factors)  # (m, channels, N)
        result[draw, 0] = np.einsum("mca,mcb->mab", h, h) / channels
        for layer in range(1, depth + 1):
            x = act.phi(h).reshape((len(members), channels) + (n,) * v.ndim)
            shifted = np.concatenate(
                [np.roll(x, tuple(-(np.array(beta) - centre)), axis=image_axes).reshape(len(members), channels, N)
                 for beta in taps],
                axis=1,
            )  # (m, taps * channels, N): x at a + beta, stacked over beta
            std = np.sqrt(sigma_w2 * np.repeat([v[beta] for beta in taps], channels) / channels)
            weights = rng.standard_normal((channels, len(taps) * channels)) * std
            bias = rng.standard_normal((channels, 1)) * np.sqrt(sigma_b2)
            h = weights @ shifted + bias
            result[draw, layer] = np.einsum("mca,mcb->mab", h, h) / channels
    shape = arr.shape if stacked else (1, *arr.shape)
    result = result.reshape((draws, depth + 1) + shape)
    return result if stacked else result[:, :, 0]
