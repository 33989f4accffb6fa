"""Spectra of finite random networks: what the free-probability predictions of :mod:`rmt.spectrum` describe.

``sample_jacobian_spectrum`` builds random fully connected or convolutional networks at their mean-field fixed point
and returns the eigenvalues of ``J J^T``; ``conv_operator_spectrum`` gives the singular values of random periodic
convolution operators beside the Marchenko-Pastur law of a dense matrix (paper 002, appendix E / Figure S3).
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import TYPE_CHECKING

import numpy as np

if TYPE_CHECKING:
    import pandas as pd
from meanfield.kernels import kernel_variance as _kernel_variance

from .checks import check_depth, check_int, check_positive, check_weights, is_positively_homogeneous
from .conv_operators import conv_operator_matrix, conv_singular_values
from .layers import network_layers
from .orthogonal import haar_orthogonal, orthogonal_conv_kernel
from .transforms import marchenko_pastur_edges

__all__ = ["conv_operator_spectrum", "sample_jacobian_spectrum"]

ARCHITECTURES = ("fc", "conv")


def _image_shape(image_size) -> tuple[int, ...]:
    if isinstance(image_size, (int, np.integer)) and not isinstance(image_size, bool):
        return (check_int(image_size, "image_size"),)
    try:
        shape = tuple(check_int(s, "image_size") for s in image_size)
    except TypeError as exc:
        raise TypeError(f"image_size must be an int n (1-D) or a pair (n, n) (2-D), got {image_size!r}") from exc
    if len(shape) not in (1, 2):
        raise ValueError(f"image_size must be an int n (1-D) or a pair (n, n) (2-D), got {image_size!r}")
    return shape


def _layer_conv(c: int, shape: tuple[int, ...], kernel_size: int, v: np.ndarray | None, sigma_w2: float,
                weights: str, rng: np.random.Generator) -> np.ndarray:
    """Explicit matrix of one random periodic conv layer, ``(c prod(shape))`` square."""
    if weights == "orthogonal":
        kernel = orthogonal_conv_kernel(c, c, kernel_size, ndim=len(shape), gain=math.sqrt(sigma_w2), rng=rng)
    else:
        std = np.sqrt(sigma_w2 * v / c)  # w_ij(beta) ~ N(0, sigma_w2 v_beta / c), paper 002 section 2.1
        kernel = rng.standard_normal((c, c, *v.shape)) * std
    return conv_operator_matrix(kernel, shape)


def sample_jacobian_spectrum(
    activation,
    sigma_w2: float,
    sigma_b2: float,
    depth: int,
    width: int,
    weights: str = "orthogonal",
    draws: int = 1,
    architecture: str = "fc",
    image_size: int | Sequence[int] = 8,
    kernel_size: int = 3,
    kernel_variance: str | np.ndarray | Sequence = "uniform",
    method: str = "qr",
    rng: np.random.Generator | int | None = None,
    widths: Sequence[int] | None = None,
) -> pd.DataFrame:
    """Eigenvalues of ``J J^T`` for random finite networks whose input sits at the fixed point ``q*``.

    The network is ``h^l = W^l phi(h^{l-1}) + b^l``, ``l = 1..L``, with ``h^0 ~ N(0, q*)`` i.i.d. (so every layer's
    pre-activations are at ``q*``), ``b^l ~ N(0, sigma_b2)``, and ``J = d phi(h^L) / d phi(h^0) = prod_l D^l W^l``,
    ``D^l = diag(phi'(h^l))`` (the Jacobian whose limiting spectrum :func:`rmt.jacobian_spectrum` predicts).

    * ``architecture="fc"``: ``width x width`` layers, ``W`` i.i.d. ``N(0, sigma_w2 / width)`` (``"gaussian"``) or
      ``sqrt(sigma_w2)`` times a Haar orthogonal matrix (``"orthogonal"``).
    * ``architecture="conv"``: ``width`` channels on a periodic image of size ``image_size`` (an int ``n`` for 1-D, a
      pair ``(n, n)`` for 2-D), kernels of ``kernel_size`` taps per axis. Gaussian kernels have
      ``w_ij(beta) ~ N(0, sigma_w2 v_beta / c)`` with the variance vector ``v`` of :func:`meanfield.kernels
      .kernel_variance` (name or explicit array); orthogonal kernels are :func:`rmt.orthogonal_conv_kernel` (paper 002,
      Algorithm 1) with ``gain = sqrt(sigma_w2)`` (``kernel_variance`` is then unused). Biases are per channel.
      ``J`` is ``c n^d`` square; the layers are explicit matrices (:func:`rmt.conv_operator_matrix`).

    Accuracy (``method="qr"``, the default): ``J`` is accumulated as ``Q R`` with one QR factorisation per layer,
    ``D^l W^l Q_{l-1} = Q_l R'_l`` and ``R_l = R'_l R_{l-1}`` (as for Lyapunov spectra), and the singular values are
    those of the graded triangular ``R_L``. They keep high relative accuracy over the whole range (tested: the
    largest agree with the plain product, the smallest with the reciprocals of the largest singular values of the
    inverse product, across more than 40 decades). ``method="product"`` multiplies the layers directly (about 4x
    faster); its singular values carry an absolute error of about ``1e-15 sqrt(L N) sqrt(lam_max)``, so only
    ``lam >= 1e-24 lam_max`` is reliable.

    Parameters
    ----------
    activation : str or meanfield.Activation
    sigma_w2, sigma_b2 : float
        Weight and bias variances (``sigma_w2 > 0``, ``sigma_b2 >= 0``); ``q*`` must be finite.
    depth : int
        Number of layers ``L >= 1``.
    width : int
        Fully connected width, or number of channels ``c`` for ``"conv"`` (unused when ``widths`` is given).
    weights : {"orthogonal", "gaussian"}
    draws : int
        Independent networks.
    architecture : {"fc", "conv"}
    image_size, kernel_size, kernel_variance
        Convolutional geometry (ignored for ``"fc"``).
    method : {"qr", "product"}
        Accumulation of the product (see Accuracy).
    rng : numpy.random.Generator, int or None

    widths : sequence of int, optional
        Rectangular fully connected layers ``n_0 .. n_L`` (``width`` is then unused); with per-layer sequences of
        ``activation``, ``sigma_w2``, ``sigma_b2`` (length ``depth``). ``W^l`` is ``n_l x n_{l-1}``, Gaussian
        ``N(0, sigma_w2 / n_{l-1})`` or ``sqrt(sigma_w2)`` times a Haar semi-orthogonal matrix;
        ``h^0 ~ N(0, q_0)`` and the variances follow :func:`rmt.layers.layer_variances`.

    Positively homogeneous activations (ReLU, leaky ReLU, linear) are sampled at ``q = 1`` (their spectrum does not
    depend on ``q``; ``q*`` may be 0 or infinite); with zero bias variance the activations are rescaled each layer
    (exact: only signs enter ``J``).

    Returns
    -------
    pandas.DataFrame
        Columns ``draw`` (int), ``lam`` (float; eigenvalues of ``J J^T``, ``N = n_L`` rows per draw: width, ``c n^d``
        or ``widths[-1]``, ascending within a draw) and ``zero`` (bool: the eigenvalue is 0 in exact arithmetic; for
        fully connected networks ``rank J = min(n_0, min_l #{phi_l'(h^l) != 0})`` almost surely and the smallest
        ``N - rank`` are marked; always False for ``"conv"``). Pass the frame to
        :meth:`rmt.JacobianSpectrum.ks_distance` to use it. ``attrs`` holds ``q_star`` (NaN for homogeneous
        activations), ``q`` and the parameters.
    """
    import pandas as pd  # noqa: PLC0415 (lazy: keeps `import rmt` light)

    weights = check_weights(weights)
    depth = check_depth(depth)
    draws = check_int(draws, "draws")
    if method not in ("qr", "product"):
        raise ValueError(f"method must be 'qr' or 'product', got {method!r}")
    if architecture not in ARCHITECTURES:
        raise ValueError(f"architecture must be one of {ARCHITECTURES}, got {architecture!r}")
    if widths is not None:
        if architecture != "fc":
            raise ValueError("widths (rectangular layers) are supported for architecture='fc' only")
        dims = [check_int(v, "widths") for v in widths]
        if len(dims) != depth + 1:
            raise ValueError(f"widths must have depth + 1 = {depth + 1} entries (n_0 .. n_L), got {len(dims)}")
    else:
        dims = [check_int(width, "width")] * (depth + 1)
    layers = network_layers(activation, sigma_w2, sigma_b2, depth, weights, dims)
    acts, sw2s, sb2s, qs = layers.activations, layers.sigma_w2, layers.sigma_b2, layers.q
    if architecture == "conv" and not layers.uniform:
        raise ValueError("per-layer activation / sigma_w2 / sigma_b2 are supported for architecture='fc' only")
    homogeneous = all(is_positively_homogeneous(a) for a in acts)
    rescale = homogeneous and not np.any(sb2s)  # then only signs matter: keep |x| of order 1 at any depth
    rng = np.random.default_rng(rng)
    if architecture == "conv":
        shape = _image_shape(image_size)
        kernel_size = check_int(kernel_size, "kernel_size")
        if kernel_size % 2 == 0:
            raise ValueError(f"kernel_size must be odd (same-size circular padding), got {kernel_size}")
        v = None if weights == "orthogonal" else _kernel_variance(kernel_variance, kernel_size, ndim=len(shape))
        pixels = int(np.prod(shape))
    else:
        shape, v, pixels = (), None, 1
    n_out = dims[-1] * pixels
    frames = []
    for draw in range(draws):
        h = rng.standard_normal(dims[0] * pixels) * math.sqrt(qs[0])
        x = acts[0].phi(h)
        q_mat = r_mat = None
        active = dims[0] * pixels  # min(n_0, min_l nnz(phi_l'(h^l))): the rank of J (fully connected)
        for layer in range(depth):
            act, sw2, n_in, n_l = acts[layer], float(sw2s[layer]), dims[layer], dims[layer + 1]
            if architecture == "conv":
                w = _layer_conv(n_l, shape, kernel_size, v, sw2, weights, rng)
            elif weights == "orthogonal":
                w = math.sqrt(sw2) * haar_orthogonal(n_l, n_in, rng)
            else:
                w = rng.standard_normal((n_l, n_in)) * math.sqrt(sw2 / n_in)
            b = np.repeat(rng.standard_normal(n_l) * math.sqrt(float(sb2s[layer])), pixels)
            h = w @ x + b
            x = act.phi(h)
            if rescale:
                x = x / max(float(np.sqrt(np.mean(x * x))), np.finfo(float).tiny)
            slope = act.dphi(h)
            active = min(active, int(np.count_nonzero(slope)))
            block = slope[:, None] * w
            if r_mat is None:
                q_mat, r_mat = np.linalg.qr(block) if method == "qr" else (None, block)
            elif method == "qr":
                q_mat, r_new = np.linalg.qr(block @ q_mat)
                r_mat = r_new @ r_mat
            else:
                r_mat = block @ r_mat
        sv2 = np.linalg.svd(r_mat, compute_uv=False) ** 2
        lam = np.sort(np.concatenate([np.zeros(max(n_out - sv2.size, 0)), sv2]))  # J J^T is n_L x n_L
        zero = np.zeros(n_out, dtype=bool)
        if architecture == "fc":
            zero[: n_out - active] = True
        frames.append(pd.DataFrame({"draw": draw, "lam": lam, "zero": zero}))
    out = pd.concat(frames, ignore_index=True)
    q = float(qs[0])
    if layers.uniform:
        out.attrs.update(q_star=math.nan if homogeneous else q, q=q, activation=acts[0].name,
                         sigma_w2=float(sw2s[0]), sigma_b2=float(sb2s[0]))
    else:
        out.attrs.update(q_star=math.nan, q=qs.tolist(), activation=[a.name for a in acts], sigma_w2=sw2s.tolist(),
                         sigma_b2=sb2s.tolist(), widths=list(dims))
    out.attrs.update(depth=depth, width=dims[-1], weights=weights, architecture=architecture)
    return out


def conv_operator_spectrum(
    channels: Sequence[int] = (4, 16, 64),
    image_size: int = 26,
    kernel_size: int = 5,
    sigma_w2: float = 1.0,
    num: int = 400,
    rng: np.random.Generator | int | None = None,
) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Singular values of random periodic conv operators beside a dense matrix and the Marchenko-Pastur law.

    Paper 002, appendix E (its Figure S3/S4): a 1-D conv layer on ``n`` positions with ``c`` channels is an ``n x n``
    circulant tiling of ``c x c`` blocks; with i.i.d. ``N(0, sigma_w2 / (c k))`` taps its singular values approach
    those of a dense ``nc x nc`` matrix with i.i.d. ``N(0, sigma_w2 / (nc))`` entries, i.e. the quarter-circle law
    (Marchenko-Pastur with ratio 1 for ``s^2``), as ``c`` grows. Conv singular values come from the FFT
    (:func:`rmt.conv_singular_values`); one draw per ``c``.

    Parameters
    ----------
    channels : sequence of int
        Channel counts ``c``.
    image_size : int
        ``n`` (26 in the paper).
    kernel_size : int
        ``k = 2k' + 1`` taps (5 in the paper).
    sigma_w2 : float
        Overall weight variance (1 in the paper).
    num : int
        Points of the theoretical density.
    rng : numpy.random.Generator, int or None

    Returns
    -------
    samples : pandas.DataFrame
        Columns ``channels``, ``matrix`` (``"conv"`` or ``"dense"``), ``s`` (singular values; ``n c`` per row group).
    law : pandas.DataFrame
        Columns ``s`` and ``density``: the density of singular values ``s`` of the dense matrix in the limit,
        ``2 s rho_MP(s^2)`` on ``[0, 2 sqrt(sigma_w2)]``.
    """
    import pandas as pd  # noqa: PLC0415 (lazy: keeps `import rmt` light)

    image_size = check_int(image_size, "image_size")
    kernel_size = check_int(kernel_size, "kernel_size")
    num = check_int(num, "num", 2)
    sigma_w2 = check_positive(sigma_w2, "sigma_w2")
    channels = [check_int(c, "channels") for c in np.atleast_1d(channels)]
    rng = np.random.default_rng(rng)
    frames = []
    for c in channels:
        kernel = rng.standard_normal((c, c, kernel_size)) * math.sqrt(sigma_w2 / (c * kernel_size))
        conv = np.sort(conv_singular_values(kernel, image_size).ravel())
        dense = rng.standard_normal((image_size * c, image_size * c)) * math.sqrt(sigma_w2 / (image_size * c))
        frames.append(pd.DataFrame({"channels": c, "matrix": "conv", "s": conv}))
        dense_sv = np.sort(np.linalg.svd(dense, compute_uv=False))
        frames.append(pd.DataFrame({"channels": c, "matrix": "dense", "s": dense_sv}))
    samples = pd.concat(frames, ignore_index=True)
    _, b = marchenko_pastur_edges(1.0, sigma_w2)
    s = np.linspace(0.0, math.sqrt(b), num)
    # 2 s rho_MP(s^2) with ratio 1 is the quarter circle sqrt(4 sigma_w2 - s^2) / (pi sigma_w2)
    law = pd.DataFrame({"s": s, "density": np.sqrt(np.maximum(b - s**2, 0.0)) / (math.pi * sigma_w2)})
    return samples, law
