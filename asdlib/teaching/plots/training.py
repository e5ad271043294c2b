"""Figures of training and of what the losses learn: the input-fusion diagram, learning curves (live and after
training), the ArcFace geometry on a 2-D toy, mixup and where each loss puts its margin, the angle between test
embeddings and their class centre (the Noisy-ArcMix paper's "angle distribution" figure), and embedding maps.

Used by notebooks 03 and 04. Every function takes data (numpy arrays, DataFrames, a run folder; shapes in the
docstrings) and an optional ``ax``/``axes``, computes through :mod:`asdlib` (never a second implementation of the
margin), and returns the matplotlib Axes or Figure. :class:`LiveCurves` is an ``on_epoch`` callback.
"""
from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from pathlib import Path

import matplotlib.pyplot as plt
import numpy as np
import pandas as pd
import torch
from matplotlib.axes import Axes
from matplotlib.colors import to_rgb
from matplotlib.figure import Figure
from matplotlib.patches import FancyBboxPatch, Patch
from matplotlib.ticker import MaxNLocator

from asdlib.nn.frontends import N_MELS, SAMPLE_RATE, clip_samples, num_frames
from asdlib.nn.heads import arcface_logits
from asdlib.teaching.plots import LABEL_COLORS, MACHINE_COLORS

_MAPS = {  # channel -> (name, front end, colour)
    "sgram": ("Sgram", "STFT → mel → log\n(no parameters)", "#4C72B0"),
    "tgram": ("Tgram", "TgramNet: Conv1d(k 1024, s 512)\n+ 3 × [LayerNorm,\nLeakyReLU, Conv1d]", "#DD8452"),
    "tagram": ("TAgram", "temporal attention\nσ(max_f X + mean_f X) · X\n(no parameters)", "#55A868"),
    "sasgram": ("SASgram", "spectral Transformer\n6 layers over mel rows", "#8172B3"),
}


def _axes(ax: Axes | None, figsize: tuple[float, float]) -> Axes:
    return ax if ax is not None else plt.subplots(figsize=figsize)[1]


# ------------------------------------------------------------------------------------- architecture
def _box(ax: Axes, x: float, y: float, text: str, color: str, *, width: float = 2.0) -> None:
    ax.add_patch(FancyBboxPatch((x - width / 2, y - 0.38), width, 0.76, boxstyle="round,pad=0.04",
                                fc=(*to_rgb(color), 0.18), ec=color, lw=1.5))
    ax.text(x, y, text, ha="center", va="center", fontsize=8)


def _arrow(ax: Axes, start: tuple[float, float], end: tuple[float, float]) -> None:
    ax.annotate("", xy=end, xytext=start, arrowprops={"arrowstyle": "->", "lw": 1.2, "color": "0.3"})


def plot_architecture(channels: Sequence[str], *, name: str = "", seconds: float = 10.0,
                      head: str = "arcface", ax: Axes | None = None) -> Axes:
    """Diagram of the input fusion: raw wave → one front end per channel → stacked maps → MobileFaceNet → head.

    ``channels`` in stacking order, e.g. ``("sgram", "tgram")`` (STgram-MFN) or ``("tgram", "sgram", "tagram")``
    (TASTgram-MFN; ``asdlib.nn.models.build_model(...).channels``). Shapes are written for clips of ``seconds``.
    """
    ax = _axes(ax, (13, 1.3 + 1.1 * len(channels)))
    f, t = N_MELS, num_frames(clip_samples(seconds))
    rows = {c: (len(channels) - 1) / 2 - i for i, c in enumerate(channels)}  # y position of each channel
    _box(ax, 0, 0, f"raw wave\n(B, L = {clip_samples(seconds)})", "0.4", width=1.5)
    for c, y in rows.items():
        label, front, color = _MAPS[c]
        if c in ("tagram", "sasgram"):  # computed from the Sgram, not from the wave
            _arrow(ax, (4.0, rows["sgram"] - 0.42), (3.0, y + 0.42))
        else:
            _arrow(ax, (0.75, 0), (1.35, y))
        _box(ax, 2.3, y, front, color)
        _arrow(ax, (3.25, y), (3.55, y))
        _box(ax, 4.2, y, f"{label}\n(B, {f}, {t})", color, width=1.2)
        _arrow(ax, (4.8, y), (5.45, 0))
    order = ", ".join(_MAPS[c][0] for c in channels)
    _box(ax, 6.3, 0, f"stack channels\n[{order}]\n(B, {len(channels)}, {f}, {t})", "0.4", width=1.7)
    _arrow(ax, (7.15, 0), (7.55, 0))
    _box(ax, 8.5, 0, "MobileFaceNet\nbottlenecks + GDC\nembedding (B, 128)", "#C44E52", width=1.8)
    _arrow(ax, (9.4, 0), (9.75, 0))
    head_text = "ArcFace head\nmargin m on true ID\nlogits (B, 41)" if head == "arcface" else \
        "softmax head\nLinear(128 → 41)\nlogits (B, 41)"
    _box(ax, 10.65, 0, head_text, "#937860", width=1.7)
    ax.set(xlim=(-0.9, 11.6), ylim=(min(rows.values()) - 0.6, max(rows.values()) + 0.6), title=name)
    ax.axis("off")
    return ax


