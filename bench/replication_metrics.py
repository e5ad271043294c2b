"""The Noisy-ArcMix paper's other half, measured on the shipped TASTgram-MFN reference runs (ArcFace and
Noisy-ArcMix, seed 0; the seed comparison uses all three seeds of each loss).

    python bench/replication_metrics.py                          # writes bench/results/replication_metrics_v2.md
    python bench/replication_metrics.py --data data/synth/default --no-train-angles

Reads the runs' ``scores.csv`` and ``history.csv`` (asdlib/reference_runs) and the dataset's ``clips.csv`` (the
anomaly kind of every clip). With the dataset present (generated with ``python -m asdlib synth`` if missing), it
also embeds the normal training clips, the held-out validation clips and the normal test clips with each run's
``best.pt`` (the split of the run's config), for the clean training-vs-held-out comparison; the recomputed test
angles are checked against the shipped ones.
"""
from __future__ import annotations

import argparse
import time
from pathlib import Path

import numpy as np
import pandas as pd
import torch

from asdlib.evaluation.angles import angle_compactness, angle_separation
from asdlib.evaluation.bootstrap import hierarchical_bootstrap
from asdlib.evaluation.kinds import auc_per_kind, kind_table, read_clips
from asdlib.evaluation.overfitting import angle_shift, overfitting_summary
from asdlib.teaching import pretrained
from asdlib.teaching.reproduce import default_data, ensure_reference_data

RESULTS = Path(__file__).resolve().parent / "results"
MODEL = "tastgram_mfn"
LOSSES = {"arcface": "ArcFace", "noisy_arcmix": "Noisy-ArcMix"}


def run_name(loss: str, seed: int = 0) -> str:
    return f"{MODEL}-{loss}-s{seed}"


def markdown(table: pd.DataFrame, digits: int = 2) -> str:
    """A plain Markdown table (no tabulate dependency)."""
    def cell(v):
        return f"{v:.{digits}f}" if isinstance(v, (float, np.floating)) else str(v)
    lines = ["| " + " | ".join(map(str, table.columns)) + " |", "|" + "---|" * len(table.columns)]
    lines += ["| " + " | ".join(cell(v) for v in row) + " |" for row in table.itertuples(index=False)]
    return "\n".join(lines) + "\n"


def check_dataset(data: Path) -> Path:
    """The reference runs' dataset (generator, size and seed of the registry), generated if missing."""
    import json

    run = pretrained.get(run_name("arcface"))
    manifest = data / "dataset.json"
    if manifest.is_file():
        info = json.loads(manifest.read_text())
        want = {k: run.dataset[k] for k in ("size", "seed", "n_train", "n_test_normal", "n_test_anomaly")}
        got = {k: info["params"].get(k) for k in want}
        if info.get("version") != run.dataset["generator_version"] or got != want:
            raise SystemExit(f"{data} holds generator v{info.get('version')} {got}, but the reference runs were "
                             f"trained on v{run.dataset['generator_version']} {want}: pass --data <that dataset>")
    return ensure_reference_data(run, data)


# ------------------------------------------------------------------------------------ sections
def seed_comparison(n_boot: int) -> pd.DataFrame:
    """Noisy-ArcMix − ArcFace over the three seeds of each loss: clip-only and seed-and-clip intervals."""
    runs = {loss: [pretrained.load_scores(run_name(loss, s)) for s in range(3)] for loss in LOSSES}
    table = hierarchical_bootstrap(runs, [("noisy_arcmix", "arcface")], n_boot=n_boot)
    points = table[["metric", "estimate", "low", "high", "seed_low", "seed_high", "seed_sd_a", "seed_sd_b"]].copy()
    points[points.columns[1:]] *= 100
    points["per-seed Noisy-ArcMix"] = [", ".join(f"{100 * v:.1f}" for v in t) for t in table.per_seed_a]
    points["per-seed ArcFace"] = [", ".join(f"{100 * v:.1f}" for v in t) for t in table.per_seed_b]
    return points.rename(columns={"seed_sd_a": "sd Noisy-ArcMix", "seed_sd_b": "sd ArcFace"})


def per_type_auc() -> pd.DataFrame:
    """AUC per machine type (%): seed 0 and the mean of three seeds, per loss."""
    cols = {}
    for loss, label in LOSSES.items():
        tables = [pretrained.load_table(run_name(loss, s)).set_index("machine_type").auc for s in range(3)]
        cols[f"{label} s0"] = 100 * tables[0]
        cols[f"{label} mean of 3"] = 100 * pd.concat(tables, axis=1).mean(axis=1)
    return pd.DataFrame(cols).reset_index()


