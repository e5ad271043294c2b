"""Does a run overfit its normal training clips? Evidence from its history and from the angles of its clips.

Noisy-ArcMix (S. Choi and J.-W. Choi, ICASSP 2024) is a regulariser: mixup and the noisy margin are meant to keep
the network from overfitting the normal training clips. A regulariser can only help where the unregularised
model overfits, so this is measured per run, two ways:

* in ``history.csv``: does detection (test AUC, recorded for information only) fall while the classifier keeps
  improving on held-out normal clips (validation loss falling)? :func:`overfitting_summary` compares a smoothed
  peak of the test AUC with its last epochs. The ``loss``/``acc`` columns of a mixup loss are measured on
  *mixed* clips (``asdlib.training.loop.train_epoch``), so only ``val_loss``/``val_acc`` (clean held-out normal
  clips) compare across losses; :func:`history_gaps` lists both.
* in the embeddings: are the training clips closer to their class centre than held-out normal clips of the same
  ID? :func:`angle_shift` gives, per ID, the median angle of each split and the held-out − training difference.
"""
from __future__ import annotations

import numpy as np
import pandas as pd

from asdlib.evaluation.metrics import _require


def history_gaps(history: pd.DataFrame) -> pd.DataFrame:
    """Per epoch: epoch, loss, val_loss, loss_gap (val − train), acc, val_acc, acc_gap (train − val).

    ``history`` is a run's ``history.csv``. For a mixup loss ``loss``/``acc`` are on mixed clips (see above).
    """
    _require(history, ("epoch", "loss", "val_loss", "acc", "val_acc"))
    gaps = history[["epoch", "loss", "val_loss", "acc", "val_acc"]].copy()
    gaps.insert(3, "loss_gap", gaps.val_loss - gaps.loss)
    gaps["acc_gap"] = gaps.acc - gaps.val_acc
    return gaps


def overfitting_summary(history: pd.DataFrame, *, window: int = 3, saturated: float = 0.99,
                        tol: float = 0.005) -> dict:
    """The history's overfitting verdict as numbers: ``{epochs, val_acc_saturated_at, auc_peak_epoch, auc_peak,
    auc_end, auc_drop, val_loss_at_peak, val_loss_end, overfits}``.

    Test AUC and validation loss are smoothed by a centred moving mean over ``window`` epochs; ``auc_end`` and
    ``val_loss_end`` are the means over the last ``window`` epochs. ``overfits`` is True when detection fell by
    more than ``tol`` from its peak while the validation loss kept falling after it. ``val_acc_saturated_at`` is
    the first epoch with validation accuracy ≥ ``saturated`` (None if never): from there on the held-out clips
    have little left to teach the classifier.
    """
    _require(history, ("epoch", "val_loss", "val_acc", "test_auc"))
    h = history.sort_values("epoch").reset_index(drop=True)
    auc = h.test_auc.rolling(window, center=True, min_periods=1).mean()
    val_loss = h.val_loss.rolling(window, center=True, min_periods=1).mean()
    peak = int(auc.to_numpy().argmax())
    auc_end, val_loss_end = float(h.test_auc.tail(window).mean()), float(h.val_loss.tail(window).mean())
    hits = np.flatnonzero(h.val_acc.to_numpy() >= saturated)
    drop = float(auc[peak]) - auc_end
    return {"epochs": len(h), "val_acc_saturated_at": int(h.epoch[hits[0]]) if len(hits) else None,
            "auc_peak_epoch": int(h.epoch[peak]), "auc_peak": float(auc[peak]), "auc_end": auc_end,
            "auc_drop": drop, "val_loss_at_peak": float(val_loss[peak]), "val_loss_end": val_loss_end,
            "overfits": bool(drop > tol and val_loss_end < float(val_loss[peak]))}


def angle_shift(angles: pd.DataFrame, *, reference: str = "train", angle: str = "angle") -> pd.DataFrame:
    """Per machine ID, the median angle of the normal clips of each split and its distance from ``reference``.

    ``angles`` has columns machine_type, machine_id, split (e.g. ``"train"``, ``"val"``: held-out training
    clips, ``"test"``: normal test clips) and ``angle``. Returns machine_type, machine_id, ``median_<split>`` per
    split, and ``<split>_minus_<reference>`` per other split: how much further out the clips the network did not
    train on lie (degrees); near 0 means the training clips are no special case.
    """
    _require(angles, ("machine_type", "machine_id", "split", angle))
    if reference not in set(angles.split):
        raise ValueError(f"no clips of split {reference!r}; the splits present are {sorted(set(angles.split))}")
    medians = angles.pivot_table(index=["machine_type", "machine_id"], columns="split", values=angle,
                                 aggfunc="median")
    table = medians.add_prefix("median_")
    for split in [s for s in medians.columns if s != reference]:
        table[f"{split}_minus_{reference}"] = medians[split] - medians[reference]
    table.columns.name = None
    return table.reset_index()
