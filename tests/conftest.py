"""Fixtures shared by the test modules."""

from __future__ import annotations

import pytest


@pytest.fixture(scope="module")
def one_torch_thread():
    """Run a module's tests with one torch thread, restoring the count afterwards.

    On a loaded 2-core machine torch's two-thread kernels on tiny networks are many times slower than one thread
    (see ``validate.threads``); tests that train or differentiate small networks use this
    (``pytestmark = pytest.mark.usefixtures("one_torch_thread")``).
    """
    torch = pytest.importorskip("torch")
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)
