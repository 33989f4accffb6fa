"""``python -m figures``: every figure from built-in defaults, into one folder (PNG, PDF and plotted data as CSV), with
``report.html`` showing them all and their key numbers as tables."""

from __future__ import annotations

import argparse
import io
import pathlib
import shlex
import sys
import time
import traceback

from .registry import FIGURES, figure_names
from .report import WEB_FORMATS, ReportEntry, write_report
from .style import figure_style, save_figure

FORMATS = ("png", "pdf", "svg", "jpg")


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="python -m figures", description=__doc__)
    parser.add_argument("--out", default="figures-out", help="output folder (created if missing; default figures-out)")
    parser.add_argument("--only", default=None,
                        help="comma-separated figure names to make (default: all; see --list)")
    parser.add_argument("--formats", default="png,pdf", help="comma-separated image formats (default png,pdf)")
    parser.add_argument("--quick", action="store_true",
                        help="reduced grids and samples (seconds instead of a minute or two; for a first look)")
    parser.add_argument("--no-report", action="store_true", help="do not write report.html")
    parser.add_argument("--no-progress", action="store_true", help="no progress bars inside long figures")
    parser.add_argument("--list", action="store_true", help="list the figures and exit")
    return parser


def _check_out(parser: argparse.ArgumentParser, text: str) -> pathlib.Path:
    out = pathlib.Path(text)
    if out.exists() and not out.is_dir():
        parser.error(f"--out: {text!r} exists and is not a folder")
    try:
        out.mkdir(parents=True, exist_ok=True)
        probe = out / ".figures-write-check"
        probe.write_bytes(b"")
        probe.unlink()
    except OSError as err:
        parser.error(f"--out: cannot write to {text!r} ({err.strerror or err})")
    return out


def _command(name: str, out: pathlib.Path, formats: tuple[str, ...], quick: bool) -> str:
    words = ["python", "-m", "figures", "--only", name, "--out", str(out)]
    if formats != ("png", "pdf"):
        words += ["--formats", ",".join(formats)]
    if quick:
        words.append("--quick")
    return shlex.join(words)


def _make(spec, tag, args, out, formats, web, entries, skipped, failed, log) -> None:
    """Make one figure: check its extras, draw, save, tabulate; record it in ``entries``, ``skipped`` or ``failed``."""
    log(f"{tag}: {spec.description} ...")
    missing = spec.missing_extras()
    if missing:
        skipped[spec.name] = "; ".join(missing)
        log(f"{tag}: SKIPPED: {skipped[spec.name]}")
        return
    start = time.perf_counter()
    try:
        with figure_style():
            function = spec.load()
            fig, data = function(**spec.arguments(function, quick=args.quick, progress=not args.no_progress))
            png = None
            if web is None and not args.no_report:  # the report needs an image a browser shows: embed it
                buffer = io.BytesIO()
                fig.savefig(buffer, format="png")
                png = buffer.getvalue()
            paths = save_figure(fig, data, out, spec.name, formats)
        make_tables = spec.load_tables()
        tables = make_tables(data) if make_tables is not None and not args.no_report else {}
    except Exception as err:  # one broken figure must not cost the others; reported and counted below
        failed[spec.name] = f"{type(err).__name__}: {err}"
        traceback.print_exc()
        log(f"{tag}: FAILED ({failed[spec.name]})")
        return
    seconds = time.perf_counter() - start
    entries.append(ReportEntry(name=spec.name, description=spec.description,
                               command=_command(spec.name, out, formats, args.quick), commands=spec.commands,
                               files=paths, image=f"{spec.name}.{web}" if web else None, image_png=png,
                               tables=tables, seconds=seconds))
    log(f"{tag}: done in {seconds:.1f} s -> {', '.join(p.name for p in paths)}")


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
    bad = [f for f in formats if f not in FORMATS]
    if bad or not formats:
        parser.error(f"--formats: unsupported {bad or formats}; choose from {', '.join(FORMATS)}")
    out = _check_out(parser, args.out)
    specs = [spec for spec in FIGURES if spec.name in chosen]
    web = next((f for f in formats if f in WEB_FORMATS), None)
    entries, skipped, failed = [], {}, {}
    t0 = time.perf_counter()
    argv_text = shlex.join(["python", "-m", "figures", *(sys.argv[1:] if argv is None else argv)])

    def log(message: str) -> None:
        print(f"[figures {time.perf_counter() - t0:6.1f} s] {message}", flush=True)

    def report() -> pathlib.Path | None:
        # rewritten (atomically) after every figure, so an interrupted run keeps a report of what it made
        if args.no_report:
            return None
        return write_report(out, entries, skipped=skipped, failed=failed, quick=args.quick,
                            elapsed=time.perf_counter() - t0, command=argv_text)

    try:
        for i, spec in enumerate(specs, start=1):
            _make(spec, f"{i}/{len(specs)} {spec.name}", args, out, formats, web, entries, skipped, failed, log)
            report()
    except KeyboardInterrupt:
        log(f"interrupted; the {len(entries)} finished figure(s) are in {out}/")
        return 130
    elapsed = time.perf_counter() - t0
    path = report()
    if path is not None:
        log(f"report: {path}")
    if skipped:
        log(f"skipped {len(skipped)} figure(s) for missing optional dependencies: {', '.join(skipped)}")
    if failed:
        print(f"[figures] FAILED: {', '.join(failed)}", file=sys.stderr)
        return 1
    log(f"{len(entries)} figure(s) in {out}/ in {elapsed:.1f} s")
    return 0
