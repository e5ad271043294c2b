"""The GPU check's CPU-safe parts: bench/gpu_check.sh fails clearly and fast without CUDA or without a module
asdlib needs, the GPU machine gets every module asdlib imports, and the summary printer.

The script runs as a real subprocess with this interpreter (``PYTHON``); without a CUDA device it must stop after
its preflight with exit status 2, having imported every module of asdlib and of the check's scripts, a message
saying why, its log and step record written, and nothing appended to ``bench/results``. A module that cannot load
stops it earlier, exit 4, naming the module. Every third-party import is either on the GPU machine or carried as a
wheel (bench/gpu_wheels.sh and its lockfile). The summary printer is checked on small constructed JSON-lines files.
"""
from __future__ import annotations

import ast
import json
import os
import re
import subprocess
import sys
import time
from pathlib import Path

import pytest
import torch

REPO = Path(__file__).resolve().parents[1]
SCRIPT = REPO / "bench" / "gpu_check.sh"
sys.path.insert(0, str(REPO / "bench"))

import gpu_env  # noqa: E402  (bench/ is not a package)
import gpu_summary  # noqa: E402

# Import names of packages on the GPU machine's own python3 (its image's package list) that asdlib, the bench
# scripts or tests might use. A new import that is not here must be carried: add it to bench/gpu_wheels.sh.
IMAGE_MODULES = {"numpy", "scipy", "pandas", "sklearn", "matplotlib", "seaborn", "torch", "torchaudio",
                 "torchvision", "tqdm", "yaml", "pytest", "triton", "numba", "llvmlite", "joblib", "einops", "PIL",
                 "h5py", "skimage", "statsmodels", "networkx", "sympy", "requests", "packaging",
                 "typing_extensions", "psutil", "pynvml", "jinja2", "pyarrow", "xarray", "tensorboard", "timm",
                 "rich", "msgpack", "lazy_loader", "threadpoolctl"}
# Imported only inside the functions that display in, or run, Jupyter notebooks: not carried to the GPU machine.
NOTEBOOK_ONLY = {"IPython", "ipywidgets", "ipykernel", "nbformat", "nbclient", "nbconvert", "jupyter_client",
                 "jupyter_core", "traitlets", "zmq"}
IMPORT_NAME = {"umap_learn": "umap"}  # a carried distribution whose import name differs


def run_script(*args: str, timeout: float = 120,
               env: dict | None = None) -> tuple[subprocess.CompletedProcess, float]:
    """``bash bench/gpu_check.sh ARGS`` with this Python (and ``env`` added); the finished process, wall time."""
    env = {**os.environ, "PYTHON": sys.executable, **(env or {})}
    tic = time.perf_counter()
    done = subprocess.run(["bash", str(SCRIPT), *args], cwd=REPO, env=env, capture_output=True, text=True,
                          timeout=timeout)
    return done, time.perf_counter() - tic


def results_state() -> int:
    """Size of bench/results/gpu_train.jsonl (only the GPU check writes it; -1 if absent)."""
    path = REPO / "bench" / "results" / "gpu_train.jsonl"
    return path.stat().st_size if path.is_file() else -1


@pytest.mark.skipif(torch.cuda.is_available(), reason="this machine has CUDA: the script would really run")
def test_without_cuda_the_script_fails_fast_and_clearly(tmp_path: Path):
    """About 6 s on a quiet machine (one torch import); the bound leaves room for a heavily loaded one, where
    importing torch alone has taken two minutes. Every step of the preflight has its own timeout."""
    before = results_state()
    done, seconds = run_script(str(tmp_path / "out"), timeout=300)
    out = tmp_path / "out"
    assert done.returncode == 2, done.stdout[-3000:] + done.stderr[-3000:]
    assert seconds < 240
    assert "no usable CUDA device" in done.stdout and "nothing was measured" in done.stdout
    log = (out / "logs" / "gpu_check.log").read_text()
    assert "FAILED: no usable CUDA device" in log and "exit 2" in log
    steps = [json.loads(line) for line in (out / "steps.jsonl").read_text().splitlines()]
    assert [(s["step"], s["status"], s["rc"]) for s in steps] == [("preflight", "no_cuda", 2)]
    env = json.loads((out / "gpu_env.jsonl").read_text().splitlines()[-1])
    assert env["cuda_available"] is False and env["status"] == 2 and env["torch"] == torch.__version__
    assert env["core_missing"] == {}  # every module was imported before CUDA was looked at
    assert env["core_modules"] == len(gpu_env.asdlib_modules()) + len(gpu_env.SCRIPTS) > 50
    assert "modules of asdlib and the check's scripts import" in done.stdout
    assert (out / "summary.md").read_text().startswith("# GPU check")
    assert not (out / "train_throughput.jsonl").exists() and not (out / "cuda_tests.xml").exists()
    assert results_state() == before, "a failed check must not append to bench/results"


