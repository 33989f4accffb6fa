"""Optional dependencies ("extras"): check for them before any work starts and say which extra to install.

The light install (``pip install sigprop-theory``) has numpy, scipy, numba, sympy, pandas, matplotlib and tqdm; the
extras in ``setup.cfg`` add the rest (``parquet``: pyarrow; ``validate``: torch, mlxtend, scikit-learn, pyarrow;
``distributed``: dask). Code that needs one calls :func:`require` first, so a missing package ends in one clear
:class:`MissingExtraError` naming the ``pip install`` command instead of an ImportError traceback halfway through::

    pa = require("pyarrow", "parquet", "writing Parquet files")
"""

from __future__ import annotations

import importlib
import importlib.util
import sys
from types import ModuleType

__all__ = ["MissingExtraError", "has", "require", "DISTRIBUTION"]

#: The distribution name to install extras of.
DISTRIBUTION = "sigprop-theory"


class MissingExtraError(ImportError):
    """An optional package is not installed. The message names the extra: ``pip install 'sigprop-theory[extra]'``.

    Attributes
    ----------
    module, extra, purpose : str
        The missing module, the extra that provides it, and what it was needed for.
    """

    def __init__(self, module: str, extra: str, purpose: str):
        super().__init__(f"{purpose} needs the optional package {module!r}, which is not installed; install it "
                         f"with: pip install '{DISTRIBUTION}[{extra}]'", name=module)
        self.module = module
        self.extra = extra
        self.purpose = purpose


def has(module: str) -> bool:
    """Whether ``module`` can be imported (checked without importing it when it is not loaded yet)."""
    if module in sys.modules:
        return sys.modules[module] is not None
    try:
        return importlib.util.find_spec(module) is not None
    except (ImportError, ValueError):  # a missing parent package, or a module blocked by sys.modules[name] = None
        return False


def require(module: str, extra: str, purpose: str) -> ModuleType:
    """Import and return ``module``, or raise :class:`MissingExtraError` naming the extra that provides it.

    Parameters
    ----------
    module : str
        Module to import, e.g. ``"pyarrow"``, ``"torch"``.
    extra : str
        The extra of ``sigprop-theory`` that installs it, e.g. ``"parquet"``, ``"validate"``.
    purpose : str
        What needs it, for the message (``"writing Parquet files"``).

    Raises
    ------
    MissingExtraError
        ``module`` is not installed (or fails to import; the original error is chained).
    """
    if not has(module):
        raise MissingExtraError(module, extra, purpose)
    try:
        return importlib.import_module(module)
    except ImportError as exc:
        raise MissingExtraError(module, extra, purpose) from exc
