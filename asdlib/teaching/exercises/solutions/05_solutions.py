"""Worked answers to the exercises of 05_evaluation.ipynb (each checked by asdlib.teaching.exercises.ex05)."""
from __future__ import annotations

import pandas as pd
from sklearn.metrics import roc_auc_score


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
