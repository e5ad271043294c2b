"""Training criteria: cross-entropy, ArcFace, and the two mixup variants ArcMix and Noisy-ArcMix.

Mixup (Zhang et al., 2018) as in Noisy-ArcMix (its repository's ``utils.py`` and ``trainer.py``): one
λ ~ Beta(α, α) per batch (α = 0.5) and one permutation π; the raw waves *and* the log-mels are mixed with the same
λ and π, x̃ = λ·x + (1 − λ)·x[π], and the targets become y_a = y, y_b = y[π]. With f the embedding of the mixed
clip and ArcFace(f, y) the logits that carry the margin on class y:

* ArcFace:       L = CE(ArcFace(f, y), y)
* ArcMix:        L = λ·CE(ArcFace(f, y_a), y_a) + (1 − λ)·CE(ArcFace(f, y_b), y_b)      (consistent margins)
* Noisy-ArcMix:  L = λ·CE(z, y_a) + (1 − λ)·CE(z, y_b),  z = ArcFace(f, y_a)             (margin on y_a only)

Each criterion takes the head, so the same call works for ``ArcFaceHead`` and ``SoftmaxHead``. :data:`LOSSES`
maps names to :class:`LossSpec` entries; ``spec.uses_mixup`` tells the trainer whether to mix the batch.
"""
from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from asdlib.nn.heads import arcface_logits


# ---------------------------------------------------------------------------------------------- mixup
def sample_mixup(batch_size: int, *, alpha: float = 0.5,
                 rng: np.random.Generator | torch.Generator | None = None) -> tuple[float, torch.Tensor]:
    """Draw λ ~ Beta(α, α) and a permutation π of ``batch_size`` items: ``-> (lam, perm (B,) int64, CPU)``.

    ``alpha <= 0`` means no mixing: λ = 1 and π = identity. ``rng`` (a numpy or CPU torch Generator) makes the
    draw reproducible; with ``None`` the global torch RNG is used, so ``torch.manual_seed`` controls it.
    """
    if alpha <= 0:
        return 1.0, torch.arange(batch_size)
    if isinstance(rng, np.random.Generator):
        return float(rng.beta(alpha, alpha)), torch.from_numpy(rng.permutation(batch_size))
    seed = int(torch.randint(0, 2**62, (1,), generator=rng))  # torch has no seedable Beta sampler
    lam = float(np.random.default_rng(seed).beta(alpha, alpha))
    return lam, torch.randperm(batch_size, generator=rng)


def mixup(*tensors: torch.Tensor, lam: float, perm: torch.Tensor) -> tuple[torch.Tensor, ...]:
    """λ·x + (1 − λ)·x[π] for each tensor, all with the same λ and π (mixed along dim 0).

    ``(B, ...) -> (B, ...)``, e.g. ``wave, mel = mixup(wave, mel, lam=lam, perm=perm)`` for the waves ``(B, L)``
    and the log-mels ``(B, F, T)``. Always returns a tuple, one entry per input.
    """
    return tuple(lam * x + (1.0 - lam) * x[perm.to(x.device)] for x in tensors)


# ------------------------------------------------------------------------------ criteria on logits
def mixed_cross_entropy(logits_a: torch.Tensor, logits_b: torch.Tensor, y_a: torch.Tensor, y_b: torch.Tensor,
                        lam: float, *, reduction: str = "mean") -> torch.Tensor:
    """λ·CE(z_a, y_a) + (1 − λ)·CE(z_b, y_b), batch-mean CE. ``(B, K), (B, K), (B,), (B,) -> ()``
    (``reduction="none"``: one value per clip, ``(B,)``)."""
    return (lam * F.cross_entropy(logits_a, y_a, reduction=reduction)
            + (1.0 - lam) * F.cross_entropy(logits_b, y_b, reduction=reduction))


def arcmix_from_cosine(cosine: torch.Tensor, y_a: torch.Tensor, y_b: torch.Tensor, lam: float, *,
                       m: float = 0.7, s: float = 30.0, reduction: str = "mean") -> torch.Tensor:
    """ArcMix on precomputed cos θ: each term has the margin on its own target. ``(B, K), (B,), (B,) -> ()``."""
    z_a = arcface_logits(cosine, y_a, m=m, s=s)
    z_b = arcface_logits(cosine, y_b, m=m, s=s)
    return mixed_cross_entropy(z_a, z_b, y_a, y_b, lam, reduction=reduction)


