"""Training throughput (clips/s in steady state, data loading included) and peak RSS: asdlib's pipeline vs naive.

*ours*: the waveform cache read a whole batch at a time (``asdlib.experiment.make_loader``), the log-mel computed
on the device inside the model, and ``asdlib.train.train_epoch``'s step. *naive* (``bench/naive.py``): per item
``librosa.load`` + a CPU torchaudio mel in the Dataset, as the STgram-MFN code does; the model consumes wave +
mel. Both see the same clips in the same order, in one process, one after the other (``--rounds`` alternates
them to even out a busy machine). ``--channels-last``, ``--amp`` and ``--compile`` apply to *ours* only (the
original code had none). Prints ONE JSON line, appended to ``bench/results/train_throughput.jsonl``.

    python bench/train_throughput.py --model tastgram_mfn --loss noisy_arcmix --batch 16 --seconds 10 --steps 10
"""
from __future__ import annotations

import argparse
import ctypes
import gc
import statistics

import numpy as np
import torch
from common import (ALPHA, add_common_args, bench_cache, emit, machine_info, new_model, peak_rss_mb, reset_peak_rss,
                    set_threads, timed)
from naive import naive_loader, naive_train

from asdlib.experiment import make_loader
from asdlib.losses import LOSSES
from asdlib.models import ARCHITECTURES, MODEL_NAMES
from asdlib.train import Criterion, amp_dtype, train_epoch


def parse_args(argv=None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--model", default="tastgram_mfn", choices=MODEL_NAMES)
    p.add_argument("--loss", default="noisy_arcmix", choices=list(LOSSES))
    p.add_argument("--batch", type=int, default=64)
    p.add_argument("--seconds", type=float, default=10.0)
    p.add_argument("--steps", type=int, default=10, help="timed training steps per pipeline and round")
    p.add_argument("--warmup", type=int, default=2, help="untimed steps first")
    p.add_argument("--pipeline", default="both", choices=("ours", "naive", "both"))
    p.add_argument("--rounds", type=int, default=1, help="alternate the pipelines this many times (median)")
    p.add_argument("--workers", type=int, default=0, help="DataLoader workers, both pipelines")
    p.add_argument("--channels-last", action="store_true", help="ours: channels-last memory format")
    p.add_argument("--amp", default="off", choices=("off", "auto", "bf16", "fp16"), help="ours: autocast")
    p.add_argument("--compile", action="store_true", help="ours: torch.compile the model + loss")
    add_common_args(p)
    args = p.parse_args(argv)
    if args.steps < 1 or args.warmup < 0 or args.rounds < 1 or args.batch < 2:
        p.error("need --steps >= 1, --warmup >= 0, --rounds >= 1 and --batch >= 2 (BatchNorm)")
    return args


def release_memory() -> None:
    """Free what the previous pipeline left, so the next one's peak RSS starts from a clean baseline."""
    gc.collect()
    try:
        ctypes.CDLL("libc.so.6").malloc_trim(0)  # glibc keeps freed heap pages otherwise
    except (OSError, AttributeError):
        pass


def run_ours(args, cache, rows, device, marks: dict) -> None:
    model, optimizer = new_model(args, device)
    if args.channels_last:
        model.to(memory_format=torch.channels_last)
    criterion = Criterion(model, args.loss).to(device)
    criterion = torch.compile(criterion) if args.compile else criterion
    loader = make_loader(cache, rows, batch_size=args.batch, shuffle=True, num_workers=args.workers,
                         drop_last=True, device=device)
    dtype = amp_dtype(args.amp, device)
    scaler = torch.amp.GradScaler(device.type) if dtype == torch.float16 else None
    train_epoch(criterion, timed(loader, args.warmup, marks), optimizer, device=device, alpha=ALPHA,
                rng=np.random.default_rng(0), dtype=dtype, scaler=scaler, progress=False)


def run_naive(args, cache, rows, device, marks: dict) -> None:
    model, optimizer = new_model(args, device)
    loader = naive_loader(cache.index.path.tolist(), cache.index.class_index.to_numpy(),
                          variant=ARCHITECTURES[args.model][0], seconds=args.seconds, batch_size=args.batch,
                          rows=rows, num_workers=args.workers)
    naive_train(Criterion(model, args.loss).to(device), timed(loader, args.warmup, marks), optimizer,
                device=device, alpha=ALPHA, rng=np.random.default_rng(0))


def measure(pipeline: str, args, cache, rows, device) -> dict:
    """One pipeline: warm-up, ``--steps`` timed steps; clips/s, seconds per step, share spent waiting on data."""
    release_memory()
    reset_ok = reset_peak_rss()
    if device.type == "cuda":
        torch.cuda.reset_peak_memory_stats(device)
    marks = {}
    (run_ours if pipeline == "ours" else run_naive)(args, cache, rows, device, marks)
    elapsed, clips = marks["end"] - marks["start"], marks["batches"] * args.batch
    out = dict(clips_per_s=round(clips / elapsed, 3), step_s=round(elapsed / marks["batches"], 3),
               data_fraction=round(marks["data_s"] / elapsed, 3), peak_rss_mb=peak_rss_mb(),
               peak_rss_own=reset_ok)
    if device.type == "cuda":
        out["peak_gpu_mb"] = round(torch.cuda.max_memory_allocated(device) / 2**20, 1)
    return out


def summarise(runs: list[dict]) -> dict:
    """Median throughput over rounds, highest peak memory."""
    out = dict(runs[-1], clips_per_s=statistics.median(r["clips_per_s"] for r in runs),
               step_s=statistics.median(r["step_s"] for r in runs))
    out["peak_rss_mb"] = max(r["peak_rss_mb"] for r in runs)
    return out


def main(argv=None) -> dict:
    args = parse_args(argv)
    set_threads(args.threads, args.interop_threads)
    device = torch.device(args.device)
    cache = bench_cache(args.seconds, data=args.data)
    train_rows = np.flatnonzero((cache.index.split == "train").to_numpy())
    needed = (args.warmup + args.steps) * args.batch  # clips repeat when the bench set is smaller
    rows = np.resize(np.random.default_rng(0).permutation(train_rows), needed)
    pipelines = ("ours", "naive") if args.pipeline == "both" else (args.pipeline,)
    runs = {p: [] for p in pipelines}
    for _ in range(args.rounds):
        for p in pipelines:
            runs[p].append(measure(p, args, cache, rows, device))
    results = {p: summarise(r) for p, r in runs.items()}
    line = dict(bench="train_throughput", model=args.model, loss=args.loss, batch=args.batch, seconds=args.seconds,
                steps=args.steps, warmup=args.warmup, rounds=args.rounds, workers=args.workers,
                channels_last=args.channels_last, amp=args.amp, compile=args.compile, **results[pipelines[0]],
                **{p: results[p] for p in pipelines})
    if len(pipelines) == 2:
        line["speedup"] = round(results["ours"]["clips_per_s"] / results["naive"]["clips_per_s"], 3)
    return emit("train_throughput", {**line, **machine_info(device)}, save=not args.no_save)


if __name__ == "__main__":
    main()
