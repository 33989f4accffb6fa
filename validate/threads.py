"""CPU threads for training on a shared machine: as many as there are idle cores, never more.

The cause of the slowdown under load (issue 11): torch's CPU kernels run on an OpenMP team of ``cores`` threads
(2 on the 2-core machine), and every small matmul or elementwise op of a width-64 network ends at a barrier where the
team waits for its slowest thread. When other processes keep the cores busy (load average 4-8), one of the two
threads is often descheduled, so every op waits a scheduler time slice (milliseconds) for a few microseconds of work,
while the waiting thread spins (OpenMP's active wait policy) and takes CPU from the others. Thousands of ops per step
turn a 3x loss of CPU into a 30x loss of speed. With one thread there is no barrier to wait at, so the run slows in
proportion to the CPU it gets. ``benchmarks/bench_load.py`` measures both settings, quiet and under a synthetic load.

:func:`cpu_threads` picks the count (idle cores from the affinity mask and the 1-minute load average, at least 1);
:func:`thread_limit` applies it for a block and restores torch's setting afterwards; :func:`passive_openmp` sets
``OMP_WAIT_POLICY=PASSIVE`` and ``KMP_BLOCKTIME=0`` in the environment, which only has an effect before torch (and its
OpenMP runtime) is loaded: importing this module (``import validate`` does so first) calls it.
"""

from __future__ import annotations

import contextlib
import math
import os
import sys

__all__ = ["available_cores", "cpu_threads", "passive_openmp", "thread_limit"]


def available_cores() -> int:
    """Cores this process may run on (``os.sched_getaffinity`` where the OS has it, else ``os.cpu_count``)."""
    try:
        return max(1, len(os.sched_getaffinity(0)))
    except (AttributeError, OSError):
        return max(1, os.cpu_count() or 1)


def cpu_threads(load: float | None = None, cores: int | None = None) -> int:
    """Intra-op threads for a CPU run: the cores left idle by the current load, between 1 and ``cores``.

    Parameters
    ----------
    load : float, optional
        Runnable processes besides this one (default: the 1-minute load average, ``os.getloadavg()[0]``).
    cores : int, optional
        Default :func:`available_cores`.

    Returns
    -------
    int, ``clip(round(cores - load), 1, cores)``.
    """
    cores = available_cores() if cores is None else int(cores)
    if load is None:
        try:
            load = os.getloadavg()[0]
        except (AttributeError, OSError):
            load = 0.0
    if not math.isfinite(load) or load < 0:
        load = 0.0
    return int(min(cores, max(1, math.floor(cores - load + 0.5))))


def passive_openmp(environ=None) -> bool:
    """Ask OpenMP to sleep instead of spinning at barriers: ``OMP_WAIT_POLICY=PASSIVE``, ``KMP_BLOCKTIME=0``.

    Values the user set are kept, and nothing is set when ``SIGPROP_KEEP_OPENMP_DEFAULTS`` is in the environment
    (``benchmarks/bench_load.py`` uses it to time OpenMP's defaults). Returns False (and changes nothing) when torch
    is already imported, since the OpenMP runtime reads these variables once, when it is loaded.
    """
    environ = os.environ if environ is None else environ
    if "torch" in sys.modules or "SIGPROP_KEEP_OPENMP_DEFAULTS" in environ:
        return False
    environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")
    environ.setdefault("KMP_BLOCKTIME", "0")
    return True


@contextlib.contextmanager
def thread_limit(threads: int | str | None = "auto"):
    """Run a block with ``torch.set_num_threads(threads)`` and restore the previous count afterwards.

    Parameters
    ----------
    threads : int, "auto" or None
        A count >= 1; ``"auto"`` for :func:`cpu_threads`; None leaves torch's setting alone.

    Yields
    ------
    int, the count in effect.
    """
    import torch

    previous = torch.get_num_threads()
    if threads is None:
        yield previous
        return
    if threads == "auto":
        count = cpu_threads()
    elif isinstance(threads, int) and not isinstance(threads, bool) and threads >= 1:
        count = threads
    else:
        raise ValueError(f"threads must be a positive integer, 'auto' or None, got {threads!r}")
    torch.set_num_threads(count)
    try:
        yield count
    finally:
        torch.set_num_threads(previous)


passive_openmp()  # on import: validate/__init__.py imports this module before anything loads torch
