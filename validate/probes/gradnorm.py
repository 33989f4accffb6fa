"""``gradnorm`` probe: per-block gradient-norm ratios ``||dE/dx_in|| / ||dE/dx_out||`` at init and through training.

Paper 003 (Zaeemzadeh et al., Theorem 1 and Section 4.1): identity-skip residual blocks are norm-preserving (ratio
near 1), increasingly so as blocks are added; transition blocks are not, unless their dimension-changing convolution
is kept norm-preserving by the Procrustes projection every ``T`` steps (ProcResNet). Paper 000 (Xie et al.): plain
Conv-BN-ReLU networks lose the backward signal; the orthonormal regulariser ``(lambda/2) sum ||W W^T - I||_F^2`` with
orthonormal init keeps it better than L2 weight decay with MSRA (He) init, and backward-error modulation
(:class:`validate.probes.modulation.Modulation`) on for the first iterations lets deeper plain networks train.

The networks are :mod:`validate.probes.nets`; the loss ``E`` is the mean cross-entropy of a fixed probe batch (the
measuring forward pass runs in training mode, as training does, so batch norm uses that batch's statistics).
"""

from __future__ import annotations

import math

import numpy as np
import pandas as pd
import torch
import torch.nn.functional as F
from torch import nn

from validate.init import orthonormal_, orthonormal_penalty
from validate.probes.common import (
    ResultStore,
    check_positive_int,
    resolve_device,
    torch_dtype,
    torch_generator,
)
from validate.probes.modulation import Modulation
from validate.probes.nets import VARIANTS, ProcrustesTransition, build_variant

__all__ = ["block_gradient_ratios", "train_gradnorm", "gradnorm", "REGULARIZERS", "norm_preserving"]

REGULARIZERS = ("l2", "orthonormal")


def norm_preserving(block: nn.Module) -> bool:
    """Whether paper 003 predicts a ratio near 1: identity-skip blocks and Procrustes transitions."""
    return getattr(block, "kind", None) == "identity" or isinstance(block, ProcrustesTransition)


def block_gradient_ratios(model: nn.Module, x: torch.Tensor, y: torch.Tensor | None = None, blocks=None,
                          loss_fn=None) -> pd.DataFrame:
    """Gradient norms at the input and output of each block for one batch, and their ratio.

    Parameters
    ----------
    model : nn.Module
    x : torch.Tensor
        A batch of inputs.
    y : torch.Tensor, optional
        Class labels; ``E`` is the mean cross-entropy. Without labels ``E = sum(out * r)`` with a fixed standard
        normal ``r`` (a random projection of the output).
    blocks : sequence of nn.Module, optional
        Default ``model.blocks``.
    loss_fn : callable, optional
        ``loss_fn(output, y) -> scalar`` instead of the cross-entropy.

    Returns
    -------
    pandas.DataFrame
        Columns ``block`` (index), ``kind``, ``grad_in``, ``grad_out`` (Frobenius norms over the batch) and
        ``ratio = grad_in / grad_out``.
    """
    blocks = list(model.blocks if blocks is None else blocks)
    records: list[tuple[torch.Tensor, torch.Tensor]] = []

    def hook(_m, inputs, output):
        records.append((inputs[0], output))

    handles = [b.register_forward_hook(hook) for b in blocks]
    try:
        x = x.detach().requires_grad_(True)
        out = model(x)
    finally:
        for h in handles:
            h.remove()
    if len(records) != len(blocks):
        raise ValueError(f"expected one call per block, got {len(records)} calls for {len(blocks)} blocks")
    if loss_fn is not None:
        loss = loss_fn(out, y)
    elif y is not None:
        loss = F.cross_entropy(out, y)
    else:
        gen = torch_generator(0, out.device)
        loss = (out * torch.randn(out.shape, generator=gen, device=out.device, dtype=out.dtype)).sum()
    tensors, index = [], {}
    for pair in records:
        for t in pair:
            if id(t) not in index:
                index[id(t)] = len(tensors)
                tensors.append(t)
    grads = torch.autograd.grad(loss, tensors, allow_unused=True)
    rows = []
    for k, ((t_in, t_out), block) in enumerate(zip(records, blocks, strict=True)):
        g_in, g_out = grads[index[id(t_in)]], grads[index[id(t_out)]]
        n_in = float(g_in.double().norm()) if g_in is not None else 0.0
        n_out = float(g_out.double().norm()) if g_out is not None else 0.0
        rows.append({"block": k, "kind": getattr(block, "kind", type(block).__name__), "grad_in": n_in,
                     "grad_out": n_out, "ratio": n_in / n_out if n_out > 0 else math.nan})
    return pd.DataFrame(rows)


@torch.no_grad()
def _init_weights_(model: nn.Module, regularizer: str, generator: torch.Generator) -> None:
    for m in model.modules():
        if isinstance(m, (nn.Conv2d, nn.Linear)):
            if regularizer == "orthonormal":
                orthonormal_(m.weight, generator=generator)
            else:
                nn.init.kaiming_normal_(m.weight, nonlinearity="relu", generator=generator)
            if m.bias is not None:
                m.bias.zero_()
    if hasattr(model, "project_"):
        model.project_()


