"""``signal`` probe: layer-wise lengths and correlations of real random torch networks beside mean-field theory.

Fully connected (:func:`signal_fc`): two inputs go through :class:`validate.models.FCNet` networks initialised by
:func:`validate.models.init_model_`; at every hidden layer ``l`` the pre-activation length ``q^l = h.h / N`` and the
correlation ``c^l = h_1.h_2 / |h_1||h_2|`` are recorded, averaged over independent draws, with standard errors, beside
:func:`meanfield.iterate_maps` (Poole et al. 2016, eqns. 3 and 5; formulas.md "Fully connected mean field").

Convolutional (:func:`signal_cnn`): one image goes through stacks of circular-padded, stride-1 ``nn.Conv2d`` layers;
the empirical spatial covariance ``Sigma^l_{a,a'} = (1/c) sum_j h_j(a) h_j(a')`` is compared with
:func:`meanfield.propagate_covariance` (paper 002, eqns. 2.3-2.5).

The first layer maps the input without an activation, so ``q^1 = sigma_w2 q^0 + sigma_b2`` and
``c^1 = (sigma_w2 q^0 c^0 + sigma_b2) / q^1`` (for CNNs ``Sigma^1 = A_v * (sigma_w2 K^0 + sigma_b2)``, computed by
:func:`meanfield.propagate_covariance` with the linear activation); mean-field maps carry on from there.
"""

from __future__ import annotations

import hashlib
import math

import numpy as np
import pandas as pd
import torch
from torch import nn

import meanfield
from validate.models import FCNet, init_model_
from validate.probes.common import (
    ResultStore,
    check_positive_int,
    resolve_device,
    resolve_variances,
    standard_error,
    torch_dtype,
    torch_generator,
)

__all__ = ["signal_fc", "signal_cnn", "signal_width_sweep", "correlated_pair", "width_scaling"]

CNN_INITS = ("gaussian", "delta-orthogonal")


def correlated_pair(dim: int, c0: float, rng=None) -> np.ndarray:
    """Two inputs of ``dim`` features with mean square exactly 1 (``q^0 = 1``) and correlation exactly ``c0``.

    Returns
    -------
    ndarray, shape (2, dim), float64
    """
    dim = check_positive_int(dim, "dim", 2)
    c0 = float(c0)
    if not -1.0 <= c0 <= 1.0:
        raise ValueError(f"c0 must be a correlation in [-1, 1], got {c0!r}")
    rng = np.random.default_rng(rng)
    u, w = rng.standard_normal((2, dim))
    u /= np.linalg.norm(u)
    w -= (w @ u) * u
    w /= np.linalg.norm(w)
    x1 = u
    x2 = c0 * u + math.sqrt(max(0.0, 1.0 - c0 * c0)) * w
    return np.stack([x1, x2]) * math.sqrt(dim)


def _pair_from(inputs, data, dim: int, c0: float, seed: int) -> np.ndarray:
    if inputs is not None:
        pair = np.asarray(inputs, dtype=np.float64)
        if pair.ndim < 2 or pair.shape[0] != 2:
            raise ValueError(f"inputs must hold exactly two inputs (shape (2, ...)), got shape {pair.shape}")
        pair = pair.reshape(2, -1)
    elif data is not None:
        from validate.data import load_dataset

        pair = load_dataset(data).x_test[:2].reshape(2, -1)
    else:
        return correlated_pair(dim, c0, rng=seed)
    if not np.all(np.isfinite(pair)):
        raise ValueError("inputs must be finite")
    q = (pair**2).mean(axis=1)
    if q.min() <= 0 or abs(q[0] - q[1]) > 1e-6 * q.max():
        raise ValueError(f"the two inputs must have equal, nonzero mean squares (got {q[0]:.6g} and {q[1]:.6g}); "
                         "standardise them (validate.data.standardize) first")
    return pair


