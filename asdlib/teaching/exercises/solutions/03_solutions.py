"""Worked solutions to the exercises of notebook 03 (training); checked by tests/test_exercises_03_04.py."""
from __future__ import annotations

import pandas as pd
import torch


def target_logit(cos_theta: torch.Tensor, *, m: float = 0.7, s: float = 30.0) -> torch.Tensor:
    """Exercise 1: s·cos(θ + m) with θ = arccos(cos θ), for θ + m < π. ``(N,) -> (N,)``."""
    theta = torch.arccos(torch.as_tensor(cos_theta).clamp(-1.0, 1.0))
    return s * torch.cos(theta + m)


def selected_epoch(history: pd.DataFrame) -> int:
    """Exercise 2: the epoch with the lowest validation loss (the one ``best.pt`` holds)."""
    return int(history.loc[history["val_loss"].idxmin(), "epoch"])


def peek_optimism(history: pd.DataFrame) -> float:
    """Exercise 3: the test AUC of the epoch peeking would pick (highest test AUC + pAUC, the original
    STgram-MFN code's rule) minus the test AUC of the kept epoch, in percentage points."""
    peeked = history.loc[(history["test_auc"] + history["test_pauc"]).idxmax(), "test_auc"]
    kept = history.loc[history["epoch"] == selected_epoch(history), "test_auc"].iloc[0]
    return float(100 * (peeked - kept))
