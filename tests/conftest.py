"""Shared test fixtures."""

from __future__ import annotations

import pytest


@pytest.fixture
def one_torch_thread():
    """Tiny models gain nothing from threads, and on a shared, loaded 2-core machine OpenMP spinning makes them
    many times slower; the setting is restored afterwards so other test modules are unaffected."""
    import torch

    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)
