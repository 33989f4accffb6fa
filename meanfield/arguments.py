"""Shared command-line helpers of ``python -m meanfield``, ``python -m rmt`` and ``python -m validate``.

Flag types for :mod:`argparse` (each raises :class:`argparse.ArgumentTypeError`, so argparse exits with status 2 and a
message naming the flag and the valid range), JSON-safe values, output-file checks made before any computing, and the
display of the warnings the API gives. Importing this module is cheap (no pandas, sympy or numba).
"""

from __future__ import annotations

import argparse
import contextlib
import math
import os
import pathlib
import sys
import tempfile
import warnings
from collections.abc import Callable, Iterator

import numpy as np

from .activations import Activation, get_activation

__all__ = [
    "MAX_RANGE_NUM",
    "activation_arg",
    "finite_float",
    "nonnegative_float",
    "positive_float",
    "float_range",
    "variance_range",
    "positive_range",
    "int_at_least",
    "json_value",
    "output_file",
    "check_output_file",
    "show_warnings",
]

#: Largest ``num`` of a ``start:stop:num`` range (80 MB of float64 per axis).
MAX_RANGE_NUM = 10_000_000


def activation_arg(text: str) -> Activation:
    """``--activation``: a built-in name (``tanh``, ``leaky_relu(slope=0.1)``, ...) or an expression in ``x``
    (``"x*tanh(x)"``), parsed by a restricted grammar, never evaluated as Python."""
    try:
        return get_activation(text)
    except (ValueError, TypeError) as exc:
        raise argparse.ArgumentTypeError(str(exc)) from None


def finite_float(text: str) -> float:
    """A finite float (no NaN, no inf)."""
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a number, got {text!r}") from None
    if not math.isfinite(value):
        raise argparse.ArgumentTypeError(f"must be a finite number, got {text!r}")
    return value


def nonnegative_float(text: str) -> float:
    """A finite float ``>= 0`` (a variance in [0, inf))."""
    value = finite_float(text)
    if value < 0:
        raise argparse.ArgumentTypeError(f"must be a variance in [0, inf), got {text!r}")
    return value


def positive_float(text: str) -> float:
    """A finite float ``> 0`` (a variance in (0, inf))."""
    value = finite_float(text)
    if value <= 0:
        raise argparse.ArgumentTypeError(f"must be a variance in (0, inf), got {text!r}")
    return value


def float_range(text: str, *, minimum: float = 0.0, strict: bool = False) -> np.ndarray:
    """``start:stop:num`` (``num`` evenly spaced values, ends included, ``1 <= num <= MAX_RANGE_NUM``) or a single
    number; every value finite and ``>= minimum`` (``> minimum`` if ``strict``)."""
    parts = text.split(":")
    bound = f"({minimum:g}, inf)" if strict else f"[{minimum:g}, inf)"
    if len(parts) == 1:
        values = np.array([finite_float(parts[0])])
    elif len(parts) == 3:
        start, stop = finite_float(parts[0]), finite_float(parts[1])
        try:
            num = int(parts[2])
        except ValueError:
            raise argparse.ArgumentTypeError(f"expected start:stop:num with an integer num, got {text!r}") from None
        if not 1 <= num <= MAX_RANGE_NUM:
            raise argparse.ArgumentTypeError(f"num in start:stop:num must be in [1, {MAX_RANGE_NUM}], got {parts[2]!r}")
        values = np.linspace(start, stop, num)
    else:
        raise argparse.ArgumentTypeError(f"expected start:stop:num or a number, got {text!r}")
    if np.any(values < minimum) or (strict and np.any(values == minimum)):
        raise argparse.ArgumentTypeError(f"values must lie in {bound}, got {text!r}")
    return values


def variance_range(text: str) -> np.ndarray:
    """``start:stop:num`` or a number; variances in [0, inf)."""
    return float_range(text)


def positive_range(text: str) -> np.ndarray:
    """``start:stop:num`` or a number; variances in (0, inf)."""
    return float_range(text, strict=True)


def int_at_least(minimum: int, *, odd: bool = False, maximum: int | None = None) -> Callable[[str], int]:
    """A flag type for integers ``>= minimum`` (and ``<= maximum``; odd only if ``odd``)."""

    def parse(text: str) -> int:
        try:
            value = int(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"expected an integer, got {text!r}") from None
        upper = "" if maximum is None else f" and <= {maximum}"
        if value < minimum or (maximum is not None and value > maximum) or (odd and value % 2 == 0):
            raise argparse.ArgumentTypeError(f"must be an {'odd ' if odd else ''}integer >= {minimum}{upper}, "
                                             f"got {text!r}")
        return value

    return parse


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


def check_output_file(path: os.PathLike | str, suffixes: tuple[str, ...]) -> pathlib.Path:
    """Check, before any computing, that ``path`` can be written: its suffix is one of ``suffixes``, it is not a
    directory, and its directory exists (or can be created below an existing one) and is writable (tested by creating
    and deleting a temporary file there).

    Raises
    ------
    ValueError
        With a message saying what is wrong.
    """
    path = pathlib.Path(path)
    if path.suffix.lower() not in suffixes:
        raise ValueError(f"file name must end in {', '.join(suffixes)}, got {str(path)!r}")
    if path.is_dir():
        raise ValueError(f"{str(path)!r} is a directory; give a file name")
    parent = path.parent.absolute()
    existing = parent
    while not existing.exists():
        existing = existing.parent
    if not existing.is_dir():
        raise ValueError(f"cannot create {str(path)!r}: {str(existing)!r} is not a directory")
    try:
        with tempfile.TemporaryFile(dir=existing):
            pass
    except OSError as exc:
        raise ValueError(f"cannot write in {str(existing)!r}: {exc.strerror or exc}") from None
    return path


def output_file(*suffixes: str) -> Callable[[str], pathlib.Path]:
    """A flag type for output files with one of ``suffixes`` (see :func:`check_output_file`)."""

    def parse(text: str) -> pathlib.Path:
        try:
            return check_output_file(text, tuple(s.lower() for s in suffixes))
        except ValueError as exc:
            raise argparse.ArgumentTypeError(str(exc)) from None

    return parse


@contextlib.contextmanager
def show_warnings(prog: str, stream=None) -> Iterator[None]:
    """Print the warnings the API gives inside the block as ``prog: warning: ...`` lines on stderr (each once).

    Plain ``RuntimeWarning`` (numpy's floating-point notices inside vectorised code) and deprecation warnings are
    dropped; the toolkit's own warnings (``NoFixedPointWarning``, ``QuadratureWarning``, ...) and ``UserWarning`` are
    shown.
    """
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        try:
            yield
        finally:
            seen = set()
            for w in caught:
                if w.category is RuntimeWarning or issubclass(w.category, (DeprecationWarning,
                                                                           PendingDeprecationWarning)):
                    continue
                message = str(w.message)
                if message not in seen:
                    seen.add(message)
                    print(f"{prog}: warning: {message}", file=stream or sys.stderr)
