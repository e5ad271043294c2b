"""Checkers for the exercises of ``05_evaluation``: mAUC, the pooled AUC, which checkpoint each rule picks.

Each checker compares the learner's answer with what :mod:`asdlib` computes from the same data, prints ✓ or a
hint, returns True/False, and never raises. Worked answers: ``notebooks/solutions/05_solutions.py``.
"""
from __future__ import annotations

import math

import pandas as pd

from asdlib.exercises import report
from asdlib.metrics import per_id_table, pooled_table, summary_table
from asdlib.plots.evaluation import selected_epochs


def _close(a, b, tol: float = 1e-6) -> bool:
    return a is not None and math.isclose(float(a), float(b), abs_tol=tol)


def check_mauc(answer, per_id: pd.DataFrame) -> bool:
    """``answer``: ``{machine_type: mAUC}`` (fractions) for every type in ``per_id`` (a per-ID AUC table)."""
    try:
        expected = summary_table(per_id).set_index("machine_type")["mauc"].drop("Average")
        means = per_id.groupby("machine_type")["auc"].mean()
        got = dict(answer or {})
        if set(got) != set(expected.index):
            return report(False, "", f"give one value per machine type: {sorted(expected.index)}")
        if all(_close(got[t], expected[t]) for t in expected.index):
            return report(True, "mAUC = the worst machine ID's AUC of each type", "")
        if all(_close(got[t], means[t]) for t in expected.index):
            return report(False, "", "that is the mean AUC per type; mAUC is the *minimum* per-ID AUC")
        return report(False, "", "take, for each machine type, the smallest AUC among its IDs "
                                 "(per_id.groupby('machine_type')['auc']...)")
    except Exception as e:  # a checker never raises
        return report(False, "", f"could not check the answer ({type(e).__name__}: {e})")


def check_pooled_auc(answer, scores: pd.DataFrame, machine_type: str) -> bool:
    """``answer``: one AUC over all test clips of ``machine_type`` together (Noisy-ArcMix's eval.py)."""
    try:
        if machine_type not in set(scores["machine_type"]):
            return report(False, "", f"no test clips of {machine_type!r} in these scores")
        table = pooled_table(scores[scores["machine_type"] == machine_type]).set_index("machine_type")
        per_id = _per_id_auc(scores, machine_type)
        if _close(answer, table.at[machine_type, "auc"]):
            return report(True, f"pooled AUC of {machine_type} = {float(answer):.4f} "
                                f"(per-ID mean: {per_id:.4f})", "")
        if _close(answer, per_id):
            return report(False, "", "that is the per-ID average (DCASE); pool all IDs' clips into one "
                                     "roc_auc_score call instead")
        return report(False, "", "use sklearn.metrics.roc_auc_score(y_true, y_score) on all clips of the "
                                 "type, y_true = 1 for anomalies")
    except Exception as e:
        return report(False, "", f"could not check the answer ({type(e).__name__}: {e})")


def _per_id_auc(scores: pd.DataFrame, machine_type: str) -> float:
    """The DCASE per-ID-averaged AUC of one type (for comparison in the hints)."""
    table = summary_table(per_id_table(scores[scores["machine_type"] == machine_type]))
    return float(table.set_index("machine_type").at[machine_type, "auc"])


def check_selection(answer, history: pd.DataFrame) -> bool:
    """``answer``: ``{"honest": epoch, "peeking": epoch}`` for a run's ``history.csv``."""
    try:
        expected, got = selected_epochs(history), dict(answer or {})
        wrong = [rule for rule in expected if got.get(rule) is None or int(got[rule]) != expected[rule]]
        if not wrong:
            return report(True, f"honest → epoch {expected['honest']}, "
                                f"peeking → epoch {expected['peeking']}", "")
        hints = {"honest": "honest: the epoch with the smallest val_loss (no test labels used)",
                 "peeking": "peeking: the epoch with the largest test_auc + test_pauc"}
        return report(False, "", "; ".join(hints[rule] for rule in wrong))
    except Exception as e:
        return report(False, "", f"could not check the answer ({type(e).__name__}: {e})")
