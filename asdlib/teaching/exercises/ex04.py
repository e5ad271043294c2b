"""Checkers for the exercises of notebook 04 (loss comparison): ArcMix written out, the angle to the class centre
used as an anomaly score, and how often Beta(α, α) mixup really mixes two clips.

Each checker compares the learner's answer with what :mod:`asdlib` computes, prints ✓ or a specific hint,
returns None and never raises. ``solution(k)`` prints the worked solution of exercise ``k``.
"""
from __future__ import annotations

import numpy as np
import pandas as pd
import torch
from scipy.stats import beta
from sklearn.metrics import roc_auc_score

from asdlib.teaching.exercises import crash_hint, report, scalar, show_solution, to_numpy, whole_number
from asdlib.training.losses import arcmix_from_cosine, noisy_arcmix_from_cosine
from asdlib.evaluation.metrics import per_id_table, summary_table


def solution(k: int) -> None:
    """Print the worked solution of exercise ``k`` of notebook 04."""
    show_solution("04", k)


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
            return report(False, "", crash_hint(err))
        if abs(got - float(expected)) < 1e-6:
            continue
        if abs(got - float(noisy_arcmix_from_cosine(cosine, y_a, y_b, lam, m=m, s=s))) < 1e-6:
            return report(False, "", "that is Noisy-ArcMix (one set of logits, margin on y_a only); ArcMix "
                          "computes the logits twice, with the margin on y_a for the first term and on y_b "
                          "for the second")
        return report(False, "", f"with λ = {lam} you got {got:.4f}, expected {float(expected):.4f}: "
                      "λ·CE(ArcFace(y_a), y_a) + (1 − λ)·CE(ArcFace(y_b), y_b), batch-mean cross-entropy")
    return report(True, "matches asdlib.training.losses.arcmix_from_cosine", "")


def _average(summary: pd.DataFrame, column: str = "auc") -> float:
    """The 'Average' row of a :func:`summary_table`, as a fraction."""
    return float(summary.loc[summary.machine_type == "Average", column].iloc[0])


def _angle_auc(scores: pd.DataFrame) -> float:
    """The DCASE average AUC (per ID, mean per type, mean of types) with θ_y as the anomaly score."""
    return _average(summary_table(per_id_table(scores.assign(score=scores["angle"]))))


def _angle_auc_mistakes(scores: pd.DataFrame) -> dict[str, float]:
    """What typical mistakes give (fractions): the run's own score, the pAUC, the sign, pooled IDs."""
    summary = summary_table(per_id_table(scores.assign(score=scores["angle"])))
    pooled = [roc_auc_score(g["label"] == "anomaly", g["angle"]) for _, g in scores.groupby("machine_type")]
    mistakes = {"the pAUC of the angle; the exercise asks for the AUC (the 'auc' column)": _average(summary, "pauc"),
                "1 − AUC: a larger angle means more anomalous, so use the angle itself, not its negative":
                1 - _average(summary),
                "a pooled AUC (all IDs of a type in one ROC); DCASE averages per machine ID: per_id_table "
                "first, then summary_table": float(np.mean(pooled))}
    if "score" in scores:
        mistakes["the AUC of the run's anomaly score (the 'score' column): replace that column by the angle, "
                 "scores.assign(score=scores['angle'])"] = _average(summary_table(per_id_table(scores)))
    return mistakes


def _matches_printed(got: float, value: float) -> bool:
    """``got`` is ``value`` (a fraction) as printed: to 4 decimals as a fraction or 2 decimals in percent."""
    return abs(got - value) <= 5e-5 + 1e-9 or abs(got - 100 * value) <= 5e-3 + 1e-7


def check_angle_auc(answer, scores: pd.DataFrame) -> None:
    """Exercise 2: the average AUC of a run when the angle to the class centre is the anomaly score.

    A fraction or percent passes, also rounded as printed (84.77 %, 0.8477).
    """
    expected = _angle_auc(scores)
    try:
        got = float(scalar(answer))
    except (TypeError, ValueError):
        return report(False, "", f"expected a number (the average AUC), got {answer!r}")
    if _matches_printed(got, expected):
        return report(True, f"average AUC {100 * expected:.2f} % with the angle as the score", "")
    for what, value in _angle_auc_mistakes(scores).items():
        if _matches_printed(got, value):
            return report(False, "", f"that is {what}")
    return report(False, "", f"got {got:.4g}: put the angle in the score column (scores.assign(score="
                  "scores['angle'])), then asdlib.evaluation.metrics.per_id_table and summary_table, and read "
                  "the 'Average' row's auc")


MIN_DRAWS = 1000  # fewer draws cannot tell an estimate from a guess (chance moves the share by ±0.06 at 1000)
Z_TOLERANCE = 4.0  # an honest estimate lands within 4 binomial sd of the exact share (fails 1 time in 16 000)
BARE_DRAWS = 10 ** 6  # a share given without its number of draws is held to the precision of a million