def side_by_side(per_loss: dict[str, pd.DataFrame], columns: list[str]) -> pd.DataFrame:
    """Per-ID tables of both losses joined on (machine_type, machine_id), columns prefixed by the loss."""
    keyed = [t.set_index(["machine_type", "machine_id"])[columns].add_prefix(f"{LOSSES[loss]} ")
             for loss, t in per_loss.items()]
    return pd.concat(keyed, axis=1).reset_index()


def type_means(table: pd.DataFrame) -> pd.DataFrame:
    """Mean over the IDs of each type, plus an "Average" row over the types (as DCASE averages)."""
    types = table.drop(columns="machine_id").groupby("machine_type", sort=False).mean()
    return pd.concat([types, types.mean().to_frame("Average").T]).rename_axis("machine_type").reset_index()


def counts(arms: dict[str, pd.DataFrame]) -> list[str]:
    """Computed one-line findings: in how many IDs Noisy-ArcMix is tighter / more separated than ArcFace."""
    compact = side_by_side({k: angle_compactness(v) for k, v in arms.items()}, ["iqr", "sd", "median"])
    sep = side_by_side({k: angle_separation(v) for k, v in arms.items()}, ["gap", "separation"])
    n = len(compact)

    def fewer(frame, column, smaller=True):
        a, b = frame[f"Noisy-ArcMix {column}"], frame[f"ArcFace {column}"]
        return int(((a < b) if smaller else (a > b)).sum())
    return [f"- Noisy-ArcMix's normal angles have the smaller IQR in {fewer(compact, 'iqr')} of {n} IDs and the "
            f"smaller sd in {fewer(compact, 'sd')} of {n}; its normal median angle is larger in "
            f"{fewer(compact, 'median', False)} of {n} (the cluster sits further out).",
            f"- Its median gap is larger in {fewer(sep, 'gap', False)} of {n} IDs, its standardised separation "
            f"in {fewer(sep, 'separation', False)} of {n}.", ""]


@torch.inference_mode()
def clean_pass(model, cache, rows) -> pd.DataFrame:
    """One pass over ``rows`` of a cache: per clip its index columns, ``ce`` (cross-entropy with the margin on
    the true ID, the validation loss and anomaly score of asdlib), ``correct`` (margin-free argmax) and ``angle``."""
    from asdlib.evaluation.scoring import angle_to_centre, anomaly_score
    from asdlib.experiment import make_loader

    model.eval()
    parts = []
    for wave, labels, _ in make_loader(cache, rows, batch_size=64):
        logits, embedding = model(wave, labels)  # (B, K), (B, D)
        cosine = model.head.cosine(embedding)  # (B, K)
        parts.append(np.stack([anomaly_score(logits, labels).numpy(), (cosine.argmax(1) == labels).numpy(),
                               angle_to_centre(cosine, labels).numpy()], axis=1))
    table = cache.index.iloc[np.asarray(rows)].reset_index(drop=True).copy()
    table[["ce", "correct", "angle"]] = np.concatenate(parts)
    return table


def heldout_angles(name: str, data: Path) -> tuple[pd.DataFrame, float]:
    """Per clip of run ``name``'s training / validation / test split (its own split): ``clean_pass`` columns and
    ``split``; and the largest difference of the recomputed test angles from the shipped ones."""
    from asdlib.experiment import prepare_data

    cfg, model = pretrained.load_config(name), pretrained.load_model(name)
    cache, train_rows, val_rows, test_rows = prepare_data(data, cfg, progress=False)
    table = pd.concat([clean_pass(model, cache, rows).assign(split=split)
                       for split, rows in (("train", train_rows), ("val", val_rows), ("test", test_rows))],
                      ignore_index=True)
    shipped = pretrained.load_scores(name).set_index("file").angle
    test = table[table.split == "test"]
    files = [Path(p).resolve().relative_to(data.resolve()).as_posix() for p in test.path]
    drift = float(np.abs(test.angle.to_numpy() - shipped.loc[files].to_numpy()).max())
    return table, drift