# ------------------------------------------------------------------------------------ learning curves
def history_frame(history) -> pd.DataFrame:
    """A history as a DataFrame: from a run folder (its ``history.csv``), a CSV path, a list of dicts or a frame."""
    if isinstance(history, pd.DataFrame):
        return history
    if isinstance(history, (str, Path)):
        path = Path(history)
        path = path / "history.csv" if path.is_dir() else path
        if not path.is_file():
            raise FileNotFoundError(f"{path} not found: train the run first (asdlib.teaching.notebook.ensure_run)")
        return pd.read_csv(path)
    return pd.DataFrame(list(history))


def _uses_mixup(history) -> bool | None:
    """Whether a run trained on mixed clips, from the ``config.yaml`` beside its history; None if unknown."""
    if not isinstance(history, (str, Path)):
        return None
    path = Path(history)
    config = (path if path.is_dir() else path.parent) / "config.yaml"
    if not config.is_file():
        return None
    from asdlib.training.config import RunConfig
    from asdlib.training.losses import get_loss

    return get_loss(RunConfig.from_yaml(config).loss.name).uses_mixup


def accuracy_floor(histories) -> float:
    """One lower end (%) for the accuracy panels of several runs: the lowest accuracy any of them recorded, rounded
    down to 10 and at most 90, as :func:`plot_history` would pick for the worst of them alone."""
    frames = [history_frame(h) for h in histories]
    lowest = min(100 * f[[c for c in ("acc", "val_acc") if c in f]].min().min() for f in frames)
    return min(10 * np.floor(lowest / 10), 90.0)


