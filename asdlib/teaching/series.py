"""Execute the notebook series in order (what ``make run`` and the CI smoke tests do).

Each notebook runs in a fresh kernel with ``notebooks/`` as working directory. Its executed copy and an HTML
rendering are written under temporary names in ``build/`` and renamed to ``build/NN_topic.ipynb`` / ``.html``
only when every cell ran, so ``build/`` holds finished notebooks only: when a cell fails, the previous good
copy stays, the run stops with one line naming the notebook, the cell and the exception, and the half-run
notebook (with its traceback) goes to ``build/failed/``. SIGINT (Ctrl-C) and SIGTERM stop the kernel, remove
the temporaries and leave ``build/`` as it was. Saved progress bars get a static text fallback
(:mod:`asdlib.teaching.saved_widgets`).

The notebooks read three environment variables: ``ASD_SMOKE=1`` (shrink everything for CI), ``ASD_DATA``
(dataset root) and ``ASD_SIZE`` (procedural size used when the data must be generated).
"""
from __future__ import annotations

import atexit
import copy
import os
import shutil
import secrets
import signal
import sys
import threading
import time
from pathlib import Path

from asdlib.teaching.saved_widgets import add_static_fallbacks, drop_views

REPO = Path(__file__).resolve().parents[2]
NOTEBOOK_DIR = REPO / "notebooks"
STOP_SIGNALS = ("SIGINT", "SIGTERM")


class NotebookError(RuntimeError):
    """A notebook did not run to the end: the message names the notebook, the cell and what it raised."""


class Interrupted(KeyboardInterrupt):
    """SIGINT or SIGTERM arrived while a notebook ran; ``signame`` says which."""

    def __init__(self, signame: str, message: str):
        super().__init__(f"{signame}: {message}")
        self.signame = signame


# --- what to run ----------------------------------------------------------------------------------------------

def list_notebooks(only: str | None = None, *, folder: Path = NOTEBOOK_DIR) -> list[Path]:
    """The numbered notebooks ``NN_topic.ipynb`` of ``folder`` in order; ``only="00,3"`` keeps those numbers
    (ValueError for a number no notebook has)."""
    books = sorted(Path(folder).glob("[0-9][0-9]_*.ipynb"))
    if not only:
        return books
    wanted = [n.strip().zfill(2) for n in only.split(",") if n.strip()]
    unknown = [n for n in wanted if n not in {b.name[:2] for b in books}]
    if unknown or not wanted:
        have = ", ".join(b.name[:2] for b in books) or "none"
        raise ValueError(f"--only {only}: no notebook numbered {', '.join(unknown) or '(empty)'} in "
                         f"{folder} (the series has {have})")
    return [b for b in books if b.name[:2] in wanted]


def check_arguments(*, data: str | Path, build: str | Path, size: str, only: str | None,
                    notebooks: Path = NOTEBOOK_DIR) -> list[Path]:
    """Validate the options of ``run-series`` before any kernel starts; -> the notebooks to run."""
    from asdlib.data.synth import SIZES

    data, build = Path(data), Path(build)
    if data.exists() and not data.is_dir():
        raise ValueError(f"--data {data}: is a file, not a dataset folder; give the folder that holds (or "
                         f"will hold) the clips, e.g. data/synth/default (made by `make data`)")
    if build.exists() and not build.is_dir():
        raise ValueError(f"--build {build}: is a file; give a folder for the executed notebooks, e.g. build")
    if size not in SIZES:
        raise ValueError(f"--size {size}: expected one of {', '.join(SIZES)}")
    books = list_notebooks(only, folder=notebooks)
    if not books:
        raise ValueError(f"no notebooks NN_topic.ipynb found in {notebooks}")
    return books


# --- signals: SIGINT / SIGTERM set a flag that the waiting main thread reads ----------------------------------

