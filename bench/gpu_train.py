"""A short full-size training for the GPU check: TASTgram-MFN + Noisy-ArcMix, then scoring, within a time budget.

``prepare`` generates a procedural dataset in the ``full`` layout (10-s clips, DCASE2020 folders) for a few
machine types only, as much as a few minutes of GPU training need, and decodes it into the waveform cache.
``train`` runs ``asdlib.experiment.train_from_config`` with ``configs/tastgram_noisy_arcmix.yaml`` (the paper
recipe: AdamW, batch 64, cosine over 300 epochs, bf16 autocast on CUDA) for as many epochs as fit in
``--budget-s`` seconds (it stops after the epoch when one more would not fit; the cosine schedule is the
recipe's, so only its start is run), then scores the labelled test clips with ``evaluate_run``. Each phase prints
ONE JSON line appended to ``bench/results/gpu_train.jsonl`` (and ``--out-dir``): wall time per epoch, clips/s,
AUC / pAUC per machine type, GPU memory and utilisation.

    python bench/gpu_train.py prepare --types fan,valve --clips-per-id 300 --workers 12
    python bench/gpu_train.py train --types fan,valve --clips-per-id 300 --budget-s 180 --workers 8 --out-dir OUT
"""
from __future__ import annotations

import argparse
import contextlib
import json
import shutil
import statistics
import time
from pathlib import Path

import torch
from common import REPO, GpuSampler, emit, machine_info

from asdlib.training.config import RunConfig
from asdlib.experiment import evaluate_run, prepare_data, train_from_config
from asdlib.data.synth import SIZES, generate_dataset
from asdlib.training.loop import amp_dtype

DATA_ROOT = REPO / "data" / "gpu_check"
CONFIG = REPO / "configs" / "tastgram_noisy_arcmix.yaml"


class OutOfTime(Exception):
    """Raised after an epoch when the next one would not fit in the budget (the run is saved by then)."""


