"""asdlib checkpoints round-trip; original state dicts (wrapped, prefixed, other class orders) import."""
from __future__ import annotations

import pytest
import torch

from asdlib.training.checkpoints import (
    KEY_RENAMES,
    convert_checkpoint,
    import_original,
    load_checkpoint,
    load_model,
    save_model,
)
from asdlib.data.dcase import class_permutation
from asdlib.nn.models import build_model

SECONDS = 2.0


def trained_like(name: str, **kwargs):
    """A 2-s model with non-trivial BatchNorm statistics, in eval mode."""
    torch.manual_seed(0)
    model = build_model(name, seconds=SECONDS, **kwargs)
    with torch.no_grad():
        model(0.1 * torch.randn(4, model.num_samples))  # train-mode pass updates running stats
    return model.eval()


def outputs(model, seed: int = 1):
    wave = 0.1 * torch.randn(2, model.num_samples, generator=torch.Generator().manual_seed(seed))
    with torch.no_grad():
        return model(wave, torch.tensor([3, 30]))


def to_original(model, order: str = "stgram_paper") -> dict[str, torch.Tensor]:
    """Our state dict under the original key names, class rows in label order ``order`` (import inverted)."""
    perm = torch.tensor(class_permutation("stgram_paper", order))
    state = {}
    for key, value in model.state_dict().items():
        for old, new in KEY_RENAMES:
            if key.startswith(new):
                key = old + key[len(new):]
                break
        if order != "stgram_paper" and key in ("arcface.weight", "mobilefacenet.fc_out.weight",
                                               "mobilefacenet.fc_out.bias"):
            value = value.reshape(len(perm), -1)[perm].reshape(value.shape)  # sub-centres stay together
        state[key] = value.clone()
    return state


def assert_same_weights(a, b):
    sa, sb = a.state_dict(), b.state_dict()
    assert sa.keys() == sb.keys()
    for key in sa:
        assert torch.equal(sa[key], sb[key]), key


def test_save_load_round_trip(tmp_path):
    model = trained_like("tastgram_mfn")
    path = save_model(tmp_path / "sub" / "model.pt", model, extra={"epoch": 3, "history": [{"loss": 1.5}]})
    assert [p.name for p in path.parent.iterdir()] == ["model.pt"]  # no temporary file left behind
    raw = torch.load(path, weights_only=True)
    assert raw["format"] == "asdlib" and raw["version"] == 1 and raw["label_order"] == "stgram_paper"
    assert raw["model"] == model.config and raw["epoch"] == 3
    loaded = load_model(path)
    assert not loaded.training and loaded.config == model.config
    for a, b in zip(outputs(model), outputs(loaded)):
        assert torch.equal(a, b)
    assert load_checkpoint(path)["history"] == [{"loss": 1.5}]


def test_save_overwrites_atomically_and_rejects_reserved_extra(tmp_path):
    model = trained_like("stgram_mfn")
    path = tmp_path / "model.pt"
    save_model(path, model)
    save_model(path, model, extra={"epoch": 2})  # the trainer re-saves its best checkpoint
    assert load_checkpoint(path)["epoch"] == 2
    with pytest.raises(ValueError, match="reserved"):
        save_model(path, model, extra={"state_dict": {}})


def test_load_checkpoint_rejects_other_files(tmp_path):
    path = tmp_path / "original.pth"
    torch.save(to_original(trained_like("stgram_mfn")), path)
    with pytest.raises(ValueError, match="import_original"):
        load_model(path)


@pytest.mark.parametrize("wrap", ["plain", "model", "clf_state_dict", "state_dict"])
def test_import_wrapped_and_prefixed(wrap):
    model = trained_like("stgram_mfn")
    state = {f"module.{k}": v for k, v in to_original(model, "stgram_head").items()}
    src = state if wrap == "plain" else {"epoch": 7, wrap: state, "optimizer": None}
    imported = import_original(src, "stgram_mfn", seconds=SECONDS)
    assert_same_weights(imported, model)
    for a, b in zip(outputs(model), outputs(imported)):
        torch.testing.assert_close(a, b)


@pytest.mark.parametrize("name,order", [("tastgram_mfn", "noisy_arcmix"), ("stsasgram_mfn", "noisy_arcmix"),
                                        ("stgram_mfn", "stgram_head")])
