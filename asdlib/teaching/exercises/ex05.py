"""Checkers for the exercises of ``05_evaluation``: mAUC, the pooled AUC, which checkpoint each rule picks.

Each checker compares the learner's answer with what :mod:`asdlib` computes from the same data, prints ✓ or a
specific hint, returns None, and never raises. AUCs may be given as fractions (0.87) or in percent (87.0).
``solution(k)`` prints the worked solution of exercise ``k``.
"""
from __future__ import annotations

import math

import pandas as pd

from asdlib.teaching.exercises import crash_hint, report, show_solution, whole_number
from asdlib.teaching.exercises.selection import HINTS, constructed_history, diagnose, rule_epochs
from asdlib.evaluation.metrics import per_id_table, pooled_table, summary_table
from asdlib.teaching.plots.training import history_frame

PERCENT_NOTE = " (given in percent; the tables of asdlib hold fractions)"


def solution(k: int) -> None:
    """Print the worked solution of exercise ``k`` of notebook 05."""
    show_solution("05", k)


def _close(a, b, tol: float = 1e-6) -> bool:
    return a is not None and math.isclose(float(a), float(b), abs_tol=tol)


def _scale(values: list[float]) -> float:
    """100 if the values look like percentages (any above 1.5), else 1."""
    return 100.0 if any(float(v) > 1.5 for v in values) else 1.0


def check_mauc(answer, per_id: pd.DataFrame) -> None:
    """``answer``: ``{machine_type: mAUC}`` (fractions or percent) for every type in ``per_id`` (per-ID AUCs)."""
    try:
        expected = summary_table(per_id).set_index("machine_type")["mauc"].drop("Average")
        means = per_id.groupby("machine_type")["auc"].mean()
        maxima = per_id.groupby("machine_type")["auc"].max()
        got = dict(answer) if isinstance(answer, (dict, pd.Series)) else None
        if got is None:
            return report(False, "", f"expected a dict {{machine_type: mAUC}}, got {type(answer).__name__}")
        if set(got) != set(expected.index):
            return report(False, "", f"give one value per machine type: {sorted(expected.index)}, got "
                          f"{sorted(map(str, got))}")
        scale = _scale(list(got.values()))
        got = {t: float(v) / scale for t, v in got.items()}
        note = PERCENT_NOTE if scale == 100 else ""
        if all(_close(got[t], expected[t], 1e-4) for t in expected.index):
            return report(True, f"mAUC = the worst machine ID's AUC of each type{note}", "")
        wrong = {"the mean AUC per type; mAUC is the *minimum* per-ID AUC": means,
                 "the best ID's AUC per type (max); mAUC is the *minimum*": maxima}
        for hint, values in wrong.items():
            if all(_close(got[t], values[t], 1e-4) for t in expected.index):
                return report(False, "", f"that is {hint}")
        off = [t for t in expected.index if not _close(got[t], expected[t], 1e-4)]
        return report(False, "", f"{', '.join(off)}: take, for each machine type, the smallest AUC among its "
                      "IDs (per_id.groupby('machine_type')['auc'] ...)")
    except Exception as e:  # a checker never raises
        return report(False, "", f"could not check the answer ({type(e).__name__}: {e})")


