"""Checkers for the exercises of notebook 03 (training): the ArcFace target logit, the epoch the honest
selection keeps, and how much picking the checkpoint on the test set would have flattered the result.

Each checker compares the learner's answer with what :mod:`asdlib` computes, prints ✓ or a specific hint,
returns None and never raises. The two selection checkers take a number for the run at hand or a function of a
history; a function is also run on :func:`asdlib.teaching.exercises.selection.constructed_history`, where every rule
(honest, peeking, last epoch, swapped min/max) picks a different epoch. ``solution(k)`` prints the worked
solution of exercise ``k``.
"""
from __future__ import annotations

import math

import numpy as np
import torch

from asdlib.teaching.exercises import crash_hint, report, show_solution, whole_number
from asdlib.teaching.exercises.selection import HINTS, constructed_history, diagnose, rule_epochs, test_auc_at
from asdlib.nn.heads import arcface_logits
from asdlib.teaching.plots.training import history_frame


def solution(k: int) -> None:
    """Print the worked solution of exercise ``k`` of notebook 03."""
    show_solution("03", k)


def _crash(err: Exception) -> str:
    return crash_hint(err)


def check_target_logit(fn, *, m: float = 0.7, s: float = 30.0) -> None:
    """Exercise 1: ``fn(cos_theta (N,), *, m, s) -> (N,)``, the target logit s·cos(θ + m) where θ + m < π."""
    cosine = torch.linspace(math.cos(math.pi - m) + 1e-3, 1.0, 41, dtype=torch.float64)  # (N,)
    expected = arcface_logits(cosine[:, None], torch.zeros(len(cosine), dtype=torch.long), m=m, s=s)[:, 0]
    try:
        got = fn(cosine, m=m, s=s)
        if got is None:
            return report(False, "", "your function returned None: return the (N,) target logits")
        got = torch.as_tensor(np.asarray(got, dtype=np.float64)).reshape(-1)
    except Exception as err:  # a learner's bug is a hint, not a crash of the notebook
        return report(False, "", _crash(err))
    if got.shape != expected.shape:
        return report(False, "", f"expected one logit per cosine, shape {tuple(expected.shape)}, "
                      f"got {tuple(got.shape)}")
    wrong = {"s·cos θ, without the margin: add m to the angle θ = arccos(cos θ)": s * cosine,
             "CosFace's s·(cos θ − m): ArcFace adds m to the *angle*, not to the cosine": s * (cosine - m),
             "cos(θ + m) without the scale: multiply by s": torch.cos(torch.arccos(cosine) + m)}
    for hint, value in wrong.items():
        if torch.allclose(got, value, atol=1e-4):
            return report(False, "", f"that is {hint}")
    return report(bool(torch.allclose(got, expected, atol=1e-4)),
                  "matches asdlib.nn.heads.arcface_logits for the target class",
                  "compute θ = arccos(cos θ), then s·cos(θ + m); compare with the equation above")


def _histories(answer, history) -> list[tuple[str, object]]:
    """Where to check an answer: the run's history, plus the constructed one when the answer is a function."""
    cases = [("this run's history", history_frame(history))]
    return cases + [("a constructed 8-epoch history", constructed_history())] if callable(answer) else cases


def _evaluate(answer, history):
    """The learner's answer for ``history``: the value itself, or a function of a copy of the history."""
    return answer(history.copy()) if callable(answer) else answer


def check_selected_epoch(answer, history) -> None:
    """Exercise 2: the epoch of the kept checkpoint (lowest validation loss) of a run's ``history``.

    ``answer``: an epoch number for ``history`` (a DataFrame or a run folder), or a function
    ``history -> epoch``, which is also checked on a constructed history where the wrong rules differ.
    """
    try:
        for where, h in _histories(answer, history):
            expected = rule_epochs(h)["honest"]
            try:
                got = _evaluate(answer, h)
            except Exception as err:  # a learner's bug is a hint, not a crash of the notebook
                return report(False, "", f"{crash_hint(err)} on {where}")
            epoch = whole_number(got)
            if epoch is None:
                return report(False, "", f"expected an epoch number (a whole number), got {got!r} on {where}")
            if epoch != expected:
                wrong = diagnose(epoch, h, right="honest", skip=("lowest_test",))
                what = HINTS[wrong] if wrong else f"epoch {epoch} is not the one with the lowest val_loss"
                return report(False, "", f"on {where} you answered {epoch}: {what}. best.pt holds the epoch "
                              "with the lowest validation loss (history.val_loss.idxmin() gives its row)")
        expected = rule_epochs(history)["honest"]
        return report(True, f"epoch {expected} has the lowest validation loss, so best.pt is from epoch "
                      f"{expected}", "")
    except Exception as err:  # a checker never raises
        return report(False, "", f"could not check the answer ({type(err).__name__}: {err})")


