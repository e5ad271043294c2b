"""asdlib against the original code: import each fixture's weights, run its clips, match every saved tensor.

The fixtures (``../shared/reference``, see its README) were produced by the authors' code. Labels and logit
columns are in the original class order of each fixture and are mapped to asdlib's order ("stgram_paper").
"""
from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F

from asdlib.training.checkpoints import ORIGINAL_LABEL_ORDERS, import_original
from asdlib.data.dcase import class_permutation
from asdlib.nn.models import MODEL_NAMES, count_parameters

PARAMS = {"stgram_mfn_paper": 1_350_335, "stgram_mfn": 1_161_279, "stsasgram_mfn": 3_262_860,
          "tastgram_mfn": 1_161_855}
MEL_DB_ATOL, MAP_ATOL, RTOL = 1e-3, 1e-4, 1e-4


def assert_rel(actual: torch.Tensor, expected: torch.Tensor, rtol: float = RTOL) -> None:
    """max |actual - expected| <= rtol · max |expected| (relative to the tensor's scale)."""
    assert actual.shape == expected.shape
    err, scale = (actual - expected).abs().max().item(), expected.abs().max().item()
    assert err <= rtol * scale, f"max abs error {err:.3g} > {rtol:g} × {scale:.3g}"


def assert_abs(actual: torch.Tensor, expected: torch.Tensor, atol: float) -> None:
    assert actual.shape == expected.shape
    err = (actual - expected).abs().max().item()
    assert err <= atol, f"max abs error {err:.3g} > {atol:g}"


@pytest.fixture(scope="module", params=MODEL_NAMES)
def run(request, reference_dir):
    """(name, fixture dict, imported model, our outputs) for one fixture."""
    name = request.param
    ref = torch.load(reference_dir / f"{name}_reference.pt", weights_only=True)
    model = import_original(ref["state_dict"], name)
    to_ours = torch.argsort(torch.tensor(class_permutation(ORIGINAL_LABEL_ORDERS[name])))  # original -> ours
    labels = to_ours[ref["labels"]]
    with torch.no_grad():
        maps = model.feature_maps(ref["wav"])
        logits, embedding = model(ref["wav"], labels)
        out = {"maps": maps, "embedding": embedding,  # logits / cosine columns back in the original order:
               "logits": logits[:, to_ours], "cosine": model.head.cosine(embedding)[:, to_ours],
               "score": F.cross_entropy(logits, labels, reduction="none")}
    return name, ref, model, out


def test_parameter_count(run):
    name, _, model, _ = run
    assert count_parameters(model) == PARAMS[name]


def test_front_ends(run):
    _, ref, _, out = run
    assert_abs(out["maps"]["sgram"], ref["mel"].reshape(out["maps"]["sgram"].shape), MEL_DB_ATOL)
    assert_abs(out["maps"]["tgram"], ref["tgram"], MAP_ATOL)


def test_attention_maps(run):
    _, ref, _, out = run
    if "tagram" in ref:  # a gated dB map: same tolerance as the log-mel it comes from
        assert_abs(out["maps"]["tagram"], ref["tagram"], MEL_DB_ATOL)
    if "sasgram" in ref:
        assert_abs(out["maps"]["sasgram"], ref["sasgram"], MAP_ATOL)
        assert_abs(out["maps"]["attention"], ref["last_layer_attention"], MAP_ATOL)


def test_channel_order(run):
    name, _, model, out = run
    maps = out["maps"]
    for c, key in enumerate(model.channels):
        assert torch.equal(maps["input"][:, c], maps[key])
    assert model.channels[:2] == (("sgram", "tgram") if name.startswith("stgram") else ("tgram", "sgram"))


def test_outputs(run):
    _, ref, _, out = run
    assert_rel(out["embedding"], ref["embedding"])
    assert_rel(out["logits"], ref["logits"])
    # The score is −log softmax(logits)[y]: its error is bounded by the logits' error, so it is held to the
    # logits' scale. Relative to itself it cannot be: confident clips score ~0.002, where float32 rounding of
    # logits near s = 30 alone is ~1e-4 relative (seen on AVX-512 CPUs).
    assert_abs(out["score"], ref["score"], atol=RTOL * ref["logits"].abs().max().item())
    if "cosine" in ref:
        assert_rel(out["cosine"], ref["cosine"])


def test_paper_fixture_through_wrappers(reference_dir):
    """The paper-era checkpoint layout: ``clf_state_dict``, DataParallel prefixes, a duplicate ArcFace key."""
    ref = torch.load(reference_dir / "stgram_mfn_paper_reference.pt", weights_only=True)
    wrapped = {"epoch": 10, "clf_state_dict": {f"module.{k}": v for k, v in ref["state_dict"].items()}}
    direct = import_original(ref["state_dict"], "stgram_mfn_paper")
    via_wrapper = import_original(wrapped, "stgram_mfn_paper")
    for (k, a), b in zip(direct.state_dict().items(), via_wrapper.state_dict().values()):
        assert torch.equal(a, b), k
