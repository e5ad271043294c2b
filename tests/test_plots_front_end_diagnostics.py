"""Notebook 02's diagnostics of the front ends measure what they say: filter shapes against ideal band-pass,
flat and low-pass banks; the share of variance across mel bins at its extremes; the SASgram token trace on a
real branch (identical bands stay identical through every stage, hooks removed afterwards); and the filterbank
figure says how many filters it draws and keeps its legend off the axes."""
from __future__ import annotations

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
import pytest  # noqa: E402
import torch  # noqa: E402

from asdlib.nn.attention import SpectralTransformer  # noqa: E402
from asdlib.nn.frontends import mel_filterbank  # noqa: E402
from asdlib.teaching.plots import features as pf  # noqa: E402


@pytest.fixture(autouse=True)
def _close_figures():
    yield
    plt.close("all")


def test_filter_shapes_tell_a_tiling_bank_from_broadband_filters():
    n = 513
    tiling = np.full((64, n), -120.0)
    tiling[np.arange(64), 4 + 8 * np.arange(64)] = 0.0  # one bin each, spread over 0–8 kHz
    shapes = pf.filter_shapes(tiling)
    assert shapes["axis within 10 dB of the peak (%)"] == pytest.approx(100 / n)
    assert shapes["lowest peak (Hz)"] < 100 and shapes["highest peak (Hz)"] > 7800
    flat = pf.filter_shapes(np.zeros((8, n)))
    assert flat["axis within 10 dB of the peak (%)"] == pytest.approx(100.0)
    assert flat["power below 1 kHz (%)"] == pytest.approx(100 * np.mean(np.linspace(0, 8000, n) < 1000))
    low = np.where(np.linspace(0, 8000, n) < 1000, 0.0, -200.0)[None].repeat(4, 0)
    assert pf.filter_shapes(low)["power below 1 kHz (%)"] == pytest.approx(100.0)


def test_filter_shapes_of_the_htk_mel_bank_are_narrow():
    gains = 10 * np.log10(mel_filterbank("stgram").T.numpy() + 1e-12)  # (F, 513) power gains
    shapes = pf.filter_shapes(gains)
    assert shapes["axis within 10 dB of the peak (%)"] < 2
    assert shapes["highest peak (Hz)"] > 7000


def test_band_share_extremes():
    same_rows = torch.randn(2, 1, 10).repeat(1, 16, 1)  # every bin holds the same values
    assert pf.band_share(same_rows) == pytest.approx(0.0, abs=1e-12)
    only_levels = torch.arange(16.0)[None, :, None].repeat(2, 1, 10)  # bins differ, time does not
    assert pf.band_share(only_levels) == pytest.approx(1.0)
    assert 0 < pf.band_share(torch.randn(2, 16, 10)) < 1


def test_token_collapse_traces_every_stage_and_removes_its_hooks():
    torch.manual_seed(0)
    branch = SpectralTransformer(8, hidden_dim=32, n_layers=3, n_heads=4, pf_dim=16).eval()
    identical = torch.randn(2, 1, 8).repeat(1, 12, 1)  # 12 identical bands
    table = pf.token_collapse(branch, identical)
    assert list(table.index) == ["Sgram (the tokens' source)", "tokens", "layer 1", "layer 2", "layer 3",
                                 "SASgram (output)"]
    assert table.loc["Sgram (the tokens' source)", "share across mel bins"] == pytest.approx(0.0, abs=1e-12)
    # only the bin embedding tells the bands apart, and it is part of every later stage
    assert (table["share across mel bins"].iloc[1:] > 0).all()
    assert not branch.hidden_embedding._forward_hooks and not any(layer._forward_hooks for layer in branch.layers)
    distinct = pf.token_collapse(branch, torch.randn(2, 12, 8))
    assert distinct.loc["Sgram (the tokens' source)", "share across mel bins"] > 0.5
    assert ((distinct["1 − mean cosine between bands"] >= -1e-9)
            & (distinct["1 − mean cosine between bands"] <= 2)).all()


def test_mel_filterbank_panels_say_what_they_draw_and_keep_the_legend_off_the_axes():
    fig = pf.mel_filterbank_panels({"HTK": mel_filterbank("stgram"), "Slaney": mel_filterbank("noisy_arcmix")})
    assert "16 of 128 drawn" in fig.axes[0].get_title()
    assert len(fig.axes[0].lines) == 16 and len(fig.axes[-1].lines) == 2
    fig.canvas.draw()
    legend, ax = fig.axes[-1].get_legend(), fig.axes[-1]
    assert legend.get_window_extent().y1 <= ax.get_window_extent().y0  # below the axes, not on the curves
    assert legend.get_window_extent().y0 >= 0  # and still inside the figure
