"""Feature-extraction throughput: both log-mel ("Sgram") variants, batched on the device vs per item, in clips/s.

*batched*: ``asdlib.nn.frontends.LogMel`` on a ``(B, L)`` batch, as the models compute it during training and
scoring. *per_item*: the originals' way, torchaudio's ``MelSpectrogram`` on one clip at a time in the data set
(``bench/naive.py``). Content does not change the cost, so the clips are Gaussian noise. Prints ONE JSON line,
appended to ``bench/results/feature_throughput.jsonl``.

    python bench/feature_throughput.py --batch 64 --seconds 10 --repeats 5
"""
from __future__ import annotations

import argparse
import time

import torch
from common import add_common_args, emit, machine_info, set_threads
from naive import NaiveDataset

from asdlib.nn.frontends import MEL_VARIANTS, LogMel, clip_samples


def parse_args(argv=None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--batch", type=int, default=64)
    p.add_argument("--seconds", type=float, default=10.0)
    p.add_argument("--repeats", type=int, default=5, help="timed batches per variant (after one warm-up)")
    p.add_argument("--items", type=int, default=32, help="clips for the per-item measurement")
    add_common_args(p)
    return p.parse_args(argv)


def sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


@torch.inference_mode()
def batched_clips_per_s(variant: str, wave: torch.Tensor, repeats: int) -> float:
    """``LogMel(variant)`` on ``wave`` ``(B, L)`` ``repeats`` times after two warm-up calls (allocator, FFT plans)."""
    front_end = LogMel(variant).to(wave.device)
    for _ in range(2):
        front_end(wave)
    sync(wave.device)
    start = time.perf_counter()
    for _ in range(repeats):
        front_end(wave)
    sync(wave.device)
    return repeats * len(wave) / (time.perf_counter() - start)


@torch.inference_mode()
def per_item_clips_per_s(variant: str, wave: torch.Tensor) -> float:
    """torchaudio ``MelSpectrogram`` (+ dB) clip by clip on the CPU, as ``bench/naive.py``'s data set does."""
    items = NaiveDataset([], [], variant=variant, seconds=wave.shape[-1] / 16000)
    items.log_mel(wave[0])
    start = time.perf_counter()
    for clip in wave:
        items.log_mel(clip)
    return len(wave) / (time.perf_counter() - start)


def main(argv=None) -> dict:
    args = parse_args(argv)
    set_threads(args.threads, args.interop_threads)
    device = torch.device(args.device)
    wave = 0.1 * torch.randn(args.batch, clip_samples(args.seconds), generator=torch.Generator().manual_seed(0))
    results = {}
    for variant in MEL_VARIANTS:
        results[variant] = dict(batched_clips_per_s=round(batched_clips_per_s(variant, wave.to(device),
                                                                              args.repeats), 1),
                                per_item_clips_per_s=round(per_item_clips_per_s(variant, wave[:args.items]), 1))
    line = dict(bench="feature_throughput", batch=args.batch, seconds=args.seconds, repeats=args.repeats,
                clips_per_s=results["stgram"]["batched_clips_per_s"], **results)
    return emit("feature_throughput", {**line, **machine_info(device)}, save=not args.no_save)


if __name__ == "__main__":
    main()
