"""Losses against the Noisy-ArcMix reference values, plus the contracts of mixup, ArcMix and Noisy-ArcMix."""
from __future__ import annotations

import numpy as np
import pytest
import torch
import torch.nn.functional as F

from asdlib.nn.heads import ArcFaceHead, SoftmaxHead, arcface_logits
from asdlib.training.losses import (
    LOSSES,
    LossSpec,
    arcface_loss,
    arcmix_from_cosine,
    arcmix_loss,
    ce_loss,
    get_loss,
    mixup,
    noisy_arcmix_from_cosine,
    noisy_arcmix_loss,
    sample_mixup,
)

B, D, K = 8, 128, 41


@pytest.fixture(scope="module")
def tastgram(reference_dir):
    return torch.load(reference_dir / "tastgram_mfn_reference.pt", weights_only=True)


@pytest.fixture(scope="module")
def reference_head(tastgram) -> ArcFaceHead:
    cfg = tastgram["config"]
    head = ArcFaceHead(D, cfg["num_classes"], m=cfg["m"], s=cfg["s"])
    head.load_state_dict({"weight": tastgram["state_dict"]["arcface.weight"]})
    return head.eval()


def _random_batch(seed: int = 0):
    g = torch.Generator().manual_seed(seed)
    return torch.randn(B, D, generator=g), torch.randint(0, K, (B,), generator=g)


# ------------------------------------------------------------------------------ reference values
@pytest.mark.parametrize("name, key", [("noisy_arcmix", "noisy_arcmix_loss"), ("arcmix", "arcmix_loss")])
def test_mix_losses_match_noisy_arcmix_reference(tastgram, reference_head, name, key):
    mix, y_a = tastgram["mix"], tastgram["labels"]
    y_b = y_a[mix["permutation"]]
    assert torch.equal(y_b, mix["y_b"])
    with torch.no_grad():
        loss = get_loss(name)(reference_head, tastgram["embedding"], y_a, y_b, mix["lam"])
    torch.testing.assert_close(loss, mix[key], rtol=1e-5, atol=0)


def test_cosine_variants_match_reference(tastgram):
    mix, y_a, cfg = tastgram["mix"], tastgram["labels"], tastgram["config"]
    cosine, y_b = tastgram["cosine"], tastgram["mix"]["y_b"]
    torch.testing.assert_close(noisy_arcmix_from_cosine(cosine, y_a, y_b, mix["lam"], m=cfg["m"], s=cfg["s"]),
                               mix["noisy_arcmix_loss"], rtol=1e-5, atol=0)
    torch.testing.assert_close(arcmix_from_cosine(cosine, y_a, y_b, mix["lam"], m=cfg["m"], s=cfg["s"]),
                               mix["arcmix_loss"], rtol=1e-5, atol=0)


def test_arcface_loss_is_mean_reference_score(tastgram, reference_head):
    with torch.no_grad():
        loss = arcface_loss(reference_head, tastgram["embedding"], tastgram["labels"])
    torch.testing.assert_close(loss, tastgram["score"].mean(), rtol=1e-4, atol=1e-6)


# ------------------------------------------------------------------------------ contracts
def test_margin_zero_arcface_is_scaled_cosine_ce():
    f, y = _random_batch()
    head = ArcFaceHead(D, K, m=0.0, s=30.0)
    expected = F.cross_entropy(30.0 * head.cosine(f), y)
    torch.testing.assert_close(arcface_loss(head, f, y), expected)
    torch.testing.assert_close(ce_loss(head, f, y), expected)  # label-free logits of ArcFaceHead = s·cos θ


@pytest.mark.parametrize("name", ["arcmix", "noisy_arcmix"])
def test_lambda_one_is_plain_arcface(name):
    f, y = _random_batch()
    y_b = y[torch.randperm(B, generator=torch.Generator().manual_seed(1))]
    head = ArcFaceHead(D, K)
    torch.testing.assert_close(LOSSES[name](head, f, y, y_b, 1.0), arcface_loss(head, f, y))


def test_identity_permutation_makes_mix_losses_coincide():
    f, y = _random_batch()
    head = ArcFaceHead(D, K)
    lam, perm = sample_mixup(B, alpha=0.0)
    assert lam == 1.0 and torch.equal(perm, torch.arange(B))
    for lam in (0.3, 0.8):
        torch.testing.assert_close(arcmix_loss(head, f, y, y, lam), noisy_arcmix_loss(head, f, y, y, lam))
        torch.testing.assert_close(noisy_arcmix_loss(head, f, y, y, lam), arcface_loss(head, f, y))


