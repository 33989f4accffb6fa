"""Command line of the validation experiments: ``python -m validate trainability ...``, ``python -m validate presets``.

Bad flags exit with status 2 and a one-line message naming the flag (argparse's ``parser.error``); an interrupted run
(Ctrl-C) exits with 130 after saying how to resume.

Other subcommands reuse the engine's flags with :func:`add_engine_arguments` (``--device``, ``--dtype``, ``--seed``,
``--data``, ``--out``, ``--no-resume``, ``--no-progress``, ``--json``, ``--threads``, ``--tf32``) and check them with
:func:`check_engine_arguments`.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence

import numpy as np

__all__ = ["add_engine_arguments", "check_engine_arguments", "main", "parse_range"]


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


ENGINE_FLAGS = ("--device", "--dtype", "--seed", "--data", "--out", "--no-resume", "--no-progress", "--json",
                "--threads", "--tf32")


def _threads_arg(text: str):
    if text == "auto":
        return text
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected 'auto' or a positive integer, got {text!r}") from None
    if value < 1:
        raise argparse.ArgumentTypeError(f"expected 'auto' or a positive integer, got {text!r}")
    return value


def add_engine_arguments(parser: argparse.ArgumentParser, *, out_required: bool = False,
                         data_default: str | None = "mnist-sample", dtype_default: str = "float32",
                         data: bool = True) -> None:
    """Add the engine's flags to ``parser`` (one definition for every ``python -m validate`` subcommand).

    Flags: ``--device`` (auto | cpu | cuda[:N]), ``--dtype`` (float32 | float64), ``--seed`` (int), ``--data``
    (a :func:`validate.data.load_dataset` spec), ``--out DIR`` (results; resumable), ``--no-resume`` (refuse an
    ``--out`` that already holds results), ``--no-progress``, ``--json`` (print the summary as JSON),
    ``--threads`` (CPU threads: ``auto`` = idle cores under the current load, or a count) and ``--tf32``
    (TensorFloat-32 matmuls on the GPU). Validate them with :func:`check_engine_arguments`.
    """
    group = parser.add_argument_group("engine")
    group.add_argument("--device", default="auto", help="auto | cpu | cuda | cuda:N (default auto)")
    group.add_argument("--dtype", choices=["float32", "float64"], default=dtype_default,
                       help=f"torch dtype (default {dtype_default})")
    group.add_argument("--seed", type=int, default=0)
    if data:
        group.add_argument("--data", default=data_default,
                           help="mnist-sample | digits | synthetic | mnist:DIR | cifar10:DIR (default "
                           + (data_default or "generated inputs") + ")")
    group.add_argument("--out", required=out_required, default=None, help="output directory (resumable)")
    group.add_argument("--no-resume", action="store_true", help="refuse an --out directory that holds results")
    group.add_argument("--no-progress", action="store_true", help="no progress bar")
    group.add_argument("--json", action="store_true", help="print the summary as JSON")
    group.add_argument("--threads", type=_threads_arg, default="auto",
                       help="CPU threads: auto (idle cores under the current load; default) or a count")
    group.add_argument("--tf32", action="store_true",
                       help="allow TensorFloat-32 matmuls and convolutions on the GPU (faster, ~1e-3 products)")


def check_engine_arguments(parser: argparse.ArgumentParser, args: argparse.Namespace, *, load_data: bool = True):
    """Check the flags of :func:`add_engine_arguments`; ``parser.error`` (exit 2, naming the flag) on bad ones.

    Returns
    -------
    torch.device, the resolved ``--device``.
    """
    import torch

    from validate.batched import resolve_device
    from validate.data import DataFileError, load_dataset

    if args.device != "auto":
        try:
            device = torch.device(args.device)
        except RuntimeError:
            parser.error(f"--device: expected auto, cpu or cuda[:N], got {args.device!r}")
        if device.type not in ("cpu", "cuda"):
            parser.error(f"--device: expected auto, cpu or cuda[:N], got {args.device!r}")
        if device.type == "cuda" and not torch.cuda.is_available():
            parser.error("--device cuda: no CUDA device is available (use --device auto or cpu)")
        if device.type == "cuda" and device.index is not None and device.index >= torch.cuda.device_count():
            parser.error(f"--device: {args.device!r} but only {torch.cuda.device_count()} CUDA device(s)")
    if load_data and getattr(args, "data", None) is not None:
        try:
            load_dataset(args.data)
        except (ValueError, FileNotFoundError, DataFileError) as exc:
            parser.error(f"--data: {exc}")
        except ImportError as exc:
            parser.error(f"--data: {args.data} needs a missing package ({exc})")
    return resolve_device(args.device)


# settings a preset may fill: dest -> (flag, argparse type)
_PRESET_FLAGS = {
    "model": "--model", "activation": "--activation", "sigma_b2": "--sigma-b2", "sigma_w2": "--sigma-w2",
    "depth": "--depth", "steps": "--steps", "width": "--width", "channels": "--channels", "init": "--init",
    "kernel": "--kernel", "batch_size": "--batch-size", "lr": "--lr", "momentum": "--momentum", "evals": "--evals",
    "eval_size": "--eval-size", "threshold": "--threshold", "metric": "--metric", "lr_depth_ref": "--lr-depth-ref",
}


def _build_parser() -> argparse.ArgumentParser:
    from validate.presets import DEFAULT_PRESET, PRESETS

    parser = argparse.ArgumentParser(prog="python -m validate", description=__doc__.splitlines()[0])
    sub = parser.add_subparsers(dest="command", required=True)
    p = sub.add_parser("trainability", help="train a sigma_w2 x depth grid and compare with 6 xi_c",
                       description="Train a grid of networks and compare trainability with depth < 6 xi_c. "
                       "Settings not given come from --preset (default: 'default'); explicit flags win.")
    defaults = PRESETS[DEFAULT_PRESET].settings
    p.add_argument("--preset", default=DEFAULT_PRESET, choices=list(PRESETS),
                   help="named settings (python -m validate presets lists them)")
    p.add_argument("--dry-run", action="store_true", help="print the resolved settings and exit")
    # preset-filled flags default to None so that explicit values can be told apart
    p.add_argument("--model", choices=["fc", "cnn"], default=None, help=f"(default {defaults['model']})")
    p.add_argument("--activation", default=None, help="built-in name or expression in x (default tanh)")
    p.add_argument("--sigma-b2", default=None, help="value, start:stop:num or comma list (default 0.05)")
    p.add_argument("--sigma-w2", default=None, help="start:stop:num or comma list (default 1:4:16)")
    p.add_argument("--depth", default=None, help="start:stop:num (rounded) or comma list of integers (10:300:16)")
    p.add_argument("--steps", type=int, default=None, help="SGD steps (default 1000)")
    p.add_argument("--width", type=int, default=None, help="FC width (default 256)")
    p.add_argument("--channels", type=int, default=None, help="CNN channels c (default 32)")
    p.add_argument("--init", choices=["gaussian", "orthogonal", "delta-orthogonal"], default=None)
    p.add_argument("--kernel", default=None, help="variance vector of Gaussian conv kernels: uniform, delta, "
                   "GS0..GS4 (default uniform)")
    p.add_argument("--batch-size", type=int, default=None, help="(default 128)")
    p.add_argument("--lr", type=float, default=None, help="SGD learning rate (default 0.01)")
    p.add_argument("--momentum", type=float, default=None, help="(default 0)")
    p.add_argument("--lr-depth-ref", type=float, default=None,
                   help="networks deeper than this train with lr * REF / depth (default: the same lr at every depth)")
    p.add_argument("--evals", type=int, default=None, help="evaluations per network besides step 0 (default 10)")
    p.add_argument("--eval-size", type=int, default=None, help="training examples for train loss/accuracy (2000)")
    p.add_argument("--threshold", type=float, default=None,
                   help="trains = final accuracy > chance + threshold * (1 - chance) (default 0.5)")
    p.add_argument("--metric", choices=["test", "train"], default=None,
                   help="which final accuracy decides 'trains' (default test; the papers' presets: train)")
    p.add_argument("--max-batch", type=int, default=None, help="cap on networks trained together")
    group = p.add_mutually_exclusive_group()
    group.add_argument("--workers", type=int, default=None, help="start a local Dask cluster of N workers")
    group.add_argument("--scheduler", default=None, help="address of an existing dask.distributed scheduler")
    add_engine_arguments(p)
    sub.add_parser("presets", help="list the named presets of 'trainability'",
                   description="List the presets of 'python -m validate trainability --preset NAME'.")
    from validate.probe_cli import add_probe_subcommands  # issue 12: signal, spectra, gradnorm, speed, diagnose

    add_probe_subcommands(sub)
    return parser


def resolve_preset(args: argparse.Namespace) -> dict:
    """The settings of ``args.preset`` overridden by every flag given explicitly (dest -> value)."""
    from validate.presets import get_preset

    settings = dict(get_preset(args.preset).settings)
    for dest in _PRESET_FLAGS:
        value = getattr(args, dest)
        if value is not None:
            settings[dest] = value
    return settings


def _presets() -> int:
    from validate.presets import PRESETS

    for preset in PRESETS.values():
        print(f"{preset.name}: {preset.description}")
        print("  " + " ".join(f"{_PRESET_FLAGS[k]} {v}" for k, v in preset.settings.items() if v is not None))
        print(f"  source: {preset.source}")
        print(f"  scaled: {preset.scaled}")
    return 0


def _trainability(parser: argparse.ArgumentParser, args: argparse.Namespace) -> int:
    import json

    settings = resolve_preset(args)
    grid = {}
    for flag, name, integer in (("--sigma-w2", "sigma_w2", False), ("--sigma-b2", "sigma_b2", False),
                                ("--depth", "depth", True)):
        try:
            grid[name] = parse_range(str(settings[name]), integer=integer)
        except ValueError as exc:
            parser.error(f"{flag}: {exc}")
    if min(grid["sigma_w2"]) <= 0:
        parser.error("--sigma-w2: values must be > 0")
    if min(grid["sigma_b2"]) < 0:
        parser.error("--sigma-b2: values must be >= 0")
    for dest in ("steps", "width", "channels", "batch_size", "evals", "eval_size"):
        if settings[dest] < 1:
            parser.error(f"{_PRESET_FLAGS[dest]}: must be a positive integer, got {settings[dest]}")
    if args.workers is not None and args.workers < 1:
        parser.error(f"--workers: must be a positive integer, got {args.workers}")
    if args.max_batch is not None and args.max_batch < 1:
        parser.error(f"--max-batch: must be a positive integer, got {args.max_batch}")
    if not settings["lr"] > 0:
        parser.error(f"--lr: must be > 0, got {settings['lr']}")
    if not 0 <= settings["momentum"] < 1:
        parser.error(f"--momentum: must be in [0, 1), got {settings['momentum']}")
    if settings.get("lr_depth_ref") is not None and not settings["lr_depth_ref"] > 0:
        parser.error(f"--lr-depth-ref: must be > 0, got {settings['lr_depth_ref']}")
    if not 0 < settings["threshold"] < 1:
        parser.error(f"--threshold: must be in (0, 1), got {settings['threshold']}")
    try:
        from meanfield.activations import get_activation

        get_activation(settings["activation"])
    except (ValueError, TypeError) as exc:
        parser.error(f"--activation: {exc}")
    if settings["model"] == "cnn":
        from meanfield.kernels import kernel_variance

        try:
            kernel_variance(settings["kernel"], 3, ndim=2)
        except (ValueError, TypeError) as exc:
            parser.error(f"--kernel: {exc}")
    device = check_engine_arguments(parser, args)
    if args.dry_run:
        from validate.trainability import depth_scaled_lr

        resolved = {**settings, **grid, "preset": args.preset, "device": str(device), "dtype": args.dtype,
                    "seed": args.seed, "data": args.data, "out": args.out, "tf32": args.tf32,
                    "threads": args.threads, "cells": len(grid["sigma_w2"]) * len(grid["sigma_b2"]) *
                    len(grid["depth"]),
                    "lr_by_depth": {d: depth_scaled_lr(settings["lr"], d, settings.get("lr_depth_ref"))
                                    for d in grid["depth"]}}
        print(json.dumps(resolved, indent=2) if args.json else
              "\n".join(f"{key}: {value}" for key, value in resolved.items()))
        return 0
    if args.out is None:
        parser.error("--out: required (the output directory) unless --dry-run")

    from validate.trainability import ConfigMismatchError, summarize_trainability, trainability

    try:
        results = trainability(
            model=settings["model"], activation=settings["activation"], sigma_w2=grid["sigma_w2"],
            sigma_b2=grid["sigma_b2"], depth=grid["depth"], steps=settings["steps"], data=args.data,
            device=args.device, seed=args.seed, out=args.out, width=settings["width"], channels=settings["channels"],
            init=settings["init"], kernel=settings["kernel"], batch_size=settings["batch_size"], lr=settings["lr"],
            momentum=settings["momentum"], num_evals=settings["evals"], eval_size=settings["eval_size"],
            dtype=args.dtype, workers=args.workers, scheduler=args.scheduler, max_batch=args.max_batch,
            progress=not args.no_progress, threads=args.threads, tf32=args.tf32, resume=not args.no_resume,
            lr_depth_ref=settings.get("lr_depth_ref"))
    except ConfigMismatchError as exc:
        parser.error(f"--out: {exc}")
    except FileExistsError as exc:
        parser.error(f"--no-resume: {exc}")
    except KeyboardInterrupt:
        print(f"\ninterrupted: finished cells are saved in {args.out}; rerun the same command to resume",
              file=sys.stderr)
        return 130
    summary = summarize_trainability(results, threshold=settings["threshold"], metric=settings["metric"])
    if args.json:
        def finite(value):
            return value if np.isfinite(value) else None  # strict JSON has no NaN / inf

        print(json.dumps({"agreement": summary.agreement, "n_cells": summary.n_cells, "metric": summary.metric,
                          "threshold": summary.threshold, "multiplier": summary.multiplier,
                          "fitted_multiplier": finite(summary.fitted_multiplier),
                          "fitted_interval": [finite(v) for v in summary.fitted_interval],
                          "fitted_agreement": finite(summary.fitted_agreement), "preset": args.preset,
                          "results": f"{args.out}/trainability.parquet", "rows": len(results)}))
    else:
        print(summary.text())
        print(f"results: {args.out}/trainability.parquet ({len(results)} rows)")
    return 0


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point; returns the exit status."""
    parser = _build_parser()
    args = parser.parse_args(argv)
    if getattr(args, "probe_handler", None) is not None:  # issue 12: the probe subcommands
        return args.probe_handler(args)
    if args.command == "presets":
        return _presets()
    return _trainability(parser, args)
