"""Data-loading throughput alone (no model), in clips/s: batched cache reads vs per-item fetch + collate vs naive.

*batched*: ``asdlib.experiment.make_loader`` (one read per batch into a ``(B, L)`` array, numpy only).
*per_item*: the same cache through ``DataLoader(ClipDataset, batch_size=B)``, i.e. B item reads and a
``torch.stack`` (default collate). *naive*: ``bench/naive.py`` (``librosa.load`` + a CPU mel per item). The
per-item ``torch.stack`` runs on PyTorch's intra-op threads: on a busy 2-core machine, 2 OpenMP threads that
spin-wait for each other can make it 10x slower than 1 thread; compare ``--threads 1`` and ``--threads 2``
(and ``OMP_WAIT_POLICY=PASSIVE``). Prints ONE JSON line, appended to ``bench/results/loader_throughput.jsonl``.

    python bench/loader_throughput.py --batch 64 --seconds 10 --batches 6 --threads 2
"""
from __future__ import annotations

import argparse
import time

import numpy as np
import torch
from common import add_common_args, bench_cache, emit, machine_info, set_threads
from naive import naive_loader
from torch.utils.data import DataLoader

from asdlib.data.cache import ClipDataset
from asdlib.experiment import make_loader

LOADERS = ("batched", "per_item", "naive")


def parse_args(argv=None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--batch", type=int, default=64)
    p.add_argument("--seconds", type=float, default=10.0)
    p.add_argument("--batches", type=int, default=6, help="timed batches per loader (after one warm-up batch)")
    p.add_argument("--workers", type=int, default=0)
    p.add_argument("--loaders", default=",".join(LOADERS), help=f"comma-separated subset of {', '.join(LOADERS)}")
    add_common_args(p)
    return p.parse_args(argv)


def build(name: str, cache, rows: np.ndarray, args):
    """The loader ``name`` over ``rows`` of the bench cache, shuffled with seed 0."""
    if name == "batched":
        return make_loader(cache, rows, batch_size=args.batch, shuffle=True, num_workers=args.workers)
    if name == "per_item":
        return DataLoader(ClipDataset(cache, rows), batch_size=args.batch, shuffle=True, num_workers=args.workers,
                          generator=torch.Generator().manual_seed(0))
    variant = "noisy_arcmix"  # the slower of the two mels (n_fft 2048); --loaders batched,per_item skips it
    return naive_loader(cache.index.path.tolist(), cache.index.class_index.to_numpy(), variant=variant,
                        seconds=args.seconds, batch_size=args.batch, rows=rows, num_workers=args.workers)


def clips_per_s(loader) -> float:
    """Steady-state rate: the first batch (and worker start-up) is not timed."""
    it = iter(loader)
    next(it)
    start, clips = time.perf_counter(), 0
    for batch in it:
        clips += len(batch[0])
    return clips / (time.perf_counter() - start)


def main(argv=None) -> dict:
    args = parse_args(argv)
    set_threads(args.threads, args.interop_threads)
    cache = bench_cache(args.seconds, data=args.data)
    train_rows = np.flatnonzero((cache.index.split == "train").to_numpy())
    rows = np.resize(np.random.default_rng(0).permutation(train_rows), (args.batches + 1) * args.batch)
    names = [n.strip() for n in args.loaders.split(",") if n.strip()]
    unknown = sorted(set(names) - set(LOADERS))
    if unknown:
        raise SystemExit(f"--loaders: unknown {', '.join(unknown)}; choose from {', '.join(LOADERS)}")
    results = {name: round(clips_per_s(build(name, cache, rows, args)), 1) for name in names}
    line = dict(bench="loader_throughput", batch=args.batch, seconds=args.seconds, batches=args.batches,
                workers=args.workers, clips_per_s=results.get("batched"),
                **{f"{name}_clips_per_s": value for name, value in results.items()})
    return emit("loader_throughput", {**line, **machine_info(torch.device("cpu"))}, save=not args.no_save)


if __name__ == "__main__":
    main()
