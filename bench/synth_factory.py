"""The procedural factory's knobs, measured: ``fault_target`` (which regime wins) and real anomalous-level offsets.

``fault_target`` (:func:`asdlib.data.synth.generate_dataset`) is the share of anomalous clips whose fault leaves
alone what tells machine IDs apart. This script generates one small dataset per value (by default 0, 0.5 and 1;
fan, valve and ToyConveyor, 1-s clips, 60 training clips per ID, 25 + 25 test clips per development ID) and
scores each with the per-ID Gaussian on log-mel statistics, the DCASE2020 autoencoder baseline and a short
STgram-MFN + ArcFace run (``configs/default.yaml``, a few epochs), then writes ``bench/results/synth_factory.md``.
The datasets and runs stay in ``--out`` (git-ignored). ``--levels`` instead measures the per-type level offset of
anomalous clips on the real clips in ``../shared/real_samples`` (read here only, never copied; the numbers behind
``asdlib.data.synth.ANOMALY_LEVEL_DB``) and the spread the generator draws with ``anomaly_levels=True``.

    nice -n 10 python bench/synth_factory.py [--targets 0 0.5 1] [--epochs 5] [--ae-epochs 50] [--no-network]
    python bench/synth_factory.py --levels [--shared ../shared]
"""
from __future__ import annotations

import argparse
import os
import shlex
import sys
import time
from pathlib import Path

import numpy as np
import pandas as pd
from common import REPO, cpu_model, git_commit  # noqa: E402  (also puts the checkout on sys.path)
from level_spread import clip_levels  # noqa: E402

from asdlib.data.dcase import DEV_IDS, MACHINE_TYPES
from asdlib.data.index import index_dataset
from asdlib.data.synth import ANOMALY_LEVEL_DB, LEVEL_DBFS, generate_dataset, synth_clip
from asdlib.evaluation.baseline import baseline_scores, rms_dbfs
from asdlib.evaluation.metrics import per_id_table, summary_table

TYPES = ("fan", "valve", "ToyConveyor")  # the types of configs/default.yaml


# ---------------------------------------------------------------------------------------------------- levels
def level_offsets(real_dir: Path) -> pd.DataFrame:
    """Per type: the level of each real anomalous clip minus the median normal clip of its machine ID (dB):
    clips, mean, sd, and the sd with the generator's normal-clip spread removed (what ``ANOMALY_LEVEL_DB`` holds)."""
    levels = clip_levels(real_dir)
    ref = levels[levels.label == "normal"].groupby(["machine_type", "machine_id"]).dbfs.median().rename("ref")
    anomalous = levels[levels.label == "anomaly"].join(ref, on=["machine_type", "machine_id"])
    offset = (anomalous.dbfs - anomalous.ref).groupby(anomalous.machine_type)
    table = pd.DataFrame({"clips": offset.count(), "mean": offset.mean(), "sd": offset.std(ddof=1)})
    normal_sd = pd.Series({t: LEVEL_DBFS[t][1] for t in table.index})
    table["sd without normal spread"] = np.sqrt(np.maximum(table["sd"] ** 2 - normal_sd**2, 0))
    table["generator (mean, sd)"] = [ANOMALY_LEVEL_DB[t] for t in table.index]
    return table.reindex([t for t in MACHINE_TYPES if t in table.index])


def generated_spread(n: int = 24, seconds: float = 2.0) -> pd.DataFrame:
    """Per type: sd (dB) of the level of ``n`` procedural clips per label, with ``anomaly_levels`` off and on."""
    rows = []
    for t in MACHINE_TYPES:
        ids = DEV_IDS[t]
        for label, on in (("normal", False), ("anomaly", False), ("anomaly", True)):
            db = [rms_dbfs(synth_clip(t, ids[k % len(ids)], label=label, seconds=seconds, rng=k,
                                      anomaly_levels=on)) for k in range(n)]
            rows.append(dict(machine_type=t, clips=f"{label}{' (anomaly_levels)' if on else ''}",
                             median=np.median(db), sd=np.std(db, ddof=1)))
    return pd.DataFrame(rows).pivot(index="machine_type", columns="clips", values="sd").reindex(MACHINE_TYPES)


def levels_report(shared: Path) -> str:
    real_dir = shared / "real_samples" / "dcase2020_dev"
    if not real_dir.is_dir():
        raise SystemExit(f"{real_dir} not found: pass --shared or set ASD_SHARED")
    offsets, spread = level_offsets(real_dir).round(2), generated_spread().round(2)
    return ("## Anomalous levels (`anomaly_levels=True`)\n\n`python bench/synth_factory.py --levels`: level of each "
            "real anomalous clip minus the median level of the normal clips of the same machine ID (dB):\n\n"
            + offsets.reset_index().to_markdown(index=False) + "\n\nLevel sd (dB) of 24 procedural 2-s clips per "
            "type and label:\n\n" + spread.reset_index().to_markdown(index=False) + "\n")


# ------------------------------------------------------------------------------------------------ the regimes
def type_aucs(scores: pd.DataFrame) -> dict[str, float]:
    """``{type: AUC, ..., "Average": AUC}`` (DCASE averages over the development IDs) from a scores table."""
    summary = summary_table(per_id_table(scores)).set_index("machine_type")
    return {t: float(summary.at[t, "auc"]) for t in summary.index}


