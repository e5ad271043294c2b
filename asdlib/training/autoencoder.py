"""Fit the DCASE2020 baseline autoencoder, one model per machine type, with the published recipe.

The recipe of the organisers' ``dcase2020_task2_baseline`` (``baseline.yaml``, ``00_train.py``): MSE loss, Adam with
Keras's defaults (lr 1e-3, eps 1e-7), 100 epochs, batches of 512 vectors shuffled every epoch, and
``validation_split=0.1``, which in Keras holds out the *last* 10 % of the array (not a random subset): the files
come in sorted name order, so the held-out vectors are the last clips of the last ID. The model of the last epoch
is kept; the validation loss is only reported. The published reference run (``00_train.py -d``) trains on the
development set's training clips, so that is the default here too. :func:`fit_autoencoders` writes
``model_<machine_type>.pt`` per type and ``recipe.json`` (recipe, feature settings, per-epoch losses).
"""
from __future__ import annotations

import contextlib
import json
import time
from dataclasses import asdict, dataclass, replace
from pathlib import Path

import numpy as np
import pandas as pd
import torch
import torch.nn.functional as F
from tqdm.auto import tqdm

from asdlib.data.audio import load_audio
from asdlib.data.index import index_dataset
from asdlib.nn.autoencoder import FEATURES, DenseAutoencoder, frame_vectors, reconstruction_error, save_autoencoder


@dataclass(frozen=True)
class AERecipe:
    """The baseline's training recipe (``baseline.yaml``); ``sources``: which training clips of the index to use."""

    epochs: int = 100
    batch_size: int = 512
    lr: float = 1e-3
    validation_split: float = 0.1
    seed: int = 0
    sources: tuple[str, ...] = ("development",)
    seconds: float | None = None  # crop every clip to its first `seconds` (None: whole clips, as the baseline)


FAST = AERecipe(epochs=5)  # for notebooks on a CPU: 5 epochs instead of the published 100


def clip_vectors(paths, *, features: dict = FEATURES, sr: int = 16000, seconds: float | None = None,
                 progress: bool = True, desc: str = "AE features") -> list[np.ndarray]:
    """The baseline's input vectors of each clip: ``[path] -> [(N_i, 640)]``."""
    return [frame_vectors(load_audio(p, sr=sr, seconds=seconds), sr=sr, **features)
            for p in tqdm(list(paths), desc=desc, disable=not progress, leave=False)]


def split_tail(X: np.ndarray, validation_split: float) -> tuple[np.ndarray, np.ndarray]:
    """Keras's ``validation_split``: the first ``int(N · (1 − split))`` rows train, the rest validate."""
    n_train = int(len(X) * (1 - validation_split))
    return X[:n_train], X[n_train:]


def fit_autoencoder(X: np.ndarray, *, epochs: int = 100, batch_size: int = 512, lr: float = 1e-3,
                    validation_split: float = 0.1, seed: int = 0, device: str = "cpu", progress: bool = True,
                    desc: str = "AE") -> tuple[DenseAutoencoder, list[dict]]:
    """Train one :class:`DenseAutoencoder` on ``X (N, D)``; returns it (inference mode) and per-epoch history.

    History rows: ``epoch``, ``loss`` (mean training MSE over the epoch's batches, training mode, as Keras
    reports it) and ``val_loss`` (MSE of the held-out tail in inference mode; NaN without a split).
    """
    train, val = split_tail(torch.as_tensor(np.asarray(X, np.float32)), validation_split)
    if len(train) < 2:
        raise ValueError(f"only {len(train)} training vector(s): the autoencoder needs at least 2 (BatchNorm); "
                         "use more or longer clips")
    with torch.random.fork_rng(devices=[]):  # the seed decides the initial weights without touching global state
        torch.manual_seed(seed)
        model = DenseAutoencoder(train.shape[1]).to(device)
    optimizer = torch.optim.Adam(model.parameters(), lr=lr, eps=1e-7)
    generator = torch.Generator().manual_seed(seed)
    history = []
    for epoch in (bar := tqdm(range(1, epochs + 1), desc=desc, disable=not progress, leave=False)):
        model.train()
        total, seen = 0.0, 0
        for idx in torch.randperm(len(train), generator=generator).split(batch_size):
            if len(idx) < 2:  # BatchNorm cannot normalise a batch of one; Keras would see it, we drop it
                continue
            x = train[idx].to(device)  # (B, D)
            loss = F.mse_loss(model(x), x)
            optimizer.zero_grad(set_to_none=True)
            loss.backward()
            optimizer.step()
            total, seen = total + loss.item() * len(idx), seen + len(idx)
        val_loss = float(reconstruction_error(model, val).mean()) if len(val) else float("nan")
        history.append({"epoch": epoch, "loss": total / seen, "val_loss": val_loss})
        bar.set_postfix(loss=f"{total / seen:.2f}", val_loss=f"{val_loss:.2f}")
    return model.eval(), history


