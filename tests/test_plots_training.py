"""The training figures draw what they claim: channels in stacking order, the kept epoch, margins where the
losses put them (checked against ``asdlib.nn.heads.arcface_logits``), densities that integrate to one."""
from __future__ import annotations

import math

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
import pandas as pd  # noqa: E402
import pytest  # noqa: E402
import torch  # noqa: E402

from asdlib.nn.frontends import log_mel  # noqa: E402
from asdlib.training.losses import mixup  # noqa: E402
from asdlib.nn.models import ARCHITECTURES  # noqa: E402
from asdlib.teaching.plots import training as pt  # noqa: E402

HISTORY = pd.DataFrame({"epoch": [1, 2, 3, 4], "lr": [1e-3] * 4, "loss": [9.0, 6.0, 4.0, 3.0],
                        "acc": [0.1, 0.4, 0.7, 0.8], "clips_per_s": [50.0] * 4, "val_loss": [8.0, 5.0, 5.5, 6.0],
                        "test_auc": [0.6, 0.7, 0.75, 0.72], "test_pauc": [0.55, 0.6, 0.62, 0.6]})


@pytest.fixture(autouse=True)
def _close_figures():
    yield
    plt.close("all")


@pytest.mark.parametrize("name", list(ARCHITECTURES))
def test_architecture_diagram_stacks_the_model_channels_in_order(name):
    channels = ARCHITECTURES[name][2]
    texts = [t.get_text() for t in pt.plot_architecture(channels, name=name, seconds=2.0).texts]
    stack = next(t for t in texts if t.startswith("stack channels"))
    names = [pt._MAPS[c][0] for c in channels]
    assert f"[{', '.join(names)}]" in stack and f"(B, {len(channels)}, 128, 63)" in stack  # 2 s -> 63 frames
    ten_s = [t.get_text() for t in pt.plot_architecture(channels, seconds=10.0).texts]
    assert sum("(B, 128, 313)" in t for t in ten_s) == len(channels)


def test_history_marks_the_epoch_with_the_lowest_validation_loss():
    fig = pt.plot_history(HISTORY, title="run")
    assert len(fig.axes) == 3
    for ax in fig.axes:
        assert any(list(line.get_xdata()) == [2, 2] for line in ax.lines)  # val_loss is lowest at epoch 2
    assert len(pt.plot_history(HISTORY.drop(columns=["test_auc", "test_pauc"])).axes) == 2


def test_history_reads_a_run_folder(tmp_path):
    HISTORY.to_csv(tmp_path / "history.csv", index=False)
    assert pt.history_frame(tmp_path).equals(HISTORY)
    with pytest.raises(FileNotFoundError, match="ensure_run"):
        pt.history_frame(tmp_path / "missing")


def test_live_curves_print_outside_a_notebook_and_keep_the_rows(capsys):
    live = pt.LiveCurves("run")
    assert live.live is False  # pytest runs no kernel
    for row in HISTORY.to_dict("records"):
        live(row)
    out = capsys.readouterr().out
    assert out.count("epoch ") == 4 and "not used" in out
    assert [len(line.get_xdata()) for line in live.figure().axes[0].lines[:2]] == [4, 4]


def _arc_spans(ax) -> list[float]:
    """Degrees covered by each scatter ring of the toy (0.25° grid), in drawing order."""
    return [0.25 * len(c.get_offsets()) for c in ax.collections]


def test_arcface_toy_narrows_each_class_by_the_margin():
    m = 0.7
    spans = _arc_spans(pt.plot_arcface_toy([0, 120, 240], m=m))
    outer, inner = spans[0::2], spans[1::2]
    assert outer == pytest.approx([120] * 3, abs=0.5)
    assert inner == pytest.approx([120 - math.degrees(m)] * 3, abs=0.75)  # θ_y + m < θ_j on each side
    no_margin = _arc_spans(pt.plot_arcface_toy([0, 120, 240], m=0.0))
    assert no_margin[1::2] == pytest.approx(no_margin[0::2], abs=0.5)


