"""The embedding comparator of notebook 04: one machine ID under two losses, side by side, one clip marked.

:func:`comparator_figure` draws, for a machine type, a machine ID and one of its test clips, one column per run:
on top the histogram of the angles θ_y of that ID's normal and anomalous test clips to the ID's class centre,
below a 2-D map of the same clips (:func:`~asdlib.teaching.embeddings.shared_layout`, fitted on this ID's clips
and turned onto the first run's map, so that a clip lands in about the same place in every column); the chosen
clip is marked in every panel. :func:`embedding_comparator` puts dropdowns for type, ID and clip and an audio
player around it when a widget frontend is attached (:func:`asdlib.teaching.widgets.frontend_available`), else
shows the default selection as one static figure, as the clip explorer does.
"""
from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path

import matplotlib.pyplot as plt
import numpy as np
import pandas as pd
from matplotlib.figure import Figure

from asdlib.data.dcase import MACHINE_TYPES
from asdlib.teaching.embeddings import RunEmbeddings, shared_layout
from asdlib.teaching.plots import LABEL_COLORS, LOSS_COLORS
from asdlib.teaching.plots.training import plot_angle_histograms
from asdlib.teaching.widgets import frontend_available

STATIC_NOTE = ("A static figure of the first selection: the interactive comparator (pick a type, an ID and a clip) "
               "needs a live Jupyter kernel (JupyterLab, Notebook, Colab); ASD_WIDGETS=1 forces it.")


def machine_ids(runs: Mapping[str, RunEmbeddings]) -> dict[str, list[int]]:
    """The machine IDs of every machine type in the first run's test clips, types in the DCASE order."""
    table = next(iter(runs.values())).table
    present = [t for t in MACHINE_TYPES if t in set(table["machine_type"])]
    return {t: sorted(int(i) for i in set(table.machine_id[table.machine_type == t])) for t in present}


def id_embeddings(runs: Mapping[str, RunEmbeddings], machine_type: str,
                  machine_id: int) -> dict[str, RunEmbeddings]:
    """Each run's embeddings of the test clips of one ID that every run holds, in the same row order
    (anomalies first, then by file name): ``{name: RunEmbeddings with n rows}``."""
    first = next(iter(runs.values())).table
    rows = first[(first["machine_type"] == machine_type) & (first["machine_id"] == machine_id)]
    rows = rows.assign(_normal=rows["label"] != "anomaly").sort_values(["_normal", "path"])
    paths = pd.Index(rows["path"])
    for emb in runs.values():
        paths = paths[pd.Index(emb.table["path"]).get_indexer(paths) >= 0]  # drop clips a run lacks
    subsets = {}
    for name, emb in runs.items():
        take = pd.Index(emb.table["path"]).get_indexer(paths)  # (n,)
        subsets[name] = RunEmbeddings(emb.embedding[take], emb.cosine[take],
                                      emb.table.iloc[take].reset_index(drop=True))
    return subsets


def clip_options(subset: Mapping[str, RunEmbeddings]) -> list[tuple[str, str]]:
    """``(text, path)`` of every clip of :func:`id_embeddings`, as the clip dropdown lists them."""
    table = next(iter(subset.values())).table
    return [(f"{label}: {Path(path).name}", path) for label, path in zip(table["label"], table["path"])]


def comparator_figure(subset: Mapping[str, RunEmbeddings], clip: str, *,
                      layouts: Mapping[str, np.ndarray] | None = None, method: str = "auto",
                      seed: int = 0) -> Figure:
    """Angle histograms (top) and 2-D maps (bottom) of one ID's clips, one column per run, ``clip`` (a path of
    ``subset``'s tables) marked; ``layouts`` ``{name: (n, 2)}`` as :func:`shared_layout` returns, else computed."""
    if layouts is None:
        layouts = shared_layout(subset, method=method, seed=seed, progress=False)
    table = next(iter(subset.values())).table
    k = int(np.flatnonzero(table["path"].to_numpy() == clip)[0])  # the clip's row in every run
    label, name = table["label"][k], Path(clip).name
    fig, axes = plt.subplots(2, len(subset), figsize=(4.6 * len(subset), 7.4), squeeze=False,
                             layout="constrained", gridspec_kw={"height_ratios": [1, 1.35]})
    for ax in axes[0, 1:]:
        ax.sharey(axes[0, 0])  # a taller peak is a denser cluster in every column
    angles = {run: emb.angle for run, emb in subset.items()}  # {name: (n,)} degrees
    plot_angle_histograms({run: subset[run].table.assign(angle=a) for run, a in angles.items()}, axes=axes[0])
    for j, (run, emb) in enumerate(subset.items()):
        top, bottom = axes[:, j]
        normal = angles[run][emb.table["label"].to_numpy() == "normal"]
        share = 100 * float(np.mean(normal < angles[run][k]))  # where this clip's angle sits among normal ones
        top.axvline(angles[run][k], color="k", ls="--", lw=1.5,
                    label=f"this clip: {angles[run][k]:.0f}°, above {share:.0f} % of normal clips")
        top.legend(fontsize=8, loc="upper right")
        top.set_title(run, color=LOSS_COLORS.get(run, "k"), fontweight="bold")
        _draw_map(bottom, layouts[run], emb.table["label"].to_numpy(), k)
    axes[0, 0].set_ylim(0, 1.6 * axes[0, 0].get_ylim()[1])  # headroom: the legends sit above the bars
    axes[1, 0].set_ylabel("2-D map of this ID's test clips")
    axes[1, -1].legend(fontsize=8, loc="upper left", bbox_to_anchor=(1, 1))
    fig.suptitle(f"{table['machine_type'][k]} id_{int(table['machine_id'][k]):02d}: the {label} clip {name}")
    return fig