class StopSignals:
    """While active, SIGINT and SIGTERM only record their name in ``signame`` (main thread only; elsewhere a
    no-op), so nothing is interrupted half-way; the previous handlers come back on exit."""

    def __init__(self):
        self.signame: str | None = None
        self._old: dict[int, object] = {}

    def _record(self, signum, frame) -> None:
        self.signame = self.signame or signal.Signals(signum).name

    def __enter__(self) -> StopSignals:
        if threading.current_thread() is threading.main_thread():
            for name in STOP_SIGNALS:
                self._old[getattr(signal, name)] = signal.signal(getattr(signal, name), self._record)
        return self

    def __exit__(self, *exc) -> None:
        for signum, handler in self._old.items():
            signal.signal(signum, handler)


# --- one notebook ---------------------------------------------------------------------------------------------

def _kernel_options() -> dict:
    """CurveZMQ encryption of the kernel's sockets where jupyter_client and libzmq offer it: ipykernel warns
    "Kernel is running over TCP without encryption" otherwise (ipykernel ``kernelapp.py``, ``init_sockets``)."""
    import zmq
    from jupyter_client.manager import KernelManager

    return {"transport_encryption": "auto"} if zmq.has("curve") and "transport_encryption" in \
        KernelManager.class_trait_names() else {}


class _Execution(threading.Thread):
    """One notebook executed in a worker thread (nbclient then leaves the process's signals alone), into
    temporary files in ``build``; the main thread publishes or discards them."""

    def __init__(self, path: Path, build: Path, *, env: dict[str, str], timeout: int):
        import nbformat
        from nbclient import NotebookClient

        super().__init__(daemon=True, name=f"execute {path.name}")
        self.path, self.build, self.error = path, build, None
        self.cell: int | None = None  # the code cell running now (index into nb.cells); None while starting
        self.saving = False
        self.nb = nbformat.read(path, as_version=4)
        self.env = {**os.environ, **env}  # the kernel's environment; this process's stays as it is
        self.client = NotebookClient(self.nb, timeout=timeout, kernel_name="python3",
                                     resources={"metadata": {"path": str(path.parent)}},
                                     on_cell_execute=self._cell_started)
        self.temps = {ext: _temp_name(build, path, ext) for ext in (".ipynb", ".html")}

    def _cell_started(self, cell, cell_index: int) -> None:
        self.cell = cell_index

    def run(self) -> None:
        try:
            self.client.execute(env=self.env, **_kernel_options())
            self.saving = True
            self._write_temporaries()
        except BaseException as err:  # reported by the main thread
            self.error = err
        finally:  # nbclient's exit-time cleanup fails ("assert self.km") when a failed start already cleaned up
            atexit.unregister(getattr(self.client, "_cleanup_kernel", lambda: None))

    def _write_temporaries(self) -> None:
        import nbformat
        from nbconvert import HTMLExporter

        add_static_fallbacks(self.nb)
        self.nb.metadata["kernelspec"] = _kernelspec(self.client.kernel_name)
        nbformat.write(self.nb, self.temps[".ipynb"])
        offline = copy.deepcopy(self.nb)
        drop_views(offline)  # the HTML shows the saved bars without fetching the widget JavaScript
        html, _ = HTMLExporter().from_notebook_node(offline)
        Path(self.temps[".html"]).write_text(html, encoding="utf-8")

    def kill_kernel(self) -> None:
        """Kill the kernel's process group (its data-loader workers too); the worker then sees a dead kernel."""
        provisioner = getattr(self.client.km, "provisioner", None)
        pgid, process = getattr(provisioner, "pgid", None), getattr(provisioner, "process", None)
        try:
            if pgid and hasattr(os, "killpg"):
                os.killpg(pgid, signal.SIGKILL)
            elif process is not None:
                process.kill()
        except OSError:
            pass  # already gone

    def where(self) -> str:
        """``"03_training.ipynb, cell 12 `fit(model, ...)`"``: the cell that was running (1 = first cell)."""
        if self.saving or self.cell is None:
            return f"{self.path.name} ({'while saving its outputs' if self.saving else 'while starting its kernel'})"
        first = next((line.strip() for line in self.nb.cells[self.cell].source.splitlines() if line.strip()), "")
        return f"{self.path.name}, cell {self.cell + 1} `{first[:60] + ('…' if len(first) > 60 else '')}`"

    def publish(self) -> Path:
        """Rename the temporaries to ``build/NN_topic.ipynb`` / ``.html``; remove an old failed copy."""
        for ext, temp in self.temps.items():
            os.replace(temp, self.build / self.path.with_suffix(ext).name)
        (self.build / "failed" / self.path.name).unlink(missing_ok=True)
        return self.build / self.path.name

    def discard(self) -> None:
        for temp in self.temps.values():
            Path(temp).unlink(missing_ok=True)

    def save_failed(self) -> Path:
        """The half-run notebook, with its traceback, as ``build/failed/NN_topic.ipynb``."""
        import nbformat

        failed = self.build / "failed" / self.path.name
        failed.parent.mkdir(exist_ok=True)
        add_static_fallbacks(self.nb)
        nbformat.write(self.nb, self.temps[".ipynb"])
        os.replace(self.temps[".ipynb"], failed)
        return failed


