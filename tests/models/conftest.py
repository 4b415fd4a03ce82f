"""Model-test fixtures.

The models here are tiny (tens of thousands of activations): with several test processes
sharing two cores, torch's intra-op thread pool spends far longer synchronising than computing
(a tiny forward+backward measured 3-5 s with 2 threads under load, 0.15 s with 1). Each test
runs single-threaded and restores the previous setting afterwards.
"""

from __future__ import annotations

import pytest


@pytest.fixture(autouse=True)
def _single_thread():
    import torch

    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)
