"""Trainability phase diagrams: train a grid of networks and compare with the rule "trains iff depth < 6 xi_c".

Schoenholz et al. (2017) found that fully connected networks train when their depth ``L`` is below about ``6 xi_c``,
with ``xi_c = -1 / log(chi_c)`` the correlation depth scale of mean-field theory; paper 002 (Xiao et al. 2018,
Figure 2) shows the same for vanilla CNNs. :func:`trainability` trains every cell of a
``sigma_w2 x sigma_b2 x depth`` grid (one seed per run), K networks of one depth at a time as one batched
computation (:mod:`validate.batched`), and returns one row per (network, evaluation step).

Storage and resume: with ``out=DIR`` the run's configuration is stored in ``DIR/config.json`` and the rows in
``DIR/trainability.parquet``, rewritten atomically (temporary file + ``os.replace``) after every batch of cells, so an
interrupted run loses at most the cells in flight. Calling again with the same ``out`` skips finished cells; a
different configuration in the same directory raises :class:`ConfigMismatchError`.

"Trains" (used by :func:`summarize_trainability`): the final test accuracy (or, with ``metric="train"``, the final
training accuracy, what Schoenholz et al. and paper 002 plot) exceeds
``chance + threshold * (1 - chance)`` (``threshold = 0.5`` by default: 55 % on 10 classes, 62.5 % on 4). A diverged
network (non-finite training loss) is recorded with NaN loss and chance accuracy, so it does not train.
"""

from __future__ import annotations

import functools
import json
import os
import struct
from collections.abc import Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd
import torch

from validate.batched import TrainConfig, max_networks, resolve_device, train_batched
from validate.data import Dataset, load_dataset
from validate.models import INITS, MODELS, build_model, init_model_
from validate.threads import thread_limit

__all__ = ["COLUMNS", "ConfigMismatchError", "TrainabilitySummary", "depth_scaled_lr", "summarize_trainability",
           "trainability"]

COLUMNS = ("model", "activation", "init", "sigma_w2", "sigma_b2", "depth", "seed", "step", "loss", "train_accuracy",
           "test_accuracy", "xi_c", "diverged", "chance")
RESULTS_FILE = "trainability.parquet"
CONFIG_FILE = "config.json"
DTYPES = {"float32": torch.float32, "float64": torch.float64}
# the CLI defaults 1:4:16 and 10:300:16 (paper 002's Figure 2 ranges, scaled)
DEFAULT_SIGMA_W2 = tuple(float(v) for v in np.linspace(1.0, 4.0, 16))
DEFAULT_DEPTH = tuple(sorted({int(v) for v in np.round(np.linspace(10, 300, 16))}))


class ConfigMismatchError(ValueError):
    """The output directory holds a run with a different configuration."""


@dataclass(frozen=True)
class _Spec:
    """Everything that determines the results (stored as ``config.json``); device and scheduling are not part of it."""

    model: str
    activation: str
    init: str
    kernel: str
    data: str
    sigma_w2: tuple[float, ...]
    sigma_b2: tuple[float, ...]
    depth: tuple[int, ...]
    seed: int
    steps: int
    width: int
    channels: int
    batch_size: int
    lr: float
    momentum: float
    num_evals: int
    eval_size: int
    dtype: str
    tf32: bool = False
    lr_depth_ref: float | None = None

    def train_config(self, depth: int | None = None) -> TrainConfig:
        """Optimisation settings of the networks of ``depth`` (the learning rate may depend on it)."""
        return TrainConfig(steps=self.steps, batch_size=self.batch_size, lr=depth_scaled_lr(self.lr, depth,
                                                                                            self.lr_depth_ref),
                           momentum=self.momentum, num_evals=self.num_evals, eval_size=self.eval_size,
                           seed=self.seed)

    def to_json(self) -> dict:
        stored = {key: list(value) if isinstance(value, tuple) else value for key, value in asdict(self).items()}
        for key in ("tf32", "lr_depth_ref"):  # runs stored before these options had none: they stay resumable
            if not stored[key]:
                del stored[key]
        return stored


