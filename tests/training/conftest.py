"""Fixtures of the training tests (helpers live in train_helpers.py: a uniquely named module)."""

from __future__ import annotations

from pathlib import Path

import pytest

pytest.importorskip("lightning", reason="the training tests need the [train] extra (lightning)")
pytest.importorskip("hydra", reason="the training tests need the [train] extra (hydra-core)")


@pytest.fixture(scope="session")
def data_root(tmp_path_factory: pytest.TempPathFactory) -> Path:
    from train_fixtures import write_all

    return write_all(tmp_path_factory.mktemp("ssm_data"))
