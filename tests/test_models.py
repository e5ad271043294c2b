"""The model contract, parametrised over every model: shapes at any length, maps, training, bad inputs."""
from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F

from asdlib.nn.heads import ArcFaceHead, SoftmaxHead
from asdlib.nn.mobilefacenet import gdc_kernel
from asdlib.nn.models import MODEL_NAMES, build_model, count_parameters, summary, summary_text

MAP_KEYS = {"stgram_mfn_paper": {"sgram", "tgram"}, "stgram_mfn": {"sgram", "tgram"},
            "stsasgram_mfn": {"sgram", "tgram", "sasgram", "attention"},
            "tastgram_mfn": {"sgram", "tgram", "tagram"}}


def waves(model, batch: int = 3, seed: int = 0) -> torch.Tensor:
    g = torch.Generator().manual_seed(seed)
    return 0.1 * torch.randn(batch, model.num_samples, generator=g)


@pytest.fixture(scope="module", params=MODEL_NAMES)
def model2s(request):
    torch.manual_seed(0)
    return build_model(request.param, seconds=2.0)


@pytest.mark.parametrize("seconds,frames,kernel", [(2.0, 63, (8, 4)), (4.0, 126, (8, 8))])
@pytest.mark.parametrize("name", MODEL_NAMES)
def test_forward_shapes(name, seconds, frames, kernel):
    model = build_model(name, seconds=seconds, num_classes=41)
    with torch.no_grad():
        logits, embedding = model(waves(model, batch=2), torch.tensor([0, 40]))
    assert logits.shape == (2, 41) and embedding.shape == (2, 128)
    assert model.num_frames == frames and model.mobilefacenet.gdc.conv.kernel_size == kernel


def test_ten_seconds_cheapest_path():
    model = build_model("stgram_mfn").eval()
    assert model.num_frames == 313 and model.mobilefacenet.gdc.conv.kernel_size == (8, 20)
    with torch.no_grad():
        logits, embedding = model(waves(model, batch=1))
    assert logits.shape == (1, 41) and embedding.shape == (1, 128)


@pytest.mark.parametrize("table", ["paper", "dcase2022"])
def test_gdc_kernel_at_313_frames(table):
    assert gdc_kernel((128, 313), table) == (8, 20)


def test_feature_maps(model2s):
    wave = waves(model2s)
    maps = model2s.feature_maps(wave)
    name = model2s.config["name"]
    assert set(maps) == MAP_KEYS[name] | {"input"}
    for key in MAP_KEYS[name] - {"attention"}:
        assert maps[key].shape == (3, 128, 63), key
    assert maps["input"].shape == (3, len(model2s.channels), 128, 63)
    if "attention" in maps:
        assert maps["attention"].shape == (3, 16, 128, 128)
    torch.testing.assert_close(maps["sgram"], model2s.log_mel(wave))
    assert model2s.embed(wave).shape == (3, 128)


def test_mel_override(model2s):
    """``mel=`` replaces the log-mel (and what is computed from it); Tgram still comes from the wave."""
    model2s.eval()
    wave = waves(model2s)
    with torch.no_grad():
        plain = model2s.feature_maps(wave)
        same = model2s.feature_maps(wave, mel=model2s.log_mel(wave))
        other_mel = model2s.log_mel(waves(model2s, seed=1))
        mixed = model2s.feature_maps(wave, mel=other_mel.unsqueeze(1))  # (B, 1, F, T) is accepted too
    for key in plain:
        torch.testing.assert_close(same[key], plain[key])
    assert torch.equal(mixed["sgram"], other_mel) and torch.equal(mixed["tgram"], plain["tgram"])
    for key in {"tagram", "sasgram"} & set(plain):
        assert not torch.allclose(mixed[key], plain[key])
    with pytest.raises(ValueError, match="mel must be"):
        model2s.feature_maps(wave, mel=other_mel[:, :, :10])
    with pytest.raises(ValueError, match="NaN or Inf"):
        model2s.feature_maps(wave, mel=torch.full_like(other_mel, float("-inf")))