def depth_scaled_lr(lr: float, depth: int | None, reference_depth: float | None) -> float:
    """SGD learning rate of a network of ``depth``: ``lr * min(1, reference_depth / depth)``, or ``lr`` without a
    reference.

    Why: at the critical point every layer's weight gradient has about the same size (the gradient neither vanishes
    nor explodes, Schoenholz et al. 2017, section 4), so the summed squared gradient, and with it the change of the
    loss in one SGD step, grows in proportion to depth. A step that suits depth 10 overshoots at depth 100-300
    (measured in docs/validation.md: width 128, critical tanh, lr 0.01 oscillates at depth 100 and collapses to
    chance at depth 200, while lr 0.003 trains at depth 100). Scaling ``lr`` by ``1 / depth`` beyond
    ``reference_depth`` keeps the step per unit of depth fixed.
    """
    if reference_depth is None or depth is None:
        return float(lr)
    return float(lr) * min(1.0, float(reference_depth) / float(depth))


def cell_seed(seed: int, sigma_w2: float, sigma_b2: float, depth: int) -> int:
    """Seed of one network's initialisation, a function of the run seed and the cell alone (not of the grid or of K)."""
    bits = struct.unpack("<2Q", struct.pack("<2d", float(sigma_w2), float(sigma_b2)))
    return int(np.random.SeedSequence([int(seed), int(depth), *bits]).generate_state(1, dtype=np.uint64)[0] >> 1)


def _make_network(spec: _Spec, data: Dataset, sigma_w2: float, sigma_b2: float, depth: int) -> torch.nn.Module:
    # shapes on "meta", then uninitialised CPU memory: init_model_ overwrites every parameter, so torch's default
    # initialisation (as much work again, from the global generator) is skipped without changing any value
    net = build_model(spec.model, depth=depth, input_shape=data.input_shape, num_classes=data.num_classes,
                      activation=spec.activation, width=spec.width, channels=spec.channels, device="meta")
    net = net.to_empty(device="cpu").to(DTYPES[spec.dtype])
    generator = torch.Generator().manual_seed(cell_seed(spec.seed, sigma_w2, sigma_b2, depth))
    return init_model_(net, sigma_w2, sigma_b2, spec.init, spec.kernel, generator=generator)


def _train_unit(spec: _Spec, depth: int, points: Sequence[tuple[float, float]], device: str,
                graph: bool = True, on_evaluation=None) -> pd.DataFrame:
    """Train the networks of one depth at the given ``(sigma_w2, sigma_b2)`` points together; rows without xi_c.
    ``on_evaluation(step, steps)`` reports progress (see :func:`validate.batched.train_batched`)."""
    data = load_dataset(spec.data)
    models = [_make_network(spec, data, sw2, sb2, depth) for sw2, sb2 in points]
    frame = train_batched(models, data, spec.train_config(depth), device=device, graph=graph, tf32=spec.tf32,
                          update_models=False, on_evaluation=on_evaluation)
    frame["sigma_w2"] = [points[k][0] for k in frame["network"]]
    frame["sigma_b2"] = [points[k][1] for k in frame["network"]]
    frame["depth"] = depth
    frame["chance"] = 1.0 / data.num_classes
    return frame.drop(columns="network")


def _write_atomic(frame: pd.DataFrame, path: Path) -> None:
    tmp = path.with_name(path.name + ".tmp")
    frame.to_parquet(tmp, index=False)
    os.replace(tmp, path)