@pytest.mark.skipif(torch.cuda.is_available(), reason="this machine has CUDA: the script would really run")
def test_a_module_that_cannot_load_stops_the_preflight_with_exit_4(tmp_path: Path):
    """soundfile raises OSError on import where its C library is missing (a bare machine): a soundfile.py that
    does just that, first on PYTHONPATH, must stop the check before CUDA, naming the modules and the fix."""
    shadow = tmp_path / "shadow"
    shadow.mkdir()
    (shadow / "soundfile.py").write_text("raise OSError(\"cannot load library 'libsndfile.so': not found\")\n")
    done, seconds = run_script(str(tmp_path / "out"), timeout=300, env={"PYTHONPATH": str(shadow)})
    out = tmp_path / "out"
    assert done.returncode == 4, done.stdout[-3000:] + done.stderr[-3000:]
    assert seconds < 240
    assert "asdlib cannot be imported here: asdlib.data.audio (OSError: cannot load library" in done.stdout
    assert "bash bench/gpu_wheels.sh" in done.stdout and "nothing was measured" in done.stdout
    steps = [json.loads(line) for line in (out / "steps.jsonl").read_text().splitlines()]
    assert [(s["step"], s["status"], s["rc"]) for s in steps] == [("preflight", "no_asdlib", 4)]
    env = json.loads((out / "gpu_env.jsonl").read_text().splitlines()[-1])
    assert "cuda_available" not in env and "asdlib.experiment" in env["core_missing"]  # stopped before CUDA
    summary = (out / "summary.md").read_text()
    assert summary.startswith("# GPU check") and "cannot import: asdlib.data.audio (OSError" in summary


def third_party_imports(path: Path) -> dict[str, bool]:
    """``{top-level module: imported when the file is imported}`` for the non-stdlib, non-asdlib imports of a
    file; imports inside functions (run only when called) are ``False`` unless also at import time."""
    found: dict[str, bool] = {}

    def visit(node: ast.AST, at_import: bool) -> None:
        for child in ast.iter_child_nodes(node):
            names = []
            if isinstance(child, ast.Import):
                names = [a.name for a in child.names]
            elif isinstance(child, ast.ImportFrom) and child.level == 0 and child.module:
                names = [child.module]
            for top in {n.split(".")[0] for n in names} - set(sys.stdlib_module_names) - {"asdlib", "__future__"}:
                found[top] = found.get(top, False) or at_import
            visit(child, at_import and not isinstance(child, (ast.FunctionDef, ast.AsyncFunctionDef, ast.Lambda)))

    visit(ast.parse(path.read_text()), "solutions" not in path.parts)  # solutions: loaded only on demand
    return found


def test_every_third_party_import_is_on_the_gpu_machine_or_carried():
    """asdlib, the check's scripts and the CUDA tests import only what the GPU machine has, what travels as a
    wheel (bench/gpu_wheels.txt), or, inside functions only, the notebook-only modules."""
    lock = (REPO / "bench" / "gpu_wheels.txt").read_text().split("\n")
    carried = {line.split()[1].split("-")[0] for line in lock if line.strip() and not line.startswith("#")}
    carried = {IMPORT_NAME.get(name, name) for name in carried}
    local = set(gpu_env.SCRIPTS) | {"gpu_env", "solutions_loader"}  # bench/ and tests/ modules
    files = [*(REPO / "asdlib").rglob("*.py"), *(REPO / "bench" / f"{m}.py" for m in gpu_env.SCRIPTS),
             REPO / "bench" / "gpu_env.py", REPO / "tests" / "test_cuda.py", REPO / "tests" / "conftest.py"]
    unknown, eager_notebook = {}, {}
    for path in files:
        for name, at_import in third_party_imports(path).items():
            if name in NOTEBOOK_ONLY:
                if at_import:
                    eager_notebook[name] = path.relative_to(REPO)
            elif name not in IMAGE_MODULES | carried | local:
                unknown[name] = path.relative_to(REPO)
    assert not unknown, f"not on the GPU machine and not carried (add to bench/gpu_wheels.sh): {unknown}"
    assert not eager_notebook, f"notebook-only modules must be imported inside functions: {eager_notebook}"
    assert {"soundfile", "librosa", "cffi", "soxr", "pooch"} <= carried


