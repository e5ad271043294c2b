"""Checkpoint selection for the checkers of notebooks 03 and 05: the honest rule, the peeking rule, and the
wrong rules a learner may apply instead (last epoch, swapped min/max, a row number, AUC alone, a guessed 0).

:func:`rule_epochs` says which epoch each rule picks in a history; :func:`diagnose` names the wrong rule an
answer matches, so a hint can say what went wrong. :func:`constructed_history` is a run history in which every
rule picks a different epoch: the checkers run a learner's *function* on it as well as on the real history,
and the tests use it, so a rule cannot pass by a coincidence of one run.
"""
from __future__ import annotations

import pandas as pd

from asdlib.teaching.plots.training import history_frame

HINTS = {  # wrong rule -> what it is (the checkers add what to do instead)
    "row": "that is a row number (rows count from 0); read the 'epoch' column of that row",
    "peeking": "that epoch has the highest test AUC + pAUC: choosing it uses the test labels (peeking)",
    "peeking_auc": "that epoch has the highest test AUC: choosing it uses the test labels (peeking)",
    "last": "that is the last epoch: the kept checkpoint is not simply the newest one",
    "worst": "that epoch has the *highest* validation loss (idxmax instead of idxmin)",
    "lowest_test": "that epoch has the *lowest* test AUC + pAUC (idxmin instead of idxmax)",
    "zero": "there is no epoch 0: epochs count from 1",
}


def constructed_history() -> pd.DataFrame:
    """An 8-epoch history where every rule of :func:`rule_epochs` picks a different epoch.

    honest (min val_loss) 5, its row 4, peeking (max test AUC + pAUC) 6, max test AUC alone 7, last 8,
    max val_loss 1, min test AUC + pAUC 2.
    """
    return pd.DataFrame({
        "epoch": range(1, 9),
        "loss": [9.0, 6.5, 5.0, 4.2, 3.6, 3.1, 2.8, 2.6],
        "val_loss": [5.0, 3.2, 2.1, 2.6, 1.8, 2.4, 2.9, 3.1],
        "test_auc": [0.60, 0.58, 0.70, 0.74, 0.72, 0.75, 0.80, 0.71],
        "test_pauc": [0.52, 0.50, 0.58, 0.60, 0.57, 0.68, 0.60, 0.56],
    })


def rule_epochs(history) -> dict[str, int]:
    """The epoch each rule picks: ``honest`` (min val_loss), ``peeking`` (max test AUC + pAUC, the original
    STgram-MFN code's rule) and the wrong rules of :data:`HINTS` (``row`` is the honest epoch's row number)."""
    h = history_frame(history).reset_index(drop=True)
    epochs = {"honest": int(h.loc[h["val_loss"].idxmin(), "epoch"]), "row": int(h["val_loss"].idxmin()),
              "last": int(h["epoch"].max()), "worst": int(h.loc[h["val_loss"].idxmax(), "epoch"]), "zero": 0}
    if {"test_auc", "test_pauc"} <= set(h.columns):
        tracked = h.dropna(subset=["test_auc", "test_pauc"])
        if len(tracked):
            both = tracked["test_auc"] + tracked["test_pauc"]
            epochs["peeking"] = int(tracked.loc[both.idxmax(), "epoch"])
            epochs["peeking_auc"] = int(tracked.loc[tracked["test_auc"].idxmax(), "epoch"])
            epochs["lowest_test"] = int(tracked.loc[both.idxmin(), "epoch"])
    return epochs


def test_auc_at(history, epoch: int) -> float:
    """The test AUC (a fraction) recorded at ``epoch``."""
    h = history_frame(history)
    return float(h.loc[h["epoch"] == epoch, "test_auc"].iloc[0])


def diagnose(epoch: int, history, *, right: str, skip: tuple[str, ...] = ()) -> str | None:
    """The wrong rule (a key of :data:`HINTS`) that picks ``epoch`` in ``history``, if any; the ``right``
    rule's own epoch and the rules in ``skip`` are not wrong answers."""
    epochs = rule_epochs(history)
    for rule in HINTS:
        if rule not in skip and rule != right and epochs.get(rule) == epoch != epochs[right]:
            return rule
    return None
