"""``speed`` probe: orthogonal against critical Gaussian initialisation of a deep vanilla CNN (paper 002, Fig. 5).

Paper 002 (Xiao et al. 2018, section 4.2) trains a 4,000-layer tanh CNN on MNIST: with critical Gaussian kernels it
learns slowly, with orthogonal kernels (Algorithm 1) it learns quickly, because only orthogonal kernels give the
input-output Jacobian a well-conditioned spectrum (dynamical isometry). This probe trains the same
:class:`validate.models.VanillaCNN` with both initialisations at the critical ``sigma_w2`` of
:func:`meanfield.critical_sigma_w2`, on the same mini-batches (:func:`validate.batched.train_batched`), and puts the
learning curves side by side with the theory's prediction of the conditioning: the variance of the spectrum of
``J J^T`` of the deep block (:func:`rmt.jacobian_moments`), ``L (mu_2/mu_1^2 - 1 - s_1)`` at criticality, larger by
``L`` for Gaussian (``s_1 = -1``) than for orthogonal (``s_1 = 0``) weights. Scaled to CPU by default (depth 32,
16 channels, a few hundred steps); the GPU script ``benchmarks/gpu_probes.py`` runs a deeper setting.
"""

from __future__ import annotations

import math

import numpy as np
import pandas as pd

import meanfield
import rmt
from validate.probes.common import ResultStore, check_positive_int, torch_dtype, torch_generator

__all__ = ["speed", "steps_to_accuracy", "SPEED_INITS"]

SPEED_INITS = ("gaussian", "orthogonal", "delta-orthogonal")


def steps_to_accuracy(curve: pd.DataFrame, level: float, column: str = "train_accuracy") -> float:
    """First evaluated step at which ``column`` reaches ``level`` (NaN when it never does)."""
    hit = curve[curve[column] >= level]
    return float(hit["step"].min()) if len(hit) else math.nan


def speed(activation="tanh", sigma_b2: float = 2.01e-5, *, depth: int = 32, channels: int = 16,
          inits=("gaussian", "orthogonal"), data: str = "mnist-sample", steps: int = 300, batch_size: int = 64,
          lr: float = 0.002, momentum: float = 0.9, num_evals: int = 10, eval_size: int = 1000, dtype="float32",
          device="cpu", seed: int = 0, out=None, progress: bool = False) -> pd.DataFrame:
    """Learning curves of a deep vanilla CNN under each initialisation in ``inits``, at the critical point.

    Parameters
    ----------
    activation : str or meanfield.Activation
    sigma_b2 : float
        Bias variance; ``sigma_w2`` is critical for it (paper 002's demo: tanh, ``sigma_b2 = 2.01e-5``,
        ``sigma_w2 ~ 1.05``).
    depth, channels : int
        The CNN's deep block depth ``d`` and channel count ``c``.
    inits : sequence of {"gaussian", "orthogonal", "delta-orthogonal"}
    data : str
        An image dataset spec (:func:`validate.data.load_dataset`).
    steps, batch_size, lr, momentum, num_evals, eval_size
        :class:`validate.batched.TrainConfig`.
    dtype, device, seed, out, progress
        Torch settings; resumable output directory (one part per init); progress bar.

    Returns
    -------
    pandas.DataFrame
        One row per (init, evaluation step): ``init, step, loss, train_accuracy, test_accuracy, diverged`` and the
        theory columns ``sigma_w2, jacobian_variance_theory`` (variance of the limiting ``J J^T`` law of the deep
        block). ``attrs["steps_to_half"]`` maps each init to the first step with training accuracy >= 0.5.
    """
    from validate.batched import TrainConfig, train_batched
    from validate.data import load_dataset
    from validate.models import build_model, init_model_

    act = meanfield.get_activation(activation)
    depth = check_positive_int(depth, "depth")
    channels = check_positive_int(channels, "channels")
    inits = list(inits)
    for init in inits:
        if init not in SPEED_INITS:
            raise ValueError(f"init must be one of {', '.join(SPEED_INITS)}, got {init!r}")
    sigma_w2 = float(meanfield.critical_sigma_w2(act, float(sigma_b2))[0])
    config = TrainConfig(steps=steps, batch_size=batch_size, lr=lr, momentum=momentum, num_evals=num_evals,
                         eval_size=eval_size, seed=seed)
    torch_type = torch_dtype(dtype)
    ds = load_dataset(data)
    if len(ds.input_shape) != 3:
        raise ValueError(f"speed needs an image dataset (C, H, W), got input shape {ds.input_shape} for {data!r}")
    store = ResultStore(out, "speed", dict(activation=act.name, sigma_b2=float(sigma_b2), sigma_w2=sigma_w2,
                                           depth=depth, channels=channels, inits=inits, data=data, steps=steps,
                                           batch_size=batch_size, lr=lr, momentum=momentum, num_evals=num_evals,
                                           eval_size=eval_size, dtype=str(dtype), seed=seed))
    from tqdm.auto import tqdm

    frames = []
    for k, init in enumerate(tqdm(inits, desc="speed", unit="init", disable=not progress)):
        curve = store.get(init)
        if curve is None:
            net = build_model("cnn", depth=depth, input_shape=ds.input_shape, num_classes=ds.num_classes,
                              activation=act, channels=channels).to(dtype=torch_type)
            init_model_(net, sigma_w2, float(sigma_b2), init=init, generator=torch_generator(seed + 1000 * k))
            curve = train_batched([net], ds, config, device=device).drop(columns="network")
            curve.insert(0, "init", init)
            curve = store.put(init, curve)
        weights = "gaussian" if init == "gaussian" else "orthogonal"
        moments = rmt.jacobian_moments(act, sigma_w2, float(sigma_b2), depth, weights=weights, k=2)
        curve = curve.assign(sigma_w2=sigma_w2, jacobian_variance_theory=float(moments[1] - moments[0] ** 2))
        frames.append(curve)
    result = pd.concat(frames, ignore_index=True)
    summary = {init: steps_to_accuracy(c, 0.5) for init, c in result.groupby("init", sort=False)}
    result.attrs["steps_to_half"] = summary
    final = {init: float(c.sort_values("step")["test_accuracy"].iloc[-1]) for init, c in
             result.groupby("init", sort=False)}
    return store.finish(result, {"steps_to_train_accuracy_0.5": summary, "final_test_accuracy": final,
                                 "jacobian_variance_theory": {i: float(np.unique(c.jacobian_variance_theory)[0])
                                                              for i, c in result.groupby("init", sort=False)}})
