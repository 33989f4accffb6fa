"""``spectra`` probe: singular values of the input-output Jacobian of real torch networks at init beside
:func:`rmt.jacobian_spectrum` (Pennington, Schoenholz, Ganguli 2017, 2018; paper 002, section 2.2).

A network of ``depth`` layers ``x -> phi(W x + b)`` (fully connected :class:`validate.models.FCNet` hidden layers, or
circular-padded stride-1 ``c -> c`` convolutions) is initialised by :func:`validate.models.init_model_`; its input is
scaled so that the first pre-activation length is ``q*`` (``sigma_w2 q^0 + sigma_b2 = q*``), so every layer sits at the
fixed point as the theory assumes. The Jacobian ``J = d phi(h^L) / d x = prod_l D^l W^l`` is computed by
``torch.func.jacrev`` (exact, one reverse pass per output, vectorised) and its squared singular values ``lam`` are
compared with the limiting law of ``J J^T`` by the Kolmogorov-Smirnov distance
(:meth:`rmt.JacobianSpectrum.ks_distance`). Gaussian weights are compared with ``weights="gaussian"``, orthogonal and
Delta-Orthogonal ones with ``weights="orthogonal"`` (a conv layer with i.i.d. taps tends to the Gaussian law as the
channel count grows, paper 002 appendix E; orthogonal kernels give orthogonal operators with circular padding).

Accuracy: in float64 the singular values carry an absolute error of about ``1e-16 * s_max * depth``; use
``dtype="float64"`` (the default) for deep or poorly conditioned networks.
"""

from __future__ import annotations

import math

import numpy as np
import pandas as pd
import torch
from torch import nn

import meanfield
import rmt
from validate.models import FCNet, init_model_
from validate.probes.common import (
    ResultStore,
    check_positive_int,
    resolve_device,
    resolve_variances,
    torch_dtype,
    torch_generator,
)

__all__ = ["network_spectrum", "spectra", "is_homogeneous", "ARCHITECTURES", "INITS", "DEFAULT_SETTINGS"]

ARCHITECTURES = ("fc", "cnn")
INITS = ("gaussian", "orthogonal", "delta-orthogonal")
# Delta-Orthogonal has no spatial extent to be a delta in for dense layers (it equals orthogonal there)
DEFAULT_SETTINGS = (("fc", "gaussian"), ("fc", "orthogonal"), ("cnn", "gaussian"), ("cnn", "orthogonal"),
                    ("cnn", "delta-orthogonal"))


def is_homogeneous(act) -> bool:
    """Whether ``phi(a x) = a phi(x)`` for ``a > 0`` (``Activation.homogeneous`` if present, else on a grid)."""
    flag = getattr(act, "homogeneous", None)
    if flag is not None:
        return bool(flag)
    x = np.linspace(-5.0, 5.0, 101)
    return bool(np.allclose(act.phi(2.5 * x), 2.5 * act.phi(x), rtol=1e-12, atol=1e-12))


def _theory_weights(init: str) -> str:
    return "gaussian" if init == "gaussian" else "orthogonal"