def test_the_wheel_lockfile_names_each_package_of_the_script_once_for_cpython_312_linux():
    """bench/gpu_wheels.txt is what bench/gpu_wheels.sh writes: sha256 and file name, one wheel per package the
    script downloads, each for CPython 3.12 (or any Python) on manylinux x86_64 (or any platform)."""
    script = (REPO / "bench" / "gpu_wheels.sh").read_text()
    packages = re.search(r"PACKAGES=\(([^)]*)\)", script).group(1).split()
    rows = [line.split() for line in (REPO / "bench" / "gpu_wheels.txt").read_text().splitlines()
            if line.strip() and not line.startswith("#")]
    assert all(len(r) == 2 and re.fullmatch(r"[0-9a-f]{64}", r[0]) for r in rows), rows
    wheels = {re.sub(r"[-_.]+", "-", r[1].split("-")[0]).lower(): r[1] for r in rows}
    pinned = dict(p.split("==") for p in packages)
    assert sorted(wheels) == sorted(pinned) and len(rows) == len(pinned)
    for name, version in pinned.items():
        file = wheels[name]
        assert file.split("-")[1] == version and file.endswith(".whl"), file
        python, abi, platform = file[:-4].split("-")[-3:]
        assert re.search(r"cp312|py3", python) and abi in {"cp312", "abi3", "none"}, file
        assert platform == "any" or ("manylinux" in platform and platform.endswith("x86_64")), file


def test_bad_arguments_are_refused_with_the_usage():
    for args in ((), ("--budget", "soon", "out"), ("--only", "everything", "out"), ("a", "b")):
        done, seconds = run_script(*args, timeout=60)
        assert done.returncode == 64, args
        assert "Usage: bash bench/gpu_check.sh OUT" in done.stderr and seconds < 30  # before any Python runs
    done, _ = run_script("--help", timeout=30)
    assert done.returncode == 0 and "--budget" in done.stdout and "Exit status" in done.stdout


def write_jsonl(path: Path, rows: list[dict]) -> None:
    path.write_text("".join(json.dumps(r) + "\n" for r in rows))


def throughput_line(model, batch, clips_per_s, *, naive=None, compile_=False, channels_last=False, device="cuda"):
    """A ``train_throughput`` line as bench/train_throughput.py writes it (the fields the summary reads)."""
    ours = {"clips_per_s": clips_per_s, "step_s": batch / clips_per_s, "peak_gpu_mb": 1000.0 + batch,
            "gpu_util_mean": 90.0, "warmup_s": 1.5}
    line = dict(bench="train_throughput", model=model, batch=batch, seconds=10.0, amp="bf16", compile=compile_,
                channels_last=channels_last, device=device, ours=ours, **ours)
    if naive is not None:
        line["naive"] = {"clips_per_s": naive, "step_s": batch / naive, "gpu_util_mean": 12.0}
        line["speedup"] = round(clips_per_s / naive, 3)
    return line


