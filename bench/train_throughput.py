"""Training throughput (clips/s in steady state, data loading included) and peak RSS: asdlib's pipeline vs naive.

*ours*: the waveform cache read a whole batch at a time (``asdlib.experiment.make_loader``), the log-mel computed
on the device inside the model, and ``asdlib.training.loop.train_epoch``'s step. *naive* (``bench/naive.py``): per item
``librosa.load`` + a CPU torchaudio mel in the Dataset, as the STgram-MFN code does; the model consumes wave +
mel. Both see the same clips in the same order, in one process, one after the other (``--rounds`` alternates
them to even out a busy machine). ``--channels-last``, ``--amp`` and ``--compile`` apply to *ours* only (the
original code had none), except that ``--naive-amp`` autocasts naive too. Prints ONE JSON line per
configuration, appended to ``bench/results/train_throughput.jsonl`` (and ``--out-dir``).

Several configurations in one process (the GPU check): ``--model`` and ``--batch`` take comma lists and
``--variants plain,compile+channels_last`` measures *ours* with each set of options; naive is measured once per
model and batch and shared by its lines. On CUDA, ``--gpu-util`` samples the GPU's utilisation and memory during
the timed steps, and every line has the peak memory PyTorch allocated.

    python bench/train_throughput.py --model tastgram_mfn --loss noisy_arcmix --batch 16 --seconds 10 --steps 10
    python bench/train_throughput.py --device cuda --model tastgram_mfn,stgram_mfn --loss auto --batch 256,64 \
        --amp bf16 --naive-amp --variants plain,compile+channels_last --workers 8 --timed-clips 3072 --gpu-util
"""
from __future__ import annotations

import argparse
import contextlib
import ctypes
import gc
import math
import statistics
from dataclasses import dataclass

import numpy as np
import torch
from common import (ALPHA, GpuSampler, add_common_args, bench_cache, emit, machine_info, new_model, peak_rss_mb,
                    reset_peak_rss, set_threads, timed)
from naive import naive_loader, naive_train

from asdlib.experiment import make_loader
from asdlib.training.losses import LOSSES
from asdlib.nn.models import ARCHITECTURES, MODEL_NAMES
from asdlib.training.loop import Criterion, amp_dtype, train_epoch


# the loss each model was published with (``--loss auto``)
PUBLISHED_LOSS = {"stgram_mfn_paper": "arcface", "stgram_mfn": "arcface", "stsasgram_mfn": "noisy_arcmix",
                  "tastgram_mfn": "noisy_arcmix"}
VARIANT_OPTIONS = ("compile", "channels_last")


@dataclass(frozen=True)
class Variant:
    """One configuration: model, loss, batch size and *ours*' model-side fast-path options."""

    model: str
    loss: str
    batch: int
    compile: bool = False
    channels_last: bool = False


def comma_list(kind, choices=None):
    """An argparse ``type`` for ``a,b,c`` lists of ``kind``, each checked against ``choices``."""
    def parse(text: str) -> list:
        items = [kind(x.strip()) for x in text.split(",") if x.strip()]
        bad = [x for x in items if choices is not None and x not in choices]
        if not items or bad:
            raise argparse.ArgumentTypeError(f"{text!r}: expected a comma list of {', '.join(map(str, choices or ()))}"
                                             if bad else f"{text!r}: empty list")
        return items
    return parse


def parse_variants(text: str) -> list[tuple[bool, bool]]:
    """``"plain,compile+channels_last"`` -> ``[(False, False), (True, True)]`` as ``(compile, channels_last)``."""
    out = []
    for item in comma_list(str)(text):
        options = set() if item == "plain" else set(item.replace("-", "_").split("+"))
        if not options <= set(VARIANT_OPTIONS):
            raise argparse.ArgumentTypeError(f"variant {item!r}: use plain or a +-joined set of "
                                             f"{', '.join(VARIANT_OPTIONS)}")
        out.append(("compile" in options, "channels_last" in options))
    return out


