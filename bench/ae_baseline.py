"""The DCASE2020 autoencoder baseline on a procedural dataset, beside its published run on the real data.

Trains one autoencoder per machine type with the published recipe (:mod:`asdlib.training.autoencoder`), scores
the test clips, and writes a Markdown report: per type our AUC/pAUC next to the published ones (the baseline's
README), the Spearman rank correlation of the six types' AUCs, the command, the time and the machine. The
per-epoch losses, scores and DCASE tables stay in ``--out`` (git-ignored).

    python bench/ae_baseline.py [--data data/synth/default] [--out data/runs/ae_baseline] [--epochs 100]
                                [--threads 1] [--report bench/results/ae_baseline_v2.md]
"""
from __future__ import annotations

import argparse
import json
import os
import shlex
import sys
import time
from pathlib import Path

import numpy as np
import pandas as pd
import torch
from common import REPO, cpu_model, git_commit  # noqa: E402
from scipy.stats import spearmanr

from asdlib.data.index import index_dataset
from asdlib.evaluation.autoencoder import autoencoder_scores, published_autoencoder, write_results
from asdlib.evaluation.metrics import AVERAGE, per_id_table, summary_table
from asdlib.training.autoencoder import AERecipe, fit_autoencoders


def comparison(ours, published) -> tuple[list[str], float]:
    """Markdown rows (type, our AUC/pAUC, published AUC/pAUC, ranks) and the Spearman ρ of the AUCs."""
    ours, published = ours.set_index("machine_type"), published.set_index("machine_type")
    types = [t for t in published.index if t != AVERAGE and t in ours.index]
    rank_ours = ours.loc[types, "auc"].rank(ascending=False, method="min")
    rank_pub = published.loc[types, "auc"].rank(ascending=False, method="min")
    rows = [f"| {t} | {100 * ours.at[t, 'auc']:.2f} | {100 * ours.at[t, 'pauc']:.2f} | "
            f"{100 * published.at[t, 'auc']:.2f} | {100 * published.at[t, 'pauc']:.2f} | "
            f"{rank_ours[t]:.0f} | {rank_pub[t]:.0f} |" for t in types]
    rows.append(f"| **{AVERAGE}** | **{100 * ours.loc[types, 'auc'].mean():.2f}** | "
                f"**{100 * ours.loc[types, 'pauc'].mean():.2f}** | **{100 * published.loc[types, 'auc'].mean():.2f}**"
                f" | **{100 * published.loc[types, 'pauc'].mean():.2f}** | | |")
    rho = spearmanr(ours.loc[types, "auc"], published.loc[types, "auc"]).statistic
    return rows, float(rho)


def spearman_interval(scores, published, *, n_boot: int = 1000, seed: int = 0) -> tuple[float, float]:
    """95 % bootstrap interval of the Spearman ρ: the test clips resampled within each (type, ID, label)."""
    rng = np.random.default_rng(seed)
    pub = published.set_index("machine_type")["auc"]
    groups = [(key, g) for key, g in scores.groupby(["machine_type", "machine_id", "label"])]
    rhos = []
    for _ in range(n_boot):
        sample = pd.concat([g.iloc[rng.integers(0, len(g), len(g))] for _, g in groups])
        ours = summary_table(per_id_table(sample)).set_index("machine_type")["auc"].drop(AVERAGE)
        rhos.append(spearmanr(ours, pub.loc[ours.index]).statistic)
    low, high = np.percentile(rhos, [2.5, 97.5])
    return float(low), float(high)


def convergence(recipe_json: dict) -> list[str]:
    """Markdown rows: per type the clips, vectors, seconds and the losses at a few epochs (is it trained enough?)."""
    rows = ["| type | clips | vectors | seconds | loss, epoch 1 → last | val_loss at 25 % / 50 % / 100 % of the epochs |",
            "|---|---|---|---|---|---|"]
    for t, info in recipe_json["machine_types"].items():
        h = info["history"]
        val = " / ".join(f"{h[max(0, round(f * len(h)) - 1)]['val_loss']:.1f}" for f in (0.25, 0.5, 1.0))
        rows.append(f"| {t} | {info['clips']} | {info['vectors']} | {info['seconds']:.0f} | "
                    f"{h[0]['loss']:.1f} → {h[-1]['loss']:.1f} | {val} |")
    return rows