def _temp_name(build: Path, path: Path, ext: str) -> str:
    """A fresh hidden name ``build/.NN_topic.<pid>.<random>.ipynb.tmp`` (the website's ``NN_*.ipynb`` never
    matches it); the file is created only when written."""
    return str(build / f".{path.stem}.{os.getpid()}.{secrets.token_hex(4)}{ext}.tmp")


def _kernelspec(name: str) -> dict:
    """The ``kernelspec`` metadata JupyterLab writes for kernel ``name`` (so opening the copy changes nothing)."""
    from jupyter_client.kernelspec import KernelSpecManager

    spec = KernelSpecManager().get_kernel_spec(name)
    return {"display_name": spec.display_name, "language": spec.language, "name": name}


def _failure(job: _Execution, timeout: int) -> str:
    """One line: where the notebook stopped and what was raised (``ClaimError: ...``)."""
    from nbclient.exceptions import CellExecutionError, CellTimeoutError, DeadKernelError

    err = job.error
    if isinstance(err, CellTimeoutError):
        what = f"no result after {timeout} s (the cell timed out)"
    elif isinstance(err, CellExecutionError):
        what = f"{err.ename}: {' '.join(str(err.evalue).split())[:400]}"
    elif isinstance(err, DeadKernelError):
        what = "the kernel died (out of memory, or a crash in native code)"
    else:
        what = f"{type(err).__name__}: {' '.join(str(err).split())[:400]}"
    return f"{job.where()}: {what}"


def _wait(job: _Execution, stop: StopSignals, grace: float = 30.0) -> None:
    """Wait for the worker. After a signal, kill the kernel (again every second: it may still be starting)
    and wait at most ``grace`` seconds for nbclient to notice and clean up."""
    deadline = last_kill = None
    while job.is_alive():
        job.join(0.2)
        now = time.monotonic()
        if stop.signame and (last_kill is None or now - last_kill >= 1.0):
            deadline, last_kill = deadline or now + grace, now
            job.kill_kernel()
        if deadline is not None and now > deadline:
            return


def execute_notebook(path: Path, build: Path, *, env: dict[str, str], timeout: int = 3600) -> Path:
    """Run one notebook top to bottom in a fresh kernel; -> ``build/<name>.ipynb`` (and ``.html`` beside it),
    written only if every cell ran. Raises :class:`NotebookError` (the previous copy stays; the half-run one
    goes to ``build/failed/``) or, on SIGINT/SIGTERM, :class:`Interrupted` (``build/`` as it was)."""
    path, build = Path(path), Path(build)
    build.mkdir(parents=True, exist_ok=True)
    job = _Execution(path, build, env=env, timeout=timeout)
    try:
        with StopSignals() as stop:  # a signal while saving is recorded, and honoured once the files are whole
            job.start()
            _wait(job, stop)
            if stop.signame:
                raise Interrupted(stop.signame, f"stopped in {job.where()}; its kernel was stopped")
            if job.error is not None:
                failed = job.save_failed()
                raise NotebookError(f"{_failure(job, timeout)} [the run with its traceback: {failed}]")
            out = job.publish()
            if stop.signame:
                raise Interrupted(stop.signame, f"stopped after {out} was written (it is complete)")
        return out
    finally:
        job.discard()


