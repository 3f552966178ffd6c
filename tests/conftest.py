"""Shared pytest fixtures."""

from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
# CI clones the repo with ../shared beside it; real arXiv fixtures live there, never in the repo.
REAL_FIXTURES = REPO.parent / "shared" / "fixtures" / "real"


@pytest.fixture
def real_fixtures() -> Path:
    """Directory of real arXiv submissions and OAI-PMH responses; skips when ../shared is absent."""
    if not REAL_FIXTURES.is_dir():
        pytest.skip(f"real fixtures not found at {REAL_FIXTURES} (clone with ../shared beside the repo)")
    return REAL_FIXTURES


@pytest.fixture(scope="session")
def small_sample_bucket(tmp_path_factory) -> Path:
    """A small generated sample bucket (40 papers, seed 0), written once per test session. Read-only."""
    from pipeline.sample.bucket import write_sample_bucket

    root = tmp_path_factory.mktemp("sample-bucket")
    write_sample_bucket(root, papers=40, seed=0)
    return root


@pytest.fixture(autouse=True)
def _scratch(tmp_path, monkeypatch):
    """Each test gets its own empty local cache (the lake's scratch), as a fresh machine would."""
    monkeypatch.setenv("ARXIV_FORGE_SCRATCH", str(tmp_path / "scratch"))


@pytest.fixture
def one_torch_thread():
    """torch on one thread for the test (the same reduction order in every run, so resumed runs compare
    bit for bit, and no oversubscription of a small CI machine); the caller's setting is restored."""
    import torch

    old = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(old)
