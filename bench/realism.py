"""How close the procedural clips are to real DCASE2020 recordings, per machine type.

Compares normal procedural clips (development IDs) with the real normal clips in
``../shared/real_samples/dcase2020_dev/<type>/test`` (read here only; never copied): the long-term average
log-mel spectrum (128 mels, n_fft 1024, hop 512, dB) after removing the level offset (target: mean absolute
difference <= 3 dB) and the median RMS level (target: within 6 dB). Prints a table and one JSON line, appends
the line to ``bench/results/realism.jsonl`` and saves ``realism.png`` (real vs procedural spectra) and
``synth_examples.png`` (a normal and an anomalous log-mel per type). With ``--baseline`` it also scores the
``default``-size test clips (the dataset's own clip seeds, in memory) with the per-ID Gaussian baseline and
reports the per-type AUC (mean over development IDs).

    python bench/realism.py [--per-id 4] [--seconds 10] [--seed 0] [--shared ../shared] [--baseline]
"""
from __future__ import annotations

import argparse
import os
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
import soundfile as sf  # noqa: E402
import torch  # noqa: E402
from common import REPO, RESULTS, emit, machine_info  # noqa: E402

from sklearn.metrics import roc_auc_score  # noqa: E402

from asdlib.evaluation.baseline import GaussianBaseline, clip_features, log_mel, ltas_db, rms_dbfs  # noqa: E402
from asdlib.data.dcase import DEV_IDS, MACHINE_TYPES  # noqa: E402
from asdlib.data.synth import SIZES, clip_rng, synth_clip  # noqa: E402


def real_clips(real_dir: Path, machine_type: str, label: str = "normal") -> list[np.ndarray]:
    """The real clips of one type and label, as float32 waves."""
    return [sf.read(p, dtype="float32")[0] for p in sorted((real_dir / machine_type / "test").glob(f"{label}_*.wav"))]


def synth_clips(machine_type: str, *, per_id: int, seconds: float, seed: int, label: str = "normal"):
    """``per_id`` procedural clips for each development ID (clip seeds distinct from the dataset's)."""
    return [synth_clip(machine_type, i, label=label, seconds=seconds, seed=seed,
                       rng=clip_rng(seed, machine_type, i, 9, k)) for i in DEV_IDS[machine_type] for k in range(per_id)]


def compare(real: list[np.ndarray], ours: list[np.ndarray]) -> tuple[dict, tuple]:
    """LTAS shape difference (dB, level offset removed) and median RMS levels (dBFS)."""
    a, b = ltas_db(real), ltas_db(ours)
    diff = b - a
    return dict(ltas_diff_db=float(np.mean(np.abs(diff - diff.mean()))),
                rms_real_dbfs=float(np.median([rms_dbfs(x) for x in real])),
                rms_ours_dbfs=float(np.median([rms_dbfs(x) for x in ours]))), (a, b)


def baseline_auc(machine_type: str, *, size: str = "default", seed: int = 0) -> float:
    """Gaussian-baseline AUC of one type on a size's clips (mean over development IDs), rendered in memory."""
    sz = SIZES[size]

    def features(i, split, label, n):
        return [clip_features(synth_clip(machine_type, i, label=label, seconds=sz.seconds, seed=seed,
                                         rng=clip_rng(seed, machine_type, i, split, label == "anomaly", k)))
                for k in range(n)]
    aucs = []
    for i in DEV_IDS[machine_type]:
        model = GaussianBaseline().fit(features(i, 0, "normal", sz.n_train), [i] * sz.n_train)
        x = features(i, 1, "normal", sz.n_test_normal) + features(i, 1, "anomaly", sz.n_test_anomaly)
        y = [0] * sz.n_test_normal + [1] * sz.n_test_anomaly
        aucs.append(roc_auc_score(y, model.score(np.stack(x), [i] * len(x))))
    return float(np.mean(aucs))