def test_import_permutes_classes(name, order):
    model = trained_like(name)
    original = to_original(model, order)
    assert not torch.equal(original["arcface.weight"], model.head.weight)
    assert_same_weights(import_original(original, name, seconds=SECONDS), model)
    # declaring our own order keeps the rows as they are
    as_is = import_original(original, name, label_order="stgram_paper", seconds=SECONDS)
    assert torch.equal(as_is.head.weight, original["arcface.weight"])


def test_import_paper_duplicate_arcface_key():
    model = trained_like("stgram_mfn_paper")
    state = to_original(model)
    state["mobilefacenet.arcface.weight"] = state["arcface.weight"].clone()
    imported = import_original({"clf_state_dict": state}, "stgram_mfn_paper", seconds=SECONDS)
    assert_same_weights(imported, model)
    state["mobilefacenet.arcface.weight"] += 1.0
    with pytest.raises(ValueError, match="differ"):
        import_original(state, "stgram_mfn_paper", seconds=SECONDS)


def test_import_sub_centre_arcface():
    model = trained_like("stgram_mfn", sub=3)
    imported = import_original(to_original(model, "stgram_head"), "stgram_mfn", seconds=SECONDS)
    assert imported.config["sub"] == 3
    assert_same_weights(imported, model)


def test_wrong_architecture_names_keys_and_shapes():
    state = to_original(trained_like("stgram_mfn"))
    with pytest.raises(ValueError) as err:
        import_original(state, "stgram_mfn_paper", seconds=SECONDS)
    message = str(err.value)
    assert "'stgram_mfn_paper'" in message and "missing keys: mobilefacenet.blocks.6." in message
    assert "shape mismatches: mobilefacenet.blocks.0.conv.6.weight: checkpoint (128, 128, 1, 1) vs model " \
           "(64, 128, 1, 1)" in message
    with pytest.raises(ValueError, match=r"unexpected keys: sasgram\.|missing keys: sasgram\."):
        import_original(state, "stsasgram_mfn", seconds=SECONDS)


def test_wrong_class_count_names_keys_and_shapes():
    state = to_original(trained_like("tastgram_mfn", num_classes=40))
    with pytest.raises(ValueError, match=r"head\.weight: checkpoint \(40, 128\) vs model \(41, 128\)"):
        import_original(state, "tastgram_mfn", seconds=SECONDS)


def test_wrong_clip_length_names_the_time_axis():
    state = to_original(trained_like("tastgram_mfn"))
    with pytest.raises(ValueError, match=r"conv_encoder\.0\.0\.weight: checkpoint \(63,\) vs model \(313,\)"):
        import_original(state, "tastgram_mfn")  # seconds=10 by default


def test_import_rejects_unknown_variant_and_asdlib_files(tmp_path):
    model = trained_like("stgram_mfn")
    with pytest.raises(ValueError, match="unknown variant"):
        import_original(to_original(model), "stgram")
    path = save_model(tmp_path / "ours.pt", model)
    with pytest.raises(ValueError, match="load_model"):
        import_original(path, "stgram_mfn", seconds=SECONDS)
    with pytest.raises(ValueError, match="asdlib key names"):
        import_original(model.state_dict(), "stgram_mfn", seconds=SECONDS)
    with pytest.raises(ValueError, match="no state dict"):
        import_original({"epoch": 1, "optimizer": None}, "stgram_mfn", seconds=SECONDS)


def test_convert_checkpoint(tmp_path):
    model = trained_like("stgram_mfn")
    src, out = tmp_path / "best_checkpoint.pth.tar", tmp_path / "converted.pt"
    state = {f"module.{k}": v for k, v in to_original(model, "stgram_head").items()}
    torch.save({"epoch": 300, "model": state, "optimizer": None}, src)
    assert convert_checkpoint(src, out, variant="stgram_mfn", seconds=SECONDS) == out
    assert_same_weights(load_model(out), model)
    assert load_checkpoint(out)["source_label_order"] == "stgram_head"
    with pytest.raises(FileExistsError, match="overwrite"):
        convert_checkpoint(src, out, variant="stgram_mfn", seconds=SECONDS)
    convert_checkpoint(src, out, variant="stgram_mfn", seconds=SECONDS, overwrite=True)