# --- the series -----------------------------------------------------------------------------------------------

def run_series(*, data: str | Path, build: str | Path, size: str = "default", only: str | None = None,
               notebooks: Path = NOTEBOOK_DIR) -> int:
    """Execute every notebook of ``notebooks`` in order, print the time each took and the final metrics table;
    0 on success, 1 when a notebook fails (one line on stderr), 128 + the signal's number after SIGINT/SIGTERM."""
    books = check_arguments(data=data, build=build, size=size, only=only, notebooks=notebooks)
    build, env = Path(build), {"ASD_DATA": str(Path(data).resolve()), "ASD_SIZE": size}
    if size == "smoke":
        env["ASD_SMOKE"] = "1"
    start, times = time.perf_counter(), []
    _copy_pages(notebooks, build)
    with StopSignals() as stop:  # between notebooks; each run has its own
        for book in books:
            rc = _run_one(book, build, env, times)
            if rc or stop.signame:
                return rc or _stopped(Interrupted(stop.signame, f"stopped after {book.name}"), build / book.name)
        print("\n".join(f"{name:40s} {secs:7.0f} s" for name, secs in times))
        print(f"{'total':40s} {time.perf_counter() - start:7.0f} s")
        _print_final_table(Path(data))
    return 0


def _copy_pages(notebooks: Path, build: Path) -> None:
    """The markdown pages the notebooks link to (``glossary.md#…``, the instructor guide) beside the executed
    copies, so that their links work when ``build/`` is opened on its own."""
    build.mkdir(parents=True, exist_ok=True)
    for page in sorted(Path(notebooks).glob("*.md")):
        shutil.copyfile(page, build / page.name)


def _run_one(book: Path, build: Path, env: dict[str, str], times: list) -> int:
    """Execute one notebook of the series and say so; 0, or the exit status of the run."""
    t0 = time.perf_counter()
    print(f"running {book.name} ...", flush=True)
    try:
        execute_notebook(book, build, env=env)
    except NotebookError as err:
        print(f"error: {err}", file=sys.stderr)
        _say_kept(build / book.name)
        return 1
    except Interrupted as err:
        return _stopped(err, build / book.name)
    times.append((book.name, time.perf_counter() - t0))
    print(f"  done in {times[-1][1]:.0f} s -> {build / book.name}", flush=True)
    return 0


def _stopped(err: Interrupted, final: Path) -> int:
    print(f"interrupted by {err}", file=sys.stderr)
    _say_kept(final)
    return 128 + getattr(signal, err.signame)


def _say_kept(final: Path) -> None:
    kept = f"{final} is still the last good run" if final.is_file() else f"{final} was not written"
    print(f"  ({kept})", file=sys.stderr)


def _print_final_table(data: Path) -> None:
    """The results behind the series: the last evaluation trained here (``data/runs/*/summary.csv``) if any,
    and the shipped reference runs the notebooks load on a CPU."""
    import pandas as pd

    from asdlib.evaluation.metrics import to_markdown
    from asdlib.teaching import pretrained

    summaries = sorted((REPO / "data" / "runs").glob("*/summary.csv"), key=lambda p: p.stat().st_mtime)
    for path in summaries[-2:]:
        print(f"\n{path.parent.name} on {data}:\n{to_markdown(pd.read_csv(path))}")
    runs = pretrained.registry(study=False).values()  # the study runs are not the series' (pretrained list has them)
    print("\nreference runs (python -m asdlib pretrained list):")
    print("\n".join(f"  {r.name:32s} AUC {100 * r.auc:5.1f} %  pAUC {100 * r.pauc:5.1f} %" for r in runs))