def _prepare_out(out: Path, spec: _Spec, resume: bool = True) -> pd.DataFrame:
    """Create or check ``out``; return the rows already there (empty if none)."""
    out.mkdir(parents=True, exist_ok=True)
    config_path, results_path = out / CONFIG_FILE, out / RESULTS_FILE
    if not resume and results_path.exists():
        raise FileExistsError(f"{results_path} exists and resume is off; use another output directory or resume")
    wanted = spec.to_json()
    if config_path.exists():
        stored = json.loads(config_path.read_text())
        if stored != wanted:
            diffs = [f"{key}: stored {stored.get(key)!r}, requested {wanted.get(key)!r}"
                     for key in sorted(set(stored) | set(wanted)) if stored.get(key) != wanted.get(key)]
            raise ConfigMismatchError(f"{out} holds a run with a different configuration ({'; '.join(diffs)}); "
                                      "use another output directory or the stored settings")
    elif results_path.exists():
        raise ConfigMismatchError(f"{results_path} exists without {CONFIG_FILE}; refusing to mix results")
    else:
        tmp = config_path.with_name(CONFIG_FILE + ".tmp")
        tmp.write_text(json.dumps(wanted, indent=2))
        os.replace(tmp, config_path)
    return pd.read_parquet(results_path) if results_path.exists() else pd.DataFrame(columns=list(COLUMNS))


def _as_tuple(values, name: str, kind=float) -> tuple:
    arr = np.atleast_1d(np.asarray(values, dtype=np.float64))
    if arr.ndim != 1 or arr.size == 0 or not np.all(np.isfinite(arr)):
        raise ValueError(f"{name} must be a non-empty 1-D list of finite numbers, got {values!r}")
    if kind is int:
        if np.any(arr != np.round(arr)) or np.any(arr < 1):
            raise ValueError(f"{name} must be positive integers, got {values!r}")
        return tuple(sorted({int(v) for v in arr}))
    return tuple(dict.fromkeys(float(v) for v in arr))


def _run_units(spec: _Spec, units: list, device: str, workers: int | None, scheduler: str | None,
               dask_processes: bool, on_result, graph: bool = True, on_step=None) -> None:
    """Train ``units`` (depth, points) serially or on a Dask cluster, passing each finished frame to ``on_result``;
    serially, ``on_step(depth, step, steps)`` reports each evaluation of the unit in training."""
    if workers is None and scheduler is None:
        for depth, points in units:
            report = None if on_step is None else functools.partial(on_step, depth)
            on_result(_train_unit(spec, depth, points, device, graph, report))
        return
    from dask.distributed import Client, LocalCluster, as_completed

    cluster = None
    if scheduler is None:
        cluster = LocalCluster(n_workers=workers, threads_per_worker=1, processes=dask_processes,
                               dashboard_address=None)
    client = Client(cluster if cluster is not None else scheduler)
    futures = [client.submit(_train_unit, spec, depth, points, device, pure=False) for depth, points in units]
    try:
        for future in as_completed(futures):
            on_result(future.result())
    finally:
        client.cancel(futures)
        client.close()
        if cluster is not None:
            cluster.close()


