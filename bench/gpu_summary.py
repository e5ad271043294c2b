"""The GPU check's summary: Markdown tables from the JSON lines and logs in its output folder.

Reads ``gpu_env.jsonl`` (the machine), ``steps.jsonl`` (each step's status, exit code and time, written by
``bench/gpu_check.sh``), ``cuda_tests.xml`` (pytest's JUnit report), ``train_throughput.jsonl`` and
``gpu_train.jsonl``; prints the environment, the steps, the CUDA tests, training throughput ours vs naive per
model / batch / variant (with the planned configurations that were not measured), the goal verdicts and the
short training. Runs without torch and without a GPU; a folder with only some of the files gives the tables it
can. Only CUDA lines are shown unless ``--all-devices`` (so ``bench/results`` can be summarised too).

    python bench/gpu_summary.py OUT [--write OUT/summary.md]
"""
from __future__ import annotations

import argparse
import json
import sys
import xml.etree.ElementTree as ET
from pathlib import Path

PLAN_MODELS = ("tastgram_mfn", "stgram_mfn", "stsasgram_mfn", "stgram_mfn_paper")
PLAN_BATCHES = (256, 64)
PLAN_VARIANTS = ("plain", "compile+channels_last")
GOAL_MODEL, GOAL_BATCH, GOAL_CLIPS_PER_S, GOAL_RATIO = "tastgram_mfn", 256, 5000.0, 5.0


def read_jsonl(path: Path) -> list[dict]:
    """Every JSON line of ``path`` (none if it is missing); a line that does not parse is skipped."""
    if not path.is_file():
        return []
    rows = []
    for line in path.read_text().splitlines():
        try:
            rows.append(json.loads(line))
        except json.JSONDecodeError:
            continue
    return rows


def variant_name(row: dict) -> str:
    """``plain``, ``compile``, ``channels_last`` or ``compile+channels_last`` from a throughput line."""
    options = [name for name in ("compile", "channels_last") if row.get(name)]
    return "+".join(options) or "plain"


def is_cuda(row: dict) -> bool:
    return str(row.get("device", "")).startswith("cuda")


def fmt(value, digits: int = 0) -> str:
    """A number rounded for a table cell; ``—`` for missing values."""
    if value is None or value == "":
        return "—"
    if isinstance(value, float | int) and not isinstance(value, bool):
        return f"{value:,.{digits}f}"
    return str(value)


def markdown(header: list[str], rows: list[list]) -> str:
    """A Markdown table."""
    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    lines += ["| " + " | ".join(str(c) for c in row) + " |" for row in rows]
    return "\n".join(lines)


def env_section(out: Path) -> str:
    """The machine the check ran on (the newest ``gpu_env`` line)."""
    rows = read_jsonl(out / "gpu_env.jsonl")
    if not rows:
        return "## Environment\n\nno gpu_env.jsonl (the preflight did not run)"
    e = rows[-1]
    parts = [f"GPU {e.get('gpu', '—')}", f"torch {e.get('torch')}", f"CUDA {e.get('torch_cuda')}",
             f"cuDNN {e.get('cudnn')}", f"Python {e.get('python')}", f"{e.get('cpu_count')} CPUs",
             f"bf16 matmul {fmt(e.get('bf16_matmul_tflops'), 1)} TFLOP/s", f"status {e.get('status')}"]
    missing = e.get("missing") or []
    text = ", ".join(parts) + (f"; missing optional modules: {', '.join(missing)}" if missing else "")
    if e.get("core_missing"):  # the preflight stopped before CUDA: what could not be imported, and why
        text += "\n\ncannot import: " + "; ".join(f"{k} ({err})" for k, err in e["core_missing"].items())
    return "## Environment\n\n" + text + (f"\n\ncuda_error: {e['cuda_error']}" if e.get("cuda_error") else "")


def steps_section(out: Path) -> str:
    """Each step of the script: status, exit code, seconds used of its time limit."""
    rows = read_jsonl(out / "steps.jsonl")
    table = [[r.get("step"), r.get("status"), r.get("rc"), fmt(r.get("seconds")), fmt(r.get("timeout_s"))]
             for r in rows]
    return "## Steps\n\n" + (markdown(["step", "status", "exit", "seconds", "limit s"], table) if rows
                             else "no steps.jsonl")


