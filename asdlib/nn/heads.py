"""Classification heads on the 128-d embedding: ArcFace (additive angular margin) and a plain softmax head.

ArcFace (Deng et al., 2019), as in ``ArcMarginProduct`` of STgram-MFN's ``net.py`` and Noisy-ArcMix's
``losses.py``: with x̂ and Ŵ_j L2-normalised, cos θ_j = ⟨x̂, Ŵ_j⟩, and for the target class y the logit becomes
s·cos(θ_y + m) — or, past the point where θ_y + m would wrap around π (cos θ_y ≤ cos(π − m)), the linear
fallback s·(cos θ_y − m·sin m). Every other class keeps s·cos θ_j. The originals use m = 0.7, s = 30.
"""
from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import nn


def cosine_logits(embedding: torch.Tensor, weight: torch.Tensor, *, sub: int = 1) -> torch.Tensor:
    """cos θ between embeddings and class centres: ``(B, D), (K·sub, D) -> (B, K)`` (max over sub-centres)."""
    cosine = F.linear(F.normalize(embedding), F.normalize(weight))  # (B, K·sub)
    if sub > 1:
        cosine = cosine.view(cosine.shape[0], -1, sub).amax(dim=2)  # (B, K, sub) -> (B, K)
    return cosine


def arcface_logits(cosine: torch.Tensor, labels: torch.Tensor, *, m: float = 0.7, s: float = 30.0,
                   easy_margin: bool = False) -> torch.Tensor:
    """ArcFace logits: s·cos(θ_y + m) for the target class, s·cos θ_j otherwise. ``(B, K), (B,) -> (B, K)``."""
    sine = torch.sqrt((1.0 - cosine.pow(2)).clamp(0, 1))
    phi = cosine * math.cos(m) - sine * math.sin(m)  # cos(θ + m)
    if easy_margin:
        phi = torch.where(cosine > 0, phi, cosine)
    else:  # the original threshold branch: keep the target logit monotonic in θ beyond π − m
        phi = torch.where(cosine > math.cos(math.pi - m), phi, cosine - math.sin(math.pi - m) * m)
    one_hot = F.one_hot(labels.long(), cosine.shape[1]).to(cosine.dtype)
    return s * (one_hot * phi + (1.0 - one_hot) * cosine)


class ArcFaceHead(nn.Module):
    """ArcFace head with ``K`` classes (× ``sub`` sub-centres), margin ``m`` and scale ``s``.

    ``forward(embedding, labels)``: ``(B, D), (B,) -> (B, K)`` logits with the margin on ``labels``;
    ``forward(embedding)`` without labels gives the margin-free ``s·cos θ``.
    """

    def __init__(self, in_features: int = 128, num_classes: int = 41, *, m: float = 0.7, s: float = 30.0,
                 sub: int = 1, easy_margin: bool = False):
        super().__init__()
        self.m, self.s, self.sub, self.easy_margin = m, s, sub, easy_margin
        self.weight = nn.Parameter(torch.empty(num_classes * sub, in_features))
        nn.init.xavier_uniform_(self.weight)

    def cosine(self, embedding: torch.Tensor) -> torch.Tensor:
        """``(B, D) -> (B, K)`` cos θ to each class centre."""
        return cosine_logits(embedding, self.weight, sub=self.sub)

    def forward(self, embedding: torch.Tensor, labels: torch.Tensor | None = None) -> torch.Tensor:
        cosine = self.cosine(embedding)
        if labels is None:
            return self.s * cosine
        return arcface_logits(cosine, labels, m=self.m, s=self.s, easy_margin=self.easy_margin)

    def extra_repr(self) -> str:
        k, d = self.weight.shape
        return f"in_features={d}, num_classes={k // self.sub}, m={self.m}, s={self.s}, sub={self.sub}"


class SoftmaxHead(nn.Module):
    """Plain linear classifier for the cross-entropy baseline: ``(B, D) -> (B, K)``; ``labels`` are ignored."""

    def __init__(self, in_features: int = 128, num_classes: int = 41):
        super().__init__()
        self.fc = nn.Linear(in_features, num_classes)

    def cosine(self, embedding: torch.Tensor) -> torch.Tensor:
        """``(B, D) -> (B, K)`` cos θ to each row of the linear layer (the "class centres" of the angle plots)."""
        return cosine_logits(embedding, self.fc.weight)

    def forward(self, embedding: torch.Tensor, labels: torch.Tensor | None = None) -> torch.Tensor:
        return self.fc(embedding)