def trainability(*, model: str = "fc", activation="tanh", sigma_w2=DEFAULT_SIGMA_W2, sigma_b2=0.05,
                 depth=DEFAULT_DEPTH, steps: int = 1000, data: str = "mnist-sample", device: str = "auto",
                 seed: int = 0,
                 out: str | os.PathLike | None = None, width: int = 256, channels: int = 32, init: str = "gaussian",
                 kernel: str = "uniform", batch_size: int = 128, lr: float = 1e-2, momentum: float = 0.0,
                 num_evals: int = 10, eval_size: int = 2000, dtype: str = "float32", workers: int | None = None,
                 scheduler: str | None = None, dask_processes: bool = True, max_batch: int | None = None,
                 progress: bool = True, threads: int | str | None = "auto", tf32: bool = False, graph: bool = True,
                 resume: bool = True, lr_depth_ref: float | None = None) -> pd.DataFrame:
    """Train a ``sigma_w2 x sigma_b2 x depth`` grid of networks and return their learning curves.

    Parameters
    ----------
    model : {"fc", "cnn"}
        :class:`validate.models.FCNet` (``width``) or the vanilla CNN of paper 002 (``channels``).
    activation : str or meanfield.Activation
        Any activation :func:`meanfield.get_activation` accepts, including expressions in ``x``.
    sigma_w2, sigma_b2 : float or sequence of float
        Weight / bias variances of the grid (``sigma_w2 > 0``, ``sigma_b2 >= 0``); default 16 values of ``sigma_w2``
        from 1 to 4 and ``sigma_b2 = 0.05``.
    depth : int or sequence of int
        Depths (number of nonlinear layers for ``fc``, of deep-block convolutions for ``cnn``); default 16 depths
        from 10 to 300.
    steps : int
        SGD steps per network.
    data : str
        A spec of :func:`validate.data.load_dataset` (``mnist-sample``, ``digits``, ``synthetic``, ``mnist:DIR``,
        ``cifar10:DIR``).
    device : {"auto", "cpu", "cuda", ...}
        ``auto`` uses the GPU when present; ``cuda`` without one raises ValueError.
    seed : int
        Seeds the mini-batch order and (with each cell's hyperparameters, :func:`cell_seed`) the initialisation.
    out : path, optional
        Directory for ``config.json`` and ``trainability.parquet`` (resumable); None keeps results in memory only.
    width, channels : int
    init : {"gaussian", "orthogonal", "delta-orthogonal"}
    kernel : str
        Kernel variance vector of Gaussian convolutions (``uniform``, ``delta``, ``GS0`` .. ``GS4``).
    batch_size, lr, momentum, num_evals, eval_size
        See :class:`validate.batched.TrainConfig`.
    dtype : {"float32", "float64"}
    workers, scheduler
        Dask: start a ``LocalCluster`` of ``workers`` single-threaded workers (``dask_processes`` chooses processes
        or threads), or connect to the scheduler at ``scheduler``; each task is one batch of networks of one depth,
        and each worker resolves ``device`` itself (``auto``: its own GPU when it has one).
    max_batch : int, optional
        Cap on networks trained together; by default as many as fit in half the free memory of the device
        (:func:`validate.batched.max_networks`), evaluated on this machine.
    progress : bool
        Show a tqdm progress bar over cells.
    threads : int, "auto" or None
        torch CPU threads during the run (:func:`validate.threads.thread_limit`; restored afterwards): ``"auto"``
        uses the cores left idle by the current load average, so a loaded machine slows the run in proportion
        instead of stalling OpenMP barriers; None leaves torch's setting alone.
    tf32 : bool
        Allow TensorFloat-32 matmuls and convolutions on the GPU (:func:`validate.batched.matmul_precision`); stored
        in ``config.json`` when True, since it changes results beyond float32 rounding.
    graph : bool
        Capture each SGD step as a CUDA graph on the GPU (:func:`validate.batched.train_batched`).
    resume : bool
        With ``out`` holding results: True skips the finished cells, False raises ``FileExistsError``.
    lr_depth_ref : float, optional
        Networks deeper than this train with ``lr * lr_depth_ref / depth`` (:func:`depth_scaled_lr`); None (default)
        uses ``lr`` at every depth, as Schoenholz et al. (2017) did.

    Returns
    -------
    pandas.DataFrame
        Columns :data:`COLUMNS` (``model, activation, init, sigma_w2, sigma_b2, depth, seed, step, loss,
        train_accuracy, test_accuracy, xi_c`` then ``diverged, chance``): one row per (network, evaluation step),
        including the rows of earlier runs in ``out``, sorted by ``sigma_b2, sigma_w2, depth, step``. ``loss`` is the
        mean training cross-entropy on ``eval_size`` fixed training examples; ``xi_c`` the mean-field correlation depth
        scale (inf on the critical line).

    Raises
    ------
    ValueError for bad arguments; ConfigMismatchError if ``out`` holds a different run; FileNotFoundError /
    validate.data.DataFileError for missing / corrupt data files.
    """
    from meanfield.activations import get_activation
    from meanfield.quantities import xi_c as xi_c_of

    if model not in MODELS:
        raise ValueError(f"model must be one of {', '.join(MODELS)}, got {model!r}")
    if init not in INITS:
        raise ValueError(f"init must be one of {', '.join(INITS)}, got {init!r}")
    if dtype not in DTYPES:
        raise ValueError(f"dtype must be one of {', '.join(DTYPES)}, got {dtype!r}")
    if workers is not None and scheduler is not None:
        raise ValueError("give either workers or scheduler, not both")
    if workers is not None and (not isinstance(workers, int) or workers < 1):
        raise ValueError(f"workers must be a positive integer, got {workers!r}")
    act = get_activation(activation)
    sw2s, sb2s = _as_tuple(sigma_w2, "sigma_w2"), _as_tuple(sigma_b2, "sigma_b2")
    if min(sw2s) <= 0:
        raise ValueError(f"sigma_w2 must be positive, got {sigma_w2!r}")
    if min(sb2s) < 0:
        raise ValueError(f"sigma_b2 must be non-negative, got {sigma_b2!r}")
    spec = _Spec(model=model, activation=act.name, init=init, kernel=str(kernel), data=data, sigma_w2=sw2s,
                 sigma_b2=sb2s, depth=_as_tuple(depth, "depth", int), seed=int(seed), steps=steps, width=width,
                 channels=channels, batch_size=batch_size, lr=float(lr), momentum=float(momentum),
                 num_evals=num_evals, eval_size=eval_size, dtype=dtype, tf32=bool(tf32),
                 lr_depth_ref=None if lr_depth_ref is None else float(lr_depth_ref))
    if lr_depth_ref is not None and not (np.isfinite(lr_depth_ref) and lr_depth_ref > 0):
        raise ValueError(f"lr_depth_ref must be a positive number, got {lr_depth_ref!r}")
    spec.train_config()  # validates the optimisation settings
    resolved = resolve_device(device)
    dataset = load_dataset(data)
    # the deepest network, uninitialised: checks that model and data fit together and sizes the batches
    probe = build_model(model, depth=max(spec.depth), input_shape=dataset.input_shape, num_classes=dataset.num_classes,
                        activation=act, width=width, channels=channels)

    results_path = Path(out) / RESULTS_FILE if out is not None else None
    frames = [_prepare_out(Path(out), spec, resume)] if out is not None else []
    done = set()
    if frames and len(frames[0]):
        done = set(zip(frames[0]["sigma_w2"], frames[0]["sigma_b2"], frames[0]["depth"], strict=True))

    limit = max_networks(probe, dataset.input_shape, batch_size, DTYPES[dtype], resolved)
    limit = min(limit, max_batch) if max_batch is not None else limit
    units = []
    for d in spec.depth:
        pending = [(sw2, sb2) for sb2 in sb2s for sw2 in sw2s if (sw2, sb2, d) not in done]
        units += [(d, pending[i:i + limit]) for i in range(0, len(pending), limit)]

    xi_grid = np.asarray(xi_c_of(act, np.array(sw2s)[:, None], np.array(sb2s)[None, :]), dtype=np.float64)
    xi = {(sw2, sb2): float(xi_grid[i, j]) for i, sw2 in enumerate(sw2s) for j, sb2 in enumerate(sb2s)}
    meta = {"model": model, "activation": act.name, "init": init, "seed": spec.seed}

    from tqdm.auto import tqdm

    bar = tqdm(total=sum(len(points) for _, points in units), unit="net", disable=not progress,
               desc=f"trainability {model} {act.name}")

    def on_result(frame: pd.DataFrame) -> None:
        frame = frame.assign(**meta, xi_c=[xi[(a, b)] for a, b in zip(frame["sigma_w2"], frame["sigma_b2"],
                                                                      strict=True)])
        frames.append(frame[list(COLUMNS)])
        if results_path is not None:
            _write_atomic(_combine(frames), results_path)
        bar.update(frame[["sigma_w2", "sigma_b2", "depth"]].drop_duplicates().shape[0])

    try:
        with thread_limit(threads if resolved.type == "cpu" else None):
            _run_units(spec, units, str(device), workers, scheduler, dask_processes, on_result, graph,
                       on_step=lambda depth, step, steps: bar.set_postfix_str(f"depth {depth}: step {step}/{steps}"))
    finally:
        bar.close()
    return _combine(frames)


