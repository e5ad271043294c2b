"""Figures of sounds and front ends: waveforms, spectrograms, levels, spectra, filterbanks and attention maps.

Used by notebooks 00–02. Each function takes data (numpy arrays or torch tensors; shapes in its docstring)
and an optional ``ax``, draws in the series' style (:func:`asdlib.teaching.plots.set_style`) and returns the matplotlib
Axes or Figure. Maps ``(F, T)`` are drawn with ``imshow(origin="lower", aspect="auto")`` against time in
seconds (frame t starts at ``t * hop_length / sr``), low bins at the bottom.
"""
from __future__ import annotations

from collections.abc import Mapping, Sequence

import matplotlib.pyplot as plt
import numpy as np
import pandas as pd
from matplotlib.axes import Axes
from matplotlib.figure import Figure

from asdlib.data.dcase import MACHINE_TYPES
from asdlib.teaching.plots import LABEL_COLORS, MACHINE_COLORS

SR, HOP_LENGTH = 16000, 512
GROUP_COLORS = {"train/normal": "#56B4E9", "test/normal": LABEL_COLORS["normal"],
                "test/anomaly": LABEL_COLORS["anomaly"], "test/unknown": "#999999"}


def as_array(x) -> np.ndarray:
    """A numpy array from an array-like or a torch tensor (detached, moved to the CPU)."""
    if hasattr(x, "detach"):
        x = x.detach().cpu().float().numpy()
    return np.asarray(x)


def _axes(ax: Axes | None, figsize: tuple[float, float] | None = None) -> Axes:
    return ax if ax is not None else plt.subplots(figsize=figsize)[1]


def mel_centres(n_mels: int = 128, *, sr: int = SR, htk: bool = False) -> np.ndarray:
    """Centre frequencies (Hz) of ``n_mels`` mel filters from 0 to sr/2 (Slaney or HTK scale): ``-> (F,)``."""
    import librosa

    return librosa.mel_frequencies(n_mels + 2, fmin=0.0, fmax=sr / 2, htk=htk)[1:-1]


def waveform(wave, *, sr: int = SR, ax: Axes | None = None, title: str | None = None,
             color: str | None = None) -> Axes:
    """A waveform ``(L,)`` against time in seconds."""
    wave = as_array(wave).reshape(-1)
    ax = _axes(ax)
    ax.plot(np.arange(len(wave)) / sr, wave, lw=0.4, color=color or "#4C72B0")
    ax.set(xlabel="time (s)", ylabel="amplitude", title=title, xlim=(0, len(wave) / sr))
    return ax


def spectrogram(spec, *, sr: int = SR, hop_length: int = HOP_LENGTH, ax: Axes | None = None,
                title: str | None = None, ylabel: str = "mel bin", colorbar: str | None = "dB",
                cmap: str | None = None, vmin: float | None = None, vmax: float | None = None) -> Axes:
    """A map ``(F, T)`` (Sgram, Tgram, TAgram, …) against time in seconds; ``colorbar`` names its unit."""
    spec = as_array(spec).squeeze()
    ax = _axes(ax)
    seconds = spec.shape[-1] * hop_length / sr
    image = ax.imshow(spec, origin="lower", aspect="auto", extent=(0, seconds, -0.5, spec.shape[0] - 0.5),
                      cmap=cmap, vmin=vmin, vmax=vmax, interpolation="nearest")
    ax.set(xlabel="time (s)", ylabel=ylabel, title=title)
    ax.grid(False)
    if colorbar:
        ax.figure.colorbar(image, ax=ax, label=colorbar, pad=0.01)
    return ax


def difference_map(diff, *, sr: int = SR, hop_length: int = HOP_LENGTH, ax: Axes | None = None,
                   title: str | None = None, colorbar: str = "dB", ylabel: str = "mel bin") -> Axes:
    """A signed map ``(F, T)`` (e.g. anomaly minus normal) on a diverging scale centred on 0 (red = more).

    The scale ends at the 99th percentile of ``|diff|``, so that a few outliers do not wash out the rest."""
    limit = float(np.nanpercentile(np.abs(as_array(diff)), 99)) or 1.0
    return spectrogram(diff, sr=sr, hop_length=hop_length, ax=ax, title=title, colorbar=colorbar,
                       ylabel=ylabel, cmap="RdBu_r", vmin=-limit, vmax=limit)


