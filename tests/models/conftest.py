"""Fixtures of the model tests."""

import pytest


@pytest.fixture(autouse=True)
def _seed_and_threads(one_thread_seed0):
    yield