def _combine(frames: list[pd.DataFrame]) -> pd.DataFrame:
    frames = [f for f in frames if len(f)]
    if not frames:
        return pd.DataFrame(columns=list(COLUMNS))
    frame = pd.concat(frames, ignore_index=True)
    frame = frame.astype({"depth": "int64", "seed": "int64", "step": "int64", "diverged": "bool"})
    return frame.sort_values(["sigma_b2", "sigma_w2", "depth", "step"], ignore_index=True)


@dataclass
class TrainabilitySummary:
    """How well "trains iff depth < multiplier * xi_c" describes a trainability grid.

    Attributes
    ----------
    agreement : float
        Fraction of cells where "trains" equals ``depth < multiplier * xi_c``.
    n_cells : int
    multiplier, threshold : float
        The rule's multiplier (6 for Schoenholz et al.) and the "trains" threshold (see the module docstring).
    fitted_multiplier : float
        The ``a`` for which "trains iff depth < a xi_c" agrees best: the geometric middle of the best interval
        ``fitted_interval``; NaN when that interval is one-sided (``(0, x)``: no cell with finite xi_c trains;
        ``(x, inf)``: all do) or when no cell has a finite xi_c.
    fitted_agreement : float
    cells : DataFrame
        One row per cell: ``sigma_w2, sigma_b2, depth, xi_c, final_test_accuracy, final_train_accuracy, trains,
        predicted``.
    boundary : DataFrame
        Per ``(sigma_w2, sigma_b2)``: ``xi_c``, ``predicted_depth`` (= multiplier * xi_c), ``deepest_trained`` and
        ``shallowest_failed`` (NaN when none).
    """

    agreement: float
    n_cells: int
    multiplier: float
    threshold: float
    fitted_multiplier: float
    fitted_interval: tuple[float, float]
    fitted_agreement: float
    cells: pd.DataFrame = field(repr=False)
    boundary: pd.DataFrame = field(repr=False)
    metric: str = "test"

    def text(self) -> str:
        """A human-readable report (what the CLI prints)."""
        lo, hi = self.fitted_interval
        if np.isfinite(self.fitted_multiplier):
            fit = f"depth < {self.fitted_multiplier:.3g} xi_c (best interval [{lo:.3g}, {hi:.3g}]"
        elif lo == 0:
            fit = f"depth < a xi_c with a < {hi:.3g} (no cell with finite xi_c trains"
        elif np.isinf(hi):
            fit = f"depth < a xi_c with a > {lo:.3g} (every cell with finite xi_c trains"
        else:
            fit = "undetermined (no cell has a finite xi_c"
        lines = [
            f"cells: {self.n_cells}; trains = final {self.metric} accuracy > chance + {self.threshold:g} * "
            "(1 - chance)",
            f"agreement with 'trains iff depth < {self.multiplier:g} xi_c': {self.agreement:.1%}",
            f"fitted boundary: {fit}, agreement {self.fitted_agreement:.1%}) beside {self.multiplier:g} xi_c",
            self.boundary.to_string(index=False, float_format=lambda v: f"{v:.4g}"),
        ]
        return "\n".join(lines)