def training_clips(index: pd.DataFrame, machine_type: str, sources=("development",)) -> pd.DataFrame:
    """The normal training clips of one type from ``sources``, in sorted path order (the baseline's ``glob``)."""
    rows = index[(index.machine_type == machine_type) & (index.split == "train") & (index.label == "normal")
                 & index.source.isin(list(sources))]
    if rows.empty:
        raise ValueError(f"no {'/'.join(sources)} training clips of {machine_type} in the index; check the dataset "
                         "folder, or pass sources=('development', 'additional')")
    return rows.sort_values("path")


@contextlib.contextmanager
def cpu_threads(threads: int | None):
    """Run the block with ``torch.set_num_threads(threads)`` and restore the setting after (``None``: unchanged)."""
    before = torch.get_num_threads()
    if threads:
        torch.set_num_threads(threads)
    try:
        yield
    finally:
        torch.set_num_threads(before)


def fit_autoencoders(data, out_dir: str | Path, *, recipe: AERecipe = AERecipe(), epochs: int | None = None,
                     machine_types=None, device: str = "cpu", threads: int | None = None,
                     progress: bool = True) -> dict[str, list[dict]]:
    """Fit one autoencoder per machine type of ``data`` (a dataset root or an index), save each to ``out_dir``.

    ``epochs`` overrides the recipe's (e.g. ``epochs=5`` in a notebook); ``threads`` sets PyTorch's CPU threads
    for the fit (a model this small gains little from more than one or two, and loses a lot on a busy machine).
    Writes ``model_<type>.pt`` and ``recipe.json``; returns the per-epoch history of each type.
    """
    with cpu_threads(threads):
        return _fit_all(data, Path(out_dir), recipe if epochs is None else replace(recipe, epochs=epochs),
                        machine_types, device, progress)


def _fit_all(data, out_dir: Path, recipe: AERecipe, machine_types, device: str, progress: bool) -> dict:
    index = data if isinstance(data, pd.DataFrame) else index_dataset(data)
    types = list(machine_types or dict.fromkeys(index.machine_type))
    report = {"recipe": asdict(recipe), "features": dict(FEATURES), "machine_types": {}}
    histories = {}
    for machine_type in types:
        start = time.perf_counter()
        clips = training_clips(index, machine_type, recipe.sources)
        X = np.concatenate(clip_vectors(clips.path, seconds=recipe.seconds, progress=progress,
                                        desc=f"{machine_type} features"))  # (N, 640)
        model, histories[machine_type] = fit_autoencoder(
            X, epochs=recipe.epochs, batch_size=recipe.batch_size, lr=recipe.lr,
            validation_split=recipe.validation_split, seed=recipe.seed, device=device, progress=progress,
            desc=f"{machine_type} AE")
        save_autoencoder(out_dir / f"model_{machine_type}.pt", model)
        report["machine_types"][machine_type] = {"clips": len(clips), "vectors": len(X),
                                                 "seconds": round(time.perf_counter() - start, 1),
                                                 "history": histories[machine_type]}
        (out_dir / "recipe.json").write_text(json.dumps(report, indent=1) + "\n", encoding="utf-8")
    return histories
