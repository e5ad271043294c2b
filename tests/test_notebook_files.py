"""The committed notebooks are clean (no outputs, full kernel metadata, no widget state), their Colab install
line and badges point at ``asdlib.REPO``, and the worked solutions ship inside the package unchanged."""
from __future__ import annotations

import json
import re
from pathlib import Path

import pytest

from asdlib import COLAB_INSTALL, REPO
from asdlib.teaching import nbtools
from asdlib.teaching.exercises import solution_source, solution_text

ROOT = Path(__file__).resolve().parents[1]
NOTEBOOKS = sorted((ROOT / "notebooks").glob("[0-9][0-9]_*.ipynb"))
SOLUTIONS = sorted((ROOT / "asdlib" / "teaching" / "exercises" / "solutions").glob("[0-9][0-9]_solutions.py"))


@pytest.mark.parametrize("path", NOTEBOOKS, ids=[p.stem for p in NOTEBOOKS])
def test_notebook_is_committed_without_outputs_and_with_metadata(path):
    assert nbtools.notebook_problems(path) == [], \
        f"{path.name}: run `python -m asdlib.teaching.nbtools clean {path.relative_to(ROOT)}` before committing"


@pytest.mark.parametrize("path", NOTEBOOKS, ids=[p.stem for p in NOTEBOOKS])
def test_notebook_installs_from_the_one_repository(path):
    text = path.read_text(encoding="utf-8")
    assert COLAB_INSTALL in text, f"{path.name}: no Colab install line {COLAB_INSTALL!r}"
    assert nbtools.install_problems(path) == [], \
        f"{path.name}: run `python -m asdlib.teaching.nbtools retarget {path.relative_to(ROOT)}`"


def test_clean_notebook_strips_outputs_and_sets_metadata(tmp_path):
    nb = {"nbformat": 4, "nbformat_minor": 5, "metadata": {"widgets": {"state": {}}, "kernelspec": {}},
          "cells": [{"cell_type": "code", "id": "a", "metadata": {"execution": {"x": 1}}, "execution_count": 3,
                     "outputs": [{"output_type": "stream", "name": "stdout", "text": "hi"}], "source": "1"},
                    {"cell_type": "markdown", "id": "b", "metadata": {}, "source": "# ü"}]}
    path = tmp_path / "00_dirty.ipynb"
    path.write_text(json.dumps(nb))
    assert nbtools.notebook_problems(path)
    assert nbtools.clean_notebook(path)
    assert nbtools.notebook_problems(path) == []
    assert not nbtools.clean_notebook(path)  # idempotent
    saved = json.loads(path.read_text(encoding="utf-8"))
    assert saved["cells"][0]["outputs"] == [] and saved["cells"][0]["execution_count"] is None
    assert saved["cells"][1]["source"] == "# ü" and "ü" in path.read_text(encoding="utf-8")


def test_clean_notebook_gives_every_cell_an_id_and_keeps_the_ones_it_has(tmp_path):
    nb = {"nbformat": 4, "nbformat_minor": 5, "metadata": {},
          "cells": [{"cell_type": "markdown", "id": "keep", "metadata": {}, "source": "# a"},
                    {"cell_type": "code", "metadata": {}, "execution_count": None, "outputs": [], "source": "1"},
                    {"cell_type": "markdown", "metadata": {}, "source": "b"}]}
    path = tmp_path / "00_new_cells.ipynb"
    path.write_text(json.dumps(nb))
    assert "has cells without an id" in nbtools.notebook_problems(path)
    nbtools.clean_notebook(path)
    ids = [cell["id"] for cell in json.loads(path.read_text(encoding="utf-8"))["cells"]]
    assert ids[0] == "keep" and len(set(ids)) == 3 and all(ids)
    assert nbtools.notebook_problems(path) == []


def test_retarget_rewrites_install_line_and_badges(tmp_path):
    source = ('%pip install -q "asdlib @ git+https://github.com/someone/fork"\n'
              "[badge](https://colab.research.google.com/github/someone/fork/blob/main/notebooks/00_x.ipynb)\n"
              "times: [the README's table](https://github.com/someone/fork#the-notebooks)")
    nb = {"nbformat": 4, "nbformat_minor": 5, "metadata": {},
          "cells": [{"cell_type": "markdown", "id": "a", "metadata": {}, "source": source.splitlines(True)}]}
    path = tmp_path / "00_x.ipynb"
    path.write_text(json.dumps(nb))
    assert len(nbtools.install_problems(path)) == 2
    assert nbtools.retarget_notebook(path)
    assert nbtools.install_problems(path) == []
    assert f"github/{REPO}/blob/main" in path.read_text() and COLAB_INSTALL in path.read_text()
    assert f"(https://github.com/{REPO}#the-notebooks)" in path.read_text() and "someone" not in path.read_text()


@pytest.mark.parametrize("source", SOLUTIONS, ids=[p.stem for p in SOLUTIONS])
def test_packaged_solutions_print_valid_python(source):
    number = source.name[:2]
    assert solution_source(number) == source.read_text(encoding="utf-8")
    for k in sorted({int(m) for m in re.findall(r"Exercise (\d+)", source.read_text())}):
        text = solution_text(number, k)
        compile(text, f"{number}_solution_{k}", "exec")  # the printed solution is valid Python
        assert f"Exercise {k}" in text


def test_solution_prints_and_never_raises(capsys):
    from asdlib.teaching.exercises import ex03

    ex03.solution(3)
    out = capsys.readouterr().out
    assert "def peek_optimism" in out and "def selected_epoch" in out  # the helper it calls comes along
    ex03.solution(9)
    assert "no worked solution for exercise 9" in capsys.readouterr().out
