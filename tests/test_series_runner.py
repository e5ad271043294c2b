"""``run-series`` fails cleanly: real runner processes on tiny notebooks, a real kernel, real signals.

A failing cell gives one line (notebook, cell, exception) and keeps the previous good copy in ``build/``;
SIGINT/SIGTERM stop the kernel and leave ``build/`` as it was; bad options are refused before a kernel starts;
a saved progress bar carries a finished static fallback, the kernel's TCP warning is gone and the metadata
is what JupyterLab itself writes.
"""
from __future__ import annotations

import html
import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import nbformat
import pytest

from asdlib.teaching import saved_widgets
from asdlib.teaching.series import check_arguments, list_notebooks

RUN = ("import sys; from asdlib.teaching.series import run_series; "
       "sys.exit(run_series(data=sys.argv[1], build=sys.argv[2], size='smoke', notebooks=sys.argv[3]))")
PREVIOUS = '{"previous": "good copy"}'


def _book(folder: Path, name: str, *sources: str) -> Path:
    nb = nbformat.v4.new_notebook(cells=[nbformat.v4.new_code_cell(s) for s in sources])
    nb.metadata["kernelspec"] = {"display_name": "Python 3 (ipykernel)", "language": "python", "name": "python3"}
    folder.mkdir(exist_ok=True)
    nbformat.write(nb, folder / name)
    return folder / name


def _runner(tmp_path: Path, **env) -> subprocess.Popen:
    """``run_series`` over ``tmp_path/notebooks`` into ``tmp_path/build``, in its own process."""
    return subprocess.Popen([sys.executable, "-c", RUN, str(tmp_path / "data"), str(tmp_path / "build"),
                             str(tmp_path / "notebooks")], stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                            text=True, env={**os.environ, **env})


def _leftovers(build: Path) -> list[str]:
    return sorted(p.name for p in build.iterdir() if p.name.startswith(".") or p.suffix == ".tmp")


def test_failing_cell_gives_one_line_and_keeps_the_previous_copy(tmp_path):
    (tmp_path / "notebooks").mkdir()
    (tmp_path / "notebooks" / "glossary.md").write_text("# Glossary\n")
    _book(tmp_path / "notebooks", "00_claims.ipynb", "x = 1",
          "from asdlib.teaching.claims import ClaimError\nraise ClaimError('the gain grows: it shrank')")
    build = tmp_path / "build"
    build.mkdir()
    (build / "00_claims.ipynb").write_text(PREVIOUS)
    out, err = _runner(tmp_path).communicate(timeout=300)
    lines = err.strip().splitlines()
    assert lines[0].startswith("error: 00_claims.ipynb, cell 2 `from asdlib.teaching.claims import ClaimError`: "
                               "ClaimError: the gain grows: it shrank"), err
    assert "Traceback" not in err and "CellExecutionError" not in err, err
    assert (build / "00_claims.ipynb").read_text() == PREVIOUS and "still the last good run" in err
    assert (build / "glossary.md").read_text() == "# Glossary\n"  # the linked pages travel with the copies
    assert not (build / "00_claims.html").exists() and not _leftovers(build)
    failed = nbformat.read(build / "failed" / "00_claims.ipynb", as_version=4)  # the traceback, for reading
    assert failed.cells[1].outputs[0]["ename"] == "ClaimError"
    assert str(build / "failed" / "00_claims.ipynb") in lines[0]


@pytest.mark.parametrize("signame", ["SIGINT", "SIGTERM"])
def test_signal_stops_the_kernel_and_leaves_build_as_it_was(tmp_path, signame):
    mark = tmp_path / "kernel.pid"
    _book(tmp_path / "notebooks", "00_sleep.ipynb",
          "import os, time\nopen(os.environ['MARK'], 'w').write(str(os.getpid()))", "time.sleep(120)")
    build = tmp_path / "build"
    build.mkdir()
    (build / "00_sleep.ipynb").write_text(PREVIOUS)
    runner = _runner(tmp_path, MARK=str(mark))
    deadline = time.monotonic() + 240
    while not (mark.is_file() and mark.read_text()) and runner.poll() is None and time.monotonic() < deadline:
        time.sleep(0.1)
    assert runner.poll() is None, runner.communicate()
    kernel = int(mark.read_text())
    time.sleep(0.3)  # the second cell is sleeping now
    runner.send_signal(getattr(signal, signame))
    out, err = runner.communicate(timeout=60)
    assert runner.returncode == 128 + getattr(signal, signame), (out, err)
    assert f"interrupted by {signame}: stopped in 00_sleep.ipynb, cell 2 `time.sleep(120)`" in err, err
    assert "Traceback" not in err and "AssertionError" not in err, err
    assert (build / "00_sleep.ipynb").read_text() == PREVIOUS and not _leftovers(build)
    assert not (build / "00_sleep.html").exists() and not (build / "failed").exists()
    for _ in range(50):  # the kernel process is gone (it was killed, then reaped by init)
        try:
            os.kill(kernel, 0)
        except ProcessLookupError:
            break
        time.sleep(0.1)
    else:
        pytest.fail(f"kernel {kernel} still running after {signame}")