def noisy_arcmix_from_cosine(cosine: torch.Tensor, y_a: torch.Tensor, y_b: torch.Tensor, lam: float, *,
                             m: float = 0.7, s: float = 30.0, reduction: str = "mean") -> torch.Tensor:
    """Noisy-ArcMix on precomputed cos θ: one set of logits, margin on y_a. ``(B, K), (B,), (B,) -> ()``."""
    z = arcface_logits(cosine, y_a, m=m, s=s)
    return mixed_cross_entropy(z, z, y_a, y_b, lam, reduction=reduction)


# --------------------------------------------------------------------------------- criteria on a head
def ce_loss(head: nn.Module, embedding: torch.Tensor, labels: torch.Tensor) -> torch.Tensor:
    """CE of the head's label-free logits: ``fc(f)`` for ``SoftmaxHead``, ``s·cos θ`` for ``ArcFaceHead``.

    ``(B, D), (B,) -> ()``. The cross-entropy baseline, panel (a) of the angle-distribution
    figure in the Noisy-ArcMix paper and README.
    """
    return F.cross_entropy(head(embedding), labels)


def mixup_ce_loss(head: nn.Module, embedding: torch.Tensor, y_a: torch.Tensor, y_b: torch.Tensor,
                  lam: float) -> torch.Tensor:
    """Classic mixup CE, λ·CE(z, y_a) + (1 − λ)·CE(z, y_b) with label-free logits z. ``(B, D), (B,), (B,) -> ()``."""
    z = head(embedding)
    return mixed_cross_entropy(z, z, y_a, y_b, lam)


def arcface_loss(head: nn.Module, embedding: torch.Tensor, labels: torch.Tensor) -> torch.Tensor:
    """CE(ArcFace(f, y), y), the STgram-MFN criterion (its ``loss.py``). ``(B, D), (B,) -> ()``."""
    return F.cross_entropy(head(embedding, labels), labels)


def arcmix_loss(head: nn.Module, embedding: torch.Tensor, y_a: torch.Tensor, y_b: torch.Tensor,
                lam: float) -> torch.Tensor:
    """ArcMix: λ·CE(ArcFace(f, y_a), y_a) + (1 − λ)·CE(ArcFace(f, y_b), y_b). ``(B, D), (B,), (B,) -> ()``."""
    return mixed_cross_entropy(head(embedding, y_a), head(embedding, y_b), y_a, y_b, lam)


def noisy_arcmix_loss(head: nn.Module, embedding: torch.Tensor, y_a: torch.Tensor, y_b: torch.Tensor,
                      lam: float) -> torch.Tensor:
    """Noisy-ArcMix: λ·CE(z, y_a) + (1 − λ)·CE(z, y_b), z = ArcFace(f, y_a). ``(B, D), (B,), (B,) -> ()``.

    The y_b term sees no margin on its target, while y_a's logit is lowered by the margin: the "inconsistent
    margin" of the paper. No noise is sampled; λ ~ Beta(0.5, 0.5) puts the margin on the dominant clip half the time.
    """
    z = head(embedding, y_a)
    return mixed_cross_entropy(z, z, y_a, y_b, lam)


# ------------------------------------------------------------------------------------------ registry
@dataclass(frozen=True)
class LossSpec:
    """A named criterion. ``fn(head, f, y)`` if not ``uses_mixup``, else ``fn(head, f, y_a, y_b, lam)``."""

    name: str
    uses_mixup: bool
    fn: Callable[..., torch.Tensor]

    def __call__(self, head: nn.Module, embedding: torch.Tensor, y_a: torch.Tensor,
                 y_b: torch.Tensor | None = None, lam: float = 1.0) -> torch.Tensor:
        """One call for every loss: ``(B, D), (B,)[, (B,), λ] -> ()``; a plain loss refuses a mixed batch."""
        if self.uses_mixup:
            return self.fn(head, embedding, y_a, y_a if y_b is None else y_b, lam)
        if lam != 1.0:
            raise ValueError(f"loss {self.name!r} does not use mixup but got lam={lam}; pass lam=1.0")
        return self.fn(head, embedding, y_a)


LOSSES: dict[str, LossSpec] = {spec.name: spec for spec in (
    LossSpec("ce", False, ce_loss),
    LossSpec("mixup_ce", True, mixup_ce_loss),
    LossSpec("arcface", False, arcface_loss),
    LossSpec("arcmix", True, arcmix_loss),
    LossSpec("noisy_arcmix", True, noisy_arcmix_loss),
)}


def get_loss(name: str) -> LossSpec:
    """The :class:`LossSpec` called ``name``; a clear error lists the known names."""
    try:
        return LOSSES[name]
    except KeyError:
        raise ValueError(f"unknown loss {name!r}; expected one of {', '.join(LOSSES)}") from None
