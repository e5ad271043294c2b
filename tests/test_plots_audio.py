"""Figures of notebooks 00–02 and the clip explorer, drawn from real wav files, models and dataset indexes."""
from __future__ import annotations

import matplotlib.pyplot as plt
import numpy as np
import pandas as pd
import pytest
import torch
from matplotlib.axes import Axes
from matplotlib.figure import Figure

from asdlib.data import dcase
from asdlib.evaluation.baseline import ltas_db, rms_dbfs
from asdlib.data.index import index_dataset, load_audio
from asdlib.nn.frontends import log_mel, mel_filterbank, num_frames
from asdlib.nn.models import build_model
from asdlib.teaching.plots import audio
from asdlib.data.synth import generate_dataset
from asdlib.teaching.widgets import clip_explorer, frontend_available

SR = 16000


@pytest.fixture(scope="module")
def index(tmp_path_factory) -> pd.DataFrame:
    """A real procedural dataset on disk (two machine types, smoke size) and its index."""
    root = tmp_path_factory.mktemp("plots") / "data"
    generate_dataset(root, size="smoke", machine_types="fan,ToyConveyor", progress=False)
    return index_dataset(root)


@pytest.fixture(scope="module")
def clips(index) -> dict[str, np.ndarray]:
    """A normal and an anomalous fan test clip, read from their wav files: ``{label: (L,)}``."""
    test = index[(index.machine_type == "fan") & (index.split == "test")]
    return {label: load_audio(test[test.label == label].path.iloc[0], seconds=None)
            for label in ("normal", "anomaly")}


@pytest.fixture(autouse=True)
def close_figures():
    yield
    plt.close("all")


def sgram(wave: np.ndarray) -> torch.Tensor:
    return log_mel(torch.from_numpy(wave)[None])[0]


def test_waveform_time_axis(clips):
    ax = audio.waveform(clips["normal"], title="fan")
    x, y = ax.lines[0].get_data()
    assert isinstance(ax, Axes) and ax.get_xlabel() == "time (s)" and ax.get_title() == "fan"
    assert len(x) == len(clips["normal"]) and x[-1] == pytest.approx(2.0, abs=1e-3)
    np.testing.assert_array_equal(y, clips["normal"])


def test_spectrogram_extent_and_colorbar(clips):
    mel = sgram(clips["normal"])  # a torch tensor is accepted as it is
    ax = audio.spectrogram(mel, title="log-mel")
    image = ax.images[0]
    assert image.get_array().shape == (128, num_frames(len(clips["normal"])))
    assert image.get_extent() == pytest.approx([0, 63 * 512 / SR, -0.5, 127.5])
    assert image.origin == "lower" and len(ax.figure.axes) == 2  # the map and its colorbar (dB)
    assert ax.figure.axes[1].get_ylabel() == "dB"


def test_difference_map_is_symmetric(clips):
    diff = sgram(clips["anomaly"]) - sgram(clips["normal"])
    low, high = audio.difference_map(diff).images[0].get_clim()
    assert low == -high and 0 < high <= float(diff.abs().max())


def test_clip_grid_shares_scales_per_row(clips):
    rows = {"fan": [(label, w, sgram(w)) for label, w in clips.items()]}
    fig = audio.clip_grid(rows)
    axes = [ax for ax in fig.axes if ax.get_label() != "<colorbar>"]
    assert isinstance(fig, Figure) and len(axes) == 4
    assert axes[0].get_ylim() == axes[2].get_ylim()  # both waveforms on one amplitude scale
    assert axes[1].images[0].get_clim() == axes[3].images[0].get_clim()  # both log-mels on one colour scale
    assert axes[2].lines[0].get_color() == audio.LABEL_COLORS["anomaly"]


def test_clip_counts_one_bar_per_machine_id(index):
    ax = audio.clip_counts(index)
    ids = index.groupby(["machine_type", "machine_id"]).ngroups
    heights = sum(p.get_height() for p in ax.patches)
    assert len(ax.get_xticklabels()) == ids == 7 + 6
    assert heights == len(index)
    legend = [t.get_text() for t in ax.get_legend().get_texts()]
    assert legend == ["train/normal", "test/normal", "test/anomaly"]


