"""Shared plumbing of the probes: dtypes, generators, devices and resumable, atomically written result directories.

A probe run with ``out=DIR`` writes ``DIR/config.json`` (the probe's settings), one ``DIR/part-<key>.csv`` per finished
unit of work (a width, a setting, a training run) and at the end ``DIR/<probe>.csv`` and ``DIR/<probe>.json``. Every
file is written to a temporary name in ``DIR`` and renamed into place, so an interrupted run never leaves a truncated
file; rerunning the same command skips the finished units (resume). A different configuration in an existing ``DIR``
raises :class:`validate.trainability.ConfigMismatchError` instead of mixing results.
"""

from __future__ import annotations

import json
import math
import os
import re
import tempfile
from pathlib import Path

import numpy as np
import pandas as pd
import torch

import meanfield
from validate.batched import resolve_device
from validate.trainability import ConfigMismatchError

__all__ = ["DTYPES", "ResultStore", "torch_dtype", "torch_generator", "resolve_device", "write_text_atomic",
           "write_frame_atomic", "check_positive_int", "standard_error"]

DTYPES = {"float32": torch.float32, "float64": torch.float64}


def torch_dtype(dtype) -> torch.dtype:
    """``"float32"`` / ``"float64"`` (or such a torch dtype) as a ``torch.dtype``; anything else: ValueError."""
    if isinstance(dtype, torch.dtype) and dtype in DTYPES.values():
        return dtype
    if dtype in DTYPES:
        return DTYPES[dtype]
    raise ValueError(f"dtype must be 'float32' or 'float64', got {dtype!r}")


def torch_generator(seed: int, device: torch.device | str = "cpu") -> torch.Generator:
    """A ``torch.Generator`` on ``device`` seeded with ``seed``."""
    gen = torch.Generator(device=torch.device(device))
    gen.manual_seed(int(seed))
    return gen


def check_positive_int(value, name: str, minimum: int = 1) -> int:
    """``value`` as an int ``>= minimum``; ValueError naming ``name`` otherwise."""
    if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or value < minimum:
        raise ValueError(f"{name} must be an integer >= {minimum}, got {value!r}")
    return int(value)


def resolve_variances(activation, sigma_w2, sigma_b2) -> tuple[meanfield.Activation, float, float]:
    """``(activation, sigma_w2, sigma_b2)`` of a probe: the activation resolved by :func:`meanfield.get_activation`,
    ``sigma_w2 = None`` replaced by the critical value at ``sigma_b2`` (:func:`meanfield.critical_sigma_w2`)."""
    act = meanfield.get_activation(activation)
    sigma_b2 = float(sigma_b2)
    if sigma_w2 is None:
        sigma_w2 = meanfield.critical_sigma_w2(act, sigma_b2)[0]
    return act, float(sigma_w2), sigma_b2


def standard_error(values: np.ndarray, axis: int = 0) -> np.ndarray:
    """Standard error of the mean along ``axis`` (sample standard deviation / sqrt(n)); NaN for n < 2."""
    values = np.asarray(values, dtype=np.float64)
    n = values.shape[axis]
    if n < 2:
        return np.full(np.delete(values.shape, axis), np.nan)
    return values.std(axis=axis, ddof=1) / math.sqrt(n)


def write_text_atomic(path: Path, text: str) -> None:
    """Write ``text`` to ``path`` through a temporary file in the same directory and an atomic rename."""
    path = Path(path)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "w") as fh:
            fh.write(text)
        umask = os.umask(0)
        os.umask(umask)
        os.chmod(tmp, 0o666 & ~umask)  # mkstemp creates 0600; give the file the usual permissions
        os.replace(tmp, path)
    except BaseException:
        if os.path.exists(tmp):
            os.unlink(tmp)
        raise


def write_frame_atomic(frame: pd.DataFrame, path: Path) -> None:
    """``frame.to_csv(path, index=False)`` written atomically."""
    write_text_atomic(Path(path), frame.to_csv(index=False))


def _jsonable(value):
    if isinstance(value, dict):
        return {str(k): _jsonable(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_jsonable(v) for v in value]
    if isinstance(value, (np.integer,)):
        return int(value)
    if isinstance(value, (np.floating, float)):
        value = float(value)
        return value if math.isfinite(value) else str(value)
    if isinstance(value, (np.bool_,)):
        return bool(value)
    if isinstance(value, (str, int, bool)) or value is None:
        return value
    return str(value)


class ResultStore:
    """A probe's output directory (see the module docstring); ``out=None`` keeps nothing on disk.

    Parameters
    ----------
    out : str, Path or None
        Directory (created if missing). An existing file at that path, or an existing ``config.json`` with different
        settings, raises before any work starts.
    probe : str
        Name of the probe (file stem of the final table).
    config : dict
        Settings that define the run (JSON-serialisable after conversion of numpy scalars).
    """

    def __init__(self, out, probe: str, config: dict):
        self.probe = probe
        self.config = _jsonable(config)
        self.out = None if out is None else Path(out)
        if self.out is None:
            return
        if self.out.exists() and not self.out.is_dir():
            raise ValueError(f"out {str(self.out)!r} exists and is not a directory")
        self.out.mkdir(parents=True, exist_ok=True)
        if not os.access(self.out, os.W_OK):
            raise ValueError(f"out {str(self.out)!r} is not writable")
        config_path = self.out / "config.json"
        wanted = {"probe": probe, **self.config}
        if config_path.exists():
            try:
                found = json.loads(config_path.read_text())
            except (OSError, ValueError) as exc:
                raise ConfigMismatchError(f"{config_path} is unreadable ({exc}); use a fresh --out directory") from None
            if found != wanted:
                diff = sorted(k for k in set(found) | set(wanted) if found.get(k) != wanted.get(k))
                raise ConfigMismatchError(
                    f"{self.out} holds a run with different settings ({', '.join(diff)}); use another --out directory"
                    " or rerun with the same settings to resume")
        else:
            write_text_atomic(config_path, json.dumps(wanted, indent=2, sort_keys=True))

    def _part(self, key: str) -> Path:
        safe = re.sub(r"[^A-Za-z0-9_.=,+-]", "_", key)
        return self.out / f"part-{safe}.csv"

    def get(self, key: str) -> pd.DataFrame | None:
        """The saved frame of unit ``key``, or None when it is not done yet (or there is no directory)."""
        if self.out is None:
            return None
        path = self._part(key)
        return pd.read_csv(path) if path.exists() else None

    def put(self, key: str, frame: pd.DataFrame) -> pd.DataFrame:
        """Save the frame of a finished unit (atomically) and return it."""
        if self.out is not None:
            write_frame_atomic(frame, self._part(key))
        return frame

    def finish(self, frame: pd.DataFrame, summary: dict | None = None) -> pd.DataFrame:
        """Write the final table ``<probe>.csv`` and ``<probe>.json`` (settings, summary, columns)."""
        if self.out is not None:
            write_frame_atomic(frame, self.out / f"{self.probe}.csv")
            payload = {"probe": self.probe, "config": self.config, "summary": _jsonable(summary or {}),
                       "rows": len(frame), "columns": list(map(str, frame.columns))}
            write_text_atomic(self.out / f"{self.probe}.json", json.dumps(payload, indent=2, sort_keys=True))
        return frame
