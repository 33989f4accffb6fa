"""Command line of the validation experiments: ``python -m validate trainability ...``.

Bad flags exit with status 2 and a one-line message naming the flag (argparse's ``parser.error``); an interrupted run
(Ctrl-C) exits with 130 after saying how to resume.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence

import numpy as np

__all__ = ["main", "parse_range"]


def parse_range(text: str, *, integer: bool = False) -> list:
    """Parse ``start:stop:num`` (``numpy.linspace``, endpoints included) or a comma list.

    With ``integer=True`` the values are rounded to integers (duplicates dropped) and must be >= 1.

    Raises
    ------
    ValueError with a message saying what is wrong.
    """
    text = text.strip()
    try:
        if ":" in text:
            parts = text.split(":")
            if len(parts) != 3:
                raise ValueError
            start, stop, num = float(parts[0]), float(parts[1]), int(parts[2])
            if num < 1:
                raise ValueError
            values = np.linspace(start, stop, num)
        else:
            values = np.array([float(p) for p in text.split(",")])
    except ValueError:
        raise ValueError(f"expected start:stop:num or a comma list of numbers, got {text!r}") from None
    if not np.all(np.isfinite(values)):
        raise ValueError(f"values must be finite, got {text!r}")
    if integer:
        if ":" not in text and np.any(values != np.round(values)):
            raise ValueError(f"expected integers, got {text!r}")
        ints = sorted({int(v) for v in np.round(values)})
        if ints[0] < 1:
            raise ValueError(f"expected integers >= 1, got {text!r}")
        return ints
    return [float(v) for v in values]


def _build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="python -m validate", description=__doc__.splitlines()[0])
    sub = parser.add_subparsers(dest="command", required=True)
    p = sub.add_parser("trainability", help="train a sigma_w2 x depth grid and compare with 6 xi_c",
                       description="Train a grid of networks and compare trainability with depth < 6 xi_c.")
    p.add_argument("--model", choices=["fc", "cnn"], default="fc")
    p.add_argument("--activation", default="tanh", help="built-in name or expression in x (default tanh)")
    p.add_argument("--sigma-b2", default="0.05", help="value, start:stop:num or comma list (default 0.05)")
    p.add_argument("--sigma-w2", default="1:4:16", help="start:stop:num or comma list (default 1:4:16)")
    p.add_argument("--depth", default="10:300:16", help="start:stop:num (rounded) or comma list of integers")
    p.add_argument("--steps", type=int, default=1000)
    p.add_argument("--data", default="mnist-sample",
                   help="mnist-sample | digits | synthetic | mnist:DIR | cifar10:DIR (default mnist-sample)")
    p.add_argument("--device", default="auto", help="auto | cpu | cuda | cuda:N (default auto)")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--out", required=True, help="output directory (resumable)")
    p.add_argument("--width", type=int, default=256, help="FC width (default 256)")
    p.add_argument("--channels", type=int, default=32, help="CNN channels c (default 32)")
    p.add_argument("--init", choices=["gaussian", "orthogonal", "delta-orthogonal"], default="gaussian")
    p.add_argument("--kernel", default="uniform", help="variance vector of Gaussian conv kernels: uniform, delta, "
                   "GS0..GS4 (default uniform)")
    p.add_argument("--batch-size", type=int, default=128)
    p.add_argument("--lr", type=float, default=1e-2, help="SGD learning rate (default 0.01)")
    p.add_argument("--momentum", type=float, default=0.0)
    p.add_argument("--evals", type=int, default=10, help="evaluations per network besides step 0 (default 10)")
    p.add_argument("--eval-size", type=int, default=2000, help="training examples for train loss/accuracy")
    p.add_argument("--dtype", choices=["float32", "float64"], default="float32")
    p.add_argument("--threshold", type=float, default=0.5,
                   help="trains = final test accuracy > chance + threshold * (1 - chance) (default 0.5)")
    p.add_argument("--max-batch", type=int, default=None, help="cap on networks trained together")
    group = p.add_mutually_exclusive_group()
    group.add_argument("--workers", type=int, default=None, help="start a local Dask cluster of N workers")
    group.add_argument("--scheduler", default=None, help="address of an existing dask.distributed scheduler")
    p.add_argument("--no-progress", action="store_true", help="no progress bar")
    from validate.probe_cli import add_probe_subcommands  # he (issue 12): signal, spectra, gradnorm, speed, diagnose

    add_probe_subcommands(sub)
    return parser


def _trainability(parser: argparse.ArgumentParser, args: argparse.Namespace) -> int:
    import torch

    from validate.data import DataFileError, load_dataset
    from validate.trainability import ConfigMismatchError, summarize_trainability, trainability

    grid = {}
    for flag, name, integer in (("--sigma-w2", "sigma_w2", False), ("--sigma-b2", "sigma_b2", False),
                                ("--depth", "depth", True)):
        try:
            grid[name] = parse_range(getattr(args, name), integer=integer)
        except ValueError as exc:
            parser.error(f"{flag}: {exc}")
    if min(grid["sigma_w2"]) <= 0:
        parser.error("--sigma-w2: values must be > 0")
    if min(grid["sigma_b2"]) < 0:
        parser.error("--sigma-b2: values must be >= 0")
    for flag, value in (("--steps", args.steps), ("--width", args.width), ("--channels", args.channels),
                        ("--batch-size", args.batch_size), ("--evals", args.evals), ("--eval-size", args.eval_size)):
        if value < 1:
            parser.error(f"{flag}: must be a positive integer, got {value}")
    if args.workers is not None and args.workers < 1:
        parser.error(f"--workers: must be a positive integer, got {args.workers}")
    if args.max_batch is not None and args.max_batch < 1:
        parser.error(f"--max-batch: must be a positive integer, got {args.max_batch}")
    if not args.lr > 0:
        parser.error(f"--lr: must be > 0, got {args.lr}")
    if not 0 <= args.momentum < 1:
        parser.error(f"--momentum: must be in [0, 1), got {args.momentum}")
    if not 0 < args.threshold < 1:
        parser.error(f"--threshold: must be in (0, 1), got {args.threshold}")
    if args.device != "auto":
        try:
            device = torch.device(args.device)
        except RuntimeError:
            parser.error(f"--device: expected auto, cpu or cuda[:N], got {args.device!r}")
        if device.type not in ("cpu", "cuda"):
            parser.error(f"--device: expected auto, cpu or cuda[:N], got {args.device!r}")
        if device.type == "cuda" and not torch.cuda.is_available():
            parser.error("--device cuda: no CUDA device is available (use --device auto or cpu)")
    try:
        from meanfield.activations import get_activation

        get_activation(args.activation)
    except (ValueError, TypeError) as exc:
        parser.error(f"--activation: {exc}")
    if args.model == "cnn":
        from meanfield.kernels import kernel_variance

        try:
            kernel_variance(args.kernel, 3, ndim=2)
        except (ValueError, TypeError) as exc:
            parser.error(f"--kernel: {exc}")
    try:
        load_dataset(args.data)
    except (ValueError, FileNotFoundError, DataFileError) as exc:
        parser.error(f"--data: {exc}")

    try:
        results = trainability(
            model=args.model, activation=args.activation, sigma_w2=grid["sigma_w2"], sigma_b2=grid["sigma_b2"],
            depth=grid["depth"], steps=args.steps, data=args.data, device=args.device, seed=args.seed, out=args.out,
            width=args.width, channels=args.channels, init=args.init, kernel=args.kernel, batch_size=args.batch_size,
            lr=args.lr, momentum=args.momentum, num_evals=args.evals, eval_size=args.eval_size, dtype=args.dtype,
            workers=args.workers, scheduler=args.scheduler, max_batch=args.max_batch, progress=not args.no_progress)
    except ConfigMismatchError as exc:
        parser.error(f"--out: {exc}")
    except KeyboardInterrupt:
        print(f"\ninterrupted: finished cells are saved in {args.out}; rerun the same command to resume",
              file=sys.stderr)
        return 130
    print(summarize_trainability(results, threshold=args.threshold).text())
    print(f"results: {args.out}/trainability.parquet ({len(results)} rows)")
    return 0


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point; returns the exit status."""
    parser = _build_parser()
    args = parser.parse_args(argv)
    if getattr(args, "probe_handler", None) is not None:  # he (issue 12): the probe subcommands
        return args.probe_handler(args)
    return _trainability(parser, args)  # the only command so far (argparse enforces the choice)