def check_pooled_auc(answer, scores: pd.DataFrame, machine_type: str) -> None:
    """``answer``: one AUC over all test clips of ``machine_type`` together (Noisy-ArcMix's eval.py)."""
    try:
        if machine_type not in set(scores["machine_type"]):
            return report(False, "", f"no test clips of {machine_type!r} in these scores")
        try:
            value = float(answer)
        except (TypeError, ValueError):
            return report(False, "", f"expected one number (an AUC), got {answer!r}")
        scale = _scale([value])
        value /= scale
        table = pooled_table(scores[scores["machine_type"] == machine_type]).set_index("machine_type")
        pooled, per_id = float(table.at[machine_type, "auc"]), _per_id_auc(scores, machine_type)
        if _close(value, pooled, 1e-4):
            note = PERCENT_NOTE if scale == 100 else ""
            return report(True, f"pooled AUC of {machine_type} = {pooled:.4f} (per-ID mean: {per_id:.4f}){note}",
                          "")
        if _close(value, per_id, 1e-4):
            return report(False, "", "that is the per-ID average (DCASE); pool all IDs' clips into one "
                                     "roc_auc_score call instead")
        if _close(value, 1 - pooled, 1e-4):
            return report(False, "", "that is 1 − AUC: the positive class (y_true = 1) is 'anomaly', and a "
                                     "higher score means more anomalous")
        return report(False, "", "use sklearn.metrics.roc_auc_score(y_true, y_score) on all clips of the "
                                 "type, y_true = 1 for anomalies")
    except Exception as e:
        return report(False, "", f"could not check the answer ({type(e).__name__}: {e})")


def _per_id_auc(scores: pd.DataFrame, machine_type: str) -> float:
    """The DCASE per-ID-averaged AUC of one type (for comparison in the hints)."""
    table = summary_table(per_id_table(scores[scores["machine_type"] == machine_type]))
    return float(table.set_index("machine_type").at[machine_type, "auc"])


def _selection_hint(got: dict, history) -> str:
    """What is wrong with ``{"honest": e, "peeking": e}`` for ``history``, or "" if it is right."""
    expected = rule_epochs(history)
    values = {rule: whole_number(got.get(rule)) for rule in ("honest", "peeking")}
    missing = [rule for rule, v in values.items() if v is None]
    if missing:
        return f"give an epoch number (a whole number) for {' and '.join(map(repr, missing))}"
    if values["honest"] == expected["peeking"] != expected["honest"] and values["peeking"] == expected["honest"]:
        return "the two rules are swapped: honest = lowest val_loss, peeking = highest test AUC + pAUC"
    hints = []
    for rule, skip in (("honest", ("lowest_test",)), ("peeking", ("row", "worst"))):
        if values[rule] != expected[rule]:
            wrong = diagnose(values[rule], history, right=rule, skip=skip)
            what = HINTS[wrong] if wrong else f"epoch {values[rule]} is not it"
            if rule == "peeking" and wrong == "peeking_auc":
                what = "that epoch has the highest test AUC alone; the original code's rule sums AUC + pAUC"
            rule_text = ("the honest rule takes the lowest val_loss (no test labels)" if rule == "honest" else
                         "the peeking rule takes the highest test_auc + test_pauc")
            hints.append(f"{rule} = {values[rule]}: {what}; {rule_text}")
    return "; ".join(hints)


def check_selection(answer, history) -> None:
    """``answer``: ``{"honest": epoch, "peeking": epoch}`` for a run's ``history`` (DataFrame or run folder),
    or a function ``history -> {"honest": …, "peeking": …}``, which is also checked on a constructed history
    where every rule (last epoch, swapped rules, AUC alone) picks a different epoch."""
    try:
        cases = [("this run's history", history_frame(history))]
        if callable(answer):
            cases.append(("a constructed 8-epoch history", constructed_history()))
        for where, h in cases:
            try:
                got = answer(h.copy()) if callable(answer) else answer
            except Exception as err:  # a learner's bug is a hint, not a crash of the notebook
                return report(False, "", f"{crash_hint(err)} on {where}")
            if not isinstance(got, dict):
                return report(False, "", f"expected a dict {{'honest': epoch, 'peeking': epoch}}, got {got!r}")
            hint = _selection_hint(got, h)
            if hint:
                return report(False, "", f"on {where}: {hint}")
        expected = rule_epochs(history)
        return report(True, f"honest → epoch {expected['honest']}, peeking → epoch {expected['peeking']}", "")
    except Exception as e:
        return report(False, "", f"could not check the answer ({type(e).__name__}: {e})")