def junit_counts(path: Path) -> dict | None:
    """``{"tests", "failures", "errors", "skipped", "failed": [names]}`` from a JUnit XML report, or None."""
    if not path.is_file():
        return None
    try:
        root = ET.parse(path).getroot()
    except ET.ParseError:
        return None
    counts = {"tests": 0, "failures": 0, "errors": 0, "skipped": 0, "failed": []}
    for case in root.iter("testcase"):
        counts["tests"] += 1
        for kind, key in (("failure", "failures"), ("error", "errors"), ("skipped", "skipped")):
            if case.find(kind) is not None:
                counts[key] += 1
                if key != "skipped":
                    counts["failed"].append(case.get("name"))
    return counts


def tests_section(out: Path) -> str:
    """The CUDA tests' counts and the names of those that failed."""
    counts = junit_counts(out / "cuda_tests.xml")
    if counts is None:
        return "## CUDA tests\n\nno cuda_tests.xml (the tests did not run, or were stopped; see logs/cuda_tests.log)"
    passed = counts["tests"] - counts["failures"] - counts["errors"] - counts["skipped"]
    text = (f"{passed} passed, {counts['failures']} failed, {counts['errors']} errors, {counts['skipped']} skipped "
            f"of {counts['tests']}")
    return "## CUDA tests\n\n" + text + (f"; failed: {', '.join(counts['failed'])}" if counts["failed"] else "")


def throughput_rows(rows: list[dict]) -> dict[tuple, dict]:
    """The newest line per ``(model, batch, variant)``, with ``ratio`` to naive: the line's own naive, else the
    newest naive of the same model and batch in the folder (variants measured in a later process)."""
    newest, naive = {}, {}
    for r in rows:
        if "naive" in r:
            naive[(r["model"], r["batch"])] = r["naive"]
        if "ours" in r:
            newest[(r["model"], r["batch"], variant_name(r))] = r
    for (model, batch, _), r in newest.items():
        ref = r.get("naive") or naive.get((model, batch))
        r["_naive"] = ref
        r["_ratio"] = r["ours"]["clips_per_s"] / ref["clips_per_s"] if ref and ref.get("clips_per_s") else None
    return newest


def throughput_section(out: Path, *, all_devices: bool = False) -> tuple[str, dict]:
    """Ours vs naive per model / batch / variant, planned configurations that are missing marked."""
    rows = [r for r in read_jsonl(out / "train_throughput.jsonl") if all_devices or is_cuda(r)]
    newest = throughput_rows(rows)
    plan = [(m, b, v) for m in PLAN_MODELS for b in PLAN_BATCHES for v in PLAN_VARIANTS]
    keys = plan + sorted(k for k in newest if k not in plan)
    table = []
    for key in keys:
        r = newest.get(key)
        if r is None:
            table.append([*key, "not measured", "", "", "", "", "", "", ""])
            continue
        ours, ref = r["ours"], r["_naive"] or {}
        table.append([*key, fmt(ours["clips_per_s"]), fmt(ref.get("clips_per_s")), fmt(r["_ratio"], 2),
                      fmt(1000 * ours["step_s"], 1), fmt(ours.get("peak_gpu_mb")), fmt(ours.get("gpu_util_mean")),
                      fmt(ref.get("gpu_util_mean")), fmt(ours.get("warmup_s"), 1)])
    header = ["model", "batch", "variant", "ours clips/s", "naive clips/s", "ours/naive", "ours ms/step",
              "ours peak GPU MB", "ours GPU util %", "naive GPU util %", "ours warm-up s"]
    return "## Training throughput, ours vs naive\n\n" + markdown(header, table), newest


