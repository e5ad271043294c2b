"""What every benchmark shares: the machine description, the result line, peak RSS, the bench dataset, timing.

Each benchmark prints ONE JSON line and appends it to ``bench/results/<name>.jsonl``; :func:`machine_info` adds
the CPU count and model, the torch version and threads, the device, the git commit and the 1-minute load
average (other processes on the machine make every number noisier). :func:`bench_cache` generates a small
procedural dataset in the ``full`` layout under ``data/bench/`` (git-ignored) once and decodes it into a waveform
cache; throughput does not depend on how many clips a dataset has, so a few hundred are enough.
"""
from __future__ import annotations

import argparse
import json
import os
import platform
import resource
import shutil
import statistics
import subprocess
import sys
import threading
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
RESULTS = REPO / "bench" / "results"
BENCH_DATA = REPO / "data" / "bench"
sys.path.insert(0, str(REPO))  # run from a checkout, installed or not

import torch  # noqa: E402

from asdlib.data.cache import WaveCache, build_cache  # noqa: E402
from asdlib.training.config import RunConfig, to_plain  # noqa: E402
from asdlib.data.index import index_dataset  # noqa: E402
from asdlib.nn.models import build_model  # noqa: E402
from asdlib.data.synth import generate_dataset  # noqa: E402
from asdlib.training.loop import make_optimizer  # noqa: E402

TRAIN = to_plain(RunConfig())["train"]  # AdamW, lr 1e-4, weight decay 0.01 (Noisy-ArcMix)
ALPHA = RunConfig().loss.alpha  # mixup Beta(α, α)


def add_common_args(p: argparse.ArgumentParser) -> None:
    """``--device``, ``--threads``, ``--interop-threads``, ``--data`` and ``--no-save`` for every benchmark."""
    p.add_argument("--device", default="cpu", help="cpu, cuda, cuda:1, mps (default: cpu)")
    p.add_argument("--threads", type=int, default=0, help="torch.set_num_threads (0: PyTorch's default)")
    p.add_argument("--interop-threads", type=int, default=0, help="torch.set_num_interop_threads (0: default)")
    p.add_argument("--data", type=Path, default=None,
                   help="procedural dataset folder (default: data/bench/full_<seconds>s, generated if missing)")
    p.add_argument("--no-save", action="store_true", help="print the JSON line only, do not append it")
    p.add_argument("--out-dir", type=Path, default=None,
                   help="also append the JSON line to OUT_DIR/<name>.jsonl (e.g. the GPU check's output folder)")


def set_threads(threads: int, interop_threads: int) -> None:
    """Apply ``--threads`` / ``--interop-threads`` (0 keeps PyTorch's default); call before any torch work."""
    if interop_threads:
        torch.set_num_interop_threads(interop_threads)
    if threads:
        torch.set_num_threads(threads)


def git_commit() -> str:
    """``<short hash>`` of the checkout, ``+dirty`` when it has uncommitted changes, or ``"unknown"``."""
    try:
        run = dict(cwd=REPO, capture_output=True, text=True, timeout=10)
        head = subprocess.run(["git", "rev-parse", "--short", "HEAD"], **run).stdout.strip()
        dirty = subprocess.run(["git", "status", "--porcelain", "--untracked-files=no"], **run).stdout.strip()
        return f"{head}+dirty" if head and dirty else head or "unknown"
    except (OSError, subprocess.SubprocessError):
        return "unknown"


def cpu_model() -> str:
    """The CPU's model name from ``/proc/cpuinfo`` (Linux), else what ``platform`` knows."""
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


def machine_info(device: torch.device) -> dict:
    """Where and on what a number was measured."""
    info = dict(cpu_count=os.cpu_count(), cpu=cpu_model(), torch=torch.__version__,
                torch_threads=torch.get_num_threads(), interop_threads=torch.get_num_interop_threads(),
                omp_wait_policy=os.environ.get("OMP_WAIT_POLICY", ""), device=str(device), git_commit=git_commit(),
                load_avg_1min=round(os.getloadavg()[0], 2), time=time.strftime("%Y-%m-%dT%H:%M:%S"))
    if device.type == "cuda":
        info["gpu"] = torch.cuda.get_device_name(device)
    return info