def _peek_optimism(history) -> float:
    """Test AUC of the peeking epoch (max AUC + pAUC) minus that of the kept epoch, in percentage points."""
    epochs = rule_epochs(history)
    return 100 * (test_auc_at(history, epochs["peeking"]) - test_auc_at(history, epochs["honest"]))


def _optimism_mistakes(history) -> dict[str, float]:
    """Values that typical mistakes give (percentage points), with what each mistake is."""
    h, epochs = history_frame(history), rule_epochs(history)
    kept, peeked = test_auc_at(h, epochs["honest"]), test_auc_at(h, epochs["peeking"])
    both = {e: float((h.loc[h.epoch == e, "test_auc"] + h.loc[h.epoch == e, "test_pauc"]).iloc[0])
            for e in (epochs["honest"], epochs["peeking"])}
    return {
        "the value as a fraction: give it in percentage points (× 100)": peeked - kept,
        "the wrong sign: subtract the kept epoch's AUC from the peeking epoch's": 100 * (kept - peeked),
        "the best test AUC of any epoch: the peeking rule picks the epoch with the best AUC + pAUC (the "
        "original STgram-MFN code's rule) and reports that epoch's AUC": 100 * (h["test_auc"].max() - kept),
        "a comparison with the last epoch: the kept epoch is the one with the lowest val_loss":
            100 * (peeked - test_auc_at(h, epochs["last"])),
        "the difference of AUC + pAUC: report the AUC alone":
            100 * (both[epochs["peeking"]] - both[epochs["honest"]]),
    }


def check_peek_optimism(answer, history) -> None:
    """Exercise 3: how many AUC points peeking at the test set would have added (percentage points).

    Peeking = the epoch with the highest test AUC + pAUC (the original STgram-MFN code's rule); the answer is
    its test AUC minus the kept epoch's (lowest val_loss), × 100. ``answer``: a number, or a function
    ``history -> float``, which is also checked on a constructed history.
    """
    try:
        h = history_frame(history)
        if "test_auc" not in h or "test_pauc" not in h or h["test_auc"].isna().all():
            return report(False, "", "this history has no test AUC/pAUC (train with track_test=True, as "
                          "asdlib.teaching.notebook.ensure_run does)")
        for where, case in _histories(answer, h):
            expected = _peek_optimism(case)
            try:
                got = float(_evaluate(answer, case))
            except (TypeError, ValueError):
                return report(False, "", f"expected a number of percentage points on {where}")
            except Exception as err:  # a learner's bug is a hint, not a crash of the notebook
                return report(False, "", f"{crash_hint(err)} on {where}")
            if abs(got - expected) < 0.01:
                continue
            epochs = rule_epochs(case)
            hint = next((what for what, value in _optimism_mistakes(case).items()
                         if abs(got - value) < 0.01 and abs(value - expected) >= 0.01), None)
            if hint is None and abs(got) < 0.01:
                hint = (f"no gain, but here the honest rule keeps epoch {epochs['honest']} and peeking picks epoch "
                        f"{epochs['peeking']}, and their test AUCs differ")
            return report(False, "", f"on {where} you answered {got:.3f}, that is {hint}" if hint else
                          f"on {where} you answered {got:.3f}: take the test AUC of the epoch with the highest "
                          "test AUC + pAUC, minus the test AUC of the kept epoch (lowest val_loss), × 100")
        expected, epochs = _peek_optimism(h), rule_epochs(h)
        return report(True, f"peeking (epoch {epochs['peeking']}) would have reported {expected:.2f} AUC points "
                      f"more than the honest choice (epoch {epochs['honest']})", "")
    except Exception as err:  # a checker never raises
        return report(False, "", f"could not check the answer ({type(err).__name__}: {err})")