def goal_section(newest: dict) -> str:
    """The issue's goals for TASTgram-MFN at batch 256: >= 5,000 clips/s and >= 5x naive (best variant)."""
    lines = [r for (m, b, _), r in newest.items() if m == GOAL_MODEL and b == GOAL_BATCH]
    if not lines:
        return f"## Goals\n\n{GOAL_MODEL} at batch {GOAL_BATCH}: not measured"
    best = max(lines, key=lambda r: r["ours"]["clips_per_s"])
    speed, ratio = best["ours"]["clips_per_s"], best["_ratio"]
    verdict = ("met" if speed >= GOAL_CLIPS_PER_S else "NOT met",
               "not measured (no naive line)" if ratio is None else "met" if ratio >= GOAL_RATIO else "NOT met")
    return (f"## Goals ({GOAL_MODEL}, batch {GOAL_BATCH}, best variant: {variant_name(best)})\n\n"
            f"- >= {GOAL_CLIPS_PER_S:,.0f} clips/s: {fmt(speed)} clips/s, {verdict[0]}\n"
            f"- >= {GOAL_RATIO:g}x naive: {fmt(ratio, 2)}x, {verdict[1]}")


def training_section(out: Path, *, all_devices: bool = False) -> str:
    """The short full-size training: data preparation, epochs, clips/s, AUC / pAUC."""
    rows = read_jsonl(out / "gpu_train.jsonl")
    prep = [r for r in rows if r.get("phase") == "prepare"]
    runs = [r for r in rows if r.get("phase") == "train" and (all_devices or is_cuda(r))]
    text = ["## Short full-size training"]
    if prep:
        p = prep[-1]
        text.append(f"data: {p['clips']} clips ({', '.join(p['types'])}, {p['clips_per_id']} training clips per ID, "
                    f"{p['seconds']:g} s), generated in {p['generate_s']} s, cached in {p['cache_s']} s "
                    f"({p['cache_gb']} GB)")
    if not runs:
        return "\n\n".join(text + ["no training line (the training did not run or did not finish)"])
    r = runs[-1]
    header = ["model + loss", "epochs", "first epoch s", "median epoch s", "train clips/s", "end-to-end clips/s",
              "AUC %", "pAUC %", "scoring s", "peak GPU MB", "GPU util %"]
    row = [f"{r['model']} + {r['loss']}", r["epochs"], fmt(r["first_epoch_s"], 1), fmt(r["epoch_s_median"], 1),
           fmt(r["train_clips_per_s"]), fmt(r["end_to_end_clips_per_s"]), fmt(r["auc"], 1), fmt(r["pauc"], 1),
           fmt(r["scoring_s"], 1), fmt(r.get("peak_gpu_mb")), fmt(r.get("gpu_util_mean"))]
    per_type = ", ".join(f"{t} {v['auc']:.1f} / {v['pauc']:.1f}" for t, v in r.get("per_type", {}).items())
    text += [markdown(header, [row]), f"per type (AUC / pAUC %): {per_type}; {r['train_clips']} training clips, "
             f"batch {r['batch']}, {r['amp']}, compile {r['compile']}, channels-last {r['channels_last']}, "
             f"{r['workers']} loader workers; {r.get('stopped') or 'ran all epochs'}"]
    return "\n\n".join(text)


def summary(out: Path, *, all_devices: bool = False) -> str:
    """The whole summary as Markdown."""
    throughput, newest = throughput_section(out, all_devices=all_devices)
    parts = [f"# GPU check: {out}", env_section(out), steps_section(out), tests_section(out), throughput,
             goal_section(newest), training_section(out, all_devices=all_devices)]
    return "\n\n".join(parts) + "\n"


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("out", type=Path, help="the GPU check's output folder (or bench/results with --all-devices)")
    p.add_argument("--write", type=Path, default=None, help="also write the summary to this file")
    p.add_argument("--all-devices", action="store_true", help="include lines measured on the CPU")
    args = p.parse_args(argv)
    if not args.out.is_dir():
        print(f"gpu_summary: {args.out} is not a folder", file=sys.stderr)
        return 2
    text = summary(args.out, all_devices=args.all_devices)
    print(text, end="")
    if args.write is not None:
        args.write.write_text(text)
    return 0


if __name__ == "__main__":
    sys.exit(main())
