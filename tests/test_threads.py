"""Load-aware CPU threads (validate.threads): the count follows idle cores, settings are restored, OpenMP sleeps."""

import os
import subprocess
import sys

import pytest
import torch

from validate.threads import available_cores, cpu_threads, passive_openmp, thread_limit


def test_thread_count_follows_idle_cores():
    assert cpu_threads(load=0.0, cores=2) == 2
    assert cpu_threads(load=0.4, cores=2) == 2
    assert cpu_threads(load=0.6, cores=2) == 1
    assert cpu_threads(load=6.0, cores=2) == 1  # the loaded 2-core machine of issue 11: one thread, no barrier
    assert cpu_threads(load=3.0, cores=16) == 13
    assert cpu_threads(load=float("nan"), cores=4) == 4
    assert 1 <= cpu_threads() <= available_cores()


def test_thread_limit_sets_and_restores():
    before = torch.get_num_threads()
    with thread_limit(1) as count:
        assert count == 1 and torch.get_num_threads() == 1
    assert torch.get_num_threads() == before
    with thread_limit(None) as count:
        assert count == before
    with thread_limit("auto") as count:
        assert torch.get_num_threads() == count >= 1
    assert torch.get_num_threads() == before
    for bad in (0, -1, "many", 1.5, True):
        with pytest.raises(ValueError, match="threads"):
            with thread_limit(bad):
                pass


def test_passive_openmp_only_before_torch_and_keeps_user_values():
    env = {}
    assert passive_openmp(env) is False  # torch is loaded in this process: too late, nothing set
    assert env == {}
    code = ("import os, sys; os.environ.pop('OMP_WAIT_POLICY', None); import validate; "
            "print(os.environ.get('OMP_WAIT_POLICY'), os.environ.get('KMP_BLOCKTIME'))")
    clean = {k: v for k, v in os.environ.items() if k not in ("OMP_WAIT_POLICY", "KMP_BLOCKTIME",
                                                               "SIGPROP_KEEP_OPENMP_DEFAULTS")}
    out = subprocess.run([sys.executable, "-c", code], env=clean, capture_output=True, text=True, timeout=120)
    assert out.stdout.split() == ["PASSIVE", "0"], out.stderr
    mine = subprocess.run([sys.executable, "-c", code.replace("os.environ.pop('OMP_WAIT_POLICY', None); ", "")],
                          env={**clean, "OMP_WAIT_POLICY": "ACTIVE"}, capture_output=True, text=True, timeout=120)
    assert mine.stdout.split()[0] == "ACTIVE"  # the user's choice wins
