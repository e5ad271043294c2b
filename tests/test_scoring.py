"""Anomaly scores against the original code's fixtures, and their contracts."""
from __future__ import annotations

import pytest
import torch

from asdlib.nn.heads import ArcFaceHead, SoftmaxHead, arcface_logits
from asdlib.evaluation.scoring import (
    SCORES,
    angle_to_centre,
    anomaly_score,
    cosine_distance_score,
    margin_free_score,
)

FIXTURES = ["stgram_mfn_paper", "stgram_mfn", "stsasgram_mfn", "tastgram_mfn"]


@pytest.fixture(scope="module", params=FIXTURES)
def reference(request, reference_dir):
    return torch.load(reference_dir / f"{request.param}_reference.pt", weights_only=True)


def test_score_matches_original(reference):
    assert reference["labels"].tolist() == [0, 17, 40, 23]
    score = anomaly_score(reference["logits"], reference["labels"])
    assert score.shape == (4,) and score.dtype == torch.float32
    torch.testing.assert_close(score, reference["score"], rtol=1e-4, atol=1e-6)  # float32 CE of p ≈ 1


def test_registry_on_a_head_matches_original(reference):
    cfg, y = reference["config"], reference["labels"]
    head = ArcFaceHead(128, cfg["num_classes"], m=cfg["m"], s=cfg["s"])
    head.load_state_dict({"weight": reference["state_dict"]["arcface.weight"]})
    with torch.no_grad():
        logits, cosine = head(reference["embedding"], y), head.cosine(reference["embedding"])
    scores = {name: fn(logits=logits, cosine=cosine, labels=y) for name, fn in SCORES.items()}
    torch.testing.assert_close(scores["arcface_ce"], reference["score"], rtol=1e-3, atol=1e-5)
    torch.testing.assert_close(scores["margin_free"], margin_free_score(cosine, y, s=cfg["s"]))
    torch.testing.assert_close(scores["cosine_distance"], cosine_distance_score(cosine, y))
    torch.testing.assert_close(SCORES["arcface_ce"](logits=reference["logits"], cosine=None, labels=y),
                               reference["score"], rtol=1e-4, atol=1e-6)


@pytest.mark.parametrize("name", ["stgram_mfn", "tastgram_mfn"])
def test_cosine_fixtures(reference_dir, name):
    ref = torch.load(reference_dir / f"{name}_reference.pt", weights_only=True)
    cosine, y = ref["cosine"], ref["labels"]
    expected = 1.0 - cosine[torch.arange(4), y]
    torch.testing.assert_close(cosine_distance_score(cosine, y), expected)
    degrees = angle_to_centre(cosine, y)
    torch.testing.assert_close(torch.cos(torch.deg2rad(degrees)), cosine[torch.arange(4), y], atol=1e-5, rtol=0)
    # the fixture logits are the ArcFace logits of the fixture cosines
    torch.testing.assert_close(arcface_logits(cosine, y, m=ref["config"]["m"], s=ref["config"]["s"]),
                               ref["logits"], rtol=1e-4, atol=1e-4)


def test_margin_free_is_at_most_the_original():
    g = torch.Generator().manual_seed(0)
    cosine = torch.rand(64, 41, generator=g) * 2 - 1
    y = torch.randint(0, 41, (64,), generator=g)
    original = anomaly_score(arcface_logits(cosine, y), y)
    free = torch.nn.functional.softplus(margin_free_score(cosine, y))  # log-odds -> cross-entropy
    assert (free <= original + 1e-6).all()  # the margin lowers only the true logit
    torch.testing.assert_close(anomaly_score(arcface_logits(cosine, y, m=0.0), y), free)


def test_margin_free_does_not_saturate_when_the_model_is_sure():
    cosine = torch.full((2, 41), -0.9)
    cosine[0, 3], cosine[1, 3] = 0.99, 0.95  # both very sure of ID 3; clip 1 slightly less
    y = torch.tensor([3, 3])
    free = margin_free_score(cosine, y)
    assert free[0] < free[1]  # the cross-entropy would round both to 0 in float32


def test_shapes_dtype_and_monotonic_angle():
    cosine = torch.tensor([[1.0, 0.0], [0.0, 1.0], [-1.0, 0.5]], dtype=torch.float64)
    y = torch.tensor([0, 0, 0])
    dist, angle = cosine_distance_score(cosine, y), angle_to_centre(cosine, y)
    assert dist.shape == (3,) and dist.dtype == torch.float64
    torch.testing.assert_close(dist, torch.tensor([0.0, 1.0, 2.0], dtype=torch.float64))
    torch.testing.assert_close(angle, torch.tensor([0.0, 90.0, 180.0], dtype=torch.float64))
    assert angle_to_centre(torch.tensor([[1.0 + 1e-7]]), torch.tensor([0])).isfinite().all()


@pytest.mark.parametrize("head_cls", [ArcFaceHead, SoftmaxHead])
def test_every_score_on_every_head(head_cls):
    g = torch.Generator().manual_seed(1)
    f, y = torch.randn(5, 128, generator=g), torch.randint(0, 41, (5,), generator=g)
    head = head_cls(128, 41)
    assert set(SCORES) == {"arcface_ce", "margin_free", "cosine_distance"}
    for fn in SCORES.values():
        score = fn(logits=head(f, y), cosine=head.cosine(f), labels=y)
        assert score.shape == (5,) and torch.isfinite(score).all()
