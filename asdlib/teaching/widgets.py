"""The clip explorer: pick a machine type, machine ID, label and clip; see its waveform and log-mel, hear it.

:func:`clip_explorer` builds an ipywidgets panel when a Jupyter frontend can show it (JupyterLab, Jupyter
Notebook, Colab). When a notebook is executed without one — in CI, by ``make run`` — widgets would render as
nothing, so it draws the default selection as a static figure (with an audio player) instead. The
environment variable ``ASD_WIDGETS=1`` (or ``0``) forces the widget (or the static figure); the argument
``interactive=`` overrides both.
"""
from __future__ import annotations

import os
import sys
from pathlib import Path

import matplotlib.pyplot as plt
import numpy as np
import pandas as pd
from matplotlib.figure import Figure

from asdlib.data.dcase import MACHINE_TYPES
from asdlib.teaching.plots.audio import spectrogram, waveform

LABELS = ("anomaly", "normal", "unknown")


def frontend_available() -> bool:
    """Whether a widget frontend is probably attached: ``ASD_WIDGETS``, else a Jupyter-Server/Colab kernel."""
    forced = os.environ.get("ASD_WIDGETS", "")
    if forced in ("0", "1"):
        return forced == "1"
    try:
        from IPython import get_ipython
    except ImportError:
        return False
    if get_ipython() is None or not hasattr(get_ipython(), "kernel"):
        return False  # plain Python or a terminal IPython: nothing can render a widget
    # Jupyter Server names the notebook of every kernel it starts; nbclient (CI, make run) does not.
    return "google.colab" in sys.modules or "JPY_SESSION_NAME" in os.environ


def clip_rows(index: pd.DataFrame, machine_type: str, machine_id: int, label: str) -> pd.DataFrame:
    """The index rows of one type, ID and label, test clips first (they carry the anomalies), by file name."""
    rows = index[(index["machine_type"] == machine_type) & (index["machine_id"] == machine_id)
                 & (index["label"] == label)]
    return rows.assign(_first=rows["split"] != "test").sort_values(["_first", "path"]).drop(columns="_first")


def default_selection(index: pd.DataFrame) -> tuple[str, int, str]:
    """``(machine_type, machine_id, label)`` to show first: an anomalous clip if there is one."""
    for label in LABELS:
        rows = index[index["label"] == label]
        if len(rows):
            first = rows.iloc[0]
            return str(first["machine_type"]), int(first["machine_id"]), label
    raise ValueError("the index holds no clips; build it with asdlib.data.index.index_dataset(DATA)")


def clip_figure(path: str | Path, *, sr: int = 16000, variant: str = "stgram",
                title: str | None = None) -> tuple[Figure, np.ndarray]:
    """Waveform and log-mel (Sgram, ``variant``) of one wav file side by side: ``-> (figure, wave (L,))``."""
    import torch

    from asdlib.data.index import load_audio
    from asdlib.nn.frontends import log_mel

    wave = load_audio(path, sr=sr, seconds=None)
    mel = log_mel(torch.from_numpy(wave)[None], variant=variant, sample_rate=sr)[0]  # (F, T)
    fig, (left, right) = plt.subplots(1, 2, figsize=(11, 3.2), gridspec_kw={"width_ratios": [1, 1.3]})
    waveform(wave, sr=sr, ax=left, title=title or Path(path).name)
    spectrogram(mel, sr=sr, ax=right, title=f"log-mel ({variant})")
    return fig, wave


def _show(path: str | Path, *, sr: int, variant: str, title: str) -> Figure:
    """Draw one clip and display its audio player; the figure is closed so that it is displayed only once."""
    from IPython.display import Audio, display

    fig, wave = clip_figure(path, sr=sr, variant=variant, title=title)
    display(Audio(wave, rate=sr))
    plt.close(fig)
    return fig


