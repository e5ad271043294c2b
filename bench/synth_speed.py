"""How fast the procedural generator writes clips on one core (target: >= 20 ten-second clips per second).

Generates a small dataset (one process, all six machine types, normal and anomalous clips, written as 16-bit
WAV files) into a temporary folder, prints ONE JSON line and appends it to ``bench/results/synth_speed.jsonl``:
wall-clock clips per second and clips per CPU-second of the process (the one-core rate on a busy machine).

    python bench/synth_speed.py [--seconds 10] [--clips-per-id 2]
"""
from __future__ import annotations

import argparse
import tempfile
import time
from pathlib import Path

import torch
from common import emit, machine_info

from asdlib.data.synth import generate_dataset


def main(argv=None) -> dict:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--seconds", type=float, default=10.0)
    p.add_argument("--clips-per-id", type=int, default=2, help="train clips per ID (and test clips per label)")
    p.add_argument("--no-save", action="store_true", help="print only")
    args = p.parse_args(argv)
    n = args.clips_per_id
    with tempfile.TemporaryDirectory() as tmp:
        generate_dataset(tmp, size="smoke", seconds=args.seconds, n_train=1, n_test=1, progress=False)  # warm-up
        start, cpu = time.perf_counter(), time.process_time()
        summary = generate_dataset(Path(tmp) / "bench", size="smoke", seconds=args.seconds, n_train=n,
                                   n_test=n, progress=False, workers=1)
        elapsed, cpu = time.perf_counter() - start, time.process_time() - cpu
    # clips_per_cpu_s: per second of this process's CPU time, i.e. what one free core gives; on a busy machine
    # clips_per_s (wall clock) is lower by the share of the core that other processes take.
    line = dict(bench="synth_speed", clips_per_s=round(summary["total"] / elapsed, 2),
                clips_per_cpu_s=round(summary["total"] / cpu, 2), seconds=args.seconds,
                clips=summary["total"], elapsed_s=round(elapsed, 2), cpu_s=round(cpu, 2), workers=1,
                audio_x_realtime=round(summary["total"] * args.seconds / elapsed, 1),
                **machine_info(torch.device("cpu")))
    return emit("synth_speed", line, save=not args.no_save)


if __name__ == "__main__":
    main()