def _draw_map(ax, xy: np.ndarray, labels: np.ndarray, k: int) -> None:
    """Normal and anomalous clips as dots ``xy`` ``(n, 2)``; clip ``k`` as a large black-edged star."""
    for label in ("normal", "anomaly"):
        sel = labels == label
        ax.scatter(xy[sel, 0], xy[sel, 1], s=16, color=LABEL_COLORS[label], alpha=0.75, label=label)
    ax.scatter(*xy[k], s=420, marker="*", color=LABEL_COLORS.get(labels[k], "0.5"), edgecolors="k",
               linewidths=1.5, zorder=5, label="this clip")
    ax.set(xticks=[], yticks=[], aspect="equal", adjustable="datalim")


def default_selection(runs: Mapping[str, RunEmbeddings], machine_type: str | None = None) -> tuple[str, int]:
    """``(machine_type, machine_id)`` shown first: ``machine_type`` (default: the first type) and its first ID."""
    ids = machine_ids(runs)
    machine_type = machine_type if machine_type in ids else next(iter(ids))
    return machine_type, ids[machine_type][0]


def embedding_comparator(runs: Mapping[str, RunEmbeddings], *, machine_type: str | None = None,
                         method: str = "auto", seed: int = 0, interactive: bool | None = None):
    """Compare the test embeddings of several runs (e.g. ``{"ArcFace": ..., "Noisy-ArcMix": ...}``) ID by ID;
    display the returned object.

    ``interactive=None`` asks :func:`frontend_available`. Interactive: dropdowns for type, ID and clip over an
    output with :func:`comparator_figure` and the clip's audio player (the default selection's figure is also
    displayed as a plain output, which a saved notebook keeps). Static: a one-line note and that figure.
    """
    from IPython.display import display

    comparator = _Comparator(runs, machine_type=machine_type, method=method, seed=seed)
    fig = comparator.figure()
    if not (frontend_available() if interactive is None else interactive):
        print(STATIC_NOTE)
        plt.close(fig)  # returned, so displayed once
        return fig
    display(fig)
    plt.close(fig)
    comparator.connect()
    return comparator.widget


class _Comparator:
    """The ipywidgets panel: type, ID and clip dropdowns and an output area; 2-D maps cached per ID."""

    def __init__(self, runs: Mapping[str, RunEmbeddings], *, machine_type: str | None, method: str, seed: int):
        import ipywidgets as w

        self.runs, self.method, self.seed, self.ids = runs, method, seed, machine_ids(runs)
        self._layouts: dict[tuple[str, int], dict[str, np.ndarray]] = {}
        machine_type, machine_id = default_selection(runs, machine_type)
        self.type = w.Dropdown(options=list(self.ids), value=machine_type, description="type")
        self.id = w.Dropdown(options=self.ids[machine_type], value=machine_id, description="machine ID")
        self.clip = w.Dropdown(description="clip", layout=w.Layout(width="30em"))
        self.output = w.Output()
        self.widget = w.VBox([w.HBox([self.type, self.id, self.clip]), self.output])
        self._update_clips()

    def subset(self) -> dict[str, RunEmbeddings]:
        """Every run's embeddings of the selected ID's clips."""
        return id_embeddings(self.runs, self.type.value, self.id.value)

    def figure(self) -> Figure:
        """:func:`comparator_figure` of the current selection."""
        key = (self.type.value, self.id.value)
        if key not in self._layouts:
            self._layouts[key] = shared_layout(self.subset(), method=self.method, seed=self.seed, progress=False)
        return comparator_figure(self.subset(), self.clip.value, layouts=self._layouts[key])

    def connect(self) -> None:
        """Redraw on every change, and draw the current selection into the output area."""
        self.type.observe(self._on_type, names="value")
        self.id.observe(self._on_id, names="value")
        self.clip.observe(self._draw, names="value")
        self._draw()

    def _update_clips(self) -> None:
        options = clip_options(self.subset())
        self.clip.options, self.clip.value = options, options[0][1]  # the first anomalous clip

    def _on_type(self, change=None) -> None:
        self.id.unobserve(self._on_id, names="value")  # one redraw per change, not one per trait
        self.id.options = self.ids[self.type.value]
        self.id.observe(self._on_id, names="value")
        self._on_id()

    def _on_id(self, change=None) -> None:
        self.clip.unobserve(self._draw, names="value")
        self._update_clips()
        self.clip.observe(self._draw, names="value")
        self._draw()

    def _draw(self, change=None) -> None:
        from IPython.display import Audio, display

        with self.output:
            self.output.clear_output(wait=True)
            if Path(self.clip.value).is_file():
                display(Audio(filename=self.clip.value))
            fig = self.figure()
            display(fig)
            plt.close(fig)