@pytest.fixture
def check_folder(tmp_path: Path) -> Path:
    """An output folder as a GPU run leaves it: environment, steps, JUnit report, throughput and training."""
    write_jsonl(tmp_path / "gpu_env.jsonl", [dict(bench="gpu_env", gpu="NVIDIA H200", torch="2.9.0", torch_cuda="12.8",
                                                  cudnn=91000, python="3.11.7", cpu_count=16, status=0,
                                                  bf16_matmul_tflops=650.0, missing=["pynvml"])])
    write_jsonl(tmp_path / "steps.jsonl", [
        {"step": "preflight", "status": "ok", "rc": 0, "seconds": 12, "timeout_s": 120},
        {"step": "cuda_tests", "status": "failed", "rc": 1, "seconds": 80, "timeout_s": 150},
        {"step": "fast_stgram_mfn", "status": "skipped", "rc": 0, "seconds": 0, "timeout_s": 20}])
    (tmp_path / "cuda_tests.xml").write_text(
        '<?xml version="1.0"?><testsuites><testsuite name="pytest" tests="3">'
        '<testcase classname="tests.test_cuda" name="test_a"/>'
        '<testcase classname="tests.test_cuda" name="test_b"><failure message="x">boom</failure></testcase>'
        '<testcase classname="tests.test_cuda" name="test_c"><skipped message="y"/></testcase>'
        "</testsuite></testsuites>")
    write_jsonl(tmp_path / "train_throughput.jsonl", [
        throughput_line("tastgram_mfn", 256, 4000.0, naive=1000.0),
        throughput_line("tastgram_mfn", 256, 6000.0, compile_=True, channels_last=True),  # naive from the line above
        throughput_line("tastgram_mfn", 64, 2000.0, naive=900.0),
        throughput_line("stgram_mfn", 256, 5.0, naive=4.0, device="cpu"),  # a CPU line: not shown
    ])
    write_jsonl(tmp_path / "gpu_train.jsonl", [
        dict(bench="gpu_train", phase="prepare", clips=6200, types=["fan", "valve"], clips_per_id=300, seconds=10.0,
             generate_s=20.5, cache_s=9.0, cache_gb=2.0),
        dict(bench="gpu_train", phase="train", device="cuda", model="tastgram_mfn", loss="noisy_arcmix", epochs=41,
             first_epoch_s=30.2, epoch_s_median=3.6, train_clips_per_s=1500.0, end_to_end_clips_per_s=1100.0,
             auc=81.234, pauc=70.5, scoring_s=4.2, peak_gpu_mb=12000.0, gpu_util_mean=77.0, train_clips=3990,
             batch=64, amp="bfloat16", compile=False, channels_last=False, workers=8,
             per_type={"fan": {"auc": 80.0, "pauc": 70.0}, "valve": {"auc": 82.5, "pauc": 71.0}},
             stopped="41 epochs in 178 s; one more would pass 180 s")])
    return tmp_path


def table_row(text: str, *cells: str) -> str:
    """The Markdown row of ``text`` that starts with these cells."""
    prefix = "| " + " | ".join(cells) + " |"
    rows = [line for line in text.splitlines() if line.startswith(prefix)]
    assert len(rows) == 1, (prefix, text)
    return rows[0]


def test_summary_tables_from_a_constructed_folder(check_folder: Path):
    text = gpu_summary.summary(check_folder)
    assert "GPU NVIDIA H200, torch 2.9.0, CUDA 12.8" in text and "missing optional modules: pynvml" in text
    assert table_row(text, "cuda_tests", "failed", "1")
    assert table_row(text, "fast_stgram_mfn", "skipped")
    assert "1 passed, 1 failed, 0 errors, 1 skipped of 3; failed: test_b" in text
    plain = table_row(text, "tastgram_mfn", "256", "plain")
    assert "| 4,000 | 1,000 | 4.00 | 64.0 | 1,256 | 90 | 12 | 1.5 |" in plain
    fast = table_row(text, "tastgram_mfn", "256", "compile+channels_last")
    assert "| 6,000 | 1,000 | 6.00 |" in fast  # the ratio uses the naive of the same model and batch
    assert "not measured" in table_row(text, "stgram_mfn", "256", "plain")  # only a CPU line exists
    assert ">= 5,000 clips/s: 6,000 clips/s, met" in text and ">= 5x naive: 6.00x, met" in text
    assert "best variant: compile+channels_last" in text
    training = table_row(text, "tastgram_mfn + noisy_arcmix", "41")
    assert "| 30.2 | 3.6 | 1,500 | 1,100 | 81.2 | 70.5 | 4.2 | 12,000 | 77 |" in training
    assert "fan 80.0 / 70.0, valve 82.5 / 71.0" in text and "6200 clips (fan, valve" in text


def test_summary_goal_not_met_and_missing_parts(tmp_path: Path):
    write_jsonl(tmp_path / "train_throughput.jsonl", [throughput_line("tastgram_mfn", 256, 3000.0, naive=1000.0)])
    text = gpu_summary.summary(tmp_path)
    assert ">= 5,000 clips/s: 3,000 clips/s, NOT met" in text and ">= 5x naive: 3.00x, NOT met" in text
    assert "no gpu_env.jsonl" in text and "no steps.jsonl" in text and "no cuda_tests.xml" in text
    assert "no training line" in text
    empty = tmp_path / "empty"
    empty.mkdir()
    assert "tastgram_mfn at batch 256: not measured" in gpu_summary.summary(empty)


def test_summary_option_of_the_script_prints_an_existing_folder(check_folder: Path):
    done, _ = run_script(str(check_folder), "--summary", timeout=120)
    assert done.returncode == 0, done.stderr
    assert done.stdout == gpu_summary.summary(check_folder)
