"""Execute the notebook series in order (what ``make run`` and the CI smoke tests do).

Each notebook runs in a fresh kernel with ``notebooks/`` as working directory; the executed copy and an HTML
rendering go to ``build/``. The notebooks read three environment variables: ``ASD_SMOKE=1`` (shrink everything
for CI), ``ASD_DATA`` (dataset root) and ``ASD_SIZE`` (procedural size used when the data must be generated).
"""
from __future__ import annotations

import os
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
NOTEBOOK_DIR = REPO / "notebooks"


def list_notebooks(only: str | None = None) -> list[Path]:
    """The numbered notebooks ``NN_topic.ipynb`` in order; ``only="00,03"`` keeps those numbers."""
    books = sorted(NOTEBOOK_DIR.glob("[0-9][0-9]_*.ipynb"))
    if only:
        wanted = {n.strip() for n in only.split(",")}
        books = [b for b in books if b.name[:2] in wanted]
    return books


def execute_notebook(path: Path, build: Path, *, env: dict[str, str], timeout: int = 3600) -> Path:
    """Run one notebook top to bottom in a fresh kernel; write ``build/<name>.ipynb`` and ``.html``."""
    import nbformat
    from nbclient import NotebookClient
    from nbconvert import HTMLExporter

    nb = nbformat.read(path, as_version=4)
    old = {k: os.environ.get(k) for k in env}
    os.environ.update(env)  # the kernel inherits the environment of this process
    try:
        NotebookClient(nb, timeout=timeout, kernel_name="python3",
                       resources={"metadata": {"path": str(path.parent)}}).execute()
    finally:
        _restore(old)
        build.mkdir(parents=True, exist_ok=True)
        nbformat.write(nb, build / path.name)
    html, _ = HTMLExporter().from_notebook_node(nb)
    (build / path.with_suffix(".html").name).write_text(html)
    return build / path.name


def _restore(old: dict[str, str | None]) -> None:
    for key, value in old.items():
        if value is None:
            os.environ.pop(key, None)
        else:
            os.environ[key] = value


def run_series(*, data: str | Path, build: str | Path, size: str = "default", only: str | None = None) -> int:
    """Execute every notebook in order, print the time each took and the final metrics table; 0 on success."""
    build, env = Path(build), {"ASD_DATA": str(Path(data).resolve()), "ASD_SIZE": size}
    if size == "smoke":
        env["ASD_SMOKE"] = "1"
    books = list_notebooks(only)
    if not books:
        print(f"no notebooks found in {NOTEBOOK_DIR}")
        return 1
    start, times = time.perf_counter(), []
    for book in books:
        t0 = time.perf_counter()
        print(f"running {book.name} ...", flush=True)
        execute_notebook(book, build, env=env)
        times.append((book.name, time.perf_counter() - t0))
        print(f"  done in {times[-1][1]:.0f} s -> {build / book.name}", flush=True)
    print("\n".join(f"{name:40s} {secs:7.0f} s" for name, secs in times))
    print(f"{'total':40s} {time.perf_counter() - start:7.0f} s")
    _print_final_table(Path(data))
    return 0


def _print_final_table(data: Path) -> None:
    """The results behind the series: the last evaluation trained here (``data/runs/*/summary.csv``) if any,
    and the shipped reference runs the notebooks load on a CPU."""
    import pandas as pd

    from asdlib.teaching import pretrained
    from asdlib.evaluation.metrics import to_markdown

    summaries = sorted((REPO / "data" / "runs").glob("*/summary.csv"), key=lambda p: p.stat().st_mtime)
    for path in summaries[-2:]:
        print(f"\n{path.parent.name} on {data}:\n{to_markdown(pd.read_csv(path))}")
    runs = pretrained.registry().values()
    print("\nreference runs (python -m asdlib pretrained list):")
    print("\n".join(f"  {r.name:32s} AUC {100 * r.auc:5.1f} %  pAUC {100 * r.pauc:5.1f} %" for r in runs))