def signal_fc(activation="tanh", sigma_w2: float | None = None, sigma_b2: float = 0.05, *, depth: int = 20,
              width: int = 256, draws: int = 32, init: str = "gaussian", inputs=None, data: str | None = None,
              c0: float = 0.5, dtype="float64", device="cpu", seed: int = 0) -> pd.DataFrame:
    """Empirical ``q^l, c^l`` of random fully connected networks at init beside :func:`meanfield.iterate_maps`.

    Parameters
    ----------
    activation : str or meanfield.Activation
    sigma_w2 : float, optional
        Weight variance; default the critical value :func:`meanfield.critical_sigma_w2` at ``sigma_b2``.
    sigma_b2 : float
    depth : int
        Hidden layers ``L`` (rows ``layer = 1 .. L``).
    width : int
        Hidden width ``N`` (also the input dimension of generated inputs).
    draws : int
        Independent networks (>= 2 for standard errors).
    init : {"gaussian", "orthogonal", "delta-orthogonal"}
        As in :func:`validate.models.init_model_` (same mean-field maps).
    inputs : array_like, shape (2, ...), optional
        The two inputs (equal mean squares). Default: the first two test inputs of ``data`` when given, else a
        generated pair with ``q^0 = 1`` and correlation ``c0`` (:func:`correlated_pair`).
    data : str, optional
        A dataset spec of :func:`validate.data.load_dataset`.
    c0 : float
        Input correlation of the generated pair.
    dtype : {"float32", "float64"}
    device : str
    seed : int

    Returns
    -------
    pandas.DataFrame
        One row per layer: ``layer, width, q_theory, q_sampled, q_stderr, c_theory, c_sampled, c_stderr`` (mean over
        draws and its standard error), ``q_z, c_z`` (``(sampled - theory) / stderr``) and ``q_rmse, c_rmse``, the
        root-mean-square deviation of a single network from the theory (it shrinks like ``1 / sqrt(width)``).
        ``attrs`` holds the settings and ``q0, c0`` of the inputs.
    """
    act, sigma_w2, sigma_b2 = resolve_variances(activation, sigma_w2, sigma_b2)
    depth = check_positive_int(depth, "depth")
    width = check_positive_int(width, "width", 2)
    draws = check_positive_int(draws, "draws")
    torch_type = torch_dtype(dtype)
    device = resolve_device(device)
    pair = _pair_from(inputs, data, width, c0, seed)
    q_in = float((pair[0] ** 2).mean())
    c_in = float(pair[0] @ pair[1] / math.sqrt((pair[0] @ pair[0]) * (pair[1] @ pair[1])))
    q1 = sigma_w2 * q_in + sigma_b2
    c1 = (sigma_w2 * q_in * c_in + sigma_b2) / q1
    theory = meanfield.iterate_maps(act, sigma_w2, sigma_b2, q1, c1, depth - 1)

    x = torch.tensor(pair, dtype=torch_type, device=device)
    gen = torch_generator(seed, device)
    qs = np.empty((draws, depth))
    cs = np.empty((draws, depth))
    captured: list[torch.Tensor] = []
    net = FCNet(x.shape[1], width, depth, 1, act).to(device=device, dtype=torch_type)
    hooks = [layer.register_forward_hook(lambda _m, _i, out: captured.append(out.detach())) for layer in net.hidden]
    try:
        with torch.no_grad():
            for draw in range(draws):
                init_model_(net, sigma_w2, sigma_b2, init=init, generator=gen)
                captured.clear()
                net(x)
                for layer, h in enumerate(captured):
                    h = h.double().cpu().numpy()
                    n1, n2 = (h**2).sum(axis=1)
                    qs[draw, layer] = 0.5 * (n1 + n2) / width
                    cs[draw, layer] = (h[0] @ h[1]) / math.sqrt(n1 * n2)
    finally:
        for hook in hooks:
            hook.remove()
    q_th = theory["q"].to_numpy()
    c_th = theory["c"].to_numpy()
    frame = _layer_table("width", width, q_th, qs, c_th, cs)
    frame["q_rmse"] = np.sqrt(((qs - q_th) ** 2).mean(axis=0))
    frame["c_rmse"] = np.sqrt(((cs - c_th) ** 2).mean(axis=0))
    frame.attrs.update(activation=act.name, sigma_w2=sigma_w2, sigma_b2=sigma_b2, init=init, draws=draws,
                       q0=q_in, c0=c_in, dtype=str(dtype))
    return frame


def width_scaling(frame: pd.DataFrame, column: str = "q_rmse") -> float:
    """Slope of ``log(mean over layers of column)`` against ``log(width)`` (about -0.5 for ``1/sqrt(width)``)."""
    per_width = frame.groupby("width")[column].mean()
    if len(per_width) < 2:
        return math.nan
    return float(np.polyfit(np.log(per_width.index.to_numpy(float)), np.log(per_width.to_numpy()), 1)[0])


