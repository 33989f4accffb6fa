"""Train K networks of one architecture as one batched computation, or one at a time (the reference).

The K networks (same architecture, different initial parameters) are stacked along a new leading axis and evaluated
with ``torch.func.functional_call`` under ``torch.vmap``, which turns the K linear layers into one batched matmul and
the K convolutions into one grouped convolution. All networks see the same mini-batches. The loss minimised is the
sum of the K per-network mean cross-entropies, so each network's gradient is exactly its own; plain SGD (with optional
momentum, as ``torch.optim.SGD``) acts elementwise, so the batched run equals K separate runs up to floating-point
summation order (``tests/test_batched.py`` checks this to 1e-9 in float64).

A network whose training loss becomes non-finite is *diverged*: it is recorded from then on with NaN loss and chance
accuracy, and it cannot affect the others (their slices of every batched operation are independent).
"""

from __future__ import annotations

import contextlib
import copy
import os
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import pandas as pd
import torch
import torch.nn.functional as F
from torch import nn

from validate.data import Dataset
from validate.models import FCNet

__all__ = ["TrainConfig", "evaluation_steps", "estimate_memory", "available_memory", "max_networks", "resolve_device",
           "matmul_precision", "matmul_rate", "step_cost", "train_batched", "train_sequential"]


@dataclass(frozen=True)
class TrainConfig:
    """Optimisation settings shared by all networks of a run.

    Attributes
    ----------
    steps : int
        SGD steps (>= 1).
    batch_size : int
        Mini-batch size; batches are drawn by epoch-wise random permutations from ``seed``.
    lr, momentum : float
        Plain SGD as ``torch.optim.SGD(lr=lr, momentum=momentum)``; no schedule (paper 002 uses none).
    num_evals : int
        Evaluations at ``num_evals + 1`` roughly evenly spaced steps from 0 to ``steps`` (see :func:`evaluation_steps`).
    eval_size : int
        Training examples (the first ``eval_size`` of a fixed permutation) on which training loss and accuracy are
        measured; the whole test set is used for test accuracy.
    seed : int
        Seeds the mini-batch order (shared by all networks of the run).
    """

    steps: int = 1000
    batch_size: int = 128
    lr: float = 1e-2
    momentum: float = 0.0
    num_evals: int = 10
    eval_size: int = 2000
    seed: int = 0

    def __post_init__(self):
        for name in ("steps", "batch_size", "num_evals", "eval_size"):
            value = getattr(self, name)
            if not isinstance(value, (int, np.integer)) or value < 1:
                raise ValueError(f"{name} must be a positive integer, got {value!r}")
        if not (np.isfinite(self.lr) and self.lr > 0):
            raise ValueError(f"lr must be positive, got {self.lr!r}")
        if not 0 <= self.momentum < 1:
            raise ValueError(f"momentum must be in [0, 1), got {self.momentum!r}")


def evaluation_steps(steps: int, num_evals: int) -> list[int]:
    """Steps at which networks are evaluated: ``round(linspace(0, steps, num_evals + 1))``, deduplicated."""
    return sorted({int(s) for s in np.round(np.linspace(0, steps, num_evals + 1))})


def resolve_device(device: str | torch.device) -> torch.device:
    """``"auto"`` -> CUDA when available, else CPU; ``"cuda"`` without a GPU raises ``ValueError``."""
    if str(device) == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    device = torch.device(device)
    if device.type == "cuda" and not torch.cuda.is_available():
        raise ValueError("device 'cuda' requested but no CUDA device is available (use --device auto or cpu)")
    return device


def available_memory(device: torch.device) -> int:
    """Free bytes on ``device``: ``torch.cuda.mem_get_info`` on a GPU, ``MemAvailable`` of /proc/meminfo on CPU."""
    if device.type == "cuda":
        return int(torch.cuda.mem_get_info(device)[0])
    try:
        with open("/proc/meminfo") as fh:
            for line in fh:
                if line.startswith("MemAvailable:"):
                    return int(line.split()[1]) * 1024
    except OSError:
        pass
    return int(os.sysconf("SC_AVPHYS_PAGES") * os.sysconf("SC_PAGE_SIZE"))


