"""Reference runs shipped with asdlib: converged trainings on the default procedural dataset.

Training every model of the series long enough to converge takes hours on a CPU, so asdlib ships the results
of those trainings as package data (``asdlib/reference_runs/``), the way pretrained-model tutorials do: on a
CPU the notebooks load them, on a GPU (or by choice) they train from scratch, and one command reproduces each.

Every run folder holds ``config.yaml`` (the :class:`~asdlib.training.config.RunConfig`), ``history.csv`` (per epoch:
training loss, clean validation loss and accuracy, and, for information only, test AUC/pAUC and the median
angle of normal and anomalous test clips to their class centre), ``scores.csv`` (every test clip: the three
anomaly scores and the angle), ``results.csv`` / ``summary.csv`` (the DCASE tables), and for one seed per
model × loss the selected checkpoint ``best.pt`` (fp16 storage) and the test embeddings ``embeddings.npy``.
The scores of a run with a checkpoint are computed from exactly the weights that ship. ``registry.json`` lists
each run with its dataset, epochs, selected epoch, metrics, the sha256 and size of every file, and the command
that reproduces it. Beside the reference runs the series stands on, the registry can hold *study runs*
(``"study": true``, configs in ``configs/study/``): one factor changed from a reference run, shipped, verified
and reproduced the same way; ``registry(study=False)`` lists the reference runs alone, ``study=True`` the others.

    python -m asdlib pretrained list [--json]     # the runs and their results
    python -m asdlib pretrained verify            # hashes, checkpoints, scores re-computed on regenerated clips
    python -m asdlib pretrained train NAME        # reproduce a run from scratch

This module reads the registry (every entry checked for its keys and their types) and loads the runs' files,
each checked against its sha256 first; :mod:`asdlib.teaching.reproduce` verifies, retrains and ships them.
"""
from __future__ import annotations

import hashlib
import json
import warnings
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd
import torch

REFERENCE_DIR = Path(__file__).resolve().parents[1] / "reference_runs"
REGISTRY = "registry.json"
SCORE_COLUMNS = ("arcface_ce", "margin_free", "cosine_distance")
# verify accepts a re-computed score s' for a recorded s when |s' - s| <= VERIFY_ATOL + VERIFY_RTOL * |s|. The
# regenerated clips are the recorded ones up to the last bit of a few samples: numpy's float math (sin, exp, log)
# takes other vector code paths on other CPUs (AVX2 against AVX-512), and an ulp there flips 1 in ~4000 int16
# samples by one step. That moves a score by up to 2e-4 of its value (1.5e-3 on a margin-free score of 8.5),
# a quarter of this tolerance; tests/test_synth.py checks that an ulp moves no sample by more than one step.
VERIFY_RTOL = 1e-3
VERIFY_ATOL = 1e-4


class ReferenceRunError(RuntimeError):
    """A shipped file is missing or corrupted, or a run is unknown; the message names the run and the fix."""


@dataclass(frozen=True)
class ReferenceRun:
    """One entry of the registry; ``path`` is the folder with its files."""

    name: str
    model: str
    loss: str
    seed: int
    epochs: int
    selected_epoch: int
    auc: float
    pauc: float
    mauc: float
    path: Path
    dataset: dict
    files: dict
    info: dict = field(default_factory=dict)  # per-type metrics, timing, machine, command, plateau
    study: bool = False  # a study run (configs/study/), not one of the reference runs the series stands on

    @property
    def has_checkpoint(self) -> bool:
        return "best.pt" in self.files

    @property
    def kind(self) -> str:
        """``"study run"`` or ``"reference run"``, for messages."""
        return "study run" if self.study else "reference run"

    def summary(self) -> dict:
        """The JSON row of ``pretrained list --json``."""
        return {"name": self.name, "model": self.model, "loss": self.loss, "seed": self.seed,
                "epochs": self.epochs, "selected_epoch": self.selected_epoch, "auc": self.auc, "pauc": self.pauc,
                "mauc": self.mauc, "checkpoint": self.has_checkpoint, "study": self.study, "path": str(self.path),
                "dataset": self.dataset, **self.info}