def test_options_are_checked_before_a_kernel_starts(tmp_path):
    a_file = tmp_path / "clips.zip"
    a_file.write_bytes(b"PK")
    with pytest.raises(ValueError, match=r"--data .*clips.zip: is a file, not a dataset folder"):
        check_arguments(data=a_file, build=tmp_path / "build", size="smoke", only=None)
    with pytest.raises(ValueError, match=r"--build .*clips.zip: is a file"):
        check_arguments(data=tmp_path / "data", build=a_file, size="smoke", only=None)
    with pytest.raises(ValueError, match=r"--size huge: expected one of .*smoke"):
        check_arguments(data=tmp_path / "data", build=tmp_path / "build", size="huge", only=None)
    numbers = [p.name[:2] for p in list_notebooks()]
    with pytest.raises(ValueError, match=rf"--only 99: no notebook numbered 99 .*the series has {', '.join(numbers)}"):
        list_notebooks("99")
    assert [p.name[:2] for p in list_notebooks(f"{int(numbers[1])},{numbers[0]}")] == numbers[:2]  # "1" = "01"
    cli = subprocess.run([sys.executable, "-m", "asdlib", "run-series", "--build", str(tmp_path / "b"),
                          "--data", str(a_file)], capture_output=True, text=True, timeout=120)  # the command line
    assert cli.returncode == 2 and cli.stderr.startswith("error: --data") and "Traceback" not in cli.stderr, cli.stderr
    assert not (tmp_path / "b").exists()


def test_saved_progress_bars_are_finished_text_and_metadata_is_what_jupyterlab_writes(tmp_path):
    from ipykernel.ipkernel import IPythonKernel
    from jupyter_client.kernelspec import KernelSpecManager

    _book(tmp_path / "notebooks", "00_bars.ipynb", "from tqdm.auto import tqdm",
          "for _ in tqdm(range(3), desc='epoch'):\n    pass",
          "for _ in tqdm(range(50), desc='batches', leave=False, mininterval=1e9):\n    pass  # never redrawn")
    build = tmp_path / "build"
    (build / "failed").mkdir(parents=True)
    (build / "failed" / "00_bars.ipynb").write_text("{}")  # an old failure, gone after a good run
    out, err = _runner(tmp_path).communicate(timeout=300)
    assert "without encryption" not in out + err, err  # ipykernel's warning (kernelapp.py, init_sockets)
    assert "done in" in out and not (build / "failed" / "00_bars.ipynb").exists(), out + err
    nb = json.loads((build / "00_bars.ipynb").read_text())
    views = [o["data"] for c in nb["cells"] for o in c.get("outputs", [])
             if saved_widgets.WIDGET_VIEW in o.get("data", {})]
    assert len(views) == 2, views
    plain = ["".join(v["text/plain"]) for v in views]
    assert plain[0].startswith("epoch: 100%|██████████| 3/3 [") and plain[1].startswith("batches: 100%|██████████| 50/50 [")
    for data, n in zip(views, (3, 50)):
        assert f'<progress value="{n}.0" max="{n}.0">' in "".join(data["text/html"])
    state = saved_widgets.saved_state(nb)  # the widget itself, restored from the state, says 100 % too
    texts = [html.unescape(m["state"]["value"]) for m in state.values() if m["model_name"] == "HTMLModel"]
    assert any(t.replace("\u2007", " ").startswith("batches: 100%") for t in texts), texts
    page = (build / "00_bars.html").read_text()
    assert "static-widget-progress" in page and "embed-amd" not in page  # the HTML needs no widget JavaScript
    spec = KernelSpecManager().get_kernel_spec("python3")
    assert nb["metadata"]["kernelspec"] == {"display_name": spec.display_name, "language": spec.language,
                                            "name": "python3"}
    assert nb["metadata"]["language_info"] == json.loads(json.dumps(IPythonKernel.language_info))


def test_a_bar_that_stopped_early_keeps_its_saved_text():
    left = {"model_name": "HTMLModel", "state": {"value": "epochs:\u2007\u200740%"}}
    bar = {"model_name": "FloatProgressModel", "state": {"value": 2.0, "max": 5.0, "bar_style": "danger"}}
    right = {"model_name": "HTMLModel", "state": {"value": "\u20072/5\u2007[00:01&lt;00:02]"}}
    box = {"model_name": "HBoxModel", "state": {"children": ["IPY_MODEL_l", "IPY_MODEL_b", "IPY_MODEL_r"]}}
    state = {"l": left, "b": bar, "r": right, "box": box}
    assert saved_widgets.finish_progress_bars(state) == 0
    assert saved_widgets.widget_text("box", state) == "epochs:  40%|████      | 2/5 [00:01<00:02]"
    bar["state"]["value"] = 5.0  # reached the end, but tqdm did not redraw the text (leave=False)
    assert saved_widgets.finish_progress_bars(state) == 1
    assert saved_widgets.widget_text("box", state) == "epochs: 100%|██████████| 5/5 [00:01<00:02]"