def parse_args(argv=None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--model", default=["tastgram_mfn"], type=comma_list(str, MODEL_NAMES),
                   help="a model, or a comma list (one after the other)")
    p.add_argument("--loss", default="noisy_arcmix", choices=[*LOSSES, "auto"],
                   help="auto: each model's published loss (ArcFace for STgram-MFN, Noisy-ArcMix otherwise)")
    p.add_argument("--batch", type=comma_list(int), default=[64], help="a batch size, or a comma list (256,64)")
    p.add_argument("--seconds", type=float, default=10.0)
    p.add_argument("--steps", type=int, default=10, help="timed training steps per pipeline and round")
    p.add_argument("--warmup", type=int, default=2, help="untimed steps first")
    p.add_argument("--timed-clips", type=int, default=0,
                   help="time at least this many clips: steps = max(--steps, ceil(clips / batch)) per batch size")
    p.add_argument("--pipeline", default="both", choices=("ours", "naive", "both"))
    p.add_argument("--rounds", type=int, default=1, help="alternate the pipelines this many times (median)")
    p.add_argument("--workers", type=int, default=0,
                   help="DataLoader workers, both pipelines; > 0 rounds warm-up and timed steps up to multiples "
                        "of it (each worker prepares whole batches, so the timed window spans whole rounds)")
    p.add_argument("--channels-last", action="store_true", help="ours: channels-last memory format")
    p.add_argument("--amp", default="off", choices=("off", "auto", "bf16", "fp16"), help="ours: autocast")
    p.add_argument("--naive-amp", action="store_true", help="naive: autocast with --amp too (on GPU the original "
                                                            "code trained under autocast)")
    p.add_argument("--compile", action="store_true", help="ours: torch.compile the model + loss")
    p.add_argument("--variants", type=parse_variants, default=None,
                   help="ours: comma list of option sets, each plain or e.g. compile+channels_last (one line "
                        "each; default: the --compile/--channels-last flags)")
    p.add_argument("--gpu-util", action="store_true", help="CUDA: sample GPU utilisation and memory in use")
    add_common_args(p)
    args = p.parse_args(argv)
    if args.steps < 1 or args.warmup < 0 or args.rounds < 1 or min(args.batch) < 2 or args.workers < 0:
        p.error("need --steps >= 1, --warmup >= 0, --rounds >= 1, --workers >= 0 and --batch >= 2 (BatchNorm)")
    args.variants = args.variants or [(args.compile, args.channels_last)]
    return args


def steps_for(args, batch: int) -> tuple[int, int]:
    """``(warmup, timed steps)`` for one batch size (``--timed-clips``; whole rounds of ``--workers``)."""
    steps = max(args.steps, math.ceil(args.timed_clips / batch))
    warmup = args.warmup
    if args.workers:
        steps, warmup = (args.workers * math.ceil(n / args.workers) for n in (steps, warmup))
    return warmup, steps


def release_memory() -> None:
    """Free what the previous pipeline left, so the next one's peak RSS (and GPU memory) starts clean."""
    gc.collect()
    if torch.cuda.is_available():
        torch.cuda.empty_cache()
    try:
        ctypes.CDLL("libc.so.6").malloc_trim(0)  # glibc keeps freed heap pages otherwise
    except (OSError, AttributeError):
        pass


def fresh_model(args, variant: Variant, device: torch.device):
    """A freshly initialised model of ``variant`` (seed 0) on ``device`` and its AdamW (``common.new_model``)."""
    return new_model(argparse.Namespace(**{**vars(args), "model": variant.model, "loss": variant.loss}), device)


def run_ours(args, variant: Variant, cache, rows, device, marks: dict) -> None:
    """*ours*: cache batches, log-mel on the device, ``train_epoch``'s step, with ``variant``'s options."""
    model, optimizer = fresh_model(args, variant, device)
    if variant.channels_last:
        model.to(memory_format=torch.channels_last)
    criterion = Criterion(model, variant.loss).to(device)
    if variant.compile:
        torch._dynamo.reset()  # a fresh compile per configuration: no recompile limit, no automatic dynamic shapes
        criterion = torch.compile(criterion)
    loader = make_loader(cache, rows, batch_size=variant.batch, shuffle=True, num_workers=args.workers,
                         drop_last=True, device=device)
    dtype = amp_dtype(args.amp, device)
    scaler = torch.amp.GradScaler(device.type) if dtype == torch.float16 else None
    train_epoch(criterion, timed(loader, marks["warmup"], marks), optimizer, device=device, alpha=ALPHA,
                rng=np.random.default_rng(0), dtype=dtype, scaler=scaler, progress=False)


def run_naive(args, variant: Variant, cache, rows, device, marks: dict) -> None:
    """*naive*: per-item decode + CPU mel in the Dataset, the same step (autocast only with ``--naive-amp``)."""
    model, optimizer = fresh_model(args, variant, device)
    loader = naive_loader(cache.index.path.tolist(), cache.index.class_index.to_numpy(),
                          variant=ARCHITECTURES[variant.model][0], seconds=args.seconds,
                          batch_size=variant.batch, rows=rows, num_workers=args.workers)
    dtype = amp_dtype(args.amp, device) if args.naive_amp else None
    naive_train(Criterion(model, variant.loss).to(device), timed(loader, marks["warmup"], marks), optimizer,
                device=device, alpha=ALPHA, rng=np.random.default_rng(0), dtype=dtype)


