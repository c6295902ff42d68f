import os

import pytest
import torch


@pytest.fixture(autouse=True)
def _one_thread():
    """The init maths is small dense linear algebra: one thread is fastest on a shared machine and
    keeps LAPACK results bit-reproducible (PTD's optimizer relies on that)."""
    n = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(n)


@pytest.fixture(autouse=True, scope="session")
def _private_ptd_cache(tmp_path_factory):
    """PTD results computed on first use go to a temporary cache, never the user's."""
    old = os.environ.get("SSM_CACHE_DIR")
    os.environ["SSM_CACHE_DIR"] = str(tmp_path_factory.mktemp("ssm_cache"))
    yield
    if old is None:
        del os.environ["SSM_CACHE_DIR"]
    else:
        os.environ["SSM_CACHE_DIR"] = old
