"""AUC per anomaly kind: which faults a run detects and which it misses.

The procedural dataset records in ``clips.csv`` (written by :func:`asdlib.data.synth.generate_dataset`) the
kind of fault behind every anomalous clip (``asdlib.data.machines.ANOMALIES`` lists them per machine type), its
strength and SNR. The DCASE average mixes all kinds of an ID; here each kind's anomalous clips are ranked
against *all* normal clips of their ID, so the kinds of an ID share one set of normal clips and differ only in
the anomalies. Per type the per-ID values are averaged over the IDs that have that kind, as DCASE averages IDs.
"""
from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd

from asdlib.evaluation.metrics import _binary_labels, _require, _type_order, auc_pauc

CLIP_COLUMNS = ("file", "label", "kind")


def read_clips(path: str | Path) -> pd.DataFrame:
    """Read a dataset's ``clips.csv`` (or the folder holding it): one row per clip, ``kind`` "" for normal ones."""
    path = Path(path)
    path = path / "clips.csv" if path.is_dir() else path
    if not path.is_file():
        raise FileNotFoundError(f"{path} not found: it is written by `python -m asdlib synth` with the dataset "
                                "(real DCASE data has no anomaly kinds)")
    clips = pd.read_csv(path, keep_default_na=False)
    _require(clips, CLIP_COLUMNS)
    return clips


def auc_per_kind(scores: pd.DataFrame, clips: pd.DataFrame, *, score: str = "score",
                 max_fpr: float = 0.1) -> pd.DataFrame:
    """Per machine ID and anomaly kind: columns machine_type, machine_id, kind, n_normal, n_anomaly, auc, pauc.

    ``scores`` has columns file, machine_type, machine_id, label and ``score`` (``scores.csv`` of a run);
    ``clips`` is :func:`read_clips`' table of the same dataset (matched on ``file``).
    """
    _require(scores, ("file", "machine_type", "machine_id", "label", score))
    kinds = clips.set_index("file")["kind"]
    anomalous = _binary_labels(scores["label"]) == 1
    missing = [f for f in scores.loc[anomalous, "file"] if f not in kinds.index]
    if missing:
        raise KeyError(f"{len(missing)} anomalous clip(s) are not in clips.csv (e.g. {missing[0]}): are the scores "
                       "from another dataset?")
    table = scores.assign(kind=np.where(anomalous, scores["file"].map(kinds), ""), anomalous=anomalous)
    rows = []
    for (machine_type, machine_id), group in table.groupby(["machine_type", "machine_id"], sort=True):
        normal = group[~group.anomalous]
        for kind, faults in group[group.anomalous].groupby("kind", sort=True):
            both = pd.concat([normal, faults])
            auc, pauc = auc_pauc(both.anomalous.astype(int), both[score], max_fpr=max_fpr,
                                 name=f"{machine_type} id_{int(machine_id):02d} {kind}")
            rows.append({"machine_type": machine_type, "machine_id": int(machine_id), "kind": kind,
                         "n_normal": len(normal), "n_anomaly": len(faults), "auc": auc, "pauc": pauc})
    return pd.DataFrame(rows)


def kind_table(per_kind: pd.DataFrame) -> pd.DataFrame:
    """Per machine type and kind, the mean over IDs of :func:`auc_per_kind`: columns machine_type, kind, ids,
    n_anomaly (all IDs together), auc, pauc, min_auc (the worst ID); types in the README order."""
    _require(per_kind, ("machine_type", "kind", "n_anomaly", "auc", "pauc"))
    grouped = per_kind.groupby(["machine_type", "kind"], sort=True)
    table = grouped.agg(ids=("auc", "size"), n_anomaly=("n_anomaly", "sum"), auc=("auc", "mean"),
                        pauc=("pauc", "mean"), min_auc=("auc", "min")).reset_index()
    order = {t: k for k, t in enumerate(_type_order(table.machine_type))}
    return table.sort_values(["machine_type", "kind"], key=lambda c: c.map(order) if c.name == "machine_type"
                             else c).reset_index(drop=True)