def signal_width_sweep(widths=(64, 128, 256, 512), *, out=None, progress: bool = False, **kwargs) -> pd.DataFrame:
    """:func:`signal_fc` for several widths (same inputs and seed), concatenated; resumable per width with ``out``.

    ``attrs["q_slope"]`` / ``attrs["c_slope"]`` are :func:`width_scaling` of ``q_rmse`` / ``c_rmse`` (expect about
    -0.5: a single network deviates from the mean-field map like ``1/sqrt(width)``).
    """
    from tqdm.auto import tqdm

    widths = [check_positive_int(w, "width", 2) for w in np.atleast_1d(widths)]
    inputs = kwargs.pop("inputs", None)
    if inputs is None and kwargs.get("data") is None:
        inputs = correlated_pair(max(widths), kwargs.get("c0", 0.5), rng=kwargs.get("seed", 0))
    digest = None if inputs is None else hashlib.sha256(np.ascontiguousarray(inputs, dtype=np.float64)).hexdigest()
    store = ResultStore(out, "signal", {"kind": "fc-width-sweep", "widths": widths, "inputs_sha256": digest,
                                        **{k: v for k, v in kwargs.items() if k != "device"}})
    frames = []
    for width in tqdm(widths, desc="signal", unit="width", disable=not progress):
        key = f"width={width}"
        frame = store.get(key)
        if frame is None:
            frame = store.put(key, signal_fc(width=width, inputs=inputs, **kwargs))
        frames.append(frame)
    result = pd.concat(frames, ignore_index=True)
    result.attrs.update(q_slope=width_scaling(result, "q_rmse"), c_slope=width_scaling(result, "c_rmse"))
    return store.finish(result, dict(result.attrs))


def _conv_stack(in_channels: int, channels: int, depth: int, kernel_size: int) -> nn.Sequential:
    pad = kernel_size // 2
    return nn.Sequential(*[nn.Conv2d(in_channels if i == 0 else channels, channels, kernel_size, padding=pad,
                                     padding_mode="circular") for i in range(depth)])