# ------------------------------------------------------------------------------------------------- the registry
def _read_registry(root: Path) -> dict:
    path = root / REGISTRY
    if not path.is_file():
        raise ReferenceRunError(f"{path} not found: this asdlib has no reference runs; reinstall asdlib from the "
                                "repository (pip install --force-reinstall 'asdlib @ git+...')")
    try:
        return json.loads(path.read_text())
    except json.JSONDecodeError as err:
        raise ReferenceRunError(f"{path} is not valid JSON ({err}); reinstall asdlib") from None


# the keys of a registry entry and their types (int counts as a number where a float is expected)
ENTRY_KEYS: dict[str, type | tuple[type, ...]] = {
    "model": str, "loss": str, "seed": int, "epochs": int, "selected_epoch": int, "auc": (int, float),
    "pauc": (int, float), "mauc": (int, float), "files": dict}
DATASET_KEYS: dict[str, type | tuple[type, ...]] = {
    "generator_version": int, "size": str, "seed": int, "seconds": (int, float), "sr": int,
    "n_test_normal": int, "n_test_anomaly": int, "difficulty": (int, float), "machine_types": list}


def registry(root: str | Path | None = None, *, study: bool | None = None) -> dict[str, ReferenceRun]:
    """Every shipped run by name, in the registry's order (``study`` True: the study runs only, False: the
    reference runs only, None: both); a malformed entry raises naming it and the key."""
    root = Path(root) if root is not None else REFERENCE_DIR
    raw = _read_registry(root)
    where = root / REGISTRY
    if not isinstance(raw, dict) or not isinstance(raw.get("runs"), dict):
        raise ReferenceRunError(f"{where}: expected an object with 'runs' and 'dataset'; reinstall asdlib")
    _check_keys(raw.get("dataset"), DATASET_KEYS, f"{where}: dataset")
    runs = {}
    for name, entry in raw["runs"].items():
        _check_keys(entry, ENTRY_KEYS, f"{where}: run {name}")
        for file, record in entry["files"].items():
            _check_keys(record, {"sha256": str, "bytes": int}, f"{where}: run {name}, file {file}")
        if not isinstance(entry.get("study", False), bool):
            raise ReferenceRunError(f"{where}: run {name}: study is {entry['study']!r}, expected true or false; "
                                    "reinstall asdlib")
        info = {k: v for k, v in entry.items() if k not in ENTRY_KEYS and k != "study"}
        runs[name] = ReferenceRun(name=name, **{k: entry[k] for k in ENTRY_KEYS}, path=root / name,
                                  dataset=raw["dataset"], info=info, study=entry.get("study", False))
    return {name: run for name, run in runs.items() if study is None or run.study == study}


def _check_keys(entry, keys: dict, where: str) -> None:
    """Raise naming ``where`` and the key when ``entry`` lacks one of ``keys`` or holds the wrong type."""
    if not isinstance(entry, dict):
        raise ReferenceRunError(f"{where} is {type(entry).__name__}, not an object; reinstall asdlib")
    for key, kind in keys.items():
        if key not in entry:
            raise ReferenceRunError(f"{where} lacks the key {key!r}; reinstall asdlib")
        value = entry[key]
        if isinstance(value, bool) or not isinstance(value, kind):
            names = " or ".join(k.__name__ for k in (kind if isinstance(kind, tuple) else (kind,)))
            raise ReferenceRunError(f"{where}: {key} is {value!r}, expected {names}; reinstall asdlib")


def get(name: str, root: str | Path | None = None) -> ReferenceRun:
    """The registry entry of ``name``; an unknown name lists the known ones."""
    runs = registry(root)
    if name not in runs:
        raise ReferenceRunError(f"unknown reference run {name!r}; known: {', '.join(runs)}")
    return runs[name]