def plot_history(history, *, title: str = "", axes: Sequence[Axes] | None = None, mixup: bool | None = None,
                 auc_ylim: tuple[float, float] | None = None, acc_low: float | None = None) -> Figure:
    """Learning curves: loss (train, validation), accuracy (training, and clean validation if recorded), and the
    test AUC/pAUC if recorded.

    The loss is drawn on a log scale, so that a late fall, and a training loss far below the validation loss,
    stay visible. ``mixup`` says whether the run trained on mixed clips, which the training curves' labels then say; by
    default it is read from the ``config.yaml`` of a run folder, and left unsaid when unknown. ``auc_ylim``
    (in %) fixes the AUC panel's range and ``acc_low`` (in %) the accuracy panel's lower end, so that the panels of
    two runs can be compared by eye (:func:`accuracy_floor` picks one for several histories). The dotted line
    marks the epoch the honest selection keeps (lowest validation loss). The test AUC is drawn for information
    only: it is never used to pick the checkpoint.
    """
    h = history_frame(history)
    mixup = _uses_mixup(history) if mixup is None else mixup
    clips = {True: " (on mixed clips)", False: " (on clean clips)", None: ""}[mixup]
    has_test = "test_auc" in h and h["test_auc"].notna().any()
    axes = axes if axes is not None else plt.subplots(1, 3 if has_test else 2, figsize=(13, 3.4))[1]
    axes[0].plot(h.epoch, h.loss, "o-", label="training loss" + {True: " (with mixup)", False: "",
                                                                   None: " (as trained)"}[mixup])
    axes[0].plot(h.epoch, h.val_loss, "s-", label="validation loss (held-out normal clips)")
    axes[0].set(xlabel="epoch", ylabel="cross-entropy (nats)", title="loss (log scale)", yscale="log")
    axes[1].plot(h.epoch, 100 * h.acc, "o-", color="C2", label="training" + clips)
    if "val_acc" in h and h["val_acc"].notna().any():
        axes[1].plot(h.epoch, 100 * h.val_acc, "s-", color="C3", label="validation (clean held-out clips)")
    axes[1].set(xlabel="epoch", ylabel="accuracy (%)", title="machine-ID accuracy")
    low = min(axes[1].get_ylim()[0], 90.0) if acc_low is None else acc_low
    axes[1].set_ylim(low, 100 + 0.35 * (100 - low))  # headroom above 100 %: the legend sits over no curve
    axes[1].set_yticks([t for t in axes[1].get_yticks() if low <= t <= 100])
    axes[1].legend(fontsize=7, loc="upper left")
    if has_test:
        t = h.dropna(subset=["test_auc"])
        axes[2].plot(t.epoch, 100 * t.test_auc, "o--", color="0.4", label="AUC")
        axes[2].plot(t.epoch, 100 * t.test_pauc, "s:", color="0.6", label="pAUC")
        axes[2].set(xlabel="epoch", ylabel="%", title="test AUC / pAUC (information only,\nnever for selection)")
        if auc_ylim is not None:
            axes[2].set_ylim(*auc_ylim)
        axes[2].legend(fontsize=8)
    kept = ""
    if h.val_loss.notna().any():
        best = int(h.epoch[h.val_loss.idxmin()])
        for ax in axes:
            ax.axvline(best, color="k", ls=":", lw=1)
        kept = f" (dotted: the kept checkpoint, epoch {best}, lowest validation loss)"
    axes[0].legend(fontsize=7)
    for ax in axes:
        ax.xaxis.set_major_locator(MaxNLocator(integer=True))
    fig = axes[0].figure
    fig.suptitle(title + kept)
    return fig


def _in_kernel() -> bool:
    """True inside a Jupyter/IPython kernel (JupyterLab, Colab, nbclient), where displays can be updated."""
    try:
        from IPython import get_ipython
    except ImportError:
        return False
    shell = get_ipython()
    return shell is not None and hasattr(shell, "kernel")


class LiveCurves:
    """An ``on_epoch`` callback: prints one line per epoch and, in a notebook, redraws :func:`plot_history`.

    ``ensure_run(name, on_epoch=LiveCurves(title))``. Outside a kernel (a script, a terminal) only the lines are
    printed; :meth:`figure` draws the final curves. ``rows`` keeps the history received so far; ``mixup`` labels
    the training curves as on mixed clips (see :func:`plot_history`).
    """

    def __init__(self, title: str = "", *, live: bool | None = None, mixup: bool | None = None):
        self.title, self.rows, self._handle, self.mixup = title, [], None, mixup
        self.live = _in_kernel() if live is None else live

    def __call__(self, row: Mapping) -> None:
        self.rows.append(dict(row))
        test = f"  test AUC {100 * row['test_auc']:.1f} % (not used)" if "test_auc" in row else ""
        val_acc = f"  val acc {100 * row['val_acc']:.1f} %" if "val_acc" in row else ""
        print(f"epoch {row['epoch']}: loss {row['loss']:.3f}  acc {100 * row['acc']:.1f} %  "
              f"val loss {row['val_loss']:.3f}{val_acc}{test}")
        if self.live:
            from IPython.display import display

            fig = self.figure()
            if self._handle is None:
                self._handle = display(fig, display_id=True)
            else:
                self._handle.update(fig)
            plt.close(fig)

    def figure(self) -> Figure:
        """The curves of the epochs seen so far."""
        return plot_history(self.rows, title=self.title, mixup=self.mixup)


