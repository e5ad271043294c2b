"""Anomaly scores of the DCASE2020 baseline autoencoder (:mod:`asdlib.nn.autoencoder`), per clip and per dataset.

As in the baseline's ``01_test.py``: a clip's score is the mean over its 640-dim vectors of their mean squared
reconstruction error (higher = more anomalous), each machine type scored by its own model.
:func:`autoencoder_scores` returns the labelled test rows of an index plus a ``score`` column, the same table
:func:`asdlib.evaluation.baseline.baseline_scores` gives for the Gaussian, so the DCASE tables of
:mod:`asdlib.evaluation.metrics` apply unchanged; :func:`write_results` writes them to a folder.
:func:`published_autoencoder` is the baseline's reference run on the real development set, to compare with.
"""
from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
from tqdm.auto import tqdm

from asdlib.data.audio import load_audio
from asdlib.evaluation.metrics import (format_result_csv, per_id_table, published_results, summary_table,
                                       to_markdown, write_score_files)
from asdlib.nn.autoencoder import DenseAutoencoder, frame_vectors, load_autoencoder, reconstruction_error


def published_autoencoder() -> pd.DataFrame:
    """The baseline's published per-ID AUC/pAUC on the real development set (fractions), as :func:`per_id_table`
    gives them; ``summary_table`` of it is the per-type table (ToyCar 80.09 … valve 66.46, mean 73.66)."""
    return published_results()["DCASE2020 AE baseline per ID"]


def clip_score(model: DenseAutoencoder, vectors: np.ndarray) -> float:
    """The anomaly score of one clip: mean over its vectors of their mean squared error, ``(N, D) -> ()``."""
    if len(vectors) == 0:
        raise ValueError("a clip with no vectors (shorter than the frames stacked) has no autoencoder score")
    return float(reconstruction_error(model, vectors).mean())


def load_autoencoders(directory: str | Path, machine_types=None) -> dict[str, DenseAutoencoder]:
    """The per-type models written by :func:`asdlib.training.autoencoder.fit_autoencoders`: ``{type: model}``."""
    directory = Path(directory)
    if machine_types is None:
        machine_types = sorted(p.stem.removeprefix("model_") for p in directory.glob("model_*.pt"))
    if not machine_types:
        raise FileNotFoundError(f"no model_<machine_type>.pt in {directory}; train the autoencoder baseline "
                                f"first (`python -m asdlib baseline --data DIR --out {directory}`)")
    return {t: load_autoencoder(directory / f"model_{t}.pt") for t in machine_types}


def autoencoder_scores(index: pd.DataFrame, models, *, sr: int = 16000, seconds: float | None = None,
                       progress: bool = True) -> pd.DataFrame:
    """Score the labelled test clips of ``index`` with each type's autoencoder (``{type: model}`` or a folder).

    Returns those rows plus a ``score`` column, ready for :func:`asdlib.evaluation.metrics.per_id_table`; types
    without a model raise. ``seconds`` crops every clip (``None``: whole clips, as the baseline).
    """
    models = models if isinstance(models, dict) else load_autoencoders(models)
    test = index[(index.split == "test") & index.label.isin(["normal", "anomaly"])].reset_index(drop=True)
    missing = sorted(set(test.machine_type) - set(models))
    if missing:
        raise KeyError(f"no autoencoder for {missing}; train one per machine type (`python -m asdlib baseline`)")
    scores = [clip_score(models[t], frame_vectors(load_audio(p, sr=sr, seconds=seconds), sr=sr, **models[t].features))
              for p, t in tqdm(zip(test.path, test.machine_type), total=len(test), desc="AE scores",
                               disable=not progress, leave=False)]
    return test.assign(score=np.asarray(scores, dtype=float))


def write_results(scores: pd.DataFrame, out_dir: str | Path) -> pd.DataFrame:
    """Write ``scores.csv``, the DCASE ``anomaly_score_<type>_id_XX.csv`` files, ``result.csv`` (per-ID AUC/pAUC,
    the baseline's format) and ``summary.md`` (per-type table) to ``out_dir``; returns the per-type table."""
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    scores.to_csv(out_dir / "scores.csv", index=False)
    write_score_files(scores, out_dir / "scores", overwrite=True)
    per_id = per_id_table(scores)
    (out_dir / "result.csv").write_text(format_result_csv(per_id), encoding="utf-8")
    summary = summary_table(per_id)
    (out_dir / "summary.md").write_text(to_markdown(summary), encoding="utf-8")
    return summary
