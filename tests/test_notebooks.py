"""Every notebook runs top to bottom in a fresh kernel in smoke mode, in order, and shows its key outputs.

The notebooks share one smoke dataset and one runs folder (03 trains what 04–06 reuse), like a learner going
through the series. Cells tagged ``key-output`` must have produced an image or a table/text.
"""
from __future__ import annotations

import json
from pathlib import Path

import nbformat
import pytest

from asdlib.teaching.series import execute_notebook, list_notebooks

NOTEBOOKS = list_notebooks()


def test_notebooks_are_committed_clean():
    assert NOTEBOOKS, "no notebooks found in notebooks/"
    for path in NOTEBOOKS:
        nb = json.loads(path.read_text())
        assert "widgets" not in nb.get("metadata", {}), f"{path.name}: saved widget state"
        code = [c for c in nb["cells"] if c["cell_type"] == "code"]
        assert all(not c.get("outputs") for c in code), f"{path.name}: commit it without outputs"
        assert any("parameters" in c.get("metadata", {}).get("tags", []) for c in code), \
            f"{path.name}: no cell tagged 'parameters'"
        text = "".join("".join(c["source"]) for c in nb["cells"])
        assert "colab-badge" in text and "Exercise" in text and "Further reading" in text, path.name


@pytest.mark.slow
@pytest.mark.parametrize("path", NOTEBOOKS, ids=[p.stem for p in NOTEBOOKS])
def test_notebook_runs_in_smoke_mode(path: Path, series_env, series_build):
    build = series_build  # session fixtures (conftest.py): tests/test_site.py builds the website from these
    executed = nbformat.read(execute_notebook(path, build, env=series_env, timeout=900), as_version=4)
    outputs = [o for c in executed.cells if c.cell_type == "code" for o in c.get("outputs", [])]
    text = "".join(o.get("text", "") + json.dumps(o.get("data", {})) for o in outputs)
    assert "smoke mode: True" in text, f"{path.name} did not run in smoke mode (setup() report missing)"
    for cell in executed.cells:
        if "key-output" in cell.get("metadata", {}).get("tags", []):
            kinds = {k for o in cell.outputs for k in o.get("data", {})} | {o.output_type for o in cell.outputs}
            assert kinds & {"image/png", "text/html", "text/markdown", "stream", "text/plain"}, \
                f"{path.name}: key-output cell produced nothing:\n{cell.source[:200]}"
    assert (build / path.with_suffix(".html").name).is_file()
    if path.name[:2] in ("04", "05"):  # TRAIN = "auto" on a CPU: the shipped reference runs, not training
        assert "asdlib/reference_runs" in text or "loading the reference runs" in text, path.name
        assert "epoch 1/" not in text, f"{path.name} trained although TRAIN='auto' on a CPU loads"


@pytest.mark.slow
@pytest.mark.parametrize("path", NOTEBOOKS, ids=[p.stem for p in NOTEBOOKS])
def test_notebook_runs_again_in_the_same_checkout(path: Path, series_env, tmp_path):
    """A second Run All over what the first left behind (its runs, CSV exports, recordings) works too: after
    the smoke runs above, each notebook runs once more with the same data, runs folder and working directory."""
    executed = nbformat.read(execute_notebook(path, tmp_path, env=series_env, timeout=900), as_version=4)
    errors = [o for c in executed.cells if c.cell_type == "code" for o in c.get("outputs", [])
              if o.get("output_type") == "error"]
    assert not errors, f"{path.name}, second run: {errors[0]['ename']}: {errors[0]['evalue']}"


@pytest.mark.slow
def test_train_switch_trains_from_scratch_in_smoke_mode(series_env, tmp_path):
    """ASD_TRAIN=1 makes notebook 05 train its two runs (tiny smoke runs) instead of loading the shipped ones."""
    runs = tmp_path / "runs"
    env = {**series_env, "ASD_TRAIN": "1", "ASD_RUNS": str(runs)}
    book = next(p for p in NOTEBOOKS if p.name.startswith("05"))
    executed = nbformat.read(execute_notebook(book, tmp_path / "build", env=env, timeout=900), as_version=4)
    text = "".join(o.get("text", "") for c in executed.cells if c.cell_type == "code" for o in c.get("outputs", []))
    assert "asdlib/reference_runs" not in text
    for name in ("stgram_mfn-arcface", "tastgram_mfn-noisy_arcmix"):
        assert (runs / name / "summary.csv").is_file() and (runs / name / "best.pt").is_file(), name