def report(args, scores, minutes: float, cpu_minutes: float, manifest: dict, recipe_json: dict) -> str:
    published = summary_table(published_autoencoder())
    rows, rho = comparison(summary_table(per_id_table(scores)), published)
    low, high = spearman_interval(scores, published)
    params, recipe = manifest.get("params", {}), recipe_json["recipe"]
    nice = f"nice -n {os.nice(0)} " if os.nice(0) else ""
    command = f"{nice}.venv/bin/python " + shlex.join(["bench/ae_baseline.py", *sys.argv[1:]])
    return "\n".join([
        f"# DCASE2020 autoencoder baseline on the procedural data (generator version {manifest.get('version')})",
        "",
        "The official DCASE2020 Task 2 baseline (dense autoencoder on 5-frame log-mel stacks, Koizumi et al., DCASE "
        "2020 workshop; `dcase2020_task2_baseline`), as `asdlib.nn.autoencoder` / `asdlib.training.autoencoder` "
        "implement it, trained per machine type on the development IDs' training clips of "
        f"`{args.data}` (size `{params.get('size')}`, seed {params.get('seed')}, {params.get('seconds')}-s clips, "
        f"{params.get('n_train')} training clips per ID) and scored on its test clips. Published: the baseline's "
        "README (real development set, 10-s clips, 1000 training clips per ID).",
        "",
        "| type | AUC ours | pAUC ours | AUC published | pAUC published | rank ours | rank published |",
        "|---|---|---|---|---|---|---|",
        *rows,
        "",
        f"Spearman rank correlation of the six types' AUCs, ours vs published: **ρ = {rho:.2f}** (95 % bootstrap "
        f"interval {low:.2f} to {high:.2f}, test clips resampled within each ID and label, 1000 times).",
        "",
        f"- Recipe: {recipe['epochs']} epochs, batch {recipe['batch_size']}, Adam lr {recipe['lr']}, MSE, "
        f"validation split {recipe['validation_split']} (the tail, as Keras), seed {recipe['seed']}.",
        f"- Command: `{command}`",
        f"- Time: {minutes:.1f} min wall, {cpu_minutes:.1f} min CPU (features, training and scoring, all six types), "
        f"{args.threads} torch "
        f"thread(s), on a shared machine (load average {os.getloadavg()[0]:.1f} at the end).",
        f"- Machine: {cpu_model()}, {torch.get_num_threads()} of its CPUs to torch, torch {torch.__version__}; "
        f"commit {git_commit()}.",
        "",
        "Training (mean squared error in dB², per element; training loss in training mode, validation loss on the "
        "held-out tail in inference mode):",
        "",
        *convergence(recipe_json),
        "",
    ])


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--data", type=Path, default=Path("data/synth/default"))
    p.add_argument("--out", type=Path, default=Path("data/runs/ae_baseline"))
    p.add_argument("--epochs", type=int, default=AERecipe().epochs)
    p.add_argument("--threads", type=int, default=1)
    p.add_argument("--quiet", action="store_true", help="no progress bars (for a log file)")
    p.add_argument("--report", type=Path, default=REPO / "bench" / "results" / "ae_baseline_v2.md")
    args = p.parse_args()
    start, cpu_start = time.perf_counter(), time.process_time()
    index = index_dataset(args.data)
    fit_autoencoders(index, args.out, epochs=args.epochs, threads=args.threads, progress=not args.quiet)
    torch.set_num_threads(args.threads)
    scores = autoencoder_scores(index, args.out, progress=not args.quiet)
    write_results(scores, args.out)
    minutes, cpu_minutes = (time.perf_counter() - start) / 60, (time.process_time() - cpu_start) / 60
    recipe_json = json.loads((args.out / "recipe.json").read_text())
    text = report(args, scores, minutes, cpu_minutes, index.attrs.get("manifest", {}), recipe_json)
    args.report.write_text(text, encoding="utf-8")
    print(text)


if __name__ == "__main__":
    main()
