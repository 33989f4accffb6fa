"""Benchmark: the small CPU trainability figure's training on a quiet machine and under a synthetic load.

Issue 11: with load average 4-8 from other work, the figure took 966 s against 29 s quiet on the 2-core machine. The
cause is torch's OpenMP team of one thread per core: every small op waits at a barrier for a descheduled thread while
the other spins (see :mod:`validate.threads`). This script times the same training (the figure's grid, fewer steps)
in fresh processes, in four cases:

- ``old``: torch's default threads (one per core) and OpenMP's default wait policy (what the engine did before);
- ``new``: the engine's default now, ``threads="auto"`` (idle cores under the current load, at least 1, chosen when
  the run starts) and ``OMP_WAIT_POLICY=PASSIVE`` set by ``import validate`` before torch loads;

each quiet and with ``--busy`` busy-looping processes that this script starts and stops itself.

    python benchmarks/bench_load.py [--steps 30] [--busy 4]
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import time

CHILD = """
import os, sys, time
t0 = time.perf_counter()
mode = sys.argv[1]
import validate  # first: sets OMP_WAIT_POLICY=PASSIVE before torch loads (not with SIGPROP_KEEP_OPENMP_DEFAULTS)
import torch
from validate.threads import cpu_threads
from validate.trainability import trainability
used = torch.get_num_threads() if mode == "old" else cpu_threads()
trainability(model="fc", activation="tanh", sigma_w2=(1.0, 1.5, 2.0, 2.5, 3.0, 3.5, 4.0), sigma_b2=0.05,
             depth=(4, 8, 16, 32, 64), steps=int(sys.argv[2]), data="digits", width=64, seed=0, device="cpu",
             progress=False, threads=None if mode == "old" else "auto")
print(f"{time.perf_counter() - t0:.3f} {used} {os.environ.get('OMP_WAIT_POLICY', '-')}")
"""

BUSY = "while True: pass"


def _run(mode: str, steps: int) -> tuple[float, str]:
    env = dict(os.environ)
    for key in ("OMP_WAIT_POLICY", "KMP_BLOCKTIME", "OMP_NUM_THREADS", "MKL_NUM_THREADS"):
        env.pop(key, None)
    if mode == "old":
        env["SIGPROP_KEEP_OPENMP_DEFAULTS"] = "1"  # import validate leaves OpenMP's wait policy alone
    start = time.perf_counter()
    done = subprocess.run([sys.executable, "-c", CHILD, mode, str(steps)], env=env, capture_output=True, text=True,
                          timeout=3600)
    wall = time.perf_counter() - start
    if done.returncode != 0:
        raise RuntimeError(done.stderr)
    _, threads, policy = done.stdout.split()[-3:]
    return wall, f"threads {threads}, OMP_WAIT_POLICY {policy}"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--steps", type=int, default=30, help="SGD steps per network (the figure uses 300)")
    parser.add_argument("--busy", type=int, default=4, help="busy processes for the loaded case")
    parser.add_argument("--modes", default="old,new", help="which settings to time (default old,new)")
    args = parser.parse_args()
    modes = [m for m in args.modes.split(",") if m]
    if not modes or any(m not in ("old", "new") for m in modes):
        parser.error(f"--modes: expected a comma list of old and new, got {args.modes!r}")
    print(f"cores available: {len(os.sched_getaffinity(0))}; load average before: {os.getloadavg()[0]:.2f}; "
          f"35 networks (figure grid), {args.steps} steps")
    results = {}
    for loaded in (False, True):
        busy = [subprocess.Popen([sys.executable, "-c", BUSY]) for _ in range(args.busy if loaded else 0)]
        try:
            if busy:
                time.sleep(2.0)
            for mode in modes:
                results[(mode, loaded)] = _run(mode, args.steps)
                wall, info = results[(mode, loaded)]
                print(f"{mode:3s} {'loaded' if loaded else 'quiet ':6s} ({len(busy)} busy): {wall:7.2f} s  ({info})",
                      flush=True)
        finally:
            for proc in busy:
                proc.kill()
            for proc in busy:
                proc.wait()
    for mode in modes:
        quiet, loaded = results[(mode, False)][0], results[(mode, True)][0]
        print(f"{mode}: loaded / quiet = {loaded / quiet:.2f}x")


if __name__ == "__main__":
    main()