def parse_args(argv=None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("phase", choices=("prepare", "train"))
    p.add_argument("--types", default="fan,valve", help="machine types, comma-separated (default: fan,valve)")
    p.add_argument("--clips-per-id", type=int, default=300, help="training clips per machine ID (full: 900)")
    p.add_argument("--test-clips", type=int, nargs=2, default=None, metavar=("NORMAL", "ANOMALY"),
                   help="test clips per development ID (default: the full size's 100 normal, 150 anomalous)")
    p.add_argument("--seconds", type=float, default=10.0, help="clip length (the papers': 10)")
    p.add_argument("--data", type=Path, default=None, help="dataset folder (default: data/gpu_check/full_...)")
    p.add_argument("--workers", type=int, default=8, help="prepare: generator processes; train: loader workers")
    p.add_argument("--budget-s", type=float, default=180.0, help="train: seconds of epochs (default: 3 minutes)")
    p.add_argument("--device", default="cuda", help="train: cuda (default), or cpu to try the script")
    p.add_argument("--set", dest="overrides", action="append", default=[], metavar="SECTION.KEY=VALUE",
                   help="train: extra config overrides, e.g. --set train.compile=true (repeatable)")
    p.add_argument("--no-save", action="store_true", help="do not append to bench/results/gpu_train.jsonl")
    p.add_argument("--out-dir", type=Path, default=None, help="also append there (and copy the run's tables)")
    args = p.parse_args(argv)
    args.types = [t.strip() for t in args.types.split(",") if t.strip()]
    if not args.types or args.clips_per_id < 2 or args.budget_s <= 0:
        p.error("need at least one --types, --clips-per-id >= 2 and --budget-s > 0")
    test = f"_test{args.test_clips[0]}-{args.test_clips[1]}" if args.test_clips else ""
    args.data = args.data or DATA_ROOT / f"full_{'-'.join(args.types)}_{args.clips_per_id}x{test}_{args.seconds:g}s"
    return args


def run_config(args) -> RunConfig:
    """The TASTgram-MFN + Noisy-ArcMix recipe on these machine types, clip length, device and loader workers."""
    overrides = [f"data.seconds={args.seconds}", f"data.machine_types=[{','.join(args.types)}]",
                 f"data.cache_dir={DATA_ROOT / 'cache'}", f"train.device={args.device}",
                 f"train.num_workers={args.workers}", *args.overrides]
    return RunConfig.from_yaml(CONFIG, overrides)


def prepare(args) -> dict:
    """Generate the dataset (nothing to do when it is there) and build its waveform cache; time both."""
    tic = time.perf_counter()
    full = SIZES["full"]
    n_test = tuple(args.test_clips) if args.test_clips else (full.n_test_normal, full.n_test_anomaly)
    summary = generate_dataset(args.data, size="full", machine_types=args.types, seconds=args.seconds,
                               n_train=args.clips_per_id, n_test=n_test, workers=args.workers, progress=False)
    generated = time.perf_counter()
    cache, train_rows, val_rows, test_rows = prepare_data(args.data, run_config(args), progress=False)
    line = dict(bench="gpu_train", phase="prepare", data=str(args.data), types=args.types,
                clips_per_id=args.clips_per_id, seconds=args.seconds, clips=summary["total"],
                generated=summary["generated"], generate_s=round(generated - tic, 1),
                cache_s=round(time.perf_counter() - generated, 1), cache_gb=round(cache.array.nbytes / 1e9, 2),
                train_clips=len(train_rows), val_clips=len(val_rows), test_clips=len(test_rows))
    return emit("gpu_train", {**line, **machine_info(torch.device("cpu"))}, save=not args.no_save,
                out_dir=args.out_dir)


def epoch_budget(budget_s: float):
    """An ``on_epoch`` callback that raises :class:`OutOfTime` when the next epoch would end past ``budget_s``
    seconds of epochs (the estimate is the median epoch after the first, which also compiles and warms up)."""
    spent: list[float] = []

    def on_epoch(row: dict) -> None:
        spent.append(row["epoch_seconds"])
        next_epoch = statistics.median(spent[1:] or spent)
        if sum(spent) + next_epoch > budget_s:
            raise OutOfTime(f"{len(spent)} epochs in {sum(spent):.0f} s; one more would pass {budget_s:.0f} s")
    return on_epoch


def train(args) -> dict:
    """Train within the budget, score the test clips, emit the line; copy the run's small tables to out-dir."""
    cfg, device = run_config(args), torch.device(args.device)
    run_dir = DATA_ROOT / "runs" / time.strftime("%Y%m%d-%H%M%S")
    cuda = device.type == "cuda"
    if cuda:
        torch.cuda.reset_peak_memory_stats(device)
    sampler = GpuSampler(device, interval=0.5) if cuda else contextlib.nullcontext()
    tic = time.perf_counter()
    with sampler:
        stopped = ""
        try:
            train_from_config(cfg, args.data, run_dir, resume=False, progress=False,
                              on_epoch=epoch_budget(args.budget_s))
        except OutOfTime as stop:
            stopped = str(stop)
        trained = time.perf_counter()
    evaluation = evaluate_run(run_dir, data=args.data, quiet=True)
    scored = time.perf_counter()
    history = json.loads((run_dir / "history.json").read_text())
    run = json.loads((run_dir / "run.json").read_text())
    line = dict(bench="gpu_train", phase="train", model=cfg.model.name, loss=cfg.loss.name, types=args.types,
                clips_per_id=args.clips_per_id, seconds=args.seconds, batch=cfg.train.batch_size,
                amp=str(amp_dtype(cfg.train.amp, device) or "off").replace("torch.", ""), compile=cfg.train.compile,
                channels_last=cfg.train.channels_last, workers=cfg.train.num_workers, budget_s=args.budget_s,
                stopped=stopped, train_clips=run["train_clips"], val_clips=run["val_clips"],
                test_clips=run["test_clips"], **epoch_stats(history, run["train_clips"]),
                train_wall_s=round(trained - tic, 1), scoring_s=round(scored - trained, 1),
                scoring_clips_per_s=round(run["test_clips"] / (scored - trained), 1),
                **auc_stats(evaluation["summary"]), run_dir=str(run_dir))
    if cuda:
        line["peak_gpu_mb"] = round(torch.cuda.max_memory_allocated(device) / 2**20, 1)
        line.update(sampler.window(tic, trained))
    copy_tables(run_dir, args.out_dir)
    return emit("gpu_train", {**line, **machine_info(device)}, save=not args.no_save, out_dir=args.out_dir)


def epoch_stats(history: list[dict], train_clips: int) -> dict:
    """Epochs run, wall time per epoch (first, median, each), clips/s of the training passes and end to end
    (training clips × epochs / the epochs' wall time, which includes validation and checkpointing)."""
    seconds = [row["epoch_seconds"] for row in history]
    last = history[-1]
    return dict(epochs=len(history), first_epoch_s=round(seconds[0], 2),
                epoch_s_median=round(statistics.median(seconds[1:] or seconds), 2),
                epoch_s=[round(s, 2) for s in seconds],
                train_clips_per_s=round(statistics.median(row["clips_per_s"] for row in history), 1),
                end_to_end_clips_per_s=round(train_clips * len(history) / sum(seconds), 1),
                final_loss=round(last["loss"], 4), final_val_loss=round(last["val_loss"], 4),
                final_val_acc=round(last["val_acc"], 4))


def auc_stats(summary) -> dict:
    """AUC / pAUC (%) of the Average row and per machine type, from ``evaluate_run``'s summary table."""
    rows = {r.machine_type: {"auc": round(100 * r.auc, 2), "pauc": round(100 * r.pauc, 2)}
            for r in summary.itertuples()}
    average = rows.pop("Average")
    return dict(auc=average["auc"], pauc=average["pauc"], per_type=rows)


def copy_tables(run_dir: Path, out_dir: Path | None) -> None:
    """Copy the run's history and result tables (small) to ``out_dir/gpu_train_run/``."""
    if out_dir is None:
        return
    target = Path(out_dir) / "gpu_train_run"
    target.mkdir(parents=True, exist_ok=True)
    for name in ("history.csv", "summary.csv", "results.csv", "config.yaml", "run.json"):
        if (run_dir / name).is_file():
            shutil.copy(run_dir / name, target / name)


def main(argv=None) -> dict:
    args = parse_args(argv)
    return prepare(args) if args.phase == "prepare" else train(args)


if __name__ == "__main__":
    main()