def _mixed_fraction(*, alpha: float = 0.5, low: float = 0.2, high: float = 0.8) -> float:
    """P(low < λ < high) for λ ~ Beta(α, α): the share of batches where both clips really count."""
    return float(beta.cdf(high, alpha, alpha) - beta.cdf(low, alpha, alpha))


def _spread(p: float, draws: int) -> float:
    """How far chance may move a share of ``draws`` Bernoulli(p) draws: Z_TOLERANCE binomial sd."""
    return Z_TOLERANCE * float(np.sqrt(p * (1 - p) / draws))


def _share_and_draws(answer, draws, *, low: float, high: float) -> tuple[float, int | None, str]:
    """The share an answer states, the number of draws behind it (None if unknown), and a note on units.

    ``answer``: a share (fraction or percent), the sampled λ, or the boolean "mixed" mask of the draws."""
    if draws is not None and (whole_number(draws) or 0) < 1:
        raise ValueError(f"draws={draws!r}: give the number of λ the share counts (a whole number)")
    draws, answer = whole_number(draws) if draws is not None else None, scalar(answer)
    if hasattr(answer, "__len__") and not isinstance(answer, str):
        values = to_numpy(answer).ravel()
        if values.size and np.all((values >= 0) & (values <= 1)):
            mixed = values if np.isin(values, (0.0, 1.0)).all() else (values > low) & (values < high)
            return float(np.mean(mixed)), values.size, ""
        raise ValueError(f"got an array of {values.size} values outside [0, 1]: pass the share (a number), the "
                         "sampled λ, or the boolean mask low < λ < high")
    try:
        share = float(answer)
    except (TypeError, ValueError):
        raise ValueError(f"expected a fraction between 0 and 1, got {answer!r}") from None
    if 1 < share <= 100:
        return share / 100, draws, f" (read as {share:g} %; a fraction is {share / 100:.4g})"
    return share, draws, ""


def _mixed_mistake(share: float, tolerance: float, *, alpha: float, low: float, high: float) -> str | None:
    """The typical mistake ``share`` is closest to, within ``tolerance``: the complement, a uniform λ."""
    p = _mixed_fraction(alpha=alpha, low=low, high=high)
    mistakes = {f"the share *outside* the range (λ ≤ {low} or λ ≥ {high}): count {low} < λ < {high}": 1 - p,
                f"what a uniform λ gives ({high - low:g}): λ ~ Beta({alpha:g}, {alpha:g}) is U-shaped, draw it "
                "with sample_mixup": high - low}
    near = {what: abs(share - value) for what, value in mistakes.items() if abs(share - value) <= tolerance}
    return min(near, key=near.get) if near else None


def check_mixed_fraction(answer, *, draws: int | None = None, alpha: float = 0.5, low: float = 0.2,
                         high: float = 0.8) -> None:
    """Exercise 3: an estimate (from sampled λ) of the fraction of batches with ``low < λ < high``.

    ``answer`` is the share with ``draws`` (how many λ it counts), or the sampled λ themselves (or the boolean
    mask of the mixed ones). The tolerance is 4 binomial standard deviations, 4·√(p (1 − p) / draws): an
    honest estimate fails about once in 16 000. A share without its number of draws cannot be told from a
    guess (0.4 is within chance of 1000 draws), so it passes only as precise as a million draws (±0.002).
    """
    p = _mixed_fraction(alpha=alpha, low=low, high=high)
    try:
        share, n, note = _share_and_draws(answer, draws, low=low, high=high)
    except ValueError as err:
        return report(False, "", str(err))
    if n is not None and n < MIN_DRAWS:
        return report(False, "", f"{n} draws are too few: chance moves their share by ±{_spread(p, n):.2f}, "
                      f"which cannot tell an estimate from a guess; draw at least {MIN_DRAWS}")
    tolerance = _spread(p, n or BARE_DRAWS)
    if abs(share - p) <= tolerance:
        source = f"{n} draws, within chance (±{tolerance:.3f})" if n else "as precise as the exact value"
        return report(True, f"{share:.4f}{note}, {source}: P({low} < λ < {high}) = {p:.3f} for Beta({alpha:g}, "
                      f"{alpha:g}), which is U-shaped: most batches are almost one clip", "")
    mistake = _mixed_mistake(share, _spread(p, n or MIN_DRAWS), alpha=alpha, low=low, high=high)
    if mistake:
        return report(False, "", f"{share:.3f}{note} is {mistake}")
    if n is None and abs(share - p) <= _spread(p, MIN_DRAWS):
        return report(False, "", f"{share:.3f}{note}: a share alone cannot be told from a guess; say how many "
                      "λ it counts, ex04.check_mixed_fraction(mixed_fraction, draws=N), or pass the sampled λ")
    hint = f"got {share:.3f}{note}: draw many λ with asdlib.training.losses.sample_mixup(batch_size, " \
           f"alpha={alpha:g}, rng=...)[0] and count the share with {low} < λ < {high} (a fraction, not percent)"
    if n:
        hint += f"; with {n} draws chance moves the share by about ±{tolerance / Z_TOLERANCE:.3f}"
    return report(False, "", hint)