def test_target_logit_curve_is_arcface():
    m, s = 0.7, 30.0
    plain, margin = pt.plot_target_logit(m=m, s=s).lines[:2]
    theta, z = margin.get_xdata(), margin.get_ydata()
    assert z[0] == pytest.approx(s * math.cos(m)) and plain.get_ydata()[0] == pytest.approx(s)
    at_90 = np.argmin(np.abs(theta - 90))
    assert z[at_90] == pytest.approx(s * math.cos(math.pi / 2 + m), abs=1e-6)


def test_margin_placement_bars_follow_each_loss():
    m, s, cos_a, cos_b = 0.7, 30.0, 0.6, 0.3
    bars = pt.plot_margin_placement(cos_a, cos_b, 0.3, m=m, s=s).patches
    heights = np.array([b.get_height() for b in bars[:8]]).reshape(4, 2)  # terms × (y_a, y_b)
    with_m = {c: s * math.cos(math.acos(c) + m) for c in (cos_a, cos_b)}
    np.testing.assert_allclose(heights[0], [with_m[cos_a], s * cos_b])  # ArcMix term a: margin on y_a
    np.testing.assert_allclose(heights[1], [s * cos_a, with_m[cos_b]])  # ArcMix term b: margin on y_b
    np.testing.assert_allclose(heights[3], [with_m[cos_a], s * cos_b])  # Noisy-ArcMix term b: still on y_a


def test_angle_histograms_are_densities_per_label():
    rng = np.random.default_rng(0)
    scores = {name: pd.DataFrame({"angle": np.r_[rng.uniform(5, 30, 40), rng.uniform(20, 70, 40)],
                                  "label": ["normal"] * 40 + ["anomaly"] * 40}) for name in ("CE", "ArcFace")}
    axes = pt.plot_angle_histograms(scores, bins=20).axes
    assert [ax.get_title() for ax in axes] == ["CE", "ArcFace"]
    for ax in axes:
        bars = ax.patches
        width = bars[0].get_width()
        assert sum(b.get_height() for b in bars[:20]) * width == pytest.approx(1.0)
        assert sum(b.get_height() for b in bars[20:40]) * width == pytest.approx(1.0)


def test_embedding_maps_colour_each_machine_id_and_keep_normal_clips_visible():
    table = pd.DataFrame({"machine_type": ["fan"] * 8 + ["valve"] * 8, "machine_id": [0, 0, 2, 2, 4, 4, 6, 6] * 2,
                          "label": ["normal", "anomaly"] * 8})
    xy = np.random.default_rng(0).normal(size=(16, 2))
    fig = pt.plot_embedding_maps({"CE": xy, "ArcFace": xy}, {"CE": table, "ArcFace": table})
    top = fig.axes[0].collections[0]
    assert len(top.get_offsets()) == 8  # top row: the normal clips only
    assert len({tuple(c) for c in top.get_facecolors()}) == 8  # 4 fan IDs + 4 valve IDs
    anomaly, normal = fig.axes[2].collections  # bottom row: anomalies drawn first, beneath, smaller
    assert len(anomaly.get_offsets()) == len(normal.get_offsets()) == 8
    assert anomaly.get_sizes()[0] < normal.get_sizes()[0]


def test_mixup_figure_shows_the_mixed_log_mel():
    wave = 0.1 * torch.randn(2, 16000, generator=torch.Generator().manual_seed(0))
    mel = log_mel(wave, variant="noisy_arcmix")  # (2, F, T)
    _, mixed = mixup(wave, mel, lam=0.3, perm=torch.tensor([1, 0]))
    fig = pt.plot_mixup(mel[0], mel[1], mixed[0], 0.3)
    images = [ax.images[0].get_array() for ax in fig.axes[:3]]
    np.testing.assert_allclose(images[2], 0.3 * mel[0].numpy() + 0.7 * mel[1].numpy(), rtol=1e-5, atol=1e-4)
