"""Preflight of the GPU check: what this machine has (Python, PyTorch, CUDA, the GPU, the modules each step needs).

Prints ONE JSON line (appended to ``--out-dir/gpu_env.jsonl``) and a one-line verdict on stderr. Exit status:
0 CUDA works (a bf16 matmul ran on the device); 2 no usable CUDA device (the rest of the check needs one);
3 PyTorch cannot be imported; 4 asdlib or a module it needs cannot be imported. Missing optional modules
(pytest for the CUDA tests, triton for ``torch.compile``, librosa/torchaudio for the naive pipeline) are listed
under ``missing`` so that the step that needs them is known to fail before it runs.

    python bench/gpu_env.py --out-dir OUT
"""
from __future__ import annotations

import argparse
import importlib
import json
import os
import platform
import shutil
import subprocess
import sys
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
CORE = ("asdlib.training.loop", "asdlib.experiment", "asdlib.data.synth", "numpy", "pandas", "soundfile", "scipy", "yaml")
OPTIONAL = {"pytest": "the CUDA tests", "triton": "torch.compile on CUDA", "librosa": "the naive pipeline",
            "torchaudio": "the naive pipeline", "pynvml": "in-process GPU utilisation (nvidia-smi otherwise)"}


def module_version(name: str) -> tuple[str | None, str | None]:
    """``(version or "present", None)`` when ``name`` imports, ``(None, error)`` when it does not."""
    try:
        module = importlib.import_module(name)
    except Exception as err:  # an ImportError, or a broken install raising anything on import
        return None, f"{type(err).__name__}: {err}"[:300]
    return str(getattr(module, "__version__", "present")), None


def nvidia_smi() -> dict:
    """Driver version and GPU names from ``nvidia-smi`` (empty where it is missing or fails)."""
    if shutil.which("nvidia-smi") is None:
        return {}
    cmd = ["nvidia-smi", "--query-gpu=name,driver_version,memory.total", "--format=csv,noheader"]
    try:
        out = subprocess.run(cmd, capture_output=True, text=True, timeout=20, check=True).stdout
    except (OSError, subprocess.SubprocessError):
        return {"nvidia_smi": "failed"}
    return {"nvidia_smi": [line.strip() for line in out.splitlines() if line.strip()]}


def cuda_facts(torch) -> dict:
    """CUDA build, device and a timed bf16 matmul on it; ``cuda_ok`` says whether the device computed."""
    facts = dict(torch_cuda=torch.version.cuda, cudnn=torch.backends.cudnn.version() if torch.cuda.is_available()
                 else None, cuda_available=torch.cuda.is_available(), device_count=torch.cuda.device_count(),
                 cuda_ok=False)
    if not facts["cuda_available"]:
        return facts
    try:
        props = torch.cuda.get_device_properties(0)
        facts.update(gpu=props.name, capability=f"{props.major}.{props.minor}",
                     gpu_memory_gb=round(props.total_memory / 2**30, 1), bf16=torch.cuda.is_bf16_supported())
        a = torch.randn(4096, 4096, device="cuda", dtype=torch.bfloat16)
        torch.cuda.synchronize()
        tic = time.perf_counter()
        for _ in range(10):
            a = (a @ a).clamp_(-1, 1)
        torch.cuda.synchronize()
        facts["bf16_matmul_tflops"] = round(10 * 2 * 4096**3 / (time.perf_counter() - tic) / 1e12, 1)
        facts["cuda_ok"] = bool(torch.isfinite(a).all())
    except Exception as err:  # a driver / runtime mismatch shows up here
        facts["cuda_error"] = f"{type(err).__name__}: {err}"[:500]
    return facts


def machine() -> dict:
    """Python, CPU count, memory, free disk space where the data will be generated, a C compiler."""
    mem = next((int(line.split()[1]) / 2**20 for line in Path("/proc/meminfo").read_text().splitlines()
                if line.startswith("MemTotal:")), None) if Path("/proc/meminfo").exists() else None
    return dict(python=sys.version.split()[0], executable=sys.executable, platform=platform.platform(),
                cpu_count=os.cpu_count(), memory_gb=round(mem, 1) if mem else None,
                disk_free_gb=round(shutil.disk_usage(REPO).free / 1e9, 1), cwd=os.getcwd(),
                c_compiler=shutil.which("cc") or shutil.which("gcc"))  # Triton (torch.compile) builds with it


def modules_checked() -> dict:
    """``core_missing`` (asdlib's modules that fail to import, with the error), ``modules`` (optional modules'
    versions) and ``missing`` (the optional ones absent)."""
    core = {name: module_version(name) for name in CORE}
    versions = {name: module_version(name) for name in OPTIONAL}
    return dict(core_missing={k: err for k, (_, err) in core.items() if err},
                modules={k: v for k, (v, _) in versions.items()},
                missing=[k for k, (v, _) in versions.items() if v is None])


def verdict(line: dict) -> tuple[int, str]:
    """Exit status and message from the collected facts."""
    if line.get("core_missing"):
        return 4, f"asdlib cannot run here: {line['core_missing']}"
    if not line.get("cuda_ok"):
        why = line.get("cuda_error") or (f"torch {line['torch']} (CUDA build {line.get('torch_cuda')}) sees "
                                         f"{line.get('device_count', 0)} CUDA device(s)")
        return 2, f"no usable CUDA device: {why}. This check needs the GPU machine; nothing was measured."
    missing = "; ".join(f"{k} ({OPTIONAL[k]})" for k in line["missing"]) or "none"
    return 0, f"CUDA OK: {line['gpu']}, torch {line['torch']}, CUDA {line['torch_cuda']}; missing optional: {missing}"


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--out-dir", type=Path, default=None, help="append the JSON line to OUT_DIR/gpu_env.jsonl")
    args = p.parse_args(argv)
    sys.path.insert(0, str(REPO))
    line = dict(bench="gpu_env", time=time.strftime("%Y-%m-%dT%H:%M:%S"), **machine())
    try:
        import torch
    except ImportError as err:
        line.update(torch=None, error=str(err))
        status, message = 3, f"PyTorch is not installed for {sys.executable} ({err}); the GPU machine must provide it"
    else:
        line.update(torch=torch.__version__, **cuda_facts(torch), **nvidia_smi())
        if line["cuda_ok"]:  # without CUDA stop here, quickly: importing the rest takes seconds
            line.update(modules_checked(), modules_checked=True)
        status, message = verdict(line)
    line["status"] = status
    text = json.dumps(line)
    print(text, flush=True)
    if args.out_dir is not None:
        args.out_dir.mkdir(parents=True, exist_ok=True)
        with open(args.out_dir / "gpu_env.jsonl", "a") as f:
            f.write(text + "\n")
    print(f"gpu_env: {message}", file=sys.stderr, flush=True)
    return status


if __name__ == "__main__":
    sys.exit(main())
