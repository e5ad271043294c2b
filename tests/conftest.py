"""Shared test fixtures. ``../shared`` (reference fixtures, real clips) is found through ``ASD_SHARED``."""
from __future__ import annotations

import os
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
SHARED = Path(os.environ.get("ASD_SHARED", REPO.parent / "shared"))


@pytest.fixture(scope="session")
def shared_dir() -> Path:
    """The ``../shared`` folder; tests that need it skip with a reason when it is absent (a user's clone)."""
    if not SHARED.is_dir():
        pytest.skip(f"{SHARED} not found: set ASD_SHARED to the shared folder (reference fixtures, real clips)")
    return SHARED


@pytest.fixture(scope="session")
def reference_dir(shared_dir: Path) -> Path:
    path = shared_dir / "reference"
    if not path.is_dir():
        pytest.skip(f"{path} not found: the original-code reference fixtures are needed for fidelity tests")
    return path


@pytest.fixture(scope="session")
def real_samples_dir(shared_dir: Path) -> Path:
    path = shared_dir / "real_samples" / "dcase2020_dev"
    if not path.is_dir():
        pytest.skip(f"{path} not found: the 93 real DCASE2020 clips are needed for this test")
    return path


@pytest.fixture(scope="session")
def series_env(tmp_path_factory) -> dict[str, str]:
    """The environment of the notebook smoke runs: one smoke dataset and one runs folder for the whole series."""
    from asdlib.data.synth import generate_dataset

    root = tmp_path_factory.mktemp("series")
    generate_dataset(root / "smoke", size="smoke", progress=False)
    return {"ASD_SMOKE": "1", "ASD_DATA": str(root / "smoke"), "ASD_RUNS": str(root / "runs"),
            "ASD_SIZE": "smoke"}


@pytest.fixture(scope="session")
def series_build(tmp_path_factory) -> Path:
    """Where the notebook smoke tests write the executed notebooks (the course-website test builds from them)."""
    return tmp_path_factory.getbasetemp() / "build"
