"""Preflight of the GPU check: what this machine has (Python, PyTorch, the modules each step needs, CUDA, the GPU).

Prints ONE JSON line (appended to ``--out-dir/gpu_env.jsonl``) and a one-line verdict on stderr. Exit status:
0 CUDA works (a bf16 matmul ran on the device); 2 no usable CUDA device (the rest of the check needs one);
3 PyTorch cannot be imported; 4 a module of asdlib, or of the check's scripts, cannot be imported. Every module
of ``asdlib`` and of the check's scripts is imported BEFORE CUDA is looked at, so a package missing on the GPU
machine shows here, on any machine, in seconds. Missing optional modules (pytest for the CUDA tests, triton for
``torch.compile``, umap for the embedding maps) are listed under ``missing`` so that the step that needs them
is known to fail before it runs.

    python bench/gpu_env.py --out-dir OUT
"""
from __future__ import annotations

import argparse
import importlib
import importlib.metadata
import importlib.util
import json
import os
import platform
import shutil
import subprocess
import sys
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
# What the check's scripts import beside asdlib (bench/ is on sys.path): each step fails without its script.
SCRIPTS = ("common", "naive", "train_throughput", "gpu_train", "gpu_summary")
# Optional modules: (distribution, what needs it). Looked up, not imported (umap's first import compiles for ~10 s).
OPTIONAL = {"pytest": ("pytest", "the CUDA tests"), "triton": ("triton", "torch.compile on CUDA"),
            "umap": ("umap-learn", "asdlib.teaching.embeddings' maps"),
            "pynvml": ("nvidia-ml-py", "in-process GPU utilisation (nvidia-smi otherwise)")}
WHEELS_HINT = ("packages the GPU machine lacks travel as wheels: run `bash bench/gpu_wheels.sh` where PyPI is "
               "reachable and carry bench/wheels with the call (bench/gpu_check.sh installs them, offline)")


def module_version(name: str) -> tuple[str | None, str | None]:
    """``(version or "present", None)`` when ``name`` imports, ``(None, error)`` when it does not."""
    try:
        module = importlib.import_module(name)
    except Exception as err:  # an ImportError, or a broken install raising anything on import
        return None, f"{type(err).__name__}: {err}"[:300]
    return str(getattr(module, "__version__", "present")), None


def optional_version(name: str) -> str | None:
    """The installed version of optional module ``name`` ("present" without metadata), None where it is absent."""
    if importlib.util.find_spec(name) is None:
        return None
    try:
        return importlib.metadata.version(OPTIONAL[name][0])
    except importlib.metadata.PackageNotFoundError:
        return "present"


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


def asdlib_modules() -> list[str]:
    """Every module of the package in this checkout, by its files (``asdlib/**/*.py`` inside packages), without
    ``__main__`` (it runs the command line)."""
    names = []
    for path in sorted((REPO / "asdlib").rglob("*.py")):
        parts = path.relative_to(REPO).with_suffix("").parts
        if parts[-1] == "__main__" or not all((REPO.joinpath(*parts[:i]) / "__init__.py").is_file()
                                               for i in range(1, len(parts))):
            continue
        names.append(".".join(parts[:-1] if parts[-1] == "__init__" else parts))
    return names


def modules_checked() -> dict:
    """``core_missing`` (modules of asdlib and of the check's scripts that fail to import, with the error),
    ``core_modules`` (how many were imported), ``imports_s``, ``modules`` (optional modules' versions) and
    ``missing`` (the optional ones absent)."""
    sys.path.insert(0, str(REPO / "bench"))
    tic = time.perf_counter()
    core = {name: module_version(name) for name in (*asdlib_modules(), *SCRIPTS)}
    versions = {name: optional_version(name) for name in OPTIONAL}
    return dict(core_missing={k: err for k, (_, err) in core.items() if err}, core_modules=len(core),
                imports_s=round(time.perf_counter() - tic, 1), modules=versions,
                missing=[k for k, v in versions.items() if v is None])


def verdict(line: dict) -> tuple[int, str]:
    """Exit status and message from the collected facts."""
    if line.get("core_missing"):
        failed = "; ".join(f"{k} ({err})" for k, err in line["core_missing"].items())
        return 4, f"asdlib cannot be imported here: {failed}. The {WHEELS_HINT}"
    imported = f"all {line['core_modules']} modules of asdlib and the check's scripts import ({line['imports_s']} s)"
    if not line.get("cuda_ok"):
        why = line.get("cuda_error") or (f"torch {line['torch']} (CUDA build {line.get('torch_cuda')}) sees "
                                         f"{line.get('device_count', 0)} CUDA device(s)")
        return 2, f"{imported}; no usable CUDA device: {why}. This check needs the GPU machine; nothing was measured."
    missing = "; ".join(f"{k} ({OPTIONAL[k][1]})" for k in line["missing"]) or "none"
    return 0, (f"{imported}; CUDA OK: {line['gpu']}, torch {line['torch']}, CUDA {line['torch_cuda']}; "
               f"missing optional: {missing}")


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
        line.update(torch=torch.__version__, **modules_checked())  # before CUDA: a missing package fails anywhere
        if not line["core_missing"]:  # else stop here: nothing can run, and the message names what is missing
            line.update(cuda_facts(torch), **nvidia_smi())
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