def test_training_steps_decrease_arcface_loss(model2s):
    torch.manual_seed(0)
    model = build_model(model2s.config["name"], seconds=1.0).train()  # 1-s clips: the cheapest that trains
    wave, labels = waves(model, batch=4), torch.tensor([0, 17, 40, 23])
    optimizer = torch.optim.Adam(model.parameters(), lr=1e-3)
    losses = []
    for _ in range(3):
        logits, _ = model(wave, labels)
        loss = F.cross_entropy(logits, labels)
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
        losses.append(loss.item())
    assert losses[-1] < losses[0], losses


@pytest.mark.parametrize("bad,match", [
    (torch.zeros(32000), r"wave\[None\]"),
    (torch.zeros(2, 2, 32000), "stereo.*mix to mono"),
    (torch.zeros(2, 3, 32000), r"\(B, L\) or \(B, 1, L\)"),
    (torch.zeros(1, 1, 1, 32000), r"\(B, L\) or \(B, 1, L\)"),
    (torch.zeros(2, 16000), r"expected 32000 samples.*seconds=1"),
    (torch.zeros(2, 300), "expected 32000 samples"),
    (torch.zeros(2, 64000), "expected 32000 samples"),
    (torch.zeros(2, 32000, dtype=torch.int16), "floating-point"),
    (torch.full((2, 32000), float("nan")), "NaN or Inf"),
    ([0.0] * 32000, "floating-point torch.Tensor"),
])
def test_bad_inputs(bad, match):
    model = build_model("tastgram_mfn", seconds=2.0)
    with pytest.raises(ValueError, match=match):
        model(bad)


def test_accepts_channel_dim_and_rejects_training_batch_of_one():
    model = build_model("stgram_mfn", seconds=2.0)
    wave = waves(model, batch=2)
    model.eval()
    with torch.no_grad():
        torch.testing.assert_close(model.embed(wave.unsqueeze(1)), model.embed(wave))
    model.train()
    with pytest.raises(ValueError, match="model.eval"):
        model(wave[:1])


def test_bad_build_arguments():
    with pytest.raises(ValueError, match="stgram_mfn_paper"):
        build_model("stgram")
    with pytest.raises(ValueError, match="arcface"):
        build_model("stgram_mfn", head="cosface")
    with pytest.raises(ValueError, match="at least"):
        build_model("stgram_mfn", seconds=0.01)


def test_config_rebuilds_the_model(model2s):
    twin = build_model(**model2s.config)
    twin.load_state_dict(model2s.state_dict())
    assert twin.config == model2s.config and count_parameters(twin) == count_parameters(model2s)
    assert isinstance(model2s.head, ArcFaceHead)


def test_softmax_head():
    model = build_model("tastgram_mfn", seconds=2.0, head="softmax", num_classes=5)
    assert isinstance(model.head, SoftmaxHead) and model.config["head"] == "softmax"
    wave = waves(model)
    model.eval()
    with torch.no_grad():
        with_labels, embedding = model(wave, torch.tensor([0, 1, 4]))
        without, _ = model(wave)
    assert with_labels.shape == (3, 5) and torch.equal(with_labels, without)
    assert model.head.cosine(embedding).shape == (3, 5)
    assert build_model(**model.config).config == model.config


def test_summary_sums_to_parameter_count(model2s):
    model2s.train()
    table = summary(model2s)
    assert list(table.columns) == ["module", "type", "output_shape", "params"]
    assert table["params"].sum() == count_parameters(model2s)
    assert table.set_index("module").loc["mobilefacenet.fc_out", "output_shape"] == "unused"
    coarse = summary(model2s, depth=2)
    assert coarse["params"].sum() == count_parameters(model2s)
    gdc = coarse.set_index("module").loc["mobilefacenet.gdc"]
    assert gdc["output_shape"] == "(1, 512, 1, 1)"
    assert f"{count_parameters(model2s):,} parameters" in summary_text(model2s, depth=1)
    assert model2s.training  # summary restores the mode


def test_summary_for_another_length():
    model = build_model("stgram_mfn", seconds=2.0)
    table = summary(model, seconds=4.0, depth=1)
    assert table.set_index("module").loc["sgram", "output_shape"] == "(1, 128, 126)"
