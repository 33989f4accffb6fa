"""``python -m figures``: every figure from built-in defaults, into one folder (PNG, PDF and plotted data as CSV)."""

from __future__ import annotations

import argparse
import pathlib
import sys
import time
import traceback

from .registry import FIGURES, figure_names
from .style import figure_style, save_figure


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="python -m figures", description=__doc__)
    parser.add_argument("--out", default="figures-out", help="output folder (created if missing; default figures-out)")
    parser.add_argument("--only", default=None,
                        help="comma-separated figure names to make (default: all; see --list)")
    parser.add_argument("--formats", default="png,pdf", help="comma-separated image formats (default png,pdf)")
    parser.add_argument("--list", action="store_true", help="list the figures and exit")
    return parser


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    if args.list:
        for spec in FIGURES:
            print(f"{spec.name:24s} {spec.description}")
        return 0
    names = figure_names()
    chosen = names if args.only is None else [n.strip() for n in args.only.split(",") if n.strip()]
    unknown = [n for n in chosen if n not in names]
    if unknown or not chosen:
        parser.error(f"--only: unknown figure(s) {unknown or chosen}; valid names: {', '.join(names)}")
    formats = tuple(f.strip().lower() for f in args.formats.split(",") if f.strip())
    bad = [f for f in formats if f not in {"png", "pdf", "svg", "jpg"}]
    if bad or not formats:
        parser.error(f"--formats: unsupported {bad or formats}; choose from png, pdf, svg, jpg")
    out = pathlib.Path(args.out)
    failed = []
    for spec in FIGURES:
        if spec.name not in chosen:
            continue
        start = time.perf_counter()
        print(f"[figures] {spec.name}: {spec.description} ...", flush=True)
        try:
            with figure_style():
                fig, data = spec.load()()
                paths = save_figure(fig, data, out, spec.name, formats)
        except Exception:  # one broken figure must not cost the others; reported and counted below
            failed.append(spec.name)
            traceback.print_exc()
            continue
        print(f"[figures] {spec.name}: {time.perf_counter() - start:.1f} s -> "
              f"{', '.join(str(p) for p in paths)}", flush=True)
    if failed:
        print(f"[figures] FAILED: {', '.join(failed)}", file=sys.stderr)
        return 1
    print(f"[figures] {len(chosen)} figure(s) in {out}/")
    return 0