def emit(name: str, line: dict, *, save: bool = True, out_dir: Path | None = None) -> dict:
    """Print ``line`` as one JSON line and append it to ``bench/results/<name>.jsonl`` (unless ``save`` is off)
    and, when ``out_dir`` is given, to ``out_dir/<name>.jsonl`` too."""
    text = json.dumps(line)
    print(text, flush=True)
    folders = ([RESULTS] if save else []) + ([Path(out_dir)] if out_dir is not None else [])
    for folder in folders:
        folder.mkdir(parents=True, exist_ok=True)
        with open(folder / f"{name}.jsonl", "a") as f:
            f.write(text + "\n")
    return line


def reset_peak_rss() -> bool:
    """Reset this process's peak resident set (Linux ``clear_refs``); False where that is not possible."""
    try:
        with open("/proc/self/clear_refs", "w") as f:
            f.write("5")
        return True
    except OSError:
        return False


def peak_rss_mb() -> float:
    """Peak resident memory of this process in MB (``VmHWM``: since start or the last :func:`reset_peak_rss`)."""
    try:
        for line in Path("/proc/self/status").read_text().splitlines():
            if line.startswith("VmHWM:"):
                return round(int(line.split()[1]) / 1024, 1)
    except OSError:
        pass
    scale = 1 if sys.platform == "darwin" else 1024  # ru_maxrss: bytes on macOS, kB on Linux
    return round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * scale / 2**20, 1)


def rss_parts_mb() -> dict:
    """Resident memory now, split into anonymous (the process's own) and file-backed (mapped files) pages."""
    parts = {}
    try:
        for line in Path("/proc/self/status").read_text().splitlines():
            key = line.split(":")[0]
            if key in ("VmRSS", "RssAnon", "RssFile"):
                parts[f"{key.lower()}_mb"] = round(int(line.split()[1]) / 1024, 1)
    except OSError:
        pass
    return parts


def bench_dataset(seconds: float, *, data: Path | None = None, clips_per_id: int = 8) -> Path:
    """``data`` as given (any DCASE-layout folder, used as is), else a procedural dataset in the ``full`` layout
    (41 training IDs) with ``seconds`` clips under ``data/bench/``, generated on first use."""
    if data is not None:
        if not data.is_dir():
            raise SystemExit(f"--data {data}: no such folder; leave --data out to use a generated one")
        return data
    root = BENCH_DATA / f"full_{seconds:g}s"
    if not (root / "dataset.json").is_file():
        print(f"generating the benchmark dataset in {root} (once)", file=sys.stderr)
        generate_dataset(root, size="full", seconds=seconds, n_train=clips_per_id, n_test=1,
                         workers=os.cpu_count() or 1)
    return root


def bench_cache(seconds: float, *, data: Path | None = None) -> WaveCache:
    """The waveform cache of :func:`bench_dataset` (decoded once into ``data/bench/cache``)."""
    root = bench_dataset(seconds, data=data)
    return build_cache(index_dataset(root), seconds=seconds, cache_dir=BENCH_DATA / "cache")


def new_model(args, device: torch.device):
    """A freshly initialised ``args.model`` (seed 0, for ``args.seconds``) on ``device`` and its AdamW."""
    torch.manual_seed(0)
    head = "softmax" if args.loss == "ce" else "arcface"
    model = build_model(args.model, seconds=args.seconds, head=head).to(device)
    return model, make_optimizer(model, TRAIN)


def timed(loader, warmup: int, marks: dict):
    """Yield ``loader``'s batches; ``marks`` gets ``begin`` (before the first batch is asked for), ``start``
    (after ``warmup`` batches were consumed), ``end``
    (after the last was), ``batches`` counted from ``start`` and ``data_s``, the time spent waiting on the
    loader after ``start``. The consumer's work between batches counts, so data loading is included."""
    marks["begin"] = time.perf_counter()
    it, marks["data_s"], marks["batches"] = iter(loader), 0.0, 0
    for i in range(len(loader)):
        now = time.perf_counter()
        if i == warmup:
            marks["start"] = now
        batch = next(it)
        if i >= warmup:
            marks["data_s"] += time.perf_counter() - now
            marks["batches"] += 1
        yield batch
    marks["end"] = time.perf_counter()