def network_spectrum(activation="tanh", sigma_w2: float | None = None, sigma_b2: float = 0.05, *, depth: int = 16,
                     architecture: str = "fc", width: int = 128, image_size: int = 6, kernel_size: int = 3,
                     init: str = "orthogonal", draws: int = 1, dtype="float64", device="cpu",
                     seed: int = 0) -> pd.DataFrame:
    """Squared singular values ``lam`` of ``J = d phi(h^L)/dx`` for random networks at init.

    Parameters
    ----------
    activation, sigma_w2, sigma_b2
        As in :func:`rmt.jacobian_spectrum`; ``sigma_w2`` defaults to the critical value.
    depth : int
        Number of layers ``L``.
    architecture : {"fc", "cnn"}
    width : int
        Fully connected width ``N`` (J is ``N x N``), or channels ``c`` of the CNN (J is ``c n^2`` square).
    image_size, kernel_size : int
        CNN geometry (``n x n`` periodic images, odd kernels).
    init : {"gaussian", "orthogonal", "delta-orthogonal"}
        As :func:`validate.models.init_model_` (Delta-Orthogonal equals orthogonal for fully connected layers).
    draws : int
        Independent networks.
    dtype, device, seed
        Torch settings.

    Returns
    -------
    pandas.DataFrame
        Columns ``draw``, ``lam`` (ascending within a draw); ``attrs`` holds ``q_star`` and the settings.
    """
    act, sigma_w2, sigma_b2 = resolve_variances(activation, sigma_w2, sigma_b2)
    if architecture not in ARCHITECTURES:
        raise ValueError(f"architecture must be one of {', '.join(ARCHITECTURES)}, got {architecture!r}")
    if init not in INITS:
        raise ValueError(f"init must be one of {', '.join(INITS)}, got {init!r}")
    depth = check_positive_int(depth, "depth")
    width = check_positive_int(width, "width")
    draws = check_positive_int(draws, "draws")
    q = float(meanfield.q_star(act, sigma_w2, sigma_b2))
    if math.isfinite(q) and q > sigma_b2:
        scale = math.sqrt((q - sigma_b2) / sigma_w2)  # sigma_w2 q^0 + sigma_b2 = q*
    elif sigma_b2 == 0 and is_homogeneous(act):
        scale = 1.0  # without biases the Jacobian of a positively homogeneous network ignores the input's scale
    else:
        raise ValueError(f"no finite fixed point q* > sigma_b2 for {act.name} at sigma_w2={sigma_w2}, "
                         f"sigma_b2={sigma_b2} (q*={q})")
    torch_type = torch_dtype(dtype)
    device = resolve_device(device)
    gen = torch_generator(seed, device)
    if architecture == "fc":
        net = FCNet(width, width, depth, 1, act)
        layers, phi, shape = list(net.hidden), net.phi, (width,)
    else:
        kernel_size = check_positive_int(kernel_size, "kernel_size")
        image_size = check_positive_int(image_size, "image_size", kernel_size)
        if kernel_size % 2 == 0:
            raise ValueError(f"kernel_size must be odd, got {kernel_size}")
        from validate.activations import torch_activation

        net = nn.Sequential(*[nn.Conv2d(width, width, kernel_size, padding=kernel_size // 2, padding_mode="circular")
                              for _ in range(depth)])
        layers, phi, shape = list(net), torch_activation(act), (width, image_size, image_size)
    net = net.to(device=device, dtype=torch_type)

    def forward(x):
        for layer in layers:
            x = phi(layer(x.unsqueeze(0))).squeeze(0)
        return x

    frames = []
    for draw in range(draws):
        init_model_(net, sigma_w2, sigma_b2, init=init, generator=gen)
        x = torch.randn(shape, generator=gen, device=device, dtype=torch_type)
        x = x * (scale / x.pow(2).mean().sqrt())
        jac = torch.func.jacrev(forward)(x).reshape(x.numel(), x.numel())
        sv = torch.linalg.svdvals(jac.detach().double()).cpu().numpy()
        frames.append(pd.DataFrame({"draw": draw, "lam": np.sort(sv**2)}))
    out = pd.concat(frames, ignore_index=True)
    out.attrs.update(q_star=q, activation=act.name, sigma_w2=sigma_w2, sigma_b2=sigma_b2, depth=depth,
                     architecture=architecture, width=width, init=init, size=int(np.prod(shape)))
    return out


def spectra(activation="tanh", sigma_w2: float | None = None, sigma_b2: float = 0.05, *, depth: int = 16,
            settings=DEFAULT_SETTINGS, width: int = 128, channels: int = 8, image_size: int = 6,
            draws: int = 2, dtype="float64", device="cpu", seed: int = 0, out=None,
            progress: bool = False) -> pd.DataFrame:
    """Sampled Jacobian spectra beside :func:`rmt.jacobian_spectrum`, one row per (architecture, init).

    Parameters
    ----------
    settings : sequence of (architecture, init)
        ``architecture`` in {"fc", "cnn"}, ``init`` in {"gaussian", "orthogonal", "delta-orthogonal"}.
    width, channels : int
        FC width and CNN channel count.
    out : directory, optional
        Resumable output (one part per setting, holding its sampled ``lam``).
    Other parameters as in :func:`network_spectrum`.

    Returns
    -------
    pandas.DataFrame
        Columns ``architecture, init, weights`` (the theoretical law), ``size`` (N), ``samples``, ``ks_distance``,
        ``mean_sampled, mean_theory, variance_sampled, variance_theory`` (of ``lam``), ``s_min, s_max`` (sampled
        singular values) and ``condition_number`` (``s_max / s_min`` of the pooled samples).
    """
    from tqdm.auto import tqdm

    act = meanfield.get_activation(activation)
    if sigma_w2 is None:
        sigma_w2 = float(meanfield.critical_sigma_w2(act, float(sigma_b2))[0])
    settings = [tuple(s) for s in settings]
    for a, i in settings:
        if a not in ARCHITECTURES:
            raise ValueError(f"architecture must be one of {', '.join(ARCHITECTURES)}, got {a!r}")
        if i not in INITS:
            raise ValueError(f"init must be one of {', '.join(INITS)}, got {i!r}")
    store = ResultStore(out, "spectra", dict(activation=act.name, sigma_w2=sigma_w2, sigma_b2=sigma_b2, depth=depth,
                                             settings=settings, width=width, channels=channels,
                                             image_size=image_size, draws=draws, dtype=str(dtype), seed=seed))
    laws: dict[str, rmt.JacobianSpectrum] = {}
    rows = []
    for arch, init in tqdm(settings, desc="spectra", unit="setting", disable=not progress):
        key = f"{arch}-{init}"
        samples = store.get(key)
        if samples is None:
            samples = store.put(key, network_spectrum(
                act, sigma_w2, sigma_b2, depth=depth, architecture=arch, width=width if arch == "fc" else channels,
                image_size=image_size, init=init, draws=draws, dtype=dtype, device=device, seed=seed))
        weights = _theory_weights(init)
        if weights not in laws:
            laws[weights] = rmt.jacobian_spectrum(act, sigma_w2, sigma_b2, depth, weights=weights)
        law = laws[weights]
        lam = samples["lam"].to_numpy()
        s = np.sqrt(np.clip(lam, 0.0, None))
        rows.append({"architecture": arch, "init": init, "weights": weights, "size": len(lam) // draws,
                     "samples": len(lam), "ks_distance": law.ks_distance(lam),
                     "mean_sampled": lam.mean(), "mean_theory": law.mean,
                     "variance_sampled": lam.var(), "variance_theory": law.variance,
                     "s_min": s.min(), "s_max": s.max(),
                     "condition_number": s.max() / s.min() if s.min() > 0 else math.inf})
    result = pd.DataFrame(rows)
    return store.finish(result, {"max_ks_distance": float(result["ks_distance"].max())})