def test_level_distributions(index):
    rows = index.groupby(["machine_type", "split", "label"]).head(3)
    levels = rows.assign(group=rows.split + "/" + rows.label,
                         rms_dbfs=[rms_dbfs(load_audio(p, seconds=None)) for p in rows.path])
    ax = audio.level_distributions(levels)
    assert ax.get_ylabel() == "RMS level (dBFS)"
    assert [t.get_text() for t in ax.get_xticklabels()] == ["fan", "ToyConveyor"]
    points = np.concatenate([c.get_offsets()[:, 1] for c in ax.collections if len(c.get_offsets())])
    np.testing.assert_allclose(np.sort(points), np.sort(levels.rms_dbfs.to_numpy()), rtol=1e-6)


def test_spectra_grid_and_average_spectra(index):
    test = index[index.split == "test"]
    spectra = {t: {label: ltas_db([load_audio(p, seconds=None) for p in
                                   test[(test.machine_type == t) & (test.label == label)].path[:3]])
                   for label in ("normal", "anomaly")} for t in ("fan", "ToyConveyor")}
    fig = audio.spectra_grid(spectra, freqs_hz=audio.mel_centres())
    visible = [ax for ax in fig.axes if ax.get_visible()]
    assert len(fig.axes) == 3 and len(visible) == 2
    assert visible[0].get_xscale() == "log" and len(visible[0].lines) == 2
    np.testing.assert_allclose(visible[1].lines[1].get_ydata(), spectra["ToyConveyor"]["anomaly"])


def test_mel_centres_rise_to_nyquist():
    for htk in (False, True):
        centres = audio.mel_centres(htk=htk)
        assert centres.shape == (128,) and np.all(np.diff(centres) > 0) and 7800 < centres[-1] < 8000


def test_label_orders_heatmap_shows_every_class_index():
    table = pd.DataFrame({order: dcase.label_map(order) for order in dcase.LABEL_ORDERS})
    table.index = [f"{t} {i:02d}" for t, i in table.index]
    ax = audio.label_orders(table)
    numbers = [int(t.get_text()) for t in ax.texts]
    assert len(numbers) == 3 * 41 and sorted(numbers) == sorted(list(range(41)) * 3)


def test_mel_filterbanks():
    fig = audio.mel_filterbanks({"STgram-MFN": mel_filterbank("stgram"),
                                 "Noisy-ArcMix": mel_filterbank("noisy_arcmix")})
    assert len(fig.axes) == 3 and len(fig.axes[0].lines) == 128 // 8
    assert len(fig.axes[2].lines) == 2 and fig.axes[2].get_yscale() == "log"


def test_frequency_responses_find_the_tone():
    n = np.arange(1024)
    kernels = np.stack([np.hanning(1024) * np.cos(2 * np.pi * f * n / SR) for f in (3000.0, 500.0, 1000.0)])
    responses = audio.frequency_responses(torch.from_numpy(kernels)[:, None, :])  # (C, 1, K) like Conv1d
    assert responses.shape == (3, 513) and responses.max(axis=1) == pytest.approx(0.0, abs=1e-6)
    assert audio.peak_frequencies(responses) == pytest.approx([3000, 500, 1000], abs=SR / 1024)
    image = audio.filterbank_responses(responses).images[0].get_array()
    peaks = list(np.asarray(image).argmax(axis=1))
    assert peaks == sorted(peaks)  # rows sorted by peak frequency


def test_tgram_filterbank_of_a_real_model():
    torch.manual_seed(0)
    model = build_model("stgram_mfn", seconds=2.0)
    responses = audio.frequency_responses(model.tgram.conv_extractor.weight)
    ax = audio.sorted_peaks({"untrained": audio.peak_frequencies(responses), "mel": audio.mel_centres()})
    assert responses.shape == (128, 513) and len(ax.lines) == 2
    assert np.all(np.diff(ax.lines[0].get_ydata()) >= 0)


