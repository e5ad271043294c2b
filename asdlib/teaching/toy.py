"""A 2-D toy of mixup and the margin: where does each loss want a mixed clip's embedding to sit?

Two class centres on the unit circle, ``a`` at 0° and ``b`` at ``delta_deg``; a mixed clip ``λ·x_a + (1 − λ)·x_b``
whose embedding sits at angle φ. :func:`mixed_clip_losses` evaluates each mixup criterion of
:mod:`asdlib.training.losses` (the same functions the training uses, one value per φ) and :func:`optimal_angles` finds
the φ that minimises each, for many λ. Like notebook 03's ArcFace toy it is pure geometry: no training, no data.
"""
from __future__ import annotations

import numpy as np
import pandas as pd
import torch

from asdlib.training.losses import arcmix_from_cosine, mixed_cross_entropy, noisy_arcmix_from_cosine

TOY_LOSSES = ("mixup CE", "ArcMix", "Noisy-ArcMix")


def mixed_clip_losses(lam: float, phi_deg: np.ndarray, *, delta_deg: float = 90.0, m: float = 0.7,
                      s: float = 30.0) -> dict[str, np.ndarray]:
    """Loss of a mixed clip (targets ``y_a`` = a with weight λ, ``y_b`` = b) whose unit embedding is at angle
    φ: ``(N,) -> {loss name: (N,)}``. Mixup CE uses the margin-free logits ``s·cos θ``."""
    phi = torch.as_tensor(phi_deg, dtype=torch.float64)
    cosine = torch.cos(torch.deg2rad(phi[:, None] - torch.tensor([0.0, delta_deg], dtype=torch.float64)))  # (N, 2)
    y_a, y_b = torch.zeros(len(phi), dtype=torch.long), torch.ones(len(phi), dtype=torch.long)
    plain = s * cosine
    return {
        "mixup CE": mixed_cross_entropy(plain, plain, y_a, y_b, lam, reduction="none").numpy(),
        "ArcMix": arcmix_from_cosine(cosine, y_a, y_b, lam, m=m, s=s, reduction="none").numpy(),
        "Noisy-ArcMix": noisy_arcmix_from_cosine(cosine, y_a, y_b, lam, m=m, s=s, reduction="none").numpy(),
    }


def optimal_angles(lams, *, delta_deg: float = 90.0, m: float = 0.7, s: float = 30.0,
                   resolution_deg: float = 0.1) -> pd.DataFrame:
    """For each λ, the angle φ* (degrees from centre a) minimising each loss, and the loss there.

    Searched on ``[0°, delta_deg]``, the arc between the two centres. Columns: ``lam``, ``loss``, ``phi``,
    ``value``."""
    phi = np.arange(0.0, delta_deg + resolution_deg / 2, resolution_deg)
    rows = []
    for lam in lams:
        for name, values in mixed_clip_losses(float(lam), phi, delta_deg=delta_deg, m=m, s=s).items():
            best = int(np.argmin(values))
            rows.append({"lam": float(lam), "loss": name, "phi": float(phi[best]), "value": float(values[best])})
    return pd.DataFrame(rows)