def _title(row: pd.Series) -> str:
    return f"{row['machine_type']} id_{row['machine_id']:02d} {row['split']}/{Path(row['path']).name}"


def clip_explorer(index: pd.DataFrame, *, interactive: bool | None = None, sr: int = 16000,
                  variant: str = "stgram"):
    """An explorer over the clips of an ``index_dataset`` table; display the returned object.

    ``interactive=None`` asks :func:`frontend_available`. Interactive: a widget (type, ID, label, clip) whose
    output shows the clip's waveform, log-mel and audio player; the default selection's figure is also
    displayed as a plain output, because a saved notebook keeps plain outputs but not the widget's live state
    (reopened without re-running, JupyterLab shows "Error displaying widget: model not found" for the widget).
    Static: the default selection's figure (the player is displayed first).
    """
    machine_type, machine_id, label = default_selection(index)
    row = clip_rows(index, machine_type, machine_id, label).iloc[0]
    if not (frontend_available() if interactive is None else interactive):
        return _show(row["path"], sr=sr, variant=variant, title=_title(row))
    from IPython.display import display

    explorer = _ClipExplorer(index, sr=sr, variant=variant).widget
    fig, _ = clip_figure(row["path"], sr=sr, variant=variant, title=_title(row))
    fig.suptitle("the first selection as a static figure (kept when the notebook is saved)", fontsize="small")
    display(fig)
    plt.close(fig)
    return explorer


class _ClipExplorer:
    """The ipywidgets panel: three dropdowns, a clip slider and an output area, wired together."""

    def __init__(self, index: pd.DataFrame, *, sr: int, variant: str):
        import ipywidgets as w

        self.index, self.sr, self.variant = index, sr, variant
        machine_type, machine_id, label = default_selection(index)
        types = [t for t in MACHINE_TYPES if t in set(index["machine_type"])]
        self.type = w.Dropdown(options=types, value=machine_type, description="type")
        self.id = w.Dropdown(options=self._ids(machine_type), value=machine_id, description="machine ID")
        self.label = w.Dropdown(options=self._labels(), value=label, description="label")
        self.clip = w.IntSlider(min=0, max=0, description="clip", continuous_update=False)
        self.output = w.Output()
        self.type.observe(self._on_type, names="value")
        for control in (self.id, self.label):
            control.observe(self._on_selection, names="value")
        self.clip.observe(self._draw, names="value")
        self.widget = w.VBox([w.HBox([self.type, self.id]), w.HBox([self.label, self.clip]), self.output])
        self._on_selection()

    def _ids(self, machine_type: str) -> list[int]:
        ids = self.index.loc[self.index["machine_type"] == machine_type, "machine_id"]
        return sorted(int(i) for i in set(ids))

    def _labels(self) -> list[str]:
        return [lab for lab in LABELS if lab in set(self.index["label"])]

    def rows(self) -> pd.DataFrame:
        """The clips of the current type, ID and label."""
        return clip_rows(self.index, self.type.value, self.id.value, self.label.value)

    def _on_type(self, change=None) -> None:
        self.id.unobserve(self._on_selection, names="value")  # one redraw per change, not one per trait
        self.id.options = self._ids(self.type.value)
        self.id.observe(self._on_selection, names="value")
        self._on_selection()

    def _on_selection(self, change=None) -> None:
        self.clip.unobserve(self._draw, names="value")
        self.clip.max, self.clip.value = max(len(self.rows()) - 1, 0), 0
        self.clip.observe(self._draw, names="value")
        self._draw()

    def _draw(self, change=None) -> None:
        rows = self.rows()
        with self.output:
            self.output.clear_output(wait=True)
            if rows.empty:
                print(f"no {self.label.value} clips of {self.type.value} id_{self.id.value:02d}")
                return
            row = rows.iloc[min(self.clip.value, len(rows) - 1)]
            fig = _show(row["path"], sr=self.sr, variant=self.variant, title=_title(row))
            from IPython.display import display

            display(fig)
