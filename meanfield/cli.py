"""Command line interface: ``python -m meanfield point | critical | grid``.

The subcommands, flags and JSON keys are a stable contract (issue 2). Each subcommand is a pair of functions
``add_parser(subparsers)`` and ``run(args) -> int`` registered in :data:`SUBCOMMANDS`; the flag parsers below
(:func:`activation_arg`, :func:`nonnegative_float`, :func:`positive_float`, :func:`float_range`) are reusable by
other subcommand modules.
"""

from __future__ import annotations

import argparse
import json
import math
import pathlib
import sys
import warnings

import numpy as np

from . import conv_cli  # the convolutional `modes` subcommand
from .activations import Activation, get_activation

__all__ = ["SUBCOMMANDS", "activation_arg", "nonnegative_float", "positive_float", "float_range", "json_value",
           "main", "build_parser"]


# -- reusable flag parsers (raise argparse.ArgumentTypeError: argparse then exits 2 naming the flag)


def activation_arg(text: str) -> Activation:
    """``--activation``: a built-in name (``tanh``, ``leaky_relu(slope=0.1)``, ...) or an expression in ``x``."""
    try:
        return get_activation(text)
    except (ValueError, TypeError) as exc:
        raise argparse.ArgumentTypeError(str(exc)) from None


def _float(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a number, got {text!r}") from None
    if not math.isfinite(value):
        raise argparse.ArgumentTypeError(f"must be a finite number, got {text!r}")
    return value


def nonnegative_float(text: str) -> float:
    """A finite float ``>= 0`` (a variance in [0, inf))."""
    value = _float(text)
    if value < 0:
        raise argparse.ArgumentTypeError(f"must be a variance in [0, inf), got {text!r}")
    return value


def positive_float(text: str) -> float:
    """A finite float ``> 0`` (a variance in (0, inf))."""
    value = _float(text)
    if value <= 0:
        raise argparse.ArgumentTypeError(f"must be a variance in (0, inf), got {text!r}")
    return value


def float_range(text: str, *, minimum: float = 0.0, strict: bool = False) -> np.ndarray:
    """``start:stop:num`` (``num`` evenly spaced values, ends included) or a single number; values ``>= minimum``
    (``> minimum`` if ``strict``)."""
    parts = text.split(":")
    bound = f"({minimum:g}, inf)" if strict else f"[{minimum:g}, inf)"
    try:
        if len(parts) == 1:
            values = np.array([_float(parts[0])])
        elif len(parts) == 3:
            start, stop = _float(parts[0]), _float(parts[1])
            num = int(parts[2])
            if num < 1:
                raise argparse.ArgumentTypeError(f"num in start:stop:num must be >= 1, got {parts[2]!r}")
            values = np.linspace(start, stop, num)
        else:
            raise argparse.ArgumentTypeError(f"expected start:stop:num or a number, got {text!r}")
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected start:stop:num with an integer num, got {text!r}") from None
    if np.any(values < minimum) or (strict and np.any(values == minimum)):
        raise argparse.ArgumentTypeError(f"values must lie in {bound}, got {text!r}")
    return values


def _variance_range(text: str) -> np.ndarray:
    return float_range(text)


def _positive_range(text: str) -> np.ndarray:
    return float_range(text, strict=True)


def json_value(value):
    """A JSON-safe value: infinite floats as ``"inf"`` / ``"-inf"``, NaN as ``"nan"``, numpy scalars as Python."""
    if isinstance(value, (bool, np.bool_)):
        return bool(value)
    if isinstance(value, (float, np.floating)):
        value = float(value)
        if math.isinf(value):
            return "inf" if value > 0 else "-inf"
        if math.isnan(value):
            return "nan"
        return value
    if isinstance(value, np.integer):
        return int(value)
    return value


def _print_table(pairs: list[tuple[str, object]]) -> None:
    width = max(len(k) for k, _ in pairs)
    for key, value in pairs:
        shown = f"{value:.12g}" if isinstance(value, float) else str(value)
        print(f"{key:<{width}}  {shown}")


# -- point

POINT_KEYS = ("q_star", "c_star", "chi_1", "chi_c", "xi_q", "xi_c", "phase")


def add_point_parser(subparsers) -> None:
    p = subparsers.add_parser("point", help="all mean-field quantities at one (sigma_w2, sigma_b2)",
                              description="q_star, c_star, chi_1, chi_c, xi_q, xi_c and phase at one point.")
    p.add_argument("--activation", type=activation_arg, default="tanh",
                   help="built-in name or expression in x (default tanh)")
    p.add_argument("--sigma-w2", type=positive_float, required=True, help="weight variance, > 0")
    p.add_argument("--sigma-b2", type=nonnegative_float, required=True, help="bias variance, >= 0")
    p.add_argument("--json", action="store_true", help="print one JSON object")


def run_point(args) -> int:
    from .quantities import mean_field_point

    with warnings.catch_warnings():
        warnings.simplefilter("ignore", category=RuntimeWarning)
        point = mean_field_point(args.activation, args.sigma_w2, args.sigma_b2)
    values = {k: getattr(point, k) for k in POINT_KEYS}
    if args.json:
        print(json.dumps({k: json_value(v) for k, v in values.items()}))
    else:
        _print_table(list(values.items()))
        if not point.q_star_finite:
            print("no finite fixed point q* (the length map diverges)")
    return 0


# -- critical


def add_critical_parser(subparsers) -> None:
    p = subparsers.add_parser("critical", help="the critical weight variance (chi_1 = 1) at a bias variance",
                              description="sigma_w2 and q_star on the critical line chi_1 = 1.")
    p.add_argument("--activation", type=activation_arg, default="tanh",
                   help="built-in name or expression in x (default tanh)")
    p.add_argument("--sigma-b2", type=nonnegative_float, required=True, help="bias variance, >= 0")
    p.add_argument("--json", action="store_true", help="print one JSON object")


def run_critical(args) -> int:
    from .quantities import critical_sigma_w2

    with warnings.catch_warnings():
        warnings.simplefilter("ignore", category=RuntimeWarning)
        sigma_w2, q = critical_sigma_w2(args.activation, args.sigma_b2)
    if args.json:
        print(json.dumps({"sigma_w2": json_value(sigma_w2), "q_star": json_value(q)}))
    else:
        _print_table([("sigma_w2", sigma_w2), ("q_star", q)])
    return 0


# -- grid

_WRITERS = {".csv": "csv", ".parquet": "parquet", ".pq": "parquet"}


def _out_path(text: str) -> pathlib.Path:
    path = pathlib.Path(text)
    if path.suffix.lower() not in _WRITERS:
        raise argparse.ArgumentTypeError(f"file name must end in .csv, .parquet or .pq, got {text!r}")
    return path


def add_grid_parser(subparsers) -> None:
    p = subparsers.add_parser("grid", help="all quantities on a (sigma_w2 x sigma_b2) grid, written to CSV/Parquet",
                              description="Outer-product grid; one row per point. Ranges are start:stop:num.")
    p.add_argument("--activation", type=activation_arg, default="tanh",
                   help="built-in name or expression in x (default tanh)")
    p.add_argument("--sigma-w2", type=_positive_range, required=True, help="start:stop:num, values > 0")
    p.add_argument("--sigma-b2", type=_variance_range, required=True, help="start:stop:num, values >= 0")
    p.add_argument("--out", type=_out_path, required=True, help="output file, .csv or .parquet")
    p.add_argument("--no-progress", action="store_true", help="no progress bar")


def run_grid(args) -> int:
    from .quantities import mean_field_grid

    with warnings.catch_warnings():
        warnings.simplefilter("ignore", category=RuntimeWarning)
        progress = False if args.no_progress else None
        table = mean_field_grid(args.activation, args.sigma_w2, args.sigma_b2, progress=progress)
    if args.out.parent and not args.out.parent.exists():
        args.out.parent.mkdir(parents=True)
    if _WRITERS[args.out.suffix.lower()] == "csv":
        table.to_csv(args.out, index=False)
    else:
        table.to_parquet(args.out, index=False)
    print(f"wrote {len(table)} rows to {args.out}", file=sys.stderr)
    return 0


# -- dispatch

#: name -> (add_parser(subparsers), run(args) -> exit status). Other modules register here with one entry each.
SUBCOMMANDS = {
    "point": (add_point_parser, run_point),
    "critical": (add_critical_parser, run_critical),
    "grid": (add_grid_parser, run_grid),
    "modes": (conv_cli.add_parser, conv_cli.run),
    # further subcommands: import their module at the top of this file and add one entry here
}


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="python -m meanfield",
                                     description="Mean-field theory of deep networks at initialization "
                                                 "(variances sigma_w2, sigma_b2 throughout).")
    subparsers = parser.add_subparsers(dest="command", required=True, metavar="{" + ",".join(SUBCOMMANDS) + "}")
    for add_parser, run in SUBCOMMANDS.values():
        before = set(subparsers.choices)
        add_parser(subparsers)
        for name in set(subparsers.choices) - before:
            subparsers.choices[name].set_defaults(_run=run)
    return parser


def main(argv=None) -> int:
    """Entry point; returns the exit status (2 for bad flags, 1 when the computation fails)."""
    parser = build_parser()
    args = parser.parse_args(argv)
    try:
        return args._run(args)
    except (ArithmeticError, ValueError) as exc:
        print(f"{parser.prog} {args.command}: error: {exc}", file=sys.stderr)
        return 1
