"""Peak RSS of a training process on 1k, 4k and 16k clips: flat, because the waveform cache stays on disk.

For each size N, a procedural dataset of N training clips is laid out in the DCASE folder structure with
*hard links* to the clips of the bench dataset (no new audio, no extra disk for the wav files) and decoded by
the real ``build_cache``. A fresh child process then opens the cache, trains ``--steps`` steps through
``make_loader`` + ``train_epoch`` and reads one whole epoch through the loader (every clip once, the case that
would grow memory if clips were kept in RAM or mapped into the process); it reports its own peak RSS
(``VmHWM``). ``--reader mmap`` swaps in mmap fancy-indexing for comparison. Prints ONE JSON line, appended to
``bench/results/memory_scaling.jsonl``.

    python bench/memory_scaling.py --sizes 1000,4000,16000 --seconds 2 --model stgram_mfn --loss arcface --batch 32
"""
from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import torch
from common import (ALPHA, BENCH_DATA, add_common_args, bench_dataset, emit, machine_info, new_model, peak_rss_mb,
                    rss_parts_mb, set_threads)
from torch.utils.data import DataLoader, RandomSampler

from asdlib.data.cache import ClipBatchDataset, EpochBatchSampler, WaveCache, build_cache
from asdlib.data.index import index_dataset
from asdlib.experiment import make_loader
from asdlib.training.losses import LOSSES
from asdlib.nn.models import MODEL_NAMES
from asdlib.training.loop import Criterion, train_epoch


def parse_args(argv=None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--sizes", default="1000,4000,16000", help="comma-separated numbers of training clips")
    p.add_argument("--seconds", type=float, default=2.0, help="clip length (16k 10-s clips: a 5 GB cache)")
    p.add_argument("--model", default="stgram_mfn", choices=MODEL_NAMES)
    p.add_argument("--loss", default="arcface", choices=list(LOSSES))
    p.add_argument("--batch", type=int, default=32)
    p.add_argument("--steps", type=int, default=3, help="training steps in each child")
    p.add_argument("--reader", default="read", choices=("read", "mmap"),
                   help="read: WaveCache.waves (positioned reads, the default path); mmap: fancy-index the mmap")
    p.add_argument("--child", type=Path, default=None, help=argparse.SUPPRESS)  # internal: a cache to train on
    add_common_args(p)
    return p.parse_args(argv)


def link_dataset(source: Path, out: Path, n: int) -> Path:
    """``out`` with ``n`` training clips: hard links cycling through ``source``'s training clips (kept IDs)."""
    if (out / "done").is_file():
        return out
    clips = sorted(source.glob("*/train/*.wav"))
    if not clips:
        raise SystemExit(f"{source} has no <type>/train/*.wav clips to link; use a procedural dataset folder")
    for i, clip in enumerate(clips[k % len(clips)] for k in range(n)):
        name = "_".join(clip.stem.split("_")[:3]) + f"_{i:08d}.wav"  # normal_id_XX_<i>.wav: same machine ID
        target = out / clip.parent.parent.name / "train" / name
        target.parent.mkdir(parents=True, exist_ok=True)
        if not target.exists():
            try:
                os.link(clip, target)
            except OSError:  # another file system, or no hard links there
                shutil.copyfile(clip, target)
    (out / "done").write_text(str(n))
    return out


class MmapBatchDataset(ClipBatchDataset):
    """The comparison reader: a batch is one fancy index into the mmap array (pages stay mapped)."""

    def __getitem__(self, positions):
        rows = self.rows[np.asarray(positions, dtype=np.int64)]
        wave = torch.from_numpy(self.cache.array[rows].astype(np.float32) / 32768.0)  # (B, L)
        return wave, torch.from_numpy(self.labels[rows]), torch.from_numpy(rows)


def child_loader(cache: WaveCache, args) -> DataLoader:
    """``make_loader`` over every clip, or the same batches read through the mmap (``--reader mmap``)."""
    if args.reader == "read":
        return make_loader(cache, np.arange(len(cache)), batch_size=args.batch, shuffle=True, drop_last=True)
    dataset = MmapBatchDataset(cache)
    sampler = RandomSampler(dataset, generator=torch.Generator().manual_seed(0))
    return DataLoader(dataset, sampler=EpochBatchSampler(sampler, args.batch, True), batch_size=None)


def child(args) -> None:
    """Train ``--steps`` steps on the cache ``args.child``, read one epoch, print the memory report as JSON."""
    cache = WaveCache(args.child)
    loader = child_loader(cache, args)
    model, optimizer = new_model(args, torch.device(args.device))
    steps = (batch for _, batch in zip(range(args.steps), loader))
    train_epoch(Criterion(model, args.loss), steps, optimizer, device=torch.device(args.device), alpha=ALPHA,
                rng=np.random.default_rng(0), progress=False)
    after_steps = peak_rss_mb()
    clips = sum(len(wave) for wave, _, _ in loader)
    print(json.dumps(dict(peak_rss_mb=peak_rss_mb(), peak_rss_after_steps_mb=after_steps, epoch_clips=clips,
                          cache_mb=round(cache.array.nbytes / 2**20, 1), **rss_parts_mb())))


def measure(n: int, args, source: Path) -> dict:
    """Build the N-clip cache (untimed, unmeasured), then run one child and return its report."""
    root = link_dataset(source, BENCH_DATA / f"scaling_{args.seconds:g}s_{n}", n)
    cache = build_cache(index_dataset(root), seconds=args.seconds, cache_dir=BENCH_DATA / "cache")
    cmd = [sys.executable, __file__, "--child", str(cache.path), "--seconds", str(args.seconds), "--model",
           args.model, "--loss", args.loss, "--batch", str(args.batch), "--steps", str(args.steps), "--reader",
           args.reader, "--device", args.device, "--threads", str(args.threads)]
    done = subprocess.run(cmd, capture_output=True, text=True)
    if done.returncode:
        raise RuntimeError(f"the child for {n} clips failed:\n{done.stderr[-3000:]}")
    return json.loads(done.stdout.strip().splitlines()[-1])


def main(argv=None) -> dict | None:
    args = parse_args(argv)
    set_threads(args.threads, args.interop_threads)
    if args.child is not None:
        return child(args)
    source = bench_dataset(args.seconds, data=args.data)
    sizes = [int(s) for s in args.sizes.split(",")]
    results = {str(n): measure(n, args, source) for n in sizes}
    peaks = [r["peak_rss_mb"] for r in results.values()]
    line = dict(bench="memory_scaling", model=args.model, loss=args.loss, batch=args.batch, seconds=args.seconds,
                steps=args.steps, reader=args.reader, peak_rss_mb=max(peaks),
                growth_mb=round(peaks[-1] - peaks[0], 1), sizes=results)
    return emit("memory_scaling", {**line, **machine_info(torch.device(args.device))}, save=not args.no_save)


if __name__ == "__main__":
    main()
