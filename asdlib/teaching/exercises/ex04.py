"""Checkers for the exercises of notebook 04 (loss comparison): ArcMix written out, the angle to the class centre
used as an anomaly score, and how often Beta(α, α) mixup really mixes two clips.

Each checker compares the learner's answer with what :mod:`asdlib` computes, prints ✓ or a specific hint,
returns None and never raises. ``solution(k)`` prints the worked solution of exercise ``k``.
"""
from __future__ import annotations

import pandas as pd
import torch
from scipy.stats import beta

from asdlib.teaching.exercises import report, show_solution
from asdlib.training.losses import arcmix_from_cosine, noisy_arcmix_from_cosine
from asdlib.evaluation.metrics import per_id_table, summary_table


def solution(k: int) -> None:
    """Print the worked solution of exercise ``k`` of notebook 04."""
    show_solution("04", k)


def _crash(err: Exception) -> str:
    return f"your function raised {type(err).__name__}: {err}"


def _mix_cases() -> list[tuple[torch.Tensor, torch.Tensor, torch.Tensor, float]]:
    """A few ``(cosine (B, K), y_a (B,), y_b (B,), λ)`` with y_a ≠ y_b mostly, so the two losses differ."""
    g = torch.Generator().manual_seed(4)
    cases = []
    for lam in (0.3, 0.5, 0.9):
        cosine = 2 * torch.rand(8, 41, generator=g, dtype=torch.float64) - 1
        y_a = torch.randint(0, 41, (8,), generator=g)
        cases.append((cosine, y_a, y_a[torch.randperm(8, generator=g)], lam))
    return cases


def check_arcmix(fn, *, m: float = 0.7, s: float = 30.0) -> None:
    """Exercise 1: ``fn(cosine (B, K), y_a (B,), y_b (B,), lam, *, m, s) -> ()``, the ArcMix loss."""
    for cosine, y_a, y_b, lam in _mix_cases():
        expected = arcmix_from_cosine(cosine, y_a, y_b, lam, m=m, s=s)
        try:
            got = fn(cosine, y_a, y_b, lam, m=m, s=s)
            if got is None:
                return report(False, "", "your function returned None: return the loss (a scalar tensor)")
            got = float(got)
        except Exception as err:  # a learner's bug is a hint, not a crash of the notebook
            return report(False, "", _crash(err))
        if abs(got - float(expected)) < 1e-6:
            continue
        if abs(got - float(noisy_arcmix_from_cosine(cosine, y_a, y_b, lam, m=m, s=s))) < 1e-6:
            return report(False, "", "that is Noisy-ArcMix (one set of logits, margin on y_a only); ArcMix "
                          "computes the logits twice, with the margin on y_a for the first term and on y_b "
                          "for the second")
        return report(False, "", f"with λ = {lam} you got {got:.4f}, expected {float(expected):.4f}: "
                      "λ·CE(ArcFace(y_a), y_a) + (1 − λ)·CE(ArcFace(y_b), y_b), batch-mean cross-entropy")
    return report(True, "matches asdlib.training.losses.arcmix_from_cosine", "")


def _angle_auc(scores: pd.DataFrame) -> float:
    """The DCASE average AUC (per ID, mean per type, mean of types) with θ_y as the anomaly score."""
    summary = summary_table(per_id_table(scores.assign(score=scores["angle"])))
    return float(summary.loc[summary.machine_type == "Average", "auc"].iloc[0])


def check_angle_auc(answer, scores: pd.DataFrame) -> None:
    """Exercise 2: the average AUC of a run when the angle to the class centre is the anomaly score."""
    expected = _angle_auc(scores)
    try:
        got = float(answer)
    except (TypeError, ValueError):
        return report(False, "", f"expected a number, got {answer!r}")
    ok = abs(got - expected) < 1e-6 or abs(got - 100 * expected) < 1e-4
    return report(ok, f"average AUC {100 * expected:.2f} % with the angle as the score",
                  f"got {got:.4f}: put the angle in the score column (scores.assign(score=scores['angle'])), "
                  "then asdlib.evaluation.metrics.per_id_table and summary_table, and read the 'Average' row's auc")


def _mixed_fraction(*, alpha: float = 0.5, low: float = 0.2, high: float = 0.8) -> float:
    """P(low < λ < high) for λ ~ Beta(α, α): the share of batches where both clips really count."""
    return float(beta.cdf(high, alpha, alpha) - beta.cdf(low, alpha, alpha))


def check_mixed_fraction(answer, *, alpha: float = 0.5, low: float = 0.2, high: float = 0.8) -> None:
    """Exercise 3: an estimate (from sampled λ) of the fraction of batches with ``low < λ < high``."""
    expected = _mixed_fraction(alpha=alpha, low=low, high=high)
    try:
        got = float(answer)
    except (TypeError, ValueError):
        return report(False, "", f"expected a fraction between 0 and 1, got {answer!r}")
    return report(abs(got - expected) < 0.02,
                  f"≈ {expected:.3f}: Beta({alpha:g}, {alpha:g}) is U-shaped, most batches are almost one clip",
                  f"got {got:.3f}: draw many λ with asdlib.training.losses.sample_mixup(batch_size, alpha={alpha:g}, "
                  f"rng=...) and count the share with {low} < λ < {high} (a few thousand draws suffice)")
