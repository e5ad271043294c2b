"""Worked answers to the exercises of 05_evaluation.ipynb (each checked by asdlib.teaching.exercises.ex05)."""
from __future__ import annotations

import pandas as pd
from sklearn.metrics import roc_auc_score

from asdlib.evaluation.threshold import fit_thresholds, flag_anomalies


def mauc(per_id: pd.DataFrame) -> dict[str, float]:
    """Exercise 1: mAUC per machine type = the smallest per-ID AUC of that type."""
    return per_id.groupby("machine_type")["auc"].min().to_dict()


def pooled_auc(scores: pd.DataFrame, machine_type: str) -> float:
    """Exercise 2: one ROC over all test clips of a type, all machine IDs together (Noisy-ArcMix eval.py)."""
    rows = scores[scores["machine_type"] == machine_type]
    return float(roc_auc_score(rows["label"] == "anomaly", rows["score"]))


def selection(history: pd.DataFrame) -> dict[str, int]:
    """Exercise 3: the epochs picked by the honest rule (min val_loss) and by peeking (max AUC + pAUC)."""
    honest = history.loc[history["val_loss"].idxmin(), "epoch"]
    peeking = history.loc[(history["test_auc"] + history["test_pauc"]).idxmax(), "epoch"]
    return {"honest": int(honest), "peeking": int(peeking)}


def per_id_false_alarms(held_out: pd.DataFrame, test_scores: pd.DataFrame, *,
                        quantile: float = 0.99) -> pd.DataFrame:
    """Exercise 4 (open): one percentile threshold per machine ID from the held-out normal clips, and the
    false-alarm rate it gives on that ID's normal test clips; ``max_exceeded`` is 1 / (n + 1), the chance
    that a new normal clip scores above the highest of n held-out ones.

    Model answer. The false-alarm rate rises far above the 1 % that ``quantile = 0.99`` aims at, and it
    differs a lot from ID to ID. With n held-out clips per ID (a handful: 5 % of the training clips), the 0.99
    quantile lies between the two highest of them, so it is in effect the maximum of n scores. A new normal
    clip beats the highest of n normal ones with probability 1 / (n + 1), 14 % for n = 6, whatever the
    quantile asked for: an empirical quantile means something only when n is well above 1 / (1 − quantile)
    (100 clips here). And the maximum of a handful of scores is itself a noisy number: one unusually quiet or
    loud clip moves it, which is why one ID ends up with almost no false alarms and another with many. Per
    machine type (several IDs pooled) or with a fitted distribution there are more clips per threshold; per
    ID, record many more normal clips before trusting a 1 % target.
    """
    thresholds = fit_thresholds(held_out, by=("machine_type", "machine_id"), method="percentile",
                                quantile=quantile)
    flagged = flag_anomalies(test_scores, thresholds)
    normal = flagged[flagged["label"] == "normal"]
    fpr = normal.groupby(["machine_type", "machine_id"])["is_anomaly"].mean().rename("fpr").reset_index()
    table = thresholds.merge(fpr, on=["machine_type", "machine_id"])
    return table.assign(max_exceeded=1 / (table["n_normal"] + 1))