def gaussian(data: Path) -> dict[str, float]:
    return type_aucs(baseline_scores(index_dataset(data), progress=False))


def autoencoder(data: Path, out: Path, epochs: int) -> dict[str, float]:
    from asdlib.evaluation.autoencoder import autoencoder_scores
    from asdlib.training.autoencoder import fit_autoencoders

    index = index_dataset(data)
    fit_autoencoders(index, out, epochs=epochs, threads=1, progress=False)
    return type_aucs(autoencoder_scores(index, out, progress=False))


def network(data: Path, out: Path, epochs: int) -> dict[str, float]:
    from asdlib.experiment import evaluate_run, train_from_config

    overrides = [f"train.epochs={epochs}", f"train.t_max={epochs}"]
    train_from_config(REPO / "configs" / "default.yaml", data, out, overrides=overrides, resume=False,
                      progress=False)
    return type_aucs(evaluate_run(out, data=data, quiet=True)["scores"])


def measure(target: float, args) -> dict[str, dict[str, float]]:
    """Generate the dataset of one ``fault_target`` and score it with each method: ``{method: {type: AUC}}``."""
    data = args.out / f"fault_target_{target:g}"
    generate_dataset(data, size="default", machine_types=list(TYPES), seconds=args.seconds, n_train=args.n_train,
                     n_test=(args.n_test, args.n_test), fault_target=target, progress=False, overwrite=True)
    results = {"Gaussian (log-mel mean/std)": gaussian(data)}
    if args.ae_epochs:
        results[f"DCASE2020 AE ({args.ae_epochs} epochs)"] = autoencoder(data, args.out / f"ae_{target:g}",
                                                                        args.ae_epochs)
    if args.epochs:
        results[f"STgram-MFN + ArcFace ({args.epochs} epochs)"] = network(data, args.out / f"net_{target:g}",
                                                                          args.epochs)
    for method, aucs in results.items():
        print(f"fault_target {target:g} | {method}: " + ", ".join(f"{t} {v:.3f}" for t, v in aucs.items()),
              flush=True)
    return results


def regimes_report(all_results: dict, args, minutes: float, cpu_minutes: float) -> str:
    columns = [*TYPES, "Average"]
    rows = ["| fault_target | method | " + " | ".join(columns) + " |", "|---" * (len(columns) + 2) + "|"]
    for target, results in all_results.items():
        for method, aucs in results.items():
            rows.append(f"| {target:g} | {method} | " + " | ".join(f"{100 * aucs[c]:.1f}" for c in columns) + " |")
    nice = f"nice -n {os.nice(0)} " if os.nice(0) else ""
    command = f"{nice}.venv/bin/python " + shlex.join(["bench/synth_factory.py", *sys.argv[1:]])
    return "\n".join([
        "## Which regime wins: `fault_target`", "",
        f"Procedural data (generator `asdlib.data.synth`), {', '.join(TYPES)}; {args.seconds:g}-s clips, "
        f"{args.n_train} training clips per ID, {args.n_test} normal + {args.n_test} anomalous test clips per "
        "development ID, seed 0. AUC in %, averaged over the development IDs (DCASE averages). The network is "
        "`configs/default.yaml` (STgram-MFN + ArcFace, 1-s excerpts) with fewer epochs; the AE is the DCASE2020 "
        "baseline recipe with fewer epochs.", "",
        *rows, "",
        f"- Command: `{command}`",
        f"- Time: {minutes:.1f} min wall, {cpu_minutes:.1f} min CPU of this process (generation, features, "
        f"training, scoring), on a shared machine (load average {os.getloadavg()[0]:.1f} at the end).",
        f"- Machine: {cpu_model()}, {os.cpu_count()} CPUs; commit {git_commit()}.", ""])


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--targets", type=float, nargs="+", default=[0.0, 0.5, 1.0])
    p.add_argument("--seconds", type=float, default=1.0)
    p.add_argument("--n-train", type=int, default=60)
    p.add_argument("--n-test", type=int, default=25)
    p.add_argument("--epochs", type=int, default=5, help="STgram-MFN epochs (0: no network)")
    p.add_argument("--ae-epochs", type=int, default=50, help="autoencoder epochs (0: no autoencoder)")
    p.add_argument("--out", type=Path, default=REPO / "data" / "bench" / "synth_factory")
    p.add_argument("--levels", action="store_true", help="measure the anomalous level offsets instead")
    p.add_argument("--shared", type=Path, default=Path(os.environ.get("ASD_SHARED", REPO.parent / "shared")))
    p.add_argument("--report", type=Path, default=None, help="write the Markdown section here (default: print)")
    args = p.parse_args()
    if args.levels:
        text = levels_report(args.shared)
    else:
        start, cpu_start = time.perf_counter(), time.process_time()
        all_results = {target: measure(target, args) for target in args.targets}
        text = regimes_report(all_results, args, (time.perf_counter() - start) / 60,
                              (time.process_time() - cpu_start) / 60)
    print(text)
    if args.report:
        args.report.write_text(text, encoding="utf-8")


if __name__ == "__main__":
    main()