def estimate_memory(template: nn.Module, input_shape: tuple[int, ...], batch_size: int, dtype: torch.dtype) -> int:
    """Bytes one network needs during batched training (an estimate with headroom).

    Parameters, gradients and momentum buffers (3 copies), plus for every ``nn.Linear``/``nn.Conv2d`` output per
    example three tensors (pre-activation, activation, their gradient) times the batch size; the layer outputs are
    measured by a forward pass on the ``meta`` device (no memory is allocated).
    """
    itemsize = torch.empty((), dtype=dtype).element_size()
    n_params = sum(p.numel() for p in template.parameters())
    sizes = []
    meta = copy.deepcopy(template).to(device="meta", dtype=dtype)
    hooks = [m.register_forward_hook(lambda _m, _i, out: sizes.append(out[0].numel()))
             for m in meta.modules() if isinstance(m, (nn.Linear, nn.Conv2d))]
    with torch.no_grad():
        meta(torch.empty((1, *input_shape), device="meta", dtype=dtype))
    for hook in hooks:
        hook.remove()
    return int(itemsize * (3 * n_params + 3 * batch_size * sum(sizes)))


def step_cost(template: nn.Module, input_shape: tuple[int, ...], batch_size: int, dtype: torch.dtype
              ) -> tuple[float, float]:
    """Floating-point operations and memory traffic of one SGD step of one network (a count, not a measurement).

    FLOP: the multiply-adds of every ``nn.Linear`` / ``nn.Conv2d`` (2 per multiply-add) in the forward pass, times 3
    (forward, gradient with respect to the input, gradient with respect to the weights), times ``batch_size``;
    elementwise work is not counted. Bytes: each layer output written in the forward pass and read back in the
    backward pass with its gradient (4 activation-sized transfers), plus the parameters read twice and written once
    and their gradients written and read (5 parameter-sized transfers). Layer sizes come from a forward pass on the
    ``meta`` device.

    Returns
    -------
    (flop, bytes) per step, as floats.
    """
    itemsize = torch.empty((), dtype=dtype).element_size()
    macs, outputs = [], []

    def count(module, inputs, out):
        outputs.append(out[0].numel())
        if isinstance(module, nn.Linear):
            macs.append(module.in_features * module.out_features)
        else:
            k = int(np.prod(module.kernel_size))
            macs.append(out[0].numel() * module.in_channels // module.groups * k)

    meta = copy.deepcopy(template).to(device="meta", dtype=dtype)
    hooks = [m.register_forward_hook(count) for m in meta.modules() if isinstance(m, (nn.Linear, nn.Conv2d))]
    with torch.no_grad():
        meta(torch.empty((1, *input_shape), device="meta", dtype=dtype))
    for hook in hooks:
        hook.remove()
    n_params = sum(p.numel() for p in template.parameters())
    flop = 3.0 * 2.0 * batch_size * sum(macs)
    traffic = float(itemsize) * (4.0 * batch_size * sum(outputs) + 5.0 * n_params)
    return flop, traffic


def matmul_rate(device: str | torch.device = "cpu", dtype: torch.dtype = torch.float32, n: int | None = None,
                repeats: int = 5, tf32: bool = False) -> float:
    """Measured floating-point rate of one large square matmul on ``device`` (FLOP/s, ``2 n^3`` per product).

    The reference against which the engine's arithmetic rate is quoted (``benchmarks/bench_sweep.py``,
    ``benchmarks/gpu_suite.py``). ``n`` defaults to 8192 on a GPU and 1024 on a CPU; one warm-up product, then the
    best of ``repeats`` timed ones (synchronised).
    """
    import time

    device = resolve_device(device)
    n = n or (8192 if device.type == "cuda" else 1024)
    a = torch.randn(n, n, device=device, dtype=dtype)
    b = torch.randn(n, n, device=device, dtype=dtype)
    best = float("inf")
    with matmul_precision(tf32):
        for i in range(repeats + 1):
            if device.type == "cuda":
                torch.cuda.synchronize(device)
            start = time.perf_counter()
            a @ b
            if device.type == "cuda":
                torch.cuda.synchronize(device)
            if i:
                best = min(best, time.perf_counter() - start)
    return 2.0 * n**3 / best


def max_networks(template: nn.Module, input_shape: tuple[int, ...], batch_size: int, dtype: torch.dtype,
                 device: torch.device, fraction: float = 0.5) -> int:
    """How many networks fit in ``fraction`` of the free memory of ``device`` (at least 1)."""
    need = estimate_memory(template, input_shape, batch_size, dtype)
    return max(1, int(fraction * available_memory(device) // max(need, 1)))


class _Batches:
    """Mini-batch indices, one epoch at a time: each epoch is a fresh permutation from a generator seeded by
    ``config.seed`` (the last incomplete batch of an epoch is dropped); steps must be asked for in order."""

    def __init__(self, n: int, config: TrainConfig, device: torch.device):
        self.n, self.size, self.device = n, min(config.batch_size, n), device
        self.per_epoch = n // self.size
        self.generator = torch.Generator().manual_seed(config.seed)
        self.epoch, self.batches = -1, None

    def __getitem__(self, step: int) -> torch.Tensor:
        epoch, position = divmod(step, self.per_epoch)
        if epoch != self.epoch:
            perm = torch.randperm(self.n, generator=self.generator)[: self.per_epoch * self.size]
            self.epoch, self.batches = epoch, perm.view(self.per_epoch, self.size).to(self.device)
        return self.batches[position]


class _Data:
    """The dataset as tensors on the training device, with the fixed evaluation subsets."""

    def __init__(self, data: Dataset, config: TrainConfig, device: torch.device, dtype: torch.dtype):
        self.x_train = torch.tensor(data.x_train, dtype=dtype, device=device)
        self.y_train = torch.tensor(data.y_train, device=device)
        pick = torch.randperm(len(data.x_train), generator=torch.Generator().manual_seed(1))[: config.eval_size]
        pick = pick.to(device)
        self.eval_sets = {"train": (self.x_train[pick], self.y_train[pick]),
                          "test": (torch.tensor(data.x_test, dtype=dtype, device=device),
                                   torch.tensor(data.y_test, device=device))}
        self.batches = _Batches(len(data.x_train), config, device)
        self.chance = 1.0 / data.num_classes


def _per_network_loss(logits: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
    """Mean cross-entropy of each network: logits (K, B, classes), labels (B,) -> (K,)."""
    k, b, c = logits.shape
    return F.cross_entropy(logits.reshape(k * b, c), y.repeat(k), reduction="none").view(k, b).mean(dim=1)


class _Stack:
    """K networks stacked along a leading axis.

    :class:`validate.models.FCNet` runs as explicit batched matmuls (``torch.baddbmm`` with the bias fused in: one
    GEMM per layer and network batch); any other module runs under ``torch.vmap`` of
    ``torch.func.functional_call`` (one grouped convolution per conv layer).
    """

    def __init__(self, models: Sequence[nn.Module], device: torch.device):
        self.template = copy.deepcopy(models[0]).to("meta")
        names = [name for name, _ in models[0].named_parameters()]
        self.params = {name: torch.stack([dict(m.named_parameters())[name].detach() for m in models]).to(device)
                       .requires_grad_(True) for name in names}
        self.fc = type(models[0]) is FCNet
        if self.fc:
            depth = len(models[0].hidden)
            self.layers = [(self.params[f"hidden.{i}.weight"], self.params[f"hidden.{i}.bias"]) for i in range(depth)]
            self.layers.append((self.params["readout.weight"], self.params["readout.bias"]))
            self.phi = models[0].phi

    def __call__(self, x: torch.Tensor) -> torch.Tensor:
        if self.fc:
            h = x.flatten(1).expand(len(self.layers[0][0]), -1, -1)  # (K, B, features), no copy
            for i, (weight, bias) in enumerate(self.layers):
                h = torch.baddbmm(bias.unsqueeze(1), h, weight.transpose(1, 2))
                if i < len(self.layers) - 1:
                    h = self.phi(h)
            return h

        def one(params, inputs):
            return torch.func.functional_call(self.template, params, (inputs,))

        return torch.vmap(one, in_dims=(0, None))(self.params, x)

    def parameters(self) -> list[torch.Tensor]:
        return list(self.params.values())

    def unstack_into(self, models: Sequence[nn.Module]) -> None:
        with torch.no_grad():
            for k, model in enumerate(models):
                for name, p in model.named_parameters():
                    p.copy_(self.params[name][k].to(p.device))


def _evaluate(forward, data: _Data, n_models: int, chunk: int) -> dict[str, torch.Tensor]:
    """Loss and accuracy of every network on the evaluation sets, in chunks of ``chunk`` examples."""
    out = {}
    with torch.no_grad():
        for split, (x, y) in data.eval_sets.items():
            loss_sum = torch.zeros(n_models, dtype=torch.float64, device=x.device)
            correct = torch.zeros(n_models, dtype=torch.float64, device=x.device)
            for start in range(0, len(x), chunk):
                logits = forward(x[start:start + chunk])
                yb = y[start:start + chunk]
                loss_sum += _per_network_loss(logits, yb).double() * len(yb)
                correct += (logits.argmax(dim=-1) == yb).double().sum(dim=1)
            out[f"{split}_loss"] = loss_sum / len(x)
            out[f"{split}_accuracy"] = correct / len(x)
    return out


def _records(metrics: dict[str, torch.Tensor], diverged: torch.Tensor, step: int, chance: float) -> list[dict]:
    """Rows of one evaluation (one host synchronisation): diverged networks get NaN loss and chance accuracy."""
    bad = diverged.cpu().numpy()
    values = {key: np.where(bad, np.nan if "loss" in key else chance, val.cpu().numpy())
              for key, val in metrics.items()}
    return [{"network": k, "step": step, "loss": values["train_loss"][k], "train_accuracy": values["train_accuracy"][k],
             "test_accuracy": values["test_accuracy"][k], "diverged": bool(bad[k])} for k in range(len(bad))]


def _train(forward, n_models: int, data: _Data, config: TrainConfig, step, on_evaluation=None) -> pd.DataFrame:
    """The loop shared by the batched and the sequential paths: ``step(idx)`` does one SGD step on the mini-batch
    ``idx`` and returns the (K,) bool tensor of networks that have diverged so far (on the device; nothing here
    synchronises with the host between evaluations). ``on_evaluation(step, steps)`` is called after each
    evaluation (progress reporting)."""
    diverged = torch.zeros(n_models, dtype=torch.bool, device=data.x_train.device)
    records = []
    checkpoints = set(evaluation_steps(config.steps, config.num_evals))
    for index in range(config.steps + 1):
        if index in checkpoints:
            metrics = _evaluate(forward, data, n_models, chunk=max(config.batch_size, 500))
            diverged = diverged | ~torch.isfinite(metrics["train_loss"])
            records += _records(metrics, diverged, index, data.chance)
            if on_evaluation is not None:
                on_evaluation(index, config.steps)
        if index == config.steps:
            break
        diverged = diverged | step(data.batches[index])
    return pd.DataFrame.from_records(records)


class _SGDStep:
    """One SGD step of K stacked networks as a fixed sequence of device operations.

    Forward, per-network losses, ``torch.autograd.grad`` of their sum, and the update with ``torch._foreach_*``
    (momentum as ``torch.optim.SGD``: ``buf = momentum * buf + grad``, ``p -= lr * buf``; a zero initial buffer gives
    its first step ``buf = grad`` exactly). The divergence flags are updated on the device. The mini-batch enters
    through a static index buffer, so on a GPU the whole step is captured once as a CUDA graph
    (``torch.cuda.CUDAGraph``) and replayed: one launch per step instead of one per kernel, and no host
    synchronisation. On a CPU (or with ``graph=False``) the same operations run eagerly.
    """

    def __init__(self, forward, params: list[torch.Tensor], n_models: int, data: _Data, config: TrainConfig,
                 graph: bool):
        device = data.x_train.device
        self.forward, self.params, self.data = forward, params, data
        self.lr, self.momentum = float(config.lr), float(config.momentum)
        self.idx = torch.zeros(data.batches.size, dtype=torch.long, device=device)
        self.diverged = torch.zeros(n_models, dtype=torch.bool, device=device)
        self.buffers = [torch.zeros_like(p) for p in params] if self.momentum else []
        self.graph = None
        self.graph_error = None
        if graph and device.type == "cuda":
            try:
                self._capture()
            except Exception as exc:  # any capture failure: fall back to eager steps, and say so
                self.graph, self.graph_error = None, f"{type(exc).__name__}: {exc}"
                import warnings

                warnings.warn(f"CUDA graph capture failed, training eagerly ({self.graph_error})", RuntimeWarning,
                              stacklevel=3)

    def _eager(self) -> None:
        x = self.data.x_train.index_select(0, self.idx)
        y = self.data.y_train.index_select(0, self.idx)
        losses = _per_network_loss(self.forward(x), y)
        grads = torch.autograd.grad(losses.sum(), self.params)
        with torch.no_grad():
            self.diverged |= ~torch.isfinite(losses)
            if self.momentum:
                torch._foreach_mul_(self.buffers, self.momentum)
                torch._foreach_add_(self.buffers, grads)
                torch._foreach_add_(self.params, self.buffers, alpha=-self.lr)
            else:
                torch._foreach_add_(self.params, grads, alpha=-self.lr)

    def _capture(self) -> None:
        saved = [p.detach().clone() for p in self.params]
        self.idx.copy_(self.data.batches[0])
        side = torch.cuda.Stream()
        side.wait_stream(torch.cuda.current_stream())
        with torch.cuda.stream(side):  # warm-up (lazy cuBLAS/cuDNN initialisation) outside the capture
            for _ in range(2):
                self._eager()
        torch.cuda.current_stream().wait_stream(side)
        graph = torch.cuda.CUDAGraph()
        with torch.cuda.graph(graph):
            self._eager()
        with torch.no_grad():  # undo the warm-up steps
            for p, s in zip(self.params, saved, strict=True):
                p.copy_(s)
            for b in self.buffers:
                b.zero_()
            self.diverged.zero_()
        self.graph = graph

    def __call__(self, idx: torch.Tensor) -> torch.Tensor:
        self.idx.copy_(idx)
        if self.graph is not None:
            self.graph.replay()
        else:
            self._eager()
        return self.diverged


@contextlib.contextmanager
def matmul_precision(tf32: bool):
    """Allow (``tf32=True``) or forbid TensorFloat-32 in float32 matmuls and cuDNN convolutions inside the block.

    Both flags (``torch.backends.cuda.matmul.allow_tf32``, ``torch.backends.cudnn.allow_tf32``) are restored on exit.
    PyTorch allows TF32 in cuDNN convolutions by default; here the default of the engine is full float32 for both,
    and TF32 (10-bit mantissa products, about 1e-3 relative error per product) is an explicit opt-in. No effect on a
    CPU or in float64.
    """
    old = torch.backends.cuda.matmul.allow_tf32, torch.backends.cudnn.allow_tf32
    torch.backends.cuda.matmul.allow_tf32 = torch.backends.cudnn.allow_tf32 = bool(tf32)
    try:
        yield
    finally:
        torch.backends.cuda.matmul.allow_tf32, torch.backends.cudnn.allow_tf32 = old


def train_batched(models: Sequence[nn.Module], data: Dataset, config: TrainConfig, device="cpu", *,
                  graph: bool = True, tf32: bool = False, update_models: bool = True,
                  on_evaluation=None) -> pd.DataFrame:
    """Train ``models`` (same architecture and dtype) together as one vmapped computation.

    Parameters
    ----------
    models : sequence of K modules with identical parameter names and shapes; updated in place at the end.
    data : Dataset
    config : TrainConfig
    device : str or torch.device
        ``"auto"``, ``"cpu"``, ``"cuda"``...
    graph : bool
        On a GPU, capture the whole SGD step as one CUDA graph and replay it (falls back to eager steps, with a
        ``RuntimeWarning``, if capture fails). Ignored on a CPU.
    tf32 : bool
        Allow TensorFloat-32 matmuls and convolutions (see :func:`matmul_precision`).
    update_models : bool
        Copy the trained parameters back into ``models`` (False saves the copies when only the table is wanted).
    on_evaluation : callable or None
        ``on_evaluation(step, steps)`` after each of the ``config.num_evals + 1`` evaluations (progress bars).

    Returns
    -------
    DataFrame with one row per (network, evaluation step): ``network`` (index into ``models``), ``step``, ``loss``
    (mean training cross-entropy on the evaluation subset), ``train_accuracy``, ``test_accuracy``, ``diverged``;
    ``attrs["cuda_graph"]`` says whether the steps ran as a CUDA graph.
    """
    if len(models) == 0:
        raise ValueError("models must contain at least one network")
    device = resolve_device(device)
    dtype = next(models[0].parameters()).dtype
    stack = _Stack(models, device)
    prepared = _Data(data, config, device, dtype)
    with matmul_precision(tf32):
        step = _SGDStep(stack, stack.parameters(), len(models), prepared, config, graph=graph)
        result = _train(stack, len(models), prepared, config, step, on_evaluation)
    if update_models:
        stack.unstack_into(models)
    result.attrs["cuda_graph"] = step.graph is not None
    return result


def train_sequential(models: Sequence[nn.Module], data: Dataset, config: TrainConfig, device="cpu") -> pd.DataFrame:
    """Train ``models`` one after another as ordinary modules with ``torch.optim.SGD`` (the unbatched reference).

    Same arguments and result as :func:`train_batched`; each model is moved to ``device`` and trained in place with
    the textbook loop (``zero_grad``, ``backward``, ``optimizer.step``), independently of :class:`_SGDStep`.
    """
    device = resolve_device(device)
    frames = []
    for k, model in enumerate(models):
        model.to(device)
        dtype = next(model.parameters()).dtype
        prepared = _Data(data, config, device, dtype)
        optimizer = torch.optim.SGD(model.parameters(), lr=config.lr, momentum=config.momentum)

        def forward(x, m=model):
            return m(x).unsqueeze(0)

        def step(idx, forward=forward, optimizer=optimizer, prepared=prepared):
            losses = _per_network_loss(forward(prepared.x_train[idx]), prepared.y_train[idx])
            optimizer.zero_grad(set_to_none=False)
            losses.sum().backward()
            optimizer.step()
            return ~torch.isfinite(losses.detach())

        frames.append(_train(forward, 1, prepared, config, step).assign(network=k))
    return pd.concat(frames, ignore_index=True)