def measure(pipeline: str, args, variant: Variant, cache, rows, device) -> dict:
    """One pipeline: warm-up, timed steps; clips/s, seconds per step, share spent waiting on data, memory."""
    release_memory()
    reset_ok = reset_peak_rss()
    if device.type == "cuda":
        torch.cuda.reset_peak_memory_stats(device)
    marks = {"warmup": steps_for(args, variant.batch)[0]}
    sampler = GpuSampler(device) if args.gpu_util and device.type == "cuda" else contextlib.nullcontext()
    with sampler:
        (run_ours if pipeline == "ours" else run_naive)(args, variant, cache, rows, device, marks)
    elapsed, clips = marks["end"] - marks["start"], marks["batches"] * variant.batch
    out = dict(clips_per_s=round(clips / elapsed, 3), step_s=round(elapsed / marks["batches"], 3),
               data_fraction=round(marks["data_s"] / elapsed, 3), warmup_s=round(marks["start"] - marks["begin"], 2),
               peak_rss_mb=peak_rss_mb(), peak_rss_own=reset_ok)
    if device.type == "cuda":
        out["peak_gpu_mb"] = round(torch.cuda.max_memory_allocated(device) / 2**20, 1)
        out["peak_gpu_reserved_mb"] = round(torch.cuda.max_memory_reserved(device) / 2**20, 1)
    if isinstance(sampler, GpuSampler):
        out.update(sampler.window(marks["start"], marks["end"]))
    return out


def summarise(runs: list[dict]) -> dict:
    """Median throughput over rounds, highest peak memory."""
    out = dict(runs[-1], clips_per_s=statistics.median(r["clips_per_s"] for r in runs),
               step_s=statistics.median(r["step_s"] for r in runs))
    out["peak_rss_mb"] = max(r["peak_rss_mb"] for r in runs)
    return out


def result_line(args, variant: Variant, results: dict) -> dict:
    """The JSON line of one configuration: its options, the first pipeline's numbers, each pipeline's, ratio."""
    warmup, steps = steps_for(args, variant.batch)
    first = results.get("ours", results.get("naive"))
    line = dict(bench="train_throughput", model=variant.model, loss=variant.loss, batch=variant.batch,
                seconds=args.seconds, steps=steps, warmup=warmup, rounds=args.rounds, workers=args.workers,
                channels_last=variant.channels_last, amp=args.amp, compile=variant.compile, **first, **results)
    if "naive" in results:
        line["naive_amp"] = args.amp if args.naive_amp else "off"
    if len(results) == 2:
        line["speedup"] = round(results["ours"]["clips_per_s"] / results["naive"]["clips_per_s"], 3)
    return line


def measure_batch(args, model: str, batch: int, cache, train_rows, device) -> list[dict]:
    """Every variant of one model and batch size; each line is emitted as soon as it is complete."""
    loss = PUBLISHED_LOSS[model] if args.loss == "auto" else args.loss
    warmup, steps = steps_for(args, batch)
    rows = np.resize(np.random.default_rng(0).permutation(train_rows), (warmup + steps) * batch)  # repeats
    variants = [Variant(model, loss, batch, *options) for options in args.variants]
    naive, ours = [], {v: [] for v in variants}
    lines = []
    for round_ in range(args.rounds):
        if args.pipeline in ("naive", "both"):
            naive.append(measure("naive", args, variants[0], cache, rows, device))
        for v in variants if args.pipeline in ("ours", "both") else ():
            ours[v].append(measure("ours", args, v, cache, rows, device))
            if round_ == args.rounds - 1:
                results = {"ours": summarise(ours[v]), **({"naive": summarise(naive)} if naive else {})}
                lines.append(emit_line(args, result_line(args, v, results), device))
    if args.pipeline == "naive":
        lines.append(emit_line(args, result_line(args, variants[0], {"naive": summarise(naive)}), device))
    return lines


def emit_line(args, line: dict, device: torch.device) -> dict:
    """Print and append one line, with the machine it ran on."""
    return emit("train_throughput", {**line, **machine_info(device)}, save=not args.no_save, out_dir=args.out_dir)


def main(argv=None) -> list[dict]:
    args = parse_args(argv)
    set_threads(args.threads, args.interop_threads)
    device = torch.device(args.device)
    cache = bench_cache(args.seconds, data=args.data)
    train_rows = np.flatnonzero((cache.index.split == "train").to_numpy())
    return [line for model in args.model for batch in args.batch
            for line in measure_batch(args, model, batch, cache, train_rows, device)]


if __name__ == "__main__":
    main()