def train_gradnorm(variant: str = "resnet", regularizer: str = "l2", *, data: str = "digits", per_stage: int = 3,
                   widths=(16, 32, 64), steps: int = 200, record_every: int = 20, batch_size: int = 64,
                   lr: float = 0.05, momentum: float = 0.9, weight_decay: float = 1e-4, ortho_lambda: float = 1e-3,
                   procrustes_every: int = 10, modulate_iterations: int = 50, dtype="float32", device="cpu",
                   seed: int = 0) -> pd.DataFrame:
    """Train one network with SGD and record its block gradient-norm ratios every ``record_every`` steps.

    Parameters
    ----------
    variant : {"plain", "resnet", "procresnet", "plain-modulated"}
        :func:`validate.probes.nets.build_variant`; ``plain-modulated`` adds :class:`Modulation` for the first
        ``modulate_iterations`` steps; ``procresnet`` projects its transitions every ``procrustes_every`` steps.
    regularizer : {"l2", "orthonormal"}
        ``"l2"``: MSRA (He) init and SGD weight decay ``weight_decay``; ``"orthonormal"``: orthonormal init
        (:func:`validate.orthonormal_`) and the penalty :func:`validate.orthonormal_penalty` with ``ortho_lambda``
        (paper 000, Eq. 3), no weight decay.
    data : str
        Image dataset spec (:func:`validate.data.load_dataset`).
    per_stage, widths
        Blocks per stage and stage widths (depth = ``1 + 3 per_stage`` convolutions for plain nets).
    steps, record_every, batch_size, lr, momentum
        SGD settings; ratios, probe-batch loss and test accuracy are recorded at steps 0, ``record_every``, ...
    dtype, device, seed

    Returns
    -------
    pandas.DataFrame
        One row per (recorded step, block): ``variant, regularizer, step, block, kind, ratio, ratio_theory`` (1.0
        for blocks paper 003 predicts norm-preserving, NaN otherwise), ``grad_in, grad_out``, ``loss`` (probe
        batch, evaluation mode), ``train_loss`` (mean cross-entropy of the training mini-batches since the previous
        record, in training mode as SGD saw them; NaN at step 0 and non-finite once training diverged),
        ``train_accuracy`` (their accuracy, likewise), ``test_accuracy`` (evaluation mode: batch norm uses its running
        statistics, which lag the weights of deep nets early in training), and ``transition_sv_dev``, the largest
        ``|s / target - 1|`` over the Procrustes transitions' operator singular values (NaN for other variants).
    """
    from validate.data import load_dataset

    if variant not in VARIANTS:
        raise ValueError(f"variant must be one of {', '.join(VARIANTS)}, got {variant!r}")
    if regularizer not in REGULARIZERS:
        raise ValueError(f"regularizer must be one of {', '.join(REGULARIZERS)}, got {regularizer!r}")
    steps = check_positive_int(steps, "steps", 0)
    record_every = check_positive_int(record_every, "record_every")
    procrustes_every = check_positive_int(procrustes_every, "procrustes_every")
    torch_type = torch_dtype(dtype)
    device = resolve_device(device)
    ds = load_dataset(data)
    if len(ds.input_shape) != 3:
        raise ValueError(f"gradnorm needs an image dataset (C, H, W), got input shape {ds.input_shape} for {data!r}")
    gen = torch_generator(seed, "cpu")  # weights, probe batch and batch order (the global RNG is not touched)
    model = build_variant(variant, ds.input_shape[0], ds.num_classes, per_stage, widths)
    _init_weights_(model, regularizer, gen)
    model = model.to(device=device, dtype=torch_type)
    x_train = torch.tensor(ds.x_train, dtype=torch_type, device=device)
    y_train = torch.tensor(ds.y_train, device=device)
    x_test = torch.tensor(ds.x_test, dtype=torch_type, device=device)
    y_test = torch.tensor(ds.y_test, device=device)
    probe = torch.randperm(len(x_train), generator=gen)[:batch_size].to(device)
    optimizer = torch.optim.SGD(model.parameters(), lr=lr, momentum=momentum,
                                weight_decay=weight_decay if regularizer == "l2" else 0.0)
    # paper 000 modulates between consecutive convolutions; the readout's logit errors are on another scale
    convs = [m for m in model.modules() if isinstance(m, nn.Conv2d)]
    modulation = (Modulation(model, layers=convs, iterations=modulate_iterations) if variant == "plain-modulated"
                  else None)
    transitions = [b for b in model.blocks if isinstance(b, ProcrustesTransition)]
    frames = []
    order = torch.randperm(len(x_train), generator=gen)
    cursor = 0
    batch_losses: list[float] = []  # training cross-entropies and accuracies since the last record
    batch_hits: list[float] = []
    try:
        for step in range(steps + 1):
            if step % record_every == 0 or step == steps:
                frame = block_gradient_ratios(model, x_train[probe], y_train[probe])
                model.zero_grad(set_to_none=True)
                with torch.no_grad():
                    model.eval()
                    acc = float((model(x_test).argmax(1) == y_test).double().mean())
                    loss = float(F.cross_entropy(model(x_train[probe]), y_train[probe]))
                    model.train()
                frame.insert(0, "step", step)
                frame["loss"] = loss
                frame["train_loss"] = float(np.mean(batch_losses)) if batch_losses else math.nan
                frame["train_accuracy"] = float(np.mean(batch_hits)) if batch_hits else math.nan
                batch_losses, batch_hits = [], []
                frame["test_accuracy"] = acc
                frame["transition_sv_dev"] = _transition_deviation(transitions)
                frame["ratio_theory"] = [1.0 if norm_preserving(b) else math.nan for b in model.blocks]
                frames.append(frame)
            if step == steps:
                break
            if cursor + batch_size > len(order):
                order, cursor = torch.randperm(len(x_train), generator=gen), 0
            idx = order[cursor:cursor + batch_size].to(device)
            cursor += batch_size
            out = model(x_train[idx])
            loss_t = F.cross_entropy(out, y_train[idx])
            batch_losses.append(float(loss_t.detach()))
            batch_hits.append(float((out.detach().argmax(1) == y_train[idx]).double().mean()))
            if regularizer == "orthonormal":
                loss_t = loss_t + orthonormal_penalty(model, ortho_lambda)
            optimizer.zero_grad(set_to_none=True)
            loss_t.backward()
            optimizer.step()
            if modulation is not None:
                modulation.step()
            if transitions and (step + 1) % procrustes_every == 0:
                model.project_()
    finally:
        if modulation is not None:
            modulation.remove()
    result = pd.concat(frames, ignore_index=True)
    result.insert(0, "regularizer", regularizer)
    result.insert(0, "variant", variant)
    return result


