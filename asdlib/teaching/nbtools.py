"""Housekeeping for the committed notebooks and the shipped solutions (for maintainers, not for learners).

The notebooks are committed **without outputs**: executed copies go to ``build/`` (``make run``). A committed
notebook carries full ``kernelspec`` and ``language_info`` metadata, so JupyterLab does not mark it modified
on opening, and no saved widget state. :func:`clean_notebook` makes a notebook so; :func:`install_problems`
finds notebooks whose Colab install line or Colab badge does not point at :data:`asdlib.REPO`, and
:func:`retarget_notebook` rewrites them (what a fork runs once after changing ``REPO``). From a terminal::

    python -m asdlib.teaching.nbtools clean notebooks/0[0-6]_*.ipynb   # strip outputs, set the metadata
    python -m asdlib.teaching.nbtools retarget notebooks/0[0-6]_*.ipynb  # install line and badges from asdlib.REPO
"""
from __future__ import annotations

import argparse
import copy
import json
import re
import uuid
from pathlib import Path

from asdlib import COLAB_INSTALL, REPO

KERNELSPEC = {"display_name": "Python 3 (ipykernel)", "language": "python", "name": "python3"}
LANGUAGE_INFO = {  # what ipykernel reports, less the Python version: JupyterLab marks a notebook modified when the
    # saved version differs from its kernel's ("3.11" vs "3.11.7"), and every student's kernel has its own
    "codemirror_mode": {"name": "ipython", "version": 3},
    "file_extension": ".py",
    "mimetype": "text/x-python",
    "name": "python",
    "nbconvert_exporter": "python",
    "pygments_lexer": "ipython3",
}
INSTALL_PATTERN = re.compile(r'asdlib @ git\+https://github\.com/[\w.-]+/[\w.-]+')
BADGE_PATTERN = re.compile(r'(colab\.research\.google\.com/github/)[\w.-]+/[\w.-]+(/blob/)')
REPO_LINK_PATTERN = re.compile(r'(https://github\.com/)[\w.-]+/[\w.-]+?(?=[#/)\s"\'\]]|$)')  # README, file links


def _read(path: str | Path) -> dict:
    return json.loads(Path(path).read_text(encoding="utf-8"))


def _write(path: str | Path, nb: dict) -> None:
    """Write a notebook as Jupyter does: one-space indentation, non-ASCII kept, a final newline."""
    Path(path).write_text(json.dumps(nb, indent=1, ensure_ascii=False) + "\n", encoding="utf-8")


def cleaned(nb: dict) -> dict:
    """A copy of notebook ``nb`` (nbformat 4 JSON) without outputs, execution counts and widget state, with
    the series' ``kernelspec`` and ``language_info``, and an ``id`` for every cell that lacks one."""
    nb = copy.deepcopy(nb)
    for cell in nb["cells"]:
        if not cell.get("id"):  # nbformat 4.5 requires one per cell; 32 random hex digits do not collide
            cell["id"] = uuid.uuid4().hex
        if cell["cell_type"] == "code":
            cell["outputs"], cell["execution_count"] = [], None
        cell.get("metadata", {}).pop("execution", None)  # nbclient's timing records
    metadata = nb.setdefault("metadata", {})
    metadata.pop("widgets", None)
    metadata["kernelspec"], metadata["language_info"] = dict(KERNELSPEC), copy.deepcopy(LANGUAGE_INFO)
    return nb


def clean_notebook(path: str | Path) -> bool:
    """Strip outputs, execution counts and widget state from the notebook at ``path`` and set its metadata
    (see :func:`cleaned`), in place. Returns True if the file changed."""
    before = Path(path).read_text(encoding="utf-8")
    _write(path, cleaned(json.loads(before)))
    return Path(path).read_text(encoding="utf-8") != before


def notebook_problems(path: str | Path) -> list[str]:
    """What keeps the notebook at ``path`` from being committed as is (empty if it is clean)."""
    nb, problems = _read(path), []
    code = [c for c in nb["cells"] if c["cell_type"] == "code"]
    if any(c.get("outputs") for c in code):
        problems.append("has outputs")
    if any(c.get("execution_count") is not None for c in code):
        problems.append("has execution counts")
    if not all(c.get("id") for c in nb["cells"]):
        problems.append("has cells without an id")
    metadata = nb.get("metadata", {})
    if "widgets" in metadata:
        problems.append("has saved widget state")
    if metadata.get("kernelspec") != KERNELSPEC or metadata.get("language_info") != LANGUAGE_INFO:
        problems.append("lacks the full kernelspec / language_info metadata")
    return problems


def _sources(nb: dict) -> list[str]:
    return ["".join(c["source"]) if isinstance(c["source"], list) else c["source"] for c in nb["cells"]]


def install_problems(path: str | Path, *, repo: str = REPO) -> list[str]:
    """Install lines and Colab badges in the notebook at ``path`` that do not point at ``repo``."""
    problems = []
    for text in _sources(_read(path)):
        problems += [f"install line {m!r}" for m in INSTALL_PATTERN.findall(text)
                     if m != f"asdlib @ git+https://github.com/{repo}"]
        problems += [f"Colab badge of {m.group(0)!r}" for m in BADGE_PATTERN.finditer(text)
                     if m.group(0) != f"colab.research.google.com/github/{repo}/blob/"]
    return problems


def retarget_notebook(path: str | Path, *, repo: str = REPO) -> bool:
    """Point the install line, the Colab badges and the links to the repository on GitHub (the README's notebook
    table, files) of the notebook at ``path`` at ``repo`` ("owner/name").
    Returns True if the file changed."""
    nb = _read(path)
    install = COLAB_INSTALL if repo == REPO else f"asdlib @ git+https://github.com/{repo}"
    changed = False
    for cell, text in zip(nb["cells"], _sources(nb)):
        new = BADGE_PATTERN.sub(rf"\g<1>{repo}\g<2>", INSTALL_PATTERN.sub(install, text))
        new = REPO_LINK_PATTERN.sub(rf"\g<1>{repo}", new)
        if new != text:
            cell["source"], changed = new.splitlines(keepends=True), True
    if changed:
        _write(path, nb)
    return changed


def main(argv: list[str] | None = None) -> int:
    """``python -m asdlib.teaching.nbtools {clean,retarget} NOTEBOOK…``."""
    parser = argparse.ArgumentParser(prog="python -m asdlib.teaching.nbtools", description=__doc__.split("\n\n")[0])
    parser.add_argument("command", choices=("clean", "retarget"))
    parser.add_argument("notebooks", nargs="*", type=Path)
    args = parser.parse_args(argv)
    action = clean_notebook if args.command == "clean" else retarget_notebook
    for path in args.notebooks:
        print(f"{path}: {'changed' if action(path) else 'unchanged'}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