def find(model: str, loss: str, *, checkpoint: bool = False, study: bool | None = False,
         root: str | Path | None = None) -> list[ReferenceRun]:
    """The runs of one model × loss (all seeds, lowest seed first); ``checkpoint`` keeps those with ``best.pt``,
    ``study`` is :func:`registry`'s (by default the reference runs only)."""
    runs = [r for r in registry(root, study=study).values() if (r.model, r.loss) == (model, loss)
            and (r.has_checkpoint or not checkpoint)]
    return sorted(runs, key=lambda r: r.seed)


def sha256(path: str | Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def _fix(name: str) -> str:
    return (f"reinstall asdlib (pip install --force-reinstall from the repository; `git checkout "
            f"asdlib/reference_runs` in a clone) or retrain it: python -m asdlib pretrained train {name}")


def check_file(run: ReferenceRun, file: str) -> Path:
    """The path of one shipped file after checking its size and sha256; raises naming the run and the fix."""
    path = run.path / file
    expected = run.files.get(file)
    if expected is None:
        raise ReferenceRunError(f"{run.kind} {run.name} ships no {file} (it has {', '.join(run.files)})")
    if not path.is_file():
        raise ReferenceRunError(f"{run.kind} {run.name}: {path} is missing; {_fix(run.name)}")
    if path.stat().st_size != expected["bytes"] or sha256(path) != expected["sha256"]:
        raise ReferenceRunError(f"{run.kind} {run.name}: {path} is corrupted (its size or sha256 differs "
                                f"from the registry); {_fix(run.name)}")
    return path


def generator_mismatch(run: ReferenceRun) -> str | None:
    """A message when this asdlib's procedural generator differs from the one the run was trained on."""
    from asdlib.data.synth import GENERATOR_VERSION

    trained = run.dataset["generator_version"]
    if trained == GENERATOR_VERSION:
        return None
    return (f"{run.kind} {run.name} was trained on data of asdlib.data.synth version {trained}, but this asdlib "
            f"generates version {GENERATOR_VERSION}: its scores do not describe today's clips. Retrain and "
            f"re-ship it (python -m asdlib pretrained train {run.name}), never mix the two")


def warn_generator(run: ReferenceRun, *, stacklevel: int = 3) -> None:
    """Warn with :func:`generator_mismatch`'s message when there is one."""
    message = generator_mismatch(run)
    if message:
        warnings.warn(message, stacklevel=stacklevel)


DATASET_PARAMS = ("seed", "seconds", "sr", "difficulty")  # what makes two procedural datasets the same clips


def dataset_mismatch(run: ReferenceRun, data: str | Path) -> str | None:
    """A message when the dataset folder ``data`` holds other clips than the run was trained and scored on
    (real recordings, another seed or clip length of the generator); None when the clips are the same (any
    size: a smaller procedural size holds the first clips of the larger ones)."""
    manifest_path = Path(data) / "dataset.json"
    try:
        manifest = json.loads(manifest_path.read_text())
        params, version = manifest["params"], manifest["version"]
    except (OSError, ValueError, KeyError, TypeError):
        what = "data without the procedural generator's dataset.json (real recordings?)"
    else:
        from asdlib.data.synth import FACTORY_DEFAULTS

        ds = {**FACTORY_DEFAULTS, **run.dataset}
        params = {**FACTORY_DEFAULTS, **params}
        keys = (*DATASET_PARAMS, *FACTORY_DEFAULTS)
        differ = [f"{k} {params.get(k)!r} vs {ds[k]!r}" for k in keys if params.get(k) != ds[k]]
        if version != ds["generator_version"]:
            differ.insert(0, f"generator version {version!r} vs {ds['generator_version']!r}")
        if not differ:
            return None
        what = f"another procedural dataset ({', '.join(differ)})"
    return (f"the {run.kind} {run.name} belongs to another dataset: it was trained and scored on the default "
            f"procedural data (seed {run.dataset['seed']}, {run.dataset['seconds']:g}-s clips), but {data} holds "
            f"{what}. Train on this data instead (TRAIN = True, or ASD_TRAIN=1), or unset ASD_DATA to use the "
            "procedural data")


# ---------------------------------------------------------------------------------------------------- loading
def load_model(name: str, *, device: str | torch.device = "cpu", root: str | Path | None = None):
    """The run's selected checkpoint as a model in eval mode (``weights_only=True``, fp16 storage -> fp32)."""
    from asdlib.training.checkpoints import CheckpointWarning
    from asdlib.training.checkpoints import load_model as load_checkpoint_model

    run = get(name, root)
    if not run.has_checkpoint:
        with_ckpt = [r.name for r in find(run.model, run.loss, checkpoint=True, study=None if run.study else False,
                                          root=root)]  # a study run may point to its reference run, not vice versa
        which = ("study runs ship one where a figure needs the weights" if run.study
                 else "one seed per model × loss does")
        raise ReferenceRunError(f"{run.kind} {name} ships no checkpoint ({which}): "
                                f"use {' or '.join(with_ckpt) or 'another run'}")
    warn_generator(run)
    path = check_file(run, "best.pt")  # its sha256 vouches for the weights, with or without a weights hash
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", CheckpointWarning)
        return load_checkpoint_model(path, map_location=device)


def load_history(name: str, root: str | Path | None = None) -> pd.DataFrame:
    """Per-epoch ``history.csv``: ``epoch, lr, loss, acc, val_loss, val_acc, test_auc, test_pauc, angle_*``…"""
    run = get(name, root)
    warn_generator(run)
    return pd.read_csv(check_file(run, "history.csv"))


def load_scores(name: str, *, data: str | Path | None = None, root: str | Path | None = None) -> pd.DataFrame:
    """Every test clip's scores and angle; with ``data`` (the dataset folder) also its ``path`` for listening."""
    run = get(name, root)
    warn_generator(run)
    scores = pd.read_csv(check_file(run, "scores.csv"))
    if data is not None:
        scores.insert(0, "path", [str(Path(data) / f) for f in scores.file])
    return scores


def load_table(name: str, table: str = "summary", root: str | Path | None = None) -> pd.DataFrame:
    """``summary`` (per type + Average) or ``results`` (per machine ID), as ``evaluate`` writes them."""
    return pd.read_csv(check_file(get(name, root), f"{table}.csv"))


def load_embeddings(name: str, root: str | Path | None = None) -> np.ndarray:
    """``(N, 128)`` float32 test embeddings, row ``i`` = row ``i`` of :func:`load_scores`."""
    return np.load(check_file(get(name, root), "embeddings.npy")).astype(np.float32)


def load_config(name: str, root: str | Path | None = None):
    from asdlib.training.config import RunConfig

    return RunConfig.from_yaml(check_file(get(name, root), "config.yaml"))


# ---------------------------------------------------------------------------------------------- convergence
def plateau_gap(val_loss, *, last: float = 0.2) -> float:
    """How far above its minimum the validation loss stays over the last fifth of training:
    ``mean(val_loss[last 20 %]) / min(val_loss) − 1`` (0.05 = within 5 % of the minimum). The mean, not the
    worst epoch: the loss on a few hundred held-out clips moves by several % from one epoch to the next."""
    values = np.asarray(val_loss, dtype=float)
    tail = values[-max(1, int(round(last * len(values)))):]
    return float(tail.mean() / values.min() - 1)


def total_bytes(root: str | Path | None = None) -> int:
    """Size of everything shipped (the registry and every run's files)."""
    root = Path(root) if root is not None else REFERENCE_DIR
    return sum(p.stat().st_size for p in root.rglob("*") if p.is_file())
