"""Checks for optional dependencies ("extras") before a figure starts work.

Local stand-in for ``meanfield.optional`` (same contract: ``require(module, extra, purpose)`` returns the imported
module or raises :class:`MissingExtraError`, whose message names ``pip install 'sigprop-theory[<extra>]'``; ``has``).
Once ``meanfield.optional`` exists, :mod:`figures.registry` switches to it by changing one import line and this
module is deleted.
"""

from __future__ import annotations

import importlib


class MissingExtraError(ImportError):
    """An optional dependency is not installed; the message says which extra installs it."""


def require(module: str, extra: str, purpose: str):
    """Import ``module`` or raise :class:`MissingExtraError` naming the extra that provides it."""
    try:
        return importlib.import_module(module)
    except ImportError as err:
        raise MissingExtraError(f"{purpose} needs {module}, which is not installed ({err}); install it with: "
                                f"pip install 'sigprop-theory[{extra}]'") from err


def has(module: str) -> bool:
    """Whether ``module`` can be imported."""
    try:
        importlib.import_module(module)
    except ImportError:
        return False
    return True