def gpu_index(device: torch.device) -> str:
    """The ``nvidia-smi -i`` identifier of a CUDA device (an index or UUID), ``CUDA_VISIBLE_DEVICES`` applied."""
    index = device.index if device.index is not None else torch.cuda.current_device()
    visible = [v.strip() for v in os.environ.get("CUDA_VISIBLE_DEVICES", "").split(",") if v.strip()]
    return visible[index] if index < len(visible) else str(index)


def read_gpu_smi(ident: str) -> tuple[float, float] | None:
    """``(utilisation %, memory used MB)`` of GPU ``ident`` from ``nvidia-smi``; None where that fails."""
    cmd = ["nvidia-smi", "--query-gpu=utilization.gpu,memory.used", "--format=csv,noheader,nounits", "-i", ident]
    try:
        text = subprocess.run(cmd, capture_output=True, text=True, timeout=5, check=True).stdout
        util, used = (float(x) for x in text.strip().splitlines()[0].split(","))
        return util, used
    except (OSError, subprocess.SubprocessError, ValueError, IndexError):
        return None


def summarise_samples(samples: list[tuple[float, float, float]], start: float, end: float) -> dict:
    """Aggregate ``(time, utilisation %, memory used MB)`` samples taken in ``[start, end]``.

    ``gpu_util_mean`` / ``gpu_util_median`` (%), ``gpu_mem_used_max_mb`` (all processes, as nvidia-smi reports
    it) and ``gpu_util_samples`` (how many samples; 0 -> the other values are None)."""
    inside = [(u, m) for t, u, m in samples if start <= t <= end]
    if not inside:
        return {"gpu_util_mean": None, "gpu_util_median": None, "gpu_mem_used_max_mb": None, "gpu_util_samples": 0}
    utils = [u for u, _ in inside]
    return {"gpu_util_mean": round(statistics.fmean(utils), 1), "gpu_util_median": statistics.median(utils),
            "gpu_mem_used_max_mb": max(m for _, m in inside), "gpu_util_samples": len(inside)}


def read_gpu_nvml(device: torch.device) -> tuple[float, float] | None:
    """``(utilisation %, memory used MB)`` through PyTorch's NVML bindings (needs ``pynvml``); None where not."""
    try:
        used = torch.cuda.device_memory_used(device) / 2**20
        return float(torch.cuda.utilization(device)), round(used, 1)
    except Exception:  # no pynvml, an old torch, or NVML unavailable: fall back to nvidia-smi
        return None


class GpuSampler:
    """Samples a CUDA device's utilisation and memory in use every ``interval`` s in a background thread.

    ``with GpuSampler(device) as s: ...`` then ``s.window(start, end)`` (``time.perf_counter`` times) gives
    :func:`summarise_samples` of that window. Reads NVML through ``torch.cuda.utilization`` when ``pynvml`` is
    installed, else ``nvidia-smi`` (either way NVML's own averaging window, 1/6-1 s); with neither, no samples
    are taken and the window reports ``gpu_util_samples: 0``. ``source`` says which one was used.
    """

    def __init__(self, device: torch.device, interval: float = 0.2):
        self.device, self.ident, self.interval = device, gpu_index(device), interval
        self.samples: list[tuple[float, float, float]] = []
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)
        if read_gpu_nvml(device) is not None:
            self.source, self._read = "nvml", lambda: read_gpu_nvml(self.device)
        elif shutil.which("nvidia-smi") and read_gpu_smi(self.ident) is not None:
            self.source, self._read = "nvidia-smi", lambda: read_gpu_smi(self.ident)
        else:
            self.source, self._read = None, None

    def _run(self) -> None:
        while not self._stop.is_set():
            reading = self._read()
            if reading is None:
                return
            self.samples.append((time.perf_counter(), *reading))
            self._stop.wait(self.interval)

    def __enter__(self) -> GpuSampler:
        if self._read is not None:
            self._thread.start()
        return self

    def __exit__(self, *exc) -> None:
        self._stop.set()
        if self._thread.is_alive():
            self._thread.join(timeout=10)

    def window(self, start: float, end: float) -> dict:
        """Utilisation and memory aggregated over the samples taken between ``start`` and ``end``."""
        return {**summarise_samples(list(self.samples), start, end), "gpu_util_source": self.source}
