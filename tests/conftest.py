"""Shared fixtures: deterministic seeds and paths."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

REPO_ROOT = Path(__file__).resolve().parents[1]
SHARED_DATA = REPO_ROOT.parent / "shared" / "data"


@pytest.fixture(autouse=True)
def _deterministic():
    """Each test starts from the same RNG state and uses at most 2 threads (the CI machine has 2 cores)."""
    torch = pytest.importorskip("torch") if os.environ.get("DEBLURRT_TESTS_NEED_TORCH", "1") == "1" else None
    if torch is not None:
        torch.manual_seed(0)
        torch.set_num_threads(2)
    yield


@pytest.fixture
def shared_data() -> Path:
    """``../shared/data`` when present (developer machines); tests that need it skip otherwise."""
    if not SHARED_DATA.is_dir():
        pytest.skip("../shared/data is not present")
    return SHARED_DATA