def test_noisy_arcmix_differs_from_arcmix_when_targets_differ():
    f, y = _random_batch()
    head = ArcFaceHead(D, K)
    y_b = (y + 1) % K
    assert not torch.allclose(arcmix_loss(head, f, y, y_b, 0.4), noisy_arcmix_loss(head, f, y, y_b, 0.4))


def test_noisy_arcmix_by_hand():
    f, y = _random_batch()
    head = ArcFaceHead(D, K)
    y_b, lam = y.flip(0), 0.3
    z = arcface_logits(head.cosine(f), y, m=head.m, s=head.s)
    expected = lam * F.cross_entropy(z, y) + (1 - lam) * F.cross_entropy(z, y_b)
    torch.testing.assert_close(noisy_arcmix_loss(head, f, y, y_b, lam), expected)


@pytest.mark.parametrize("name", sorted(LOSSES))
@pytest.mark.parametrize("head_cls", [ArcFaceHead, SoftmaxHead])
def test_gradients_flow(name, head_cls):
    f, y = _random_batch()
    f.requires_grad_(True)
    head = head_cls(D, K)
    spec = LOSSES[name]
    loss = spec(head, f, y, y.flip(0), 0.3) if spec.uses_mixup else spec(head, f, y)
    loss.backward()
    assert loss.ndim == 0 and torch.isfinite(loss)
    for grad in (f.grad, next(head.parameters()).grad):
        assert grad is not None and torch.isfinite(grad).all() and grad.abs().sum() > 0


def test_mixup_uses_same_lambda_and_permutation_for_waves_and_mels():
    g = torch.Generator().manual_seed(0)
    wave, mel = torch.randn(B, 1600, generator=g), torch.randn(B, 128, 5, generator=g)
    lam, perm = sample_mixup(B, alpha=0.5, rng=torch.Generator().manual_seed(3))
    mixed_wave, mixed_mel = mixup(wave, mel, lam=lam, perm=perm)
    assert mixed_wave.shape == wave.shape and mixed_mel.shape == mel.shape
    for i in range(B):
        j = int(perm[i])
        torch.testing.assert_close(mixed_wave[i], lam * wave[i] + (1 - lam) * wave[j])
        torch.testing.assert_close(mixed_mel[i], lam * mel[i] + (1 - lam) * mel[j])
    assert mixup(wave, lam=1.0, perm=perm)[0].equal(wave)


@pytest.mark.parametrize("make", [lambda: torch.Generator().manual_seed(7), lambda: np.random.default_rng(7)])
def test_seeded_sampling_is_reproducible(make):
    draws = [sample_mixup(16, alpha=0.5, rng=make()) for _ in range(2)]
    assert draws[0][0] == draws[1][0] and torch.equal(draws[0][1], draws[1][1])
    lam, perm = draws[0]
    assert 0.0 <= lam <= 1.0 and sorted(perm.tolist()) == list(range(16))


def test_global_seed_controls_default_sampling():
    torch.manual_seed(11)
    first = sample_mixup(16)
    torch.manual_seed(11)
    second = sample_mixup(16)
    assert first[0] == second[0] and torch.equal(first[1], second[1])


def test_beta_half_is_u_shaped():
    rng = np.random.default_rng(0)
    lams = np.array([sample_mixup(4, alpha=0.5, rng=rng)[0] for _ in range(2000)])
    assert abs(lams.mean() - 0.5) < 0.03  # Beta(0.5, 0.5): symmetric, mass near 0 and 1
    assert ((lams < 0.1) | (lams > 0.9)).mean() > 0.35


def test_registry():
    assert {"ce", "arcface", "arcmix", "noisy_arcmix"} <= set(LOSSES)
    assert all(isinstance(s, LossSpec) and s.name == n for n, s in LOSSES.items())
    assert [n for n, s in LOSSES.items() if s.uses_mixup] == ["mixup_ce", "arcmix", "noisy_arcmix"]
    with pytest.raises(ValueError, match="unknown loss 'arcmixx'.*noisy_arcmix"):
        get_loss("arcmixx")


def test_plain_loss_refuses_a_mixed_batch():
    f, y = _random_batch()
    with pytest.raises(ValueError, match="does not use mixup"):
        LOSSES["arcface"](ArcFaceHead(D, K), f, y, y.flip(0), 0.3)