def test_feature_maps_of_real_models(clips):
    wave = torch.from_numpy(clips["normal"])[None]
    with torch.no_grad():
        ta = build_model("tastgram_mfn", seconds=2.0).eval().feature_maps(wave)
        sas = build_model("stsasgram_mfn", seconds=2.0).eval().feature_maps(wave)
    fig = audio.maps_row({"Sgram": ta["sgram"][0], "Tgram": ta["tgram"][0], "TAgram": ta["tagram"][0]},
                         units={"Sgram": "dB"})
    assert len(fig.axes) == 6 and fig.axes[3].get_ylabel() == "dB"  # three maps, three colorbars
    gate = torch.sigmoid(ta["sgram"].amax(dim=1) + ta["sgram"].mean(dim=1))[0]
    ax = audio.temporal_gate(gate)
    assert ax.get_yscale() == "log" and len(ax.lines[0].get_ydata()) == 63
    ax = audio.attention_map(sas["attention"][0].mean(0))
    assert ax.images[0].get_array().shape == (128, 128) and ax.get_xlabel() == "key mel bin"


def test_frontend_detection(monkeypatch):
    monkeypatch.delenv("ASD_WIDGETS", raising=False)
    assert not frontend_available()  # pytest runs no Jupyter kernel
    monkeypatch.setenv("ASD_WIDGETS", "1")
    assert frontend_available()
    monkeypatch.setenv("ASD_WIDGETS", "0")
    assert not frontend_available()


def test_clip_explorer_static_fallback(index, capsys, monkeypatch):
    monkeypatch.delenv("ASD_WIDGETS", raising=False)
    fig = clip_explorer(index)  # no frontend: the first anomalous clip as a figure, its player displayed
    assert isinstance(fig, Figure) and len(fig.axes) == 3
    assert fig.axes[0].get_title().startswith("fan id_00 test/anomaly_id_00_")
    assert fig.axes[1].images[0].get_array().shape == (128, 63)
    assert "Audio" in capsys.readouterr().out


def test_clip_explorer_widget_follows_the_selection(index):
    widget = clip_explorer(index, interactive=True)
    type_box, id_box = widget.children[0].children
    label_box, clip_slider = widget.children[1].children
    assert type_box.options == ("fan", "ToyConveyor") and id_box.value == 0
    type_box.value = "ToyConveyor"
    assert id_box.options == (1, 2, 3, 4, 5, 6)
    label_box.value = "normal"
    n_normal = ((index.machine_type == "ToyConveyor") & (index.machine_id == id_box.value)
                & (index.label == "normal")).sum()
    assert clip_slider.max == n_normal - 1 and clip_slider.value == 0


def test_clip_grid_titles_do_not_run_into_each_other(clips):
    wave = next(iter(clips.values()))
    fig = audio.clip_grid({"fan": [("anomaly (imbalance, strength 0.93)", wave, sgram(wave))]})
    wave_ax, mel_ax = [ax for ax in fig.axes if ax.get_label() != "<colorbar>"][:2]
    assert wave_ax.get_title() == "fan: anomaly\n(imbalance, strength 0.93)" and mel_ax.get_title() == "log-mel"
    plt.close(fig)


def test_difference_bands_one_panel_per_type_with_its_band():
    curve, band = np.zeros(8), np.stack([-np.ones(8), np.ones(8)])
    fig = audio.difference_bands({"fan": (curve + 2, band), "valve": (curve, band)}, ncols=3)
    visible = [ax for ax in fig.axes if ax.get_visible()]
    assert [ax.get_title() for ax in visible] == ["fan", "valve"]
    assert all(len(ax.collections) == 1 for ax in visible)  # the grey band
    assert all(ax.get_xlabel() == "mel bin" for ax in visible)
    plt.close(fig)


def test_level_panels_give_each_type_its_own_axis(index):
    rows = index.groupby(["machine_type", "split", "label"]).head(3)
    levels = rows.assign(group=rows.split + "/" + rows.label,
                         rms_dbfs=[rms_dbfs(load_audio(p, seconds=None)) for p in rows.path])
    fig = audio.level_panels(levels)
    visible = [ax for ax in fig.axes if ax.get_visible()]
    assert [ax.get_title() for ax in visible] == ["fan", "ToyConveyor"]
    for ax in visible:
        mine = levels[levels.machine_type == ax.get_title()].rms_dbfs.to_numpy()
        points = np.concatenate([c.get_offsets()[:, 1] for c in ax.collections if len(c.get_offsets())])
        np.testing.assert_allclose(np.sort(points), np.sort(mine), rtol=1e-6)
        low, high = ax.get_ylim()
        assert high - low < 3 * (mine.max() - mine.min()) + 2  # zoomed on its own type, not the series' range
    plt.close(fig)
