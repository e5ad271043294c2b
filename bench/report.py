"""The latest benchmark numbers as Markdown tables, from ``bench/results/*.jsonl`` (for ``bench/README.md``).

For each benchmark and configuration (model, batch, clip length, threads, ...) only the newest line is shown.

    python bench/report.py
"""
from __future__ import annotations

import json
from pathlib import Path

RESULTS = Path(__file__).resolve().parent / "results"
# benchmark -> (configuration keys, (column, value getter) pairs)
TABLES = {
    "train_throughput": (("model", "loss", "batch", "seconds", "device", "amp", "torch_threads", "channels_last",
                          "compile", "omp_wait_policy"), (
        ("ours clips/s", lambda r: r.get("ours", {}).get("clips_per_s")),
        ("naive clips/s", lambda r: r.get("naive", {}).get("clips_per_s")),
        ("speedup", lambda r: r.get("speedup")),
        ("naive data share", lambda r: r.get("naive", {}).get("data_fraction")),
        ("ours peak RSS MB", lambda r: r.get("ours", {}).get("peak_rss_mb")),
        ("naive peak RSS MB", lambda r: r.get("naive", {}).get("peak_rss_mb")))),
    "eval_throughput": (("model", "batch", "seconds", "torch_threads"), (
        ("clips/s", lambda r: r["clips_per_s"]), ("peak RSS MB", lambda r: r["peak_rss_mb"]))),
    "feature_throughput": (("batch", "seconds", "torch_threads"), tuple(
        (f"{v} {k}", lambda r, v=v, k=k: r[v][f"{k}_clips_per_s"])
        for v in ("stgram", "noisy_arcmix") for k in ("batched", "per_item"))),
    "loader_throughput": (("batch", "seconds", "workers", "torch_threads", "omp_wait_policy"), (
        ("batched clips/s", lambda r: r.get("batched_clips_per_s")),
        ("per-item clips/s", lambda r: r.get("per_item_clips_per_s")),
        ("naive clips/s", lambda r: r.get("naive_clips_per_s")))),
    "memory_scaling": (("model", "batch", "seconds", "reader"), tuple(
        (f"peak RSS MB @ {n}", lambda r, n=n: r["sizes"].get(n, {}).get("peak_rss_mb"))
        for n in ("1000", "4000", "16000"))),
}
CONTEXT = ("device", "cpu_count", "load_avg_1min", "git_commit", "time")


def latest(name: str, keys: tuple[str, ...]) -> list[dict]:
    """The newest line of ``<name>.jsonl`` for each configuration, oldest configuration first."""
    path = RESULTS / f"{name}.jsonl"
    rows = [json.loads(line) for line in path.read_text().splitlines() if line.strip()] if path.is_file() else []
    newest = {tuple(str(r.get(k, "")) for k in keys): r for r in rows}
    return list(newest.values())


def table(name: str) -> str:
    """One Markdown table for benchmark ``name``."""
    keys, columns = TABLES[name]
    context = [k for k in CONTEXT if k not in keys]
    header = [*keys, *(c for c, _ in columns), *context]
    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    for r in latest(name, keys):
        cells = [r.get(k, "") for k in keys] + [_get(f, r) for _, f in columns] + [r.get(k, "") for k in context]
        lines.append("| " + " | ".join(str(c) for c in cells) + " |")
    return f"### {name}\n\n" + "\n".join(lines) + "\n"


def _get(getter, row: dict):
    try:
        value = getter(row)
    except (KeyError, TypeError):
        return ""
    return "" if value is None else value


if __name__ == "__main__":
    print("\n".join(table(name) for name in TABLES))
