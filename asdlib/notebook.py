"""Notebook conveniences: the setup report, smoke mode, and where data and runs live.

Every notebook's setup cell calls :func:`setup`, and its ``parameters`` cell reads :func:`smoke_mode` and
:func:`data_root`. ``ASD_SMOKE=1`` shrinks everything for CI; ``ASD_DATA`` points at a dataset (a procedural
one, or the real DCASE2020 data); ``ASD_SIZE`` names the procedural size to generate when none is there.
"""
from __future__ import annotations

import os
import platform
import sys
from pathlib import Path


def in_colab() -> bool:
    return "google.colab" in sys.modules


def in_binder() -> bool:
    return "BINDER_SERVICE_HOST" in os.environ or "BINDER_REQUEST" in os.environ


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


def ensure_dataset(root: str | Path | None = None, *, size: str | None = None) -> Path:
    """Return a dataset folder, generating the procedural dataset there if it holds no clips yet."""
    from asdlib.synth import generate_dataset

    root = Path(root) if root is not None else data_root(size)
    if not any(root.glob("*/train/*.wav")) and not any(root.glob("*/*/train/*.wav")):
        generate_dataset(root, size=size or default_size())
    return root


def setup(*, seed: int | None = 0) -> dict:
    """Print versions, device and environment (Colab / Binder / local); set the plot style; seed if asked."""
    import numpy as np
    import torch
    import torchaudio

    import asdlib
    from asdlib.plots import set_style
    from asdlib.train import pick_device

    device = pick_device()
    print(f"Python {platform.python_version()} | torch {torch.__version__} | torchaudio {torchaudio.__version__}"
          f" | numpy {np.__version__} | asdlib {asdlib.__version__}")
    where = "Google Colab" if in_colab() else "Binder" if in_binder() else "local"
    print(f"running on: {where} | device: {device} | smoke mode: {smoke_mode()}")
    if device.type == "cpu":
        print("No GPU found: everything still runs on the CPU at the default size."
              + (" On Colab: Runtime → Change runtime type → GPU." if in_colab() else ""))
    set_style()
    if seed is not None:
        torch.manual_seed(seed)
        np.random.seed(seed)
    return {"device": device, "smoke": smoke_mode(), "where": where}


# The runs the series trains once and shares: notebook 03 trains the first two, 04 the TASTgram-MFN loss
# ablation; 05 and 06 reuse them. Each is the CPU preset (configs/default.yaml, or smoke.yaml under ASD_SMOKE)
# with the model and loss below.
SERIES_RUNS: dict[str, tuple[str, str]] = {
    "stgram_mfn-arcface": ("stgram_mfn", "arcface"),
    "tastgram_mfn-noisy_arcmix": ("tastgram_mfn", "noisy_arcmix"),
    "tastgram_mfn-arcmix": ("tastgram_mfn", "arcmix"),
    "tastgram_mfn-arcface": ("tastgram_mfn", "arcface"),
    "tastgram_mfn-ce": ("tastgram_mfn", "ce"),
}


def series_config(name: str, *, preset: str | None = None, **train):
    """The :class:`~asdlib.config.RunConfig` of a series run: the size's preset with this model and loss."""
    from asdlib.config import RunConfig

    if name not in SERIES_RUNS:
        raise ValueError(f"unknown series run {name!r}; known: {', '.join(SERIES_RUNS)}")
    model, loss = SERIES_RUNS[name]
    path = repo_root() / "configs" / f"{preset or ('smoke' if smoke_mode() else 'default')}.yaml"
    cfg = RunConfig.from_yaml(path)
    cache_dir = str(repo_root() / "data" / "cache")
    return cfg.replace(model={"name": model}, loss={"name": loss}, data={"cache_dir": cache_dir}, train=train)


def ensure_run(name: str, *, data: str | Path | None = None, retrain: bool = False, progress: bool = True,
               on_epoch=None, **train) -> Path:
    """The run folder of a series run, training it first if it has no ``best.pt`` yet (or ``retrain``)."""
    import shutil

    from asdlib.experiment import evaluate_run, train_from_config

    run_dir = runs_root() / name
    data = Path(data) if data is not None else ensure_dataset()
    if retrain and run_dir.exists():
        shutil.rmtree(run_dir)
    _check_same_data(run_dir, data)
    if not (run_dir / "summary.csv").is_file():
        train_from_config(series_config(name, **train), data, run_dir, progress=progress, track_test=True,
                          on_epoch=on_epoch)
        evaluate_run(run_dir, data=data, quiet=True)
    return run_dir


def _check_same_data(run_dir: Path, data: Path) -> None:
    """Refuse to reuse a run trained on another dataset (e.g. procedural runs when DATA now is DCASE2020)."""
    import json

    info = run_dir / "run.json"
    if info.is_file() and Path(json.loads(info.read_text())["data"]) != data.resolve():
        raise ValueError(f"{run_dir} was trained on {json.loads(info.read_text())['data']}, not on {data}: "
                         "pass retrain=True, or set ASD_RUNS to another folder for this dataset")
