"""``python -m meanfield grid``: every mean-field quantity on a sigma_w2 x sigma_b2 grid, written to CSV or Parquet.

Example::

    python -m meanfield grid --activation tanh --sigma-w2 0.5:4:512 --sigma-b2 0:1:512 --out g.parquet

Rows are the outer product with ``sigma_b2`` varying fastest; columns as :func:`meanfield.mean_field_grid`.

Before computing, the output is checked: suffix ``.csv``, ``.parquet`` or ``.pq``; its directory exists (or can be
created) and is writable; the Parquet engine (pyarrow, extra ``parquet``) is installed; and the disk has room for the
result. The grid is solved in chunks of ``--chunk-points`` points, so memory stays bounded for any grid size. A grid of
more than one chunk keeps finished chunks in ``OUT.partial/`` (one ``.npz`` file each, written atomically, read back
without pickles) and shows a progress bar; an interrupted run (Ctrl-C, kill) resumes from them when the same command is
run again, and a different command refuses to mix with them (``--restart`` discards them). The output file itself is
written to a temporary file in the same directory and renamed into place, so it is either complete or absent.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import math
import os
import pathlib
import shutil
import sys
import tempfile

import numpy as np

from .arguments import activation_arg, output_file, positive_range, show_warnings, variance_range

__all__ = ["add_parser", "run", "CHUNK_POINTS", "SUFFIXES", "partial_dir"]

PROG = "python -m meanfield grid"
#: Default number of grid points solved (and saved) at a time.
CHUNK_POINTS = 65_536
#: Output suffixes and their formats.
SUFFIXES = {".csv": "csv", ".parquet": "parquet", ".pq": "parquet"}
#: Disk bytes per grid point: the output (CSV about 200, Parquet less) plus the saved chunks (about 110).
BYTES_PER_POINT = {"csv": 200 + 110, "parquet": 100 + 110}
_FORMAT_VERSION = 1


def add_parser(subparsers) -> None:
    """Register the ``grid`` subcommand."""
    p = subparsers.add_parser("grid", help="all quantities on a (sigma_w2 x sigma_b2) grid, written to CSV/Parquet",
                              description="Outer-product grid; one row per point. Ranges are start:stop:num. "
                                          "Large grids are solved in chunks, resumable after an interruption.")
    p.add_argument("--activation", type=activation_arg, default="tanh",
                   help="built-in name or expression in x (default tanh)")
    p.add_argument("--sigma-w2", type=positive_range, required=True, help="start:stop:num or a number, values > 0")
    p.add_argument("--sigma-b2", type=variance_range, required=True, help="start:stop:num or a number, values >= 0")
    p.add_argument("--out", type=output_file(*SUFFIXES), required=True,
                   help="output file, .csv, .parquet or .pq (written atomically)")
    p.add_argument("--chunk-points", type=_chunk_points, default=CHUNK_POINTS,
                   help=f"grid points solved and saved at a time (default {CHUNK_POINTS})")
    p.add_argument("--restart", action="store_true", help="discard the saved chunks of an interrupted run")
    p.add_argument("--no-progress", action="store_true", help="no progress bar")


def _chunk_points(text: str) -> int:
    from .arguments import int_at_least

    return int_at_least(1, maximum=10_000_000)(text)


def partial_dir(out: pathlib.Path) -> pathlib.Path:
    """The directory holding the finished chunks of an interrupted grid written to ``out``."""
    return out.with_name(out.name + ".partial")


def _describe(values: np.ndarray) -> dict:
    return {"num": int(values.size), "first": float(values[0]), "last": float(values[-1]),
            "sha256": hashlib.sha256(np.ascontiguousarray(values, dtype=np.float64).tobytes()).hexdigest()}


def _config(args) -> dict:
    return {"format_version": _FORMAT_VERSION, "activation": args.activation.name,
            "sigma_w2": _describe(args.sigma_w2), "sigma_b2": _describe(args.sigma_b2),
            "chunk_points": int(args.chunk_points)}


def _size(n: float) -> str:
    for unit in ("B", "KiB", "MiB", "GiB", "TiB", "PiB"):
        if n < 1024 or unit == "PiB":
            return f"{n:.3g} {unit}"
        n /= 1024
    raise AssertionError


def _check_room(args, fmt: str, n_points: int) -> None:
    """Refuse up front a grid whose output and saved chunks would not fit on the disk."""
    directory = args.out.parent.absolute()
    while not directory.exists():
        directory = directory.parent
    need = n_points * BYTES_PER_POINT[fmt]
    free = shutil.disk_usage(directory).free
    if need > free:
        raise ValueError(f"--sigma-w2 x --sigma-b2: the grid has {n_points} points; writing it needs about "
                         f"{_size(need)} in {str(directory)!r} but only {_size(free)} is free (use fewer points)")


def _write_atomic(out: pathlib.Path, write) -> None:
    """Call ``write(tmp_path)`` on a temporary file next to ``out``, then rename it to ``out`` (atomic on POSIX)."""
    out.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=out.parent, prefix=f".{out.name}.", suffix=".tmp")
    os.close(fd)
    try:
        umask = os.umask(0)
        os.umask(umask)
        os.chmod(tmp, 0o666 & ~umask)  # mkstemp makes 0600; the output gets the usual permissions
        write(tmp)
        with open(tmp, "rb+") as fh:
            os.fsync(fh.fileno())
        os.replace(tmp, out)
    except BaseException:
        with contextlib.suppress(OSError):
            os.unlink(tmp)
        raise


class _Chunks:
    """Finished chunks of one grid in ``OUT.partial/`` (``config.json`` + ``chunk-NNNNNN.npz``)."""

    def __init__(self, directory: pathlib.Path, config: dict, restart: bool):
        self.dir = directory
        cfg_path = directory / "config.json"
        if restart and directory.exists():
            shutil.rmtree(directory)
        if cfg_path.exists():
            try:
                saved = json.loads(cfg_path.read_text())
            except (OSError, ValueError):
                saved = None
            if saved != config:
                diff = [k for k in config if not isinstance(saved, dict) or saved.get(k) != config[k]]
                raise ValueError(f"--out: {str(directory)!r} holds the saved chunks of a different grid (differs in "
                                 f"{', '.join(diff) or 'format'}); rerun the original command to finish it, or add "
                                 "--restart to discard it")
        elif directory.exists() and any(directory.iterdir()):
            raise ValueError(f"--out: {str(directory)!r} exists and is not a grid's chunk directory; remove it")
        else:
            directory.mkdir(parents=True, exist_ok=True)
            _write_atomic(cfg_path, lambda tmp: pathlib.Path(tmp).write_text(json.dumps(config, indent=1)))

    def path(self, i: int) -> pathlib.Path:
        return self.dir / f"chunk-{i:06d}.npz"

    def done(self, i: int) -> bool:
        return self.path(i).exists()

    def save(self, i: int, table) -> None:
        columns = {}
        for name in table.columns:
            values = np.asarray(table[name].to_numpy())
            columns[name] = values.astype(str) if values.dtype.kind not in "biuf" else values

        def write(tmp):
            with open(tmp, "wb") as fh:
                np.savez(fh, **columns)

        _write_atomic(self.path(i), write)

    def load(self, i: int):
        import pandas as pd

        try:
            with np.load(self.path(i), allow_pickle=False) as data:
                return pd.DataFrame({name: data[name] for name in data.files})
        except (OSError, ValueError, EOFError) as exc:
            self.path(i).unlink(missing_ok=True)
            raise OSError(f"saved chunk {self.path(i)} was damaged ({exc}) and has been removed; rerun the same "
                          "command to recompute it") from None

    def remove(self) -> None:
        shutil.rmtree(self.dir, ignore_errors=True)


def _solve_chunk(args, start: int, stop: int):
    from .quantities import mean_field_grid

    flat = np.arange(start, stop)
    nb = args.sigma_b2.size
    return mean_field_grid(args.activation, args.sigma_w2[flat // nb], args.sigma_b2[flat % nb], outer=False,
                           progress=False)


def _write_output(out: pathlib.Path, fmt: str, tables) -> None:
    """Write an iterable of DataFrames (the chunks, in order) to ``out`` atomically, one chunk in memory at a time."""
    if fmt == "csv":
        def write(tmp):
            with open(tmp, "w", newline="") as fh:
                for i, table in enumerate(tables):
                    table.to_csv(fh, index=False, header=i == 0)
    else:
        def write(tmp):
            import pyarrow as pa
            import pyarrow.parquet as pq

            writer = None
            try:
                for table in tables:
                    batch = pa.Table.from_pandas(table, preserve_index=False)
                    if writer is None:
                        writer = pq.ParquetWriter(tmp, batch.schema)
                    writer.write_table(batch)
            finally:
                if writer is not None:
                    writer.close()
    _write_atomic(out, write)


def run(args) -> int:
    """Run ``grid``; returns the exit status."""
    from .optional import require

    fmt = SUFFIXES[args.out.suffix.lower()]
    if fmt == "parquet":
        require("pyarrow", "parquet", "--out with a .parquet file (writing Parquet)")
    n_points = args.sigma_w2.size * args.sigma_b2.size
    _check_room(args, fmt, n_points)
    size = args.chunk_points
    n_chunks = math.ceil(n_points / size)
    bounds = [(i * size, min((i + 1) * size, n_points)) for i in range(n_chunks)]
    with show_warnings(PROG):
        if n_chunks == 1:
            _write_output(args.out, fmt, [_solve_chunk(args, 0, n_points)])
        else:
            try:
                _run_chunked(args, fmt, bounds, n_points)
            except KeyboardInterrupt:
                return 130
    print(f"wrote {n_points} rows to {args.out}", file=sys.stderr)
    return 0


def _run_chunked(args, fmt: str, bounds: list[tuple[int, int]], n_points: int) -> None:
    chunks = _Chunks(partial_dir(args.out), _config(args), args.restart)
    todo = [i for i in range(len(bounds)) if not chunks.done(i)]
    done_points = n_points - sum(bounds[i][1] - bounds[i][0] for i in todo)
    if done_points:
        print(f"{PROG}: resuming: {len(bounds) - len(todo)} of {len(bounds)} chunks already in {chunks.dir}",
              file=sys.stderr)
    bar = None
    if not args.no_progress:
        from tqdm.auto import tqdm

        bar = tqdm(total=n_points, initial=done_points, unit="pt", unit_scale=True, desc="grid", file=sys.stderr)
    try:
        for i in todo:
            chunks.save(i, _solve_chunk(args, *bounds[i]))
            if bar is not None:
                bar.update(bounds[i][1] - bounds[i][0])
    except KeyboardInterrupt:
        finished = sum(chunks.done(i) for i in range(len(bounds)))
        print(f"\n{PROG}: interrupted: {finished} of {len(bounds)} chunks are saved in {chunks.dir}; rerun the same "
              "command to resume", file=sys.stderr)
        raise
    finally:
        if bar is not None:
            bar.close()
    _write_output(args.out, fmt, (chunks.load(i) for i in range(len(bounds))))
    chunks.remove()
