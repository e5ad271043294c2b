"""Worked solutions to the exercises of notebook 04 (loss comparison); checked by tests/test_exercises_03_04.py."""
from __future__ import annotations

import numpy as np
import pandas as pd
import torch
import torch.nn.functional as F

from asdlib.nn.heads import arcface_logits
from asdlib.training.losses import sample_mixup
from asdlib.evaluation.metrics import per_id_table, summary_table


def arcmix(cosine: torch.Tensor, y_a: torch.Tensor, y_b: torch.Tensor, lam: float, *, m: float = 0.7,
           s: float = 30.0) -> torch.Tensor:
    """Exercise 1: λ·CE(ArcFace(y_a), y_a) + (1 − λ)·CE(ArcFace(y_b), y_b). ``(B, K), (B,), (B,) -> ()``."""
    z_a = arcface_logits(cosine, y_a, m=m, s=s)  # margin on y_a
    z_b = arcface_logits(cosine, y_b, m=m, s=s)  # margin on y_b
    return lam * F.cross_entropy(z_a, y_a) + (1 - lam) * F.cross_entropy(z_b, y_b)


def angle_auc(scores: pd.DataFrame) -> float:
    """Exercise 2: the DCASE average AUC with the angle θ_y as the anomaly score."""
    summary = summary_table(per_id_table(scores.assign(score=scores["angle"])))
    return float(summary.set_index("machine_type").loc["Average", "auc"])


def mixed_fraction(n: int = 20000, *, alpha: float = 0.5, low: float = 0.2, high: float = 0.8) -> float:
    """Exercise 3: the share of ``n`` sampled λ ~ Beta(α, α) with ``low < λ < high``. Chance moves it by
    about √(p (1 − p) / n), so the checker needs ``n``: ``ex04.check_mixed_fraction(share, draws=n)``."""
    rng = np.random.default_rng(0)
    lam = np.array([sample_mixup(2, alpha=alpha, rng=rng)[0] for _ in range(n)])
    return float(np.mean((lam > low) & (lam < high)))