def overfitting_section(data: Path, train_angles: bool) -> list[str]:
    lines = ["## Overfitting", "",
             "From `history.csv` (test AUC smoothed over 3 epochs; for information only): does detection fall "
             "while the validation loss keeps falling?", ""]
    rows = [{"run": run_name(loss), **overfitting_summary(pretrained.load_history(run_name(loss)))} for loss in LOSSES]
    lines += [markdown(pd.DataFrame(rows), 4), ""]
    if not train_angles:
        return lines + ["(Training-clip angles not computed: run without `--no-train-angles`.)", ""]
    clean_rows, shifts = [], {}
    for loss in LOSSES:
        start = time.perf_counter()
        table, drift = heldout_angles(run_name(loss), data)
        angles = table[table.label == "normal"]
        shifts[loss] = angle_shift(angles)
        for split, clips in angles.groupby("split", sort=False):
            clean_rows.append({"run": run_name(loss), "clips": split, "n": len(clips), "clean CE": clips.ce.mean(),
                               "accuracy": clips.correct.mean(), "median angle (°)": clips.angle.median()})
        print(f"{run_name(loss)}: embedded in {time.perf_counter() - start:.0f} s; test angles differ from the "
              f"shipped ones by at most {drift:.2g}°")
        lines.append(f"- {run_name(loss)}: recomputed test angles match the shipped ones to {drift:.1g}°.")
    lines += ["", "Normal clips of the 20 training IDs' own split (`train`: trained on; `val`: held out from "
              "training, the same recordings' distribution; `test`: the normal test clips of the 11 development "
              "IDs), with the selected checkpoint, clean (no mixup), margin on the true ID:", "",
              markdown(pd.DataFrame(clean_rows), 3), "",
              "Per ID, median angle of held-out minus training normal clips (°), mean over the IDs of a type:", ""]
    cols = ["val_minus_train", "test_minus_train"]
    both = side_by_side(shifts, cols)
    return lines + [markdown(type_means(both)), ""]


def report(data: Path, n_boot: int, *, train_angles: bool = True) -> str:
    arms = {loss: pretrained.load_scores(run_name(loss)) for loss in LOSSES}
    clips = read_clips(data)
    lines = ["# The paper's other half: per-run metrics of the reference runs (generator v2)", "",
             "Generated by `python bench/replication_metrics.py` from the shipped TASTgram-MFN reference runs "
             "(`asdlib/reference_runs/`), trained on the default procedural dataset of **generator version 2** "
             "(three types, 20 training IDs, 1-s excerpts, 15 epochs; see `configs/reference/`). "
             "Angles are θ_y, degrees between a clip's embedding and its machine ID's class centre. "
             "Seed 0 unless said otherwise.", "",
             "## Noisy-ArcMix − ArcFace over three seeds (percentage points)", "",
             "`low`–`high`: paired, ID-stratified bootstrap over test clips only; `seed_low`–`seed_high`: "
             "hierarchical bootstrap (seeds of each loss redrawn, then clips); sd: seed-to-seed (ddof 1).", "",
             markdown(seed_comparison(n_boot)), "",
             "With three seeds per loss the seed redraws are coarse (a percentile bootstrap of n values spreads "
             "(n − 1)/n of their variance), so the seed-and-clip interval is, if anything, too narrow.", "",
             "## AUC per machine type (%)", "", markdown(per_type_auc()), "",
             "## Compactness of the normal angles per ID (°)", "", *counts(arms),
             markdown(side_by_side({k: angle_compactness(v) for k, v in arms.items()}, ["median", "iqr", "sd"])), "",
             "Mean over the IDs of each type:", "",
             markdown(type_means(side_by_side({k: angle_compactness(v) for k, v in arms.items()}, ["iqr", "sd"]))),
             "", "## Standardised separation of anomalous from normal angles per ID", "",
             "separation = (median anomalous − median normal) / pooled robust spread (IQR / 1.349 per group, "
             "pooled with weights n − 1); gap in degrees.", "",
             markdown(side_by_side({k: angle_separation(v) for k, v in arms.items()}, ["gap", "spread", "separation"])),
             "", "Mean over the IDs of each type:", "",
             markdown(type_means(side_by_side({k: angle_separation(v) for k, v in arms.items()},
                                              ["gap", "separation"]))), ""]
    kinds = {k: kind_table(auc_per_kind(v, clips)) for k, v in arms.items()}
    joined = pd.concat([t.set_index(["machine_type", "kind"])[["auc"]].mul(100).add_prefix(f"{LOSSES[k]} ")
                        for k, t in kinds.items()], axis=1)
    joined.insert(0, "anomalous clips", kinds["arcface"].set_index(["machine_type", "kind"]).n_anomaly)
    joined["Noisy-ArcMix − ArcFace"] = joined.iloc[:, 2] - joined.iloc[:, 1]
    lines += ["## AUC per anomaly kind (%)", "",
              "Each kind's anomalous clips against all normal clips of their ID, mean over IDs "
              "(kinds from the dataset's `clips.csv`).", "", markdown(joined.reset_index(), 1), ""]
    return "\n".join(lines + overfitting_section(data, train_angles))


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--data", type=Path, default=default_data(), help="the runs' dataset")
    p.add_argument("--no-train-angles", action="store_true", help="skip embedding the training clips")
    p.add_argument("--n-boot", type=int, default=2000)
    p.add_argument("--out", type=Path, default=RESULTS / "replication_metrics_v2.md")
    args = p.parse_args()
    torch.set_num_threads(2)
    data = check_dataset(args.data)
    text = report(data, args.n_boot, train_angles=not args.no_train_angles)
    args.out.write_text(text)
    print(f"wrote {args.out}")


if __name__ == "__main__":
    main()