def plot_ltas(curves: dict, path: Path) -> None:
    fig, axes = plt.subplots(2, 3, figsize=(13, 6.5), sharex=True)
    for ax, (t, (a, b, m)) in zip(axes.ravel(), curves.items()):
        off = np.mean(a - b)
        ax.plot(a, label="real (normal)", color="k")
        ax.plot(b + off, label="procedural (normal, level-matched)", color="tab:orange")
        ax.set_title(f"{t}: |diff| {m['ltas_diff_db']:.1f} dB, level {m['rms_ours_dbfs']:.1f} vs "
                     f"{m['rms_real_dbfs']:.1f} dBFS", fontsize=9)
        ax.set_xlabel("mel bin")
        ax.set_ylabel("dB")
    axes[0, 0].legend(fontsize=8)
    fig.suptitle("Long-term average log-mel spectrum: real DCASE2020 vs procedural")
    fig.tight_layout()
    fig.savefig(path, dpi=80)
    plt.close(fig)


def plot_examples(path: Path, *, seconds: float, seed: int) -> None:
    """A normal and an anomalous procedural log-mel per type (listening by numbers)."""
    fig, axes = plt.subplots(6, 2, figsize=(12, 14))
    for row, t in zip(axes, MACHINE_TYPES):
        i = DEV_IDS[t][0]
        for ax, label in zip(row, ("normal", "anomaly")):
            rng = clip_rng(seed, t, i, 11, label == "anomaly")
            m = log_mel(synth_clip(t, i, label=label, seconds=seconds, seed=seed, rng=rng))
            ax.imshow(m, origin="lower", aspect="auto", vmin=m.max() - 70, vmax=m.max(), cmap="magma")
            ax.set_title(f"{t} id_{i:02d} {label}", fontsize=9)
            ax.set_ylabel("mel bin")
    fig.tight_layout()
    fig.savefig(path, dpi=55)
    plt.close(fig)


def main(argv=None) -> dict:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--per-id", type=int, default=4)
    p.add_argument("--seconds", type=float, default=10.0)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--shared", default=os.environ.get("ASD_SHARED", str(REPO.parent / "shared")))
    p.add_argument("--baseline", action="store_true", help="also the Gaussian-baseline AUC at the default size")
    p.add_argument("--no-save", action="store_true", help="print only; write nothing under bench/results")
    args = p.parse_args(argv)
    real_dir = Path(args.shared) / "real_samples" / "dcase2020_dev"
    if not real_dir.is_dir():
        raise SystemExit(f"{real_dir} not found: pass --shared or set ASD_SHARED")
    results, curves = {}, {}
    print(f"{'type':12s} {'LTAS |diff| dB':>15s} {'RMS real':>9s} {'RMS ours':>9s}   (targets: <= 3 dB, <= 6 dB)")
    for t in MACHINE_TYPES:
        m, (a, b) = compare(real_clips(real_dir, t), synth_clips(t, per_id=args.per_id, seconds=args.seconds,
                                                                 seed=args.seed))
        if args.baseline:
            m["baseline_auc_default"] = baseline_auc(t, seed=args.seed)
        results[t], curves[t] = {k: round(v, 3) for k, v in m.items()}, (a, b, m)
        ok = m["ltas_diff_db"] <= 3 and abs(m["rms_ours_dbfs"] - m["rms_real_dbfs"]) <= 6
        auc = f"   baseline AUC {m['baseline_auc_default']:.3f}" if args.baseline else ""
        print(f"{t:12s} {m['ltas_diff_db']:15.2f} {m['rms_real_dbfs']:9.1f} {m['rms_ours_dbfs']:9.1f}   "
              f"{'ok' if ok else 'OFF TARGET'}{auc}")
    line = dict(bench="realism", seconds=args.seconds, per_id=args.per_id, seed=args.seed, types=results,
                **machine_info(torch.device("cpu")))
    emit("realism", line, save=not args.no_save)
    if not args.no_save:
        plot_ltas(curves, RESULTS / "realism.png")
        plot_examples(RESULTS / "synth_examples.png", seconds=min(args.seconds, 5.0), seed=args.seed)
    return line


if __name__ == "__main__":
    main()