def _transition_deviation(transitions) -> float:
    if not transitions:
        return math.nan
    import rmt

    worst = 0.0
    for block in transitions:
        w = block.projected.weight.detach().double().cpu().numpy()
        s = rmt.conv_singular_values(w, 1)
        worst = max(worst, float(np.max(np.abs(s / block.target - 1.0))))
    return worst


def gradnorm(variants=("plain", "resnet", "procresnet", "plain-modulated"), regularizers=("l2", "orthonormal"), *,
             out=None, progress: bool = False, **kwargs) -> pd.DataFrame:
    """:func:`train_gradnorm` for every (variant, regularizer), concatenated; resumable per run with ``out``.

    ``attrs`` (and the JSON summary) hold per run the median ``|log ratio|`` of identity / transition / plain blocks
    at init and at the end, and the final test accuracy.
    """
    from tqdm.auto import tqdm

    runs = [(v, r) for v in variants for r in regularizers]
    for v, r in runs:
        if v not in VARIANTS:
            raise ValueError(f"variant must be one of {', '.join(VARIANTS)}, got {v!r}")
        if r not in REGULARIZERS:
            raise ValueError(f"regularizer must be one of {', '.join(REGULARIZERS)}, got {r!r}")
    store = ResultStore(out, "gradnorm", {"runs": runs, **{k: v for k, v in kwargs.items() if k != "device"}})
    frames = []
    for v, r in tqdm(runs, desc="gradnorm", unit="run", disable=not progress):
        key = f"{v}-{r}"
        frame = store.get(key)
        if frame is None:
            frame = store.put(key, train_gradnorm(v, r, **kwargs))
        frames.append(frame)
    result = pd.concat(frames, ignore_index=True)
    return store.finish(result, summarize_gradnorm(result))


def summarize_gradnorm(result: pd.DataFrame) -> dict:
    """Per run: median ``|log ratio|`` per block kind at the first and last step, the final test accuracy and loss,
    the final ``train_loss`` and ``diverged`` (a training or probe loss became non-finite)."""
    summary = {}
    for (v, r), run in result.groupby(["variant", "regularizer"], sort=False):
        first, last = run[run.step == run.step.min()], run[run.step == run.step.max()]
        entry = {"final_test_accuracy": float(last.test_accuracy.iloc[0]), "final_loss": float(last.loss.iloc[0])}
        per_step = run.groupby("step", sort=True)
        hits = per_step.train_accuracy.first() if "train_accuracy" in run else None
        # parts saved before these columns existed have none (NaN after concatenation); a diverged run has NaN
        # losses but finite accuracies
        if hits is not None and np.isfinite(hits.iloc[1:]).all():
            losses = per_step.train_loss.first()
            entry["final_train_loss"] = float(losses.iloc[-1])
            entry["final_train_accuracy"] = float(hits.iloc[-1])
            entry["diverged"] = bool(not np.isfinite(losses.iloc[1:]).all() or not np.isfinite(last.loss).all())
        for kind in sorted(run.kind.unique()):
            for name, part in (("init", first), ("final", last)):
                vals = np.abs(np.log(part[part.kind == kind].ratio.to_numpy()))
                entry[f"{kind}_median_abs_log_ratio_{name}"] = float(np.median(vals))
        summary[f"{v}/{r}"] = entry
    return summary
