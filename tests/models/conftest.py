"""Fixtures of the model tests."""

import pytest
import torch


@pytest.fixture(autouse=True)
def _seed_and_threads():
    # The model tests use tiny tensors: one thread avoids thread start-up costs on busy machines.
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    torch.manual_seed(0)
    yield
    torch.set_num_threads(threads)
