"""Anomaly scores: higher means more anomalous. One score per clip, computed from its whole 10-s embedding.

The original score of both models (STgram-MFN repository, ``trainer.py`` test; Noisy-ArcMix repository,
``eval.py``) is the ArcFace cross-entropy of the clip against its own
machine ID, with the margin on that ID: −log softmax(z)[y], z = ArcFace(f, y). The alternatives drop the margin
(CE of s·cos θ) or use the angle to the ID's class centre alone (1 − cos θ_y). No frame averaging is done.

:data:`SCORES` maps names to functions called as ``fn(logits=(B, K), cosine=(B, K), labels=(B,)) -> (B,)``
(each uses what it needs; ``logits = head(f, y)``, ``cosine = head.cosine(f)``), so the evaluation loops over
them. ``margin_free`` there uses the originals' s = 30.
"""
from __future__ import annotations

from collections.abc import Callable

import torch
import torch.nn.functional as F


def anomaly_score(logits: torch.Tensor, labels: torch.Tensor) -> torch.Tensor:
    """Per-clip cross-entropy −log softmax(z)[y] of logits against the true ID. ``(B, K), (B,) -> (B,)``."""
    return F.cross_entropy(logits, labels, reduction="none")


def margin_free_score(cosine: torch.Tensor, labels: torch.Tensor, *, s: float = 30.0) -> torch.Tensor:
    """Margin-free score: log-odds against the true ID, logsumexp_{j≠y}(s·cos θ_j) − s·cos θ_y. ``(B, K) -> (B,)``.

    The cross-entropy of s·cos θ is softplus of this, so both rank clips identically; the log-odds form does not
    saturate at 0 in float32 when a trained model is very sure of the ID (logit gaps of up to 2s = 60).
    """
    z = s * cosine
    true = F.one_hot(labels.long(), z.shape[1]).bool()
    return torch.logsumexp(z.masked_fill(true, float("-inf")), dim=1) - z[true]


def _true_cosine(cosine: torch.Tensor, labels: torch.Tensor) -> torch.Tensor:
    return cosine.gather(1, labels.long().view(-1, 1)).squeeze(1)  # (B, K) -> (B,)


def cosine_distance_score(cosine: torch.Tensor, labels: torch.Tensor) -> torch.Tensor:
    """1 − cos θ_y, the cosine distance to the true ID's class centre. ``(B, K), (B,) -> (B,)``."""
    return 1.0 - _true_cosine(cosine, labels)


def angle_to_centre(cosine: torch.Tensor, labels: torch.Tensor) -> torch.Tensor:
    """θ_y in degrees, the angle between the embedding and its ID's class centre. ``(B, K), (B,) -> (B,)``."""
    return torch.rad2deg(torch.acos(_true_cosine(cosine, labels).clamp(-1.0, 1.0)))


# ------------------------------------------------------------------------------------------ registry
def _arcface_ce(*, logits: torch.Tensor, cosine: torch.Tensor | None, labels: torch.Tensor) -> torch.Tensor:
    return anomaly_score(logits, labels)


def _margin_free(*, logits: torch.Tensor | None, cosine: torch.Tensor, labels: torch.Tensor) -> torch.Tensor:
    return margin_free_score(cosine, labels)


def _cosine_distance(*, logits: torch.Tensor | None, cosine: torch.Tensor, labels: torch.Tensor) -> torch.Tensor:
    return cosine_distance_score(cosine, labels)


SCORES: dict[str, Callable[..., torch.Tensor]] = {
    "arcface_ce": _arcface_ce,  # the original: logits = head(f, y), margin on the true ID
    "margin_free": _margin_free,  # log-odds of 30·cos θ against the true ID (no margin)
    "cosine_distance": _cosine_distance,  # 1 − cos θ_y
}