def clip_grid(clips: Mapping[str, Sequence[tuple[str, object, object]]], *, sr: int = SR,
              hop_length: int = HOP_LENGTH) -> Figure:
    """Each clip's waveform next to its log-mel: ``{row: [(title, wave (L,), mel (F, T)), …]}``.

    The waveforms of a row share one amplitude scale, and the log-mels one colour scale, so that normal and
    anomalous clips compare directly. A title starting with "normal" or "anomaly" picks the label's colour; a
    part in parentheses ("anomaly (rattle, strength 0.9)") goes on a second line. Only the first column names
    its axes, so that no axis label runs into the neighbouring colour bar.
    """
    n_cols = 2 * max(len(items) for items in clips.values())
    fig, axes = plt.subplots(len(clips), n_cols, figsize=(3.8 * n_cols, 2.6 * len(clips)), squeeze=False,
                             gridspec_kw={"width_ratios": [1, 1.25] * (n_cols // 2)}, layout="constrained")
    for r, (row, items) in enumerate(clips.items()):
        mels = [as_array(mel) for _, _, mel in items]
        vmin, vmax = np.percentile(np.concatenate([m.ravel() for m in mels]), [1, 99.9])
        peak = max(float(np.abs(as_array(wave)).max()) for _, wave, _ in items) * 1.05
        for c, ((title, wave, _), mel) in enumerate(zip(items, mels)):
            label, _, detail = title.partition(" (")
            color = LABEL_COLORS.get(label.split()[0] if label else "", MACHINE_COLORS.get(row))
            left, right = axes[r, 2 * c], axes[r, 2 * c + 1]
            waveform(wave, sr=sr, ax=left, color=color)
            left.set_title(f"{row}: {label}" + (f"\n({detail}" if detail else ""), fontsize="small")
            left.set_ylim(-peak, peak)
            spectrogram(mel, sr=sr, hop_length=hop_length, ax=right, title="log-mel", vmin=vmin, vmax=vmax)
            right.title.set_fontsize("small")
            if c > 0:
                left.set_ylabel("")
            right.set_ylabel("mel bin" if c == 0 else "")
    for ax in axes[:-1].ravel():
        ax.set_xlabel("")
    return fig


def clip_counts(index: pd.DataFrame, *, ax: Axes | None = None) -> Axes:
    """Clips per machine ID, stacked by split/label, from an ``asdlib.data.index.index_dataset`` table."""
    group = index["split"] + "/" + index["label"]
    table = index.assign(group=group).groupby(["machine_type", "machine_id", "group"]).size()
    table = table.unstack("group", fill_value=0)
    table = table.reindex(columns=[g for g in GROUP_COLORS if g in table.columns])
    table = table.loc[sorted(table.index, key=lambda k: (MACHINE_TYPES.index(k[0]), k[1]))]
    table.index = [f"{t} {i:02d}" for t, i in table.index]
    ax = _axes(ax, figsize=(max(6.0, 0.3 * len(table)), 3.6))
    table.plot.bar(stacked=True, ax=ax, width=0.8, color=[GROUP_COLORS[g] for g in table.columns])
    ax.set(xlabel="machine type and ID", ylabel="clips", title=f"{len(index)} clips per machine ID")
    ax.legend(title="split/label", fontsize="small", loc="upper left", bbox_to_anchor=(1.0, 1.0))
    return ax


def level_distributions(levels: pd.DataFrame, *, value: str = "rms_dbfs", ax: Axes | None = None) -> Axes:
    """Per-clip levels by machine type; ``levels`` has columns ``machine_type``, ``group`` and ``value``."""
    import seaborn as sns

    ax = _axes(ax, figsize=(10, 3.8))
    order = [t for t in MACHINE_TYPES if t in set(levels["machine_type"])]
    groups = [g for g in GROUP_COLORS if g in set(levels["group"])]
    style = dict(data=levels, x="machine_type", y=value, hue="group", order=order, hue_order=groups,
                 palette=GROUP_COLORS, ax=ax)
    sns.boxplot(**style, showfliers=False, boxprops={"alpha": 0.35}, legend=False)
    sns.stripplot(**style, dodge=True, size=2.5, alpha=0.6)
    ax.set(xlabel="machine type", ylabel="RMS level (dBFS)" if value == "rms_dbfs" else value)
    ax.legend(title="split/label", fontsize="small")
    return ax


def level_panels(levels: pd.DataFrame, *, value: str = "rms_dbfs", ncols: int = 6) -> Figure:
    """Per-clip levels, one panel per machine type, each on its own y-axis; columns as for
    :func:`level_distributions`. A shared axis spans the wide gaps between the types and flattens a
    within-type spread of a few tenths of a dB to a line; here each panel zooms in on its own type. The
    groups are told apart by position and label, not by colour alone."""
    import seaborn as sns

    order = [t for t in MACHINE_TYPES if t in set(levels["machine_type"])]
    groups = [g for g in GROUP_COLORS if g in set(levels["group"])]
    ncols = min(ncols, len(order))
    nrows = -(-len(order) // ncols)
    fig, axes = plt.subplots(nrows, ncols, figsize=(2.2 * ncols + 0.6, 3.2 * nrows), squeeze=False,
                             layout="constrained")
    for i, (ax, machine_type) in enumerate(zip(axes.ravel(), order)):
        style = dict(data=levels[levels["machine_type"] == machine_type], x="group", y=value, hue="group",
                     order=groups, hue_order=groups, palette=GROUP_COLORS, ax=ax, legend=False)
        sns.boxplot(**style, showfliers=False, boxprops={"alpha": 0.35})
        sns.stripplot(**style, size=2.5, alpha=0.6, jitter=0.25)
        ax.set_xticks(range(len(groups)), [g.replace("/", "\n") for g in groups], fontsize="x-small")
        ylabel = "RMS level (dBFS)" if value == "rms_dbfs" else value
        ax.set(title=machine_type, xlabel="", ylabel=ylabel if i % ncols == 0 else "")
    for ax in axes.ravel()[len(order):]:
        ax.set_visible(False)
    return fig


def average_spectra(curves: Mapping[str, object], *, freqs_hz=None, ax: Axes | None = None,
                    title: str | None = None, colors: Mapping[str, str] | None = None,
                    ylabel: str = "level (dB)") -> Axes:
    """Spectra ``{name: (F,) dB}`` (e.g. the LTAS of normal and anomalous clips) on a log frequency axis."""
    ax = _axes(ax)
    colors = {**LABEL_COLORS, **MACHINE_COLORS, **(colors or {})}
    for name, curve in curves.items():
        curve = as_array(curve)
        x = np.arange(len(curve)) if freqs_hz is None else as_array(freqs_hz)
        ax.plot(x, curve, label=name, color=colors.get(name), lw=1.2)
    if freqs_hz is not None:
        ax.set_xscale("log")
    ax.set(xlabel="frequency (Hz)" if freqs_hz is not None else "mel bin", ylabel=ylabel, title=title)
    ax.legend(fontsize="small")
    return ax


def spectra_grid(per_type: Mapping[str, Mapping[str, object]], *, freqs_hz=None, ncols: int = 3,
                 ylabel: str = "level (dB)") -> Figure:
    """One :func:`average_spectra` panel per machine type: ``{machine_type: {name: (F,) dB}}``."""
    nrows = -(-len(per_type) // ncols)
    fig, axes = plt.subplots(nrows, ncols, figsize=(4.3 * ncols, 3.0 * nrows), squeeze=False)
    for ax, (machine_type, curves) in zip(axes.ravel(), per_type.items()):
        average_spectra(curves, freqs_hz=freqs_hz, ax=ax, title=machine_type, ylabel=ylabel)
    for ax in axes.ravel()[len(per_type):]:
        ax.set_visible(False)
    return fig


def difference_bands(per_type: Mapping[str, tuple[object, object]], *, freqs_hz=None, ncols: int = 3,
                     ylabel: str = "anomaly − normal (dB)",
                     band_label: str = "normal vs normal (5–95 % of random halves)") -> Figure:
    """One panel per machine type: a difference curve ``(F,)`` in dB over a reference band ``(2, F)`` (lower,
    upper), e.g. how much two random halves of the *normal* clips already differ: ``{type: (curve, band)}``.

    Where the curve leaves the grey band, the difference is larger than the clip-to-clip variation alone
    produces; inside it, it may be chance.
    """
    nrows = -(-len(per_type) // ncols)
    fig, axes = plt.subplots(nrows, ncols, figsize=(4.3 * ncols, 2.8 * nrows), squeeze=False, sharex=True,
                             layout="constrained")
    for ax, (machine_type, (curve, band)) in zip(axes.ravel(), per_type.items()):
        curve, band = as_array(curve), as_array(band)
        x = np.arange(len(curve)) if freqs_hz is None else as_array(freqs_hz)
        ax.fill_between(x, band[0], band[1], color="0.8", lw=0, label=band_label)
        ax.plot(x, curve, color="k", lw=1.2, label="anomaly − normal")  # one colour: blue/vermillion mean labels
        ax.axhline(0, color="k", lw=0.6)
        ax.set(title=machine_type, ylabel=ylabel if ax in axes[:, 0] else "")
        if freqs_hz is not None:
            ax.set_xscale("log")
    for i, ax in enumerate(axes.ravel()):  # a frequency label under the lowest panel of each column
        if i < len(per_type) <= i + ncols:
            ax.set_xlabel("frequency (Hz)" if freqs_hz is not None else "mel bin")
            ax.xaxis.set_tick_params(labelbottom=True)
        ax.set_visible(i < len(per_type))
    axes[0, 0].legend(fontsize="x-small", loc="lower left")
    return fig


def label_orders(table: pd.DataFrame, *, ax: Axes | None = None) -> Axes:
    """Class index of every machine ID under each label order: ``table`` (41 rows, one column per order)."""
    import seaborn as sns

    data = table.T
    ax = _axes(ax, figsize=(max(8.0, 0.38 * data.shape[1]), 1.8 + 0.6 * data.shape[0]))
    sns.heatmap(data, annot=True, fmt="d", cmap="viridis", annot_kws={"fontsize": 7}, ax=ax,
                cbar_kws={"label": "class index", "pad": 0.01})
    ax.set(xlabel="machine type and ID", ylabel="label order")
    return ax


def mel_filterbanks(fbs: Mapping[str, object], *, sr: int = SR, every: int = 8) -> Figure:
    """Mel filters ``{name: (n_fft // 2 + 1, F)}``: every ``every``-th filter per bank, then each peak."""
    fig, axes = plt.subplots(1, len(fbs) + 1, figsize=(4.6 * (len(fbs) + 1), 3.4))
    for ax, (name, fb) in zip(axes, fbs.items()):
        fb = as_array(fb)
        khz = np.linspace(0, sr / 2000, fb.shape[0])
        colors = plt.cm.viridis(np.linspace(0, 1, fb.shape[1]))
        for m in range(0, fb.shape[1], every):
            ax.plot(khz, fb[:, m], color=colors[m], lw=1)
        ax.set(xlabel="frequency (kHz)", ylabel="filter weight", title=name, xlim=(0, sr / 2000))
        peaks = khz[fb.argmax(axis=0)] * 1000
        axes[-1].plot(np.flatnonzero(peaks > 0), peaks[peaks > 0], label=name)
    axes[-1].set(xlabel="mel bin", ylabel="peak frequency (Hz)", yscale="log",
                 title="where each mel bin listens")
    axes[-1].legend(fontsize="small", loc="upper left")
    return fig


def frequency_responses(kernels, *, n_fft: int | None = None, per_filter: bool = True) -> np.ndarray:
    """Magnitude responses of FIR kernels ``(C, K)`` or ``(C, 1, K)`` in dB: ``-> (C, n_fft // 2 + 1)``.

    Frequencies run from 0 to sr/2; ``n_fft`` defaults to the kernel length K. Each response is relative to
    its own peak (``per_filter``), or to the largest peak of all, which keeps the gains comparable.
    """
    k = as_array(kernels).reshape(len(kernels), -1).astype(np.float64)
    magnitude = np.abs(np.fft.rfft(k, n=n_fft or k.shape[-1], axis=-1))
    peak = magnitude.max(axis=-1, keepdims=True) if per_filter else magnitude.max()
    return 20 * np.log10(magnitude / (peak + 1e-20) + 1e-10)


def peak_frequencies(responses_db, *, sr: int = SR) -> np.ndarray:
    """Frequency (Hz) of each filter's peak, ``(C, n_freqs) -> (C,)``."""
    responses_db = as_array(responses_db)
    return responses_db.argmax(axis=-1) * (sr / 2) / (responses_db.shape[-1] - 1)


def filterbank_responses(responses_db, *, sr: int = SR, sort: bool = True, ax: Axes | None = None,
                         title: str | None = None, floor_db: float = -30.0) -> Axes:
    """Frequency responses ``(C, n_freqs)`` (dB) as an image, one row per filter, sorted by peak frequency."""
    responses_db = as_array(responses_db)
    if sort:
        responses_db = responses_db[np.argsort(peak_frequencies(responses_db, sr=sr), kind="stable")]
    ax = _axes(ax)
    image = ax.imshow(responses_db, origin="lower", aspect="auto", vmin=floor_db, vmax=0, cmap="magma",
                      extent=(0, sr / 2000, -0.5, len(responses_db) - 0.5), interpolation="nearest")
    ax.set(xlabel="frequency (kHz)", ylabel="filter (sorted by peak)" if sort else "filter", title=title)
    ax.grid(False)
    ax.figure.colorbar(image, ax=ax, label="dB re. filter peak", pad=0.01)
    return ax


def sorted_peaks(curves: Mapping[str, object], *, ax: Axes | None = None, title: str | None = None) -> Axes:
    """Peak frequencies ``{name: (C,) Hz}`` of filterbanks, each sorted: how a bank spreads over frequency."""
    ax = _axes(ax)
    for name, peaks in curves.items():
        ax.plot(np.sort(as_array(peaks)), label=name, lw=1.5)
    ax.set(xlabel="filter (sorted by peak)", ylabel="peak frequency (Hz)", title=title)
    ax.legend(fontsize="small")
    return ax


def temporal_gate(gate, *, sr: int = SR, hop_length: int = HOP_LENGTH, ax: Axes | None = None,
                  title: str | None = None, log: bool = True) -> Axes:
    """The TAgram gate σ(max_f X + mean_f X) per frame ``(T,)``; a log axis shows it even when it is tiny."""
    gate = as_array(gate).reshape(-1)
    ax = _axes(ax)
    ax.plot(np.arange(len(gate)) * hop_length / sr, gate, color="#C44E52", lw=1.2)
    ax.set(xlabel="time (s)", ylabel="gate (0–1)", title=title, xlim=(0, len(gate) * hop_length / sr),
           yscale="log" if log else "linear")
    return ax


def attention_map(attention, *, ax: Axes | None = None, title: str | None = None) -> Axes:
    """A mel-bin × mel-bin attention matrix ``(F, F)``: row = query bin, column = key bin it attends to."""
    attention = as_array(attention).squeeze()
    ax = _axes(ax, figsize=(4.6, 4))
    image = ax.imshow(attention, origin="lower", aspect="auto", cmap="viridis", interpolation="nearest")
    ax.set(xlabel="key mel bin", ylabel="query mel bin", title=title)
    ax.grid(False)
    ax.figure.colorbar(image, ax=ax, label="attention weight", pad=0.01)
    return ax


def maps_row(maps: Mapping[str, object], *, sr: int = SR, hop_length: int = HOP_LENGTH,
             units: Mapping[str, str] | None = None) -> Figure:
    """Maps of one clip side by side ``{name: (F, T)}`` (Sgram, Tgram, TAgram, …), each on its own scale."""
    units = dict(units or {})
    fig, axes = plt.subplots(1, len(maps), figsize=(4.4 * len(maps), 3.2), squeeze=False)
    for ax, (name, image) in zip(axes[0], maps.items()):
        spectrogram(image, sr=sr, hop_length=hop_length, ax=ax, title=name, colorbar=units.get(name, "a.u."),
                    ylabel="mel bin / channel")
    return fig