# ----------------------------------------------------------------------------------- ArcFace geometry
def _toy_logits(phi_deg: np.ndarray, centres_deg: Sequence[float], target: int, *, m: float,
                s: float) -> torch.Tensor:
    """Logits of unit 2-D embeddings at angles ``phi`` (N,) against centres (K,), margin on ``target``."""
    cosine = torch.cos(torch.deg2rad(torch.as_tensor(phi_deg, dtype=torch.float64)[:, None]
                                     - torch.as_tensor(centres_deg, dtype=torch.float64)[None]))  # (N, K)
    return arcface_logits(cosine, torch.full((len(phi_deg),), target), m=m, s=s)


def plot_arcface_toy(centres_deg: Sequence[float], *, m: float = 0.7, s: float = 30.0,
                     points_deg: np.ndarray | None = None, point_labels: np.ndarray | None = None,
                     ax: Axes | None = None) -> Axes:
    """Unit-circle embeddings (D = 2) and K class centres: decision regions without a margin (outer ring) and
    the narrower arcs where a class still wins *with* its margin m (inner ring; logits by ``arcface_logits``).

    ``points_deg`` (N,) embedding angles with ``point_labels`` (N,) classes are drawn on the circle.
    """
    ax = _axes(ax, (5, 5))
    phi = np.linspace(0, 360, 1441)
    colors = _palette(len(centres_deg))
    plain = _toy_logits(phi, centres_deg, 0, m=0.0, s=s).argmax(1).numpy()
    for k, centre in enumerate(centres_deg):
        wins = (_toy_logits(phi, centres_deg, k, m=m, s=s).argmax(1) == k).numpy()
        rad = np.deg2rad(phi)
        ax.scatter(1.18 * np.cos(rad[plain == k]), 1.18 * np.sin(rad[plain == k]), s=4, color=colors[k])
        ax.scatter(0.82 * np.cos(rad[wins]), 0.82 * np.sin(rad[wins]), s=4, color=colors[k])
        ax.annotate("", xy=(np.cos(np.deg2rad(centre)), np.sin(np.deg2rad(centre))), xytext=(0, 0),
                    arrowprops={"arrowstyle": "-|>", "lw": 2, "color": colors[k]})
        ax.text(1.38 * np.cos(np.deg2rad(centre)), 1.38 * np.sin(np.deg2rad(centre)), f"$W_{k}$",
                ha="center", va="center", color=colors[k])
    ax.add_patch(plt.Circle((0, 0), 1, fill=False, color="0.6"))
    if points_deg is not None:
        rad, labels = np.deg2rad(np.asarray(points_deg)), np.asarray(point_labels)
        ax.scatter(np.cos(rad), np.sin(rad), c=[colors[k] for k in labels], edgecolors="k", s=30, zorder=3)
    ax.set(xlim=(-1.6, 1.6), ylim=(-1.6, 1.6), aspect="equal", xticks=[], yticks=[],
           title=f"ArcFace on the unit circle (D = 2, K = {len(centres_deg)})")
    ax.set_xlabel(f"outer ring: class regions without margin\ninner ring: where the class still wins with its "
                  f"margin m = {m:g} ({math.degrees(m):.0f}°)", fontsize=8)
    return ax


def _palette(n: int) -> list[tuple[float, float, float]]:
    import seaborn as sns

    return sns.color_palette("deep", n)


def plot_target_logit(*, m: float = 0.7, s: float = 30.0, ax: Axes | None = None) -> Axes:
    """The target-class logit against θ: s·cos θ (no margin) vs ArcFace's s·cos(θ + m) and its fallback s·(cos θ − m·sin m)."""
    ax = _axes(ax, (5, 3.5))
    theta = np.linspace(0, 180, 721)
    plain = _toy_logits(theta, [0.0], 0, m=0.0, s=s)[:, 0].numpy()
    margin = _toy_logits(theta, [0.0], 0, m=m, s=s)[:, 0].numpy()
    ax.plot(theta, plain, label="s·cos θ (other classes, or m = 0)")
    ax.plot(theta, margin, label=f"ArcFace target logit, m = {m:g}")
    ax.axvline(180 - math.degrees(m), color="0.5", ls=":", label="θ = π − m: fallback cos θ − m·sin m beyond")
    ax.set(xlabel="θ, angle to the class centre (degrees)", ylabel="logit", title=f"s = {s:g}")
    ax.legend(fontsize=8)
    return ax


