"""Evaluation throughput: scoring clips with ``asdlib.experiment.score_dataset`` (inference mode), in clips/s.

The measured path is the one ``python -m asdlib evaluate`` takes: batched reads from the waveform cache, the
model's log-mel on the device, every anomaly score of ``asdlib.evaluation.scoring`` per clip. One batch is scored first to
warm up. Prints ONE JSON line, appended to ``bench/results/eval_throughput.jsonl``.

    python bench/eval_throughput.py --model tastgram_mfn --batch 64 --seconds 10 --clips 256
"""
from __future__ import annotations

import argparse
import time

import numpy as np
import torch
from common import add_common_args, bench_cache, emit, machine_info, peak_rss_mb, set_threads

from asdlib.experiment import score_dataset
from asdlib.nn.models import MODEL_NAMES, build_model


def parse_args(argv=None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--model", default="tastgram_mfn", choices=MODEL_NAMES)
    p.add_argument("--batch", type=int, default=64)
    p.add_argument("--seconds", type=float, default=10.0)
    p.add_argument("--clips", type=int, default=256, help="clips scored in the timed pass (repeats allowed)")
    p.add_argument("--channels-last", action="store_true")
    add_common_args(p)
    return p.parse_args(argv)


def main(argv=None) -> dict:
    args = parse_args(argv)
    set_threads(args.threads, args.interop_threads)
    device = torch.device(args.device)
    cache = bench_cache(args.seconds, data=args.data)
    rows = np.resize(np.arange(len(cache)), args.clips)  # in order, as evaluate scores the test set
    torch.manual_seed(0)
    model = build_model(args.model, seconds=args.seconds).to(device).eval()
    if args.channels_last:
        model.to(memory_format=torch.channels_last)
    score_dataset(model, cache, rows[:args.batch], device=device, batch_size=args.batch, progress=False)  # warm-up
    start = time.perf_counter()
    scores = score_dataset(model, cache, rows, device=device, batch_size=args.batch, progress=False)
    elapsed = time.perf_counter() - start
    if len(scores) != args.clips or not np.isfinite(scores["score"]).all():
        raise RuntimeError(f"scoring returned {len(scores)} rows for {args.clips} clips, or non-finite scores")
    line = dict(bench="eval_throughput", model=args.model, batch=args.batch, seconds=args.seconds, clips=args.clips,
                channels_last=args.channels_last, clips_per_s=round(args.clips / elapsed, 2),
                elapsed_s=round(elapsed, 2), peak_rss_mb=peak_rss_mb())
    return emit("eval_throughput", {**line, **machine_info(device)}, save=not args.no_save)


if __name__ == "__main__":
    main()
