"""Checkers for the exercises of notebook 03 (training): the ArcFace target logit, the epoch the honest
selection keeps, and how much picking the checkpoint on the test set would have flattered the result.

Each checker compares the learner's answer with what :mod:`asdlib` computes, prints ✓ or a hint, returns
True/False and never raises. Solutions: ``notebooks/solutions/03_solutions.py``.
"""
from __future__ import annotations

import math

import numpy as np
import torch

from asdlib.exercises import report
from asdlib.heads import arcface_logits
from asdlib.plots.training import history_frame


def _crash(err: Exception) -> str:
    return f"your function raised {type(err).__name__}: {err}"


def check_target_logit(fn, *, m: float = 0.7, s: float = 30.0) -> bool:
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
                  "matches asdlib.heads.arcface_logits for the target class",
                  "compute θ = arccos(cos θ), then s·cos(θ + m); compare with the equation above")


def _selected_epoch(history) -> int:
    """The epoch whose checkpoint ``best.pt`` holds: the lowest validation loss."""
    h = history_frame(history)
    return int(h["epoch"][h["val_loss"].idxmin()])


def check_selected_epoch(answer, history) -> bool:
    """Exercise 2: the epoch of the kept checkpoint (lowest validation loss) of a run's ``history``."""
    expected = _selected_epoch(history)
    try:
        ok = int(answer) == expected
    except (TypeError, ValueError):
        ok = False
    return report(ok, f"epoch {expected} has the lowest validation loss, so best.pt is from epoch {expected}",
                  f"got {answer!r}: find the row with the smallest val_loss (history.val_loss.idxmin()) and "
                  "read its 'epoch' (epochs count from 1; row numbers from 0)")


def _peek_optimism(history) -> float:
    """Best test AUC over the epochs minus the test AUC of the kept epoch, in percentage points."""
    h = history_frame(history)
    kept = h.loc[h["epoch"] == _selected_epoch(history), "test_auc"].iloc[0]
    return float(100 * (h["test_auc"].max() - kept))


def check_peek_optimism(answer, history) -> bool:
    """Exercise 3: how many AUC points peeking at the test set would have added (percentage points)."""
    h = history_frame(history)
    if "test_auc" not in h or h.loc[h["epoch"] == _selected_epoch(h), "test_auc"].isna().all():
        return report(False, "", "this history has no test AUC at the kept epoch (train with track_test=True, "
                      "as asdlib.notebook.ensure_run does, and train.select_every = 1)")
    expected = _peek_optimism(h)
    try:
        got = float(answer)
    except (TypeError, ValueError):
        return report(False, "", f"expected a number of percentage points, got {answer!r}")
    if abs(got - expected) < 0.01:
        return report(True, f"peeking would have reported {expected:.2f} AUC points more than the honest "
                      "choice; on the real data the STgram-MFN README numbers carry this bias", "")
    if abs(100 * got - expected) < 0.01 and expected > 0:
        return report(False, "", "right value, but as a fraction: give it in percentage points (× 100)")
    return report(False, "", f"got {got:.3f}: take history.test_auc.max() minus the test_auc of the kept epoch "
                  "(lowest val_loss), times 100")