def signal_cnn(activation="tanh", sigma_w2: float | None = None, sigma_b2: float = 0.05, *, depth: int = 8,
               channels: int = 64, draws: int = 16, kernel="uniform", kernel_size: int = 3, init: str = "gaussian",
               image=None, data: str | None = None, image_size: int = 8, dtype="float64", device="cpu",
               seed: int = 0) -> pd.DataFrame:
    """Empirical spatial covariance of one image through random circular CNNs beside
    :func:`meanfield.propagate_covariance` (paper 002, eqns. 2.3-2.5).

    The network is ``depth`` circular-padded stride-1 ``kernel_size x kernel_size`` convolutions (``channels``
    outputs each) with the activation between them, initialised by :func:`validate.models.init_model_`
    (``"gaussian"`` with the variance vector ``kernel``, or ``"delta-orthogonal"``, whose mean field is the delta
    vector; Algorithm-1 orthogonal kernels are not covered by the Gaussian covariance map and are rejected).

    Parameters
    ----------
    image : array_like, shape (C, n, n), optional
        The input. Default: the first test image of ``data`` when given, else a standardised Gaussian random image of
        shape ``(3, image_size, image_size)`` drawn from ``seed``.
    Other parameters as in :func:`signal_fc`.

    Returns
    -------
    pandas.DataFrame
        One row per layer: ``layer, channels, q_theory, q_sampled, q_stderr`` (mean over positions of the diagonal
        ``Sigma_aa``), ``c_theory, c_sampled, c_stderr`` (mean over position pairs ``a != a'`` of the correlation
        ``Sigma_aa' / sqrt(Sigma_aa Sigma_a'a')``), ``q_z, c_z`` and ``cov_max_z``, the largest
        ``|sampled - theory| / stderr`` over all entries of ``Sigma^l``.
    """
    act, sigma_w2, sigma_b2 = resolve_variances(activation, sigma_w2, sigma_b2)
    depth = check_positive_int(depth, "depth")
    channels = check_positive_int(channels, "channels")
    draws = check_positive_int(draws, "draws")
    kernel_size = check_positive_int(kernel_size, "kernel_size")
    if kernel_size % 2 == 0:
        raise ValueError(f"kernel_size must be odd (same-size circular padding), got {kernel_size}")
    if init not in CNN_INITS:
        raise ValueError(f"init must be one of {', '.join(CNN_INITS)} for the CNN signal probe, got {init!r}")
    torch_type = torch_dtype(dtype)
    device = resolve_device(device)
    if image is not None:
        img = np.asarray(image, dtype=np.float64)
    elif data is not None:
        from validate.data import load_dataset

        img = load_dataset(data).x_test[0]
    else:
        from validate.data import standardize

        img = standardize(np.random.default_rng(seed).standard_normal((1, 3, image_size, image_size)))[0]
    if img.ndim != 3 or img.shape[1] != img.shape[2]:
        raise ValueError(f"image must have shape (C, n, n), got {img.shape}")
    if not np.all(np.isfinite(img)):
        raise ValueError("image must be finite")
    c_in, n = img.shape[0], img.shape[1]
    if n < kernel_size:
        raise ValueError(f"image size {n} must be >= kernel_size {kernel_size}")
    v = meanfield.kernel_variance("delta" if init == "delta-orthogonal" else kernel, kernel_size, ndim=2)
    flat = img.reshape(c_in, n * n)
    k0 = flat.T @ flat / c_in
    sigma1 = meanfield.propagate_covariance(k0, "linear", sigma_w2, sigma_b2, v, 1)[1]
    theory = meanfield.propagate_covariance(sigma1, act, sigma_w2, sigma_b2, v, depth - 1)  # (depth, N, N)

    net = _conv_stack(c_in, channels, depth, kernel_size).to(device=device, dtype=torch_type)
    gen = torch_generator(seed, device)
    x = torch.tensor(img[None], dtype=torch_type, device=device)
    covs = np.empty((draws, depth, n * n, n * n))
    captured: list[torch.Tensor] = []
    hooks = [conv.register_forward_hook(lambda _m, _i, out: captured.append(out.detach())) for conv in net]
    phi = _activation_module(act)
    try:
        with torch.no_grad():
            for draw in range(draws):
                init_model_(net, sigma_w2, sigma_b2, init=init, kernel=kernel, generator=gen)
                captured.clear()
                h = x
                for conv in net:
                    h = phi(conv(h))
                for layer, out in enumerate(captured):
                    hm = out[0].reshape(channels, n * n).double().cpu().numpy()
                    covs[draw, layer] = hm.T @ hm / channels
    finally:
        for hook in hooks:
            hook.remove()
    mean = covs.mean(axis=0)
    err = standard_error(covs)
    off = ~np.eye(n * n, dtype=bool)

    def summary(s):  # mean diagonal and mean off-diagonal correlation, for (..., N, N)
        d = np.diagonal(s, axis1=-2, axis2=-1)
        corr = s / np.sqrt(d[..., :, None] * d[..., None, :])
        return d.mean(axis=-1), corr[..., off].mean(axis=-1)

    q_th, c_th = summary(theory)
    q_draw, c_draw = summary(covs)
    with np.errstate(divide="ignore", invalid="ignore"):
        z = np.abs(mean - theory) / err
    frame = _layer_table("channels", channels, q_th, q_draw, c_th, c_draw)
    frame["cov_max_z"] = np.nanmax(z.reshape(depth, -1), axis=1)
    frame.attrs.update(activation=act.name, sigma_w2=sigma_w2, sigma_b2=sigma_b2, init=init, draws=draws,
                       image_shape=list(img.shape), kernel=str(kernel), dtype=str(dtype))
    return frame


def _layer_table(size_name: str, size: int, q_th, qs: np.ndarray, c_th, cs: np.ndarray) -> pd.DataFrame:
    """Per layer: theory beside the mean over draws (``qs``, ``cs`` of shape ``(draws, depth)``), its standard error
    and the deviation in units of it (``q_z``, ``c_z``)."""
    frame = pd.DataFrame({
        "layer": np.arange(1, qs.shape[1] + 1), size_name: size,
        "q_theory": q_th, "q_sampled": qs.mean(axis=0), "q_stderr": standard_error(qs),
        "c_theory": c_th, "c_sampled": cs.mean(axis=0), "c_stderr": standard_error(cs),
    })
    frame["q_z"] = (frame["q_sampled"] - frame["q_theory"]) / frame["q_stderr"]
    frame["c_z"] = (frame["c_sampled"] - frame["c_theory"]) / frame["c_stderr"]
    return frame


def _activation_module(act):
    from validate.activations import torch_activation

    return torch_activation(act)
