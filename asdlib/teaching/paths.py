"""Where the series' data and runs live: the repository folder, smoke mode, ``ASD_DATA`` / ``ASD_SIZE`` / ``ASD_RUNS``.

The notebooks reach these through :mod:`asdlib.teaching.notebook`; the reference runs use them for their default
dataset and run folders.
"""
from __future__ import annotations

import os
from pathlib import Path


def smoke_mode() -> bool:
    """True when ``ASD_SMOKE=1``: CI runs every notebook this way, in seconds instead of minutes."""
    return os.environ.get("ASD_SMOKE", "") == "1"


def repo_root() -> Path:
    """The repository folder (notebooks run with ``notebooks/`` as working directory)."""
    here = Path.cwd()
    return here.parent if here.name == "notebooks" else here


def default_size() -> str:
    return "smoke" if smoke_mode() else os.environ.get("ASD_SIZE", "default")


def data_root(size: str | None = None) -> Path:
    """``ASD_DATA`` if set, else ``data/synth/<size>`` in the repository."""
    if os.environ.get("ASD_DATA") and size is None:
        return Path(os.environ["ASD_DATA"])
    return repo_root() / "data" / "synth" / (size or default_size())


def runs_root() -> Path:
    """Where notebooks keep their runs: ``ASD_RUNS``, else ``data/runs`` (``data/runs/smoke`` in smoke mode)."""
    if os.environ.get("ASD_RUNS"):
        return Path(os.environ["ASD_RUNS"])
    return repo_root() / "data" / "runs" / ("smoke" if smoke_mode() else "")