def summarize_trainability(results: pd.DataFrame, threshold: float = 0.5, multiplier: float = 6.0,
                           metric: str = "test") -> TrainabilitySummary:
    """Compare a trainability table with "trains iff depth < multiplier * xi_c".

    Parameters
    ----------
    results : DataFrame from :func:`trainability` (the last evaluation step of each cell is used).
    threshold : float in (0, 1)
        A cell trains when its final ``metric`` accuracy exceeds ``chance + threshold * (1 - chance)``.
    multiplier : float
        6 for the rule of Schoenholz et al. (2017).
    metric : {"test", "train"}
        Which final accuracy decides "trains": test accuracy, or training accuracy (on the ``eval_size`` fixed
        training examples), which is what Schoenholz et al. (2017) and paper 002 (Figure 2) plot.

    Returns
    -------
    TrainabilitySummary
    """
    if not 0 < threshold < 1:
        raise ValueError(f"threshold must be in (0, 1), got {threshold!r}")
    if metric not in ("test", "train"):
        raise ValueError(f"metric must be 'test' or 'train', got {metric!r}")
    if len(results) == 0:
        raise ValueError("results is empty")
    keys = ["sigma_w2", "sigma_b2", "depth"]
    final = results.sort_values("step").groupby(keys, as_index=False).last()
    cells = final[keys + ["xi_c"]].copy()
    cells["final_test_accuracy"] = final["test_accuracy"]
    if f"{metric}_accuracy" not in final:
        raise ValueError(f"metric {metric!r} needs a column {metric}_accuracy in results")
    cells["final_train_accuracy"] = final["train_accuracy"] if "train_accuracy" in final else np.nan
    cells["trains"] = final[f"{metric}_accuracy"] > final["chance"] + threshold * (1 - final["chance"])
    cells["predicted"] = cells["depth"] < multiplier * cells["xi_c"]
    agreement = float((cells["trains"] == cells["predicted"]).mean())

    ratio = (cells["depth"] / cells["xi_c"]).to_numpy()
    finite = np.isfinite(ratio) & (ratio > 0)
    if finite.any():
        cuts = np.unique(ratio[finite])
        # "depth < a xi_c" only changes when a crosses a ratio; test one a inside every gap (and beyond both ends).
        candidates = np.concatenate([[cuts[0] / 2], np.sqrt(cuts[:-1] * cuts[1:]), [cuts[-1] * 2]])
        trains = cells["trains"].to_numpy()
        scores = np.array([np.mean(trains == (ratio < a)) for a in candidates])
        best = np.flatnonzero(scores == scores.max())
        # the best multipliers form the gaps around the best candidates; report the first contiguous run's bounds
        edges = np.concatenate([[0.0], cuts, [np.inf]])
        lo, hi = float(edges[best[0]]), float(edges[best[0] + 1])
        run_end = best[0]
        while run_end + 1 in best:
            run_end += 1
        hi = float(edges[run_end + 1])
        fitted = float(np.sqrt(lo * hi)) if lo > 0 and np.isfinite(hi) else float("nan")  # one-sided: no middle
        fitted_agreement = float(scores.max())
    else:
        lo = hi = fitted = fitted_agreement = float("nan")

    rows = []
    for (sw2, sb2), group in cells.groupby(["sigma_w2", "sigma_b2"]):
        trained, failed = group.loc[group["trains"], "depth"], group.loc[~group["trains"], "depth"]
        rows.append({"sigma_w2": sw2, "sigma_b2": sb2, "xi_c": group["xi_c"].iloc[0],
                     "predicted_depth": multiplier * group["xi_c"].iloc[0],
                     "deepest_trained": trained.max() if len(trained) else np.nan,
                     "shallowest_failed": failed.min() if len(failed) else np.nan})
    return TrainabilitySummary(agreement=agreement, n_cells=len(cells), multiplier=multiplier, threshold=threshold,
                               fitted_multiplier=fitted, fitted_interval=(lo, hi), fitted_agreement=fitted_agreement,
                               cells=cells, boundary=pd.DataFrame(rows), metric=metric)
