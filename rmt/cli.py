"""Command line interface: ``python -m rmt spectrum ...`` (issue 5; flags and JSON keys are a stable contract).

``python -m rmt spectrum --activation tanh --sigma-w2 1.76 --sigma-b2 0.05 --depth 100 --weights orthogonal
[--num 2000] [--json] [--out FILE]``

With ``--json`` one JSON object is printed with the contract keys ``lam``, ``density`` (lists), ``support``
(``[lo, hi]``), ``mean`` and ``variance``, and the added keys ``atoms`` (``[[location, mass], ...]``), ``tail_mass``,
``q_star`` (``null`` for positively homogeneous activations, whose spectrum needs no fixed point), ``quantile_ratio``
(``s_99 / s_1`` of the singular values ``s = sqrt(lam)``; the string ``"inf"`` when infinite) and ``isometry_fraction``
(``P(1/2 <= s <= 2)``); otherwise a short summary. ``--out`` writes the grid (``lam``, ``density``) as CSV or
Parquet, or the JSON object for a ``.json`` name (written atomically). Bad flags exit with status 2 and a one-line
message naming the flag (the flag parsers are those of :mod:`meanfield.arguments`); a computation that fails (no finite
``q*``, a spectrum beyond float64) exits 1 with a one-line message, never a traceback.
"""

from __future__ import annotations

import argparse
import json
import math
import os
import pathlib
import sys
import tempfile
import warnings

from meanfield.arguments import activation_arg, json_value, nonnegative_float, positive_float

from .spectrum import JacobianSpectrum, jacobian_spectrum

__all__ = ["build_parser", "main"]

_SUFFIXES = (".csv", ".parquet", ".pq", ".json")


def _int_at_least(minimum: int):
    def parse(text: str) -> int:
        try:
            value = int(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"expected an integer >= {minimum}, got {text!r}") from None
        if value < minimum:
            raise argparse.ArgumentTypeError(f"must be an integer >= {minimum}, got {text!r}")
        return value

    return parse


def _out_path(text: str) -> pathlib.Path:
    path = pathlib.Path(text)
    if path.suffix.lower() not in _SUFFIXES:
        raise argparse.ArgumentTypeError(f"file name must end in one of {', '.join(_SUFFIXES)}, got {text!r}")
    return path


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="python -m rmt", description="Random-matrix theory of deep networks.")
    subparsers = parser.add_subparsers(dest="command", required=True, metavar="{spectrum}")
    p = subparsers.add_parser("spectrum", help="limiting density of the eigenvalues of J J^T (free probability)")
    p.add_argument("--activation", type=activation_arg, default="tanh",
                   help="built-in name or expression in x (as meanfield accepts); default tanh")
    p.add_argument("--sigma-w2", type=positive_float, required=True, help="weight variance, > 0")
    p.add_argument("--sigma-b2", type=nonnegative_float, required=True, help="bias variance, >= 0")
    p.add_argument("--depth", type=_int_at_least(1), required=True, help="number of layers, >= 1")
    p.add_argument("--weights", choices=("orthogonal", "gaussian"), required=True, help="weight ensemble")
    p.add_argument("--num", type=_int_at_least(16), default=2000, help="grid points, >= 16 (default 2000)")
    p.add_argument("--json", action="store_true", help="print one JSON object (lam, density, support, mean, variance)")
    p.add_argument("--out", type=_out_path, help="write the grid to .csv/.parquet, or the JSON object to .json")
    return parser


def _as_json(result: JacobianSpectrum) -> dict:
    return {
        "lam": [json_value(x) for x in result.lam.tolist()],
        "density": [json_value(x) for x in result.density.tolist()],
        "support": [json_value(result.support[0]), json_value(result.support[1])],
        "mean": json_value(result.mean),
        "variance": json_value(result.variance),
        "atoms": [[json_value(x), json_value(m)] for x, m in result.atoms],
        "tail_mass": json_value(result.tail_mass),
        "q_star": None if math.isnan(result.q_star) else json_value(result.q_star),
        "quantile_ratio": json_value(result.quantile_ratio),
        "isometry_fraction": json_value(result.isometry_fraction),
    }


def _write_atomic(path: pathlib.Path, write) -> None:
    """Write through ``write(tmp_path)`` to a temporary file next to ``path``, then rename it onto ``path``."""
    fd, tmp = tempfile.mkstemp(dir=path.parent if str(path.parent) else ".", suffix=path.suffix)
    os.close(fd)
    try:
        write(tmp)
        os.replace(tmp, path)
    except BaseException:
        pathlib.Path(tmp).unlink(missing_ok=True)
        raise


def _summary(result: JacobianSpectrum) -> str:
    rows = [
        ("activation", result.params["activation"]),
        ("weights", result.params["weights"]),
        ("depth", result.params["depth"]),
        ("q_star", "not needed (positively homogeneous activation)" if math.isnan(result.q_star)
         else f"{result.q_star:.10g}"),
        ("support", f"[{result.support[0]:.10g}, {result.support[1]:.10g}]"),
        ("mean", f"{result.mean:.10g}"),
        ("variance", f"{result.variance:.10g}"),
        ("atoms", ", ".join(f"{m:.6g} at {x:.6g}" for x, m in result.atoms) or "none"),
        ("tail_mass", f"{result.tail_mass:.3g}"),
        ("quantile_ratio", f"{result.quantile_ratio:.6g}  (s_99 / s_1 of the singular values)"),
        ("isometry_fraction", f"{result.isometry_fraction:.6g}  (mass with 1/2 <= s <= 2)"),
        ("grid points", result.lam.size),
    ]
    return "\n".join(f"{key:<18} {value}" for key, value in rows)


def run_spectrum(args) -> int:
    if args.out is not None:
        parent = args.out.parent if str(args.out.parent) else pathlib.Path(".")
        if not parent.is_dir():
            raise OSError(f"--out: directory {str(parent)!r} does not exist")
    result = jacobian_spectrum(args.activation, args.sigma_w2, args.sigma_b2, args.depth, args.weights, num=args.num)
    if args.out is not None:
        suffix = args.out.suffix.lower()
        if suffix == ".json":
            text = json.dumps(_as_json(result))
            _write_atomic(args.out, lambda tmp: pathlib.Path(tmp).write_text(text))
        elif suffix == ".csv":
            _write_atomic(args.out, lambda tmp: result.to_frame().to_csv(tmp, index=False))
        else:
            _write_atomic(args.out, lambda tmp: result.to_frame().to_parquet(tmp, index=False))
    if args.json:
        print(json.dumps(_as_json(result)))
    else:
        print(_summary(result))
    return 0


def main(argv=None) -> int:
    """Entry point; returns the exit status (2 for bad flags, 1 when the computation fails)."""
    parser = build_parser()
    args = parser.parse_args(argv)
    previous = warnings.formatwarning
    warnings.formatwarning = lambda message, category, *_, **__: f"{parser.prog}: {category.__name__}: {message}\n"
    try:
        return run_spectrum(args)
    except (ArithmeticError, ValueError, RuntimeError, OSError, ImportError) as exc:
        # numerical trouble or a missing optional writer: one clean line, never a traceback
        print(f"{parser.prog} {args.command}: error: {exc} ({type(exc).__name__})", file=sys.stderr)
        return 1
    finally:
        warnings.formatwarning = previous