# ---------------------------------------------------------------------------------- mixup and margins
def plot_mixup(mel_a, mel_b, mixed, lam: float, *, names: Sequence[str] = ("clip a", "clip b"),
               sr: int = SAMPLE_RATE, hop_length: int = 512) -> Figure:
    """The log-mels ``(F, T)`` of a mixup pair and their mix ``λ·a + (1 − λ)·b``, on one colour scale (dB)."""
    maps = [np.asarray(x, dtype=float) for x in (mel_a, mel_b, mixed)]
    lo, hi = min(np.percentile(x, 1) for x in maps), max(x.max() for x in maps)
    fig, axes = plt.subplots(1, 3, figsize=(13, 3.2), sharey=True, layout="constrained")
    titles = [f"{names[0]} (target y_a)", f"{names[1]} (target y_b)", f"mixed: λ = {lam:.2f}"]
    for ax, x, title in zip(axes, maps, titles):
        image = ax.imshow(x, origin="lower", aspect="auto", vmin=lo, vmax=hi,
                          extent=(0, x.shape[1] * hop_length / sr, 0, x.shape[0]))
        ax.set(title=title, xlabel="time (s)")
        ax.grid(False)
    axes[0].set_ylabel("mel bin")
    fig.colorbar(image, ax=axes, label="dB", fraction=0.02)
    return fig


def plot_margin_placement(cos_a: float, cos_b: float, lam: float, *, m: float = 0.7, s: float = 30.0,
                          ax: Axes | None = None) -> Axes:
    """The logits of a mixed clip's two classes y_a, y_b in each term of ArcMix and Noisy-ArcMix.

    ``cos_a``, ``cos_b``: cos θ of the mixed embedding to the centres of y_a and y_b. Hatched bars carry the
    margin m (logits from ``arcface_logits``); "target" marks the class each cross-entropy term pulls towards.
    """
    ax = _axes(ax, (8, 3.4))
    cosine = torch.tensor([[cos_a, cos_b]], dtype=torch.float64)
    z = {c: arcface_logits(cosine, torch.tensor([c]), m=m, s=s)[0].numpy() for c in (0, 1)}  # margin on y_c
    terms = [("ArcMix, term a", z[0], 0, 0, lam), ("ArcMix, term b", z[1], 1, 1, 1 - lam),
             ("Noisy-ArcMix, term a", z[0], 0, 0, lam), ("Noisy-ArcMix, term b", z[0], 1, 0, 1 - lam)]
    colors = ("#4C72B0", "#DD8452")
    for i, (_, logits, target, margin_on, _) in enumerate(terms):
        for c in (0, 1):
            x = i + (c - 0.5) * 0.38
            ax.bar(x, logits[c], 0.36, color=colors[c], hatch="///" if c == margin_on else "", edgecolor="k", lw=0.6)
            if c == target:
                ax.annotate("target", (x, logits[c]), xytext=(0, 6 if logits[c] >= 0 else -12),
                            textcoords="offset points", ha="center", fontsize=8)
    ax.axhline(0, color="0.3", lw=0.8)
    ax.set_xticks(range(4), [f"{name}\nweight {w:.2f}" for name, *_, w in terms], fontsize=8)
    handles = [Patch(color=colors[0], label="logit of y_a"), Patch(color=colors[1], label="logit of y_b"),
               Patch(fc="w", ec="k", hatch="///", label=f"margin m = {m:g} applied")]
    ax.legend(handles=handles, fontsize=8, loc="center left", bbox_to_anchor=(1, 0.5))
    ax.set(ylabel="logit", title=f"where the margin lands (cos θ_a = {cos_a:.2f}, cos θ_b = {cos_b:.2f})")
    ax.margins(y=0.15)
    return ax


