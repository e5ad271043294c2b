"""Every notebook runs top to bottom in a fresh kernel in smoke mode, in order, and shows its key outputs.

The notebooks share one smoke dataset and one runs folder (03 trains what 04–06 reuse), like a learner going
through the series. Cells tagged ``key-output`` must have produced an image or a table/text.
"""
from __future__ import annotations

import json
from pathlib import Path

import nbformat
import pytest

from asdlib.series import execute_notebook, list_notebooks

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
