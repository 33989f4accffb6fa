"""Command line interface: ``python -m meanfield point | critical | grid | modes``.

The subcommands, flags and JSON keys are a stable contract (issue 2). Each subcommand is a pair of functions
``add_parser(subparsers)`` and ``run(args) -> int`` registered in :data:`SUBCOMMANDS`; ``grid`` lives in
:mod:`meanfield.grid_cli` and ``modes`` in :mod:`meanfield.conv_cli`. The flag types are in :mod:`meanfield.arguments`
(re-exported here for older imports). Modules are imported when a subcommand needs them, so ``point`` with a built-in
activation does not import sympy, pandas or tqdm.

Exit status: 0 success; 2 bad input (argparse names the flag and the valid range; also inputs the computation rejects
with a ValueError, and a missing optional package); 1 a computation that fails (no fixed point, numerical trouble, an
I/O error while writing); 130 interrupted. No input prints a traceback (``--traceback`` shows it for bug reports).
"""

from __future__ import annotations

import argparse
import json
import sys

from . import conv_cli, grid_cli
from .arguments import (
    activation_arg,
    float_range,
    json_value,
    nonnegative_float,
    positive_float,
    show_warnings,
)

__all__ = ["SUBCOMMANDS", "activation_arg", "nonnegative_float", "positive_float", "float_range", "json_value",
           "main", "build_parser", "PROG"]

PROG = "python -m meanfield"


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

    with show_warnings(f"{PROG} point"):
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

    with show_warnings(f"{PROG} critical"):
        sigma_w2, q = critical_sigma_w2(args.activation, args.sigma_b2)
    if args.json:
        print(json.dumps({"sigma_w2": json_value(sigma_w2), "q_star": json_value(q)}))
    else:
        _print_table([("sigma_w2", sigma_w2), ("q_star", q)])
    return 0


# -- dispatch

#: name -> (add_parser(subparsers), run(args) -> exit status). Other modules register here with one entry each.
SUBCOMMANDS = {
    "point": (add_point_parser, run_point),
    "critical": (add_critical_parser, run_critical),
    "grid": (grid_cli.add_parser, grid_cli.run),
    "modes": (conv_cli.add_parser, conv_cli.run),
    # further subcommands: import their module at the top of this file and add one entry here
}


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog=PROG,
                                     description="Mean-field theory of deep networks at initialization "
                                                 "(variances sigma_w2, sigma_b2 throughout).")
    parser.add_argument("--traceback", action="store_true", help="show the Python traceback of an unexpected error")
    subparsers = parser.add_subparsers(dest="command", required=True, metavar="{" + ",".join(SUBCOMMANDS) + "}")
    for add_parser, run in SUBCOMMANDS.values():
        before = set(subparsers.choices)
        add_parser(subparsers)
        for name in set(subparsers.choices) - before:
            subparsers.choices[name].set_defaults(_run=run)
    return parser


def main(argv=None) -> int:
    """Entry point; returns the exit status (see the module docstring)."""
    from .optional import MissingExtraError

    parser = build_parser()
    args = parser.parse_args(argv)
    prog = f"{PROG} {args.command}"
    try:
        return args._run(args)
    except KeyboardInterrupt:
        print(f"\n{prog}: interrupted", file=sys.stderr)
        return 130
    except MissingExtraError as exc:
        print(f"{prog}: error: {exc}", file=sys.stderr)
        return 2
    except (ValueError, TypeError) as exc:
        if args.traceback:
            raise
        print(f"{prog}: error: {exc}", file=sys.stderr)
        return 2
    except ArithmeticError as exc:
        if args.traceback:
            raise
        print(f"{prog}: error: {exc}", file=sys.stderr)
        return 1
    except OSError as exc:
        if args.traceback:
            raise
        print(f"{prog}: error: {exc}", file=sys.stderr)
        return 1
    except MemoryError:
        print(f"{prog}: error: out of memory (try a smaller grid)", file=sys.stderr)
        return 1
    except Exception as exc:  # noqa: BLE001 - never a traceback from the CLI; --traceback shows it
        if args.traceback:
            raise
        print(f"{prog}: internal error: {type(exc).__name__}: {exc} (rerun with --traceback and report it)",
              file=sys.stderr)
        return 1