# ------------------------------------------------------------------------------- angles and embeddings
def plot_angle_histograms(scores: Mapping[str, pd.DataFrame], *, bins: int = 30,
                          axes: Sequence[Axes] | None = None) -> Figure:
    """Histograms of θ between each test embedding and its class centre, normal (blue) vs anomaly (orange).

    ``scores[name]`` has the columns ``angle`` (degrees) and ``label``, as a run's ``scores.csv``; one panel per
    run, on shared bins: the Noisy-ArcMix paper's "angle distribution" figure.
    """
    if axes is None:  # one shared y-axis, so that a taller peak means a denser cluster in every panel
        axes = plt.subplots(1, len(scores), figsize=(3.6 * len(scores), 3.3), squeeze=False, sharey=True)[1][0]
    top = max(float(t["angle"].max()) for t in scores.values())
    edges = np.linspace(0, 5 * math.ceil(max(top, 10) / 5), bins + 1)
    for ax, (name, table) in zip(axes, scores.items()):
        for label in ("normal", "anomaly"):
            angle = table["angle"][table["label"] == label]
            ax.hist(angle, bins=edges, density=True, alpha=0.55, color=LABEL_COLORS[label],
                    label=f"{label} (median {angle.median():.0f}°)")
        ax.set(title=name, xlabel="angle to its class centre θ_y (°)")
        ax.legend(fontsize=8)
    axes[0].set_ylabel("density")
    return axes[0].figure


def _id_colors(table: pd.DataFrame) -> list[tuple[float, float, float]]:
    """One colour per row: its machine type's colour, darker to lighter by machine ID."""
    colors = []
    for mtype, mid in zip(table["machine_type"], table["machine_id"]):
        ids = sorted(table.machine_id[table.machine_type == mtype].unique())
        f = ids.index(mid) / max(1, len(ids) - 1)
        base = np.array(to_rgb(MACHINE_COLORS.get(mtype, "0.5")))
        colors.append(tuple((1 - f) * 0.6 * base + f * (base + 0.55 * (1 - base))))
    return colors


def plot_embedding_maps(layouts: Mapping[str, np.ndarray], tables: Mapping[str, pd.DataFrame]) -> Figure:
    """2-D maps of test embeddings, one column per run (``layouts[name]`` ``(N, 2)``, rows as ``tables[name]``):
    top row the normal clips coloured by machine ID (shades of the machine type's colour), bottom row every
    clip, anomalies drawn first with small markers so that the normal clusters stay visible."""
    from matplotlib.lines import Line2D

    fig, axes = plt.subplots(2, len(layouts), figsize=(3.6 * len(layouts), 7.2), squeeze=False)
    for j, (name, xy) in enumerate(layouts.items()):
        table = tables[name]
        normal = (table["label"] == "normal").to_numpy()  # the clusters the IDs form: normal clips only
        axes[0, j].scatter(xy[normal, 0], xy[normal, 1], c=np.asarray(_id_colors(table))[normal], s=12)
        for label, size, alpha in (("anomaly", 5, 0.5), ("normal", 14, 0.9)):  # anomalies beneath, smaller
            sel = (table["label"] == label).to_numpy()
            axes[1, j].scatter(xy[sel, 0], xy[sel, 1], s=size, color=LABEL_COLORS[label], alpha=alpha, label=label)
        axes[0, j].set_title(name)
        for ax in axes[:, j]:
            ax.set(xticks=[], yticks=[])
    types = [t for t in MACHINE_COLORS if any(t in set(tb.machine_type) for tb in tables.values())]
    handles = [Line2D([], [], marker="o", ls="", color=MACHINE_COLORS[t], label=t) for t in types]
    axes[0, -1].legend(handles=handles, title="type (shade = ID)", fontsize=7, title_fontsize=7,
                       loc="center left", bbox_to_anchor=(1, 0.5))
    axes[1, -1].legend(fontsize=8, loc="center left", bbox_to_anchor=(1, 0.5))
    axes[0, 0].set_ylabel("normal clips by machine ID")
    axes[1, 0].set_ylabel("normal vs anomaly")
    return fig
