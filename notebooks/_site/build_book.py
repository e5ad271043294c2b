"""Build the course website from the executed notebooks: ``python notebooks/_site/build_book.py`` (``make book``).

It stages a Sphinx source folder — the executed copies of ``notebooks/NN_topic.ipynb`` that ``make run`` wrote
to ``build/`` (``--executed``), the instructor guide, the glossary and a home page — and runs Sphinx with
``conf.py`` from this folder into ``build/book/`` (``--out``). Nothing is executed again. Before staging, each
notebook is made self-contained for offline reading: saved widget views (tqdm progress bars) become static
HTML drawn from the saved widget state, finished (``asdlib.teaching.saved_widgets``), and the remote "Open in
Colab" badge image becomes a local copy.

A notebook without an executed copy is staged from its source (text, math and code, no outputs) under a
warning banner, and listed at the end; ``--strict`` makes that an error instead (as does having no executed
notebook at all). An executed copy that cannot be used (truncated or invalid JSON, not a notebook, or a run
that stopped with an error) is staged the same way, named in an error line, and the build exits with 1 once
every other page is built.
"""
from __future__ import annotations

import argparse
import json
import shutil
import sys
import tempfile
from pathlib import Path

from asdlib.teaching.saved_widgets import add_static_fallbacks, drop_views

SITE = Path(__file__).resolve().parent  # notebooks/_site: conf.py, mathml.py, index.md, _static/
NOTEBOOKS = SITE.parent
REPO = NOTEBOOKS.parent
PAGES = ("instructor_guide.md", "glossary.md")  # Markdown pages of notebooks/ that the site includes
COLAB_BADGE = "https://colab.research.google.com/assets/colab-badge.svg"
README_ONLINE = "https://github.com/asd-notebooks/asd-notebooks/blob/main/README.md"  # the site has no README page
SMOKE_NOTE = """:::{note}
These pages show **smoke-mode** outputs (a tiny dataset and a few training steps, as the tests run the series):
the numbers and figures only show that everything runs. Build the site after `make run` for the real outputs.
:::"""


def series() -> list[Path]:
    """The numbered notebooks ``notebooks/NN_topic.ipynb``, in order."""
    return sorted(NOTEBOOKS.glob("[0-9][0-9]_*.ipynb"))


# --- widgets: saved progress bars as static HTML (asdlib.teaching.saved_widgets draws them) ---------------------

def freeze_widgets(nb: dict) -> int:
    """Replace every widget view by static HTML from the notebook's saved widget state (bars that reached
    their end say 100 %); drop the state. -> the views drawn."""
    drawn = add_static_fallbacks(nb)
    drop_views(nb)
    return drawn


# --- staging --------------------------------------------------------------------------------------------------

def localise_badges(nb: dict) -> None:
    """The "Open in Colab" badge image from a local file (the link itself still goes to Colab)."""
    for cell in nb["cells"]:
        if cell["cell_type"] == "markdown":
            src = "".join(cell["source"]) if isinstance(cell["source"], list) else cell["source"]
            cell["source"] = src.replace(COLAB_BADGE, "colab-badge.svg")


class BadNotebook(ValueError):
    """An executed copy that is not a readable notebook; the message names the file and what is wrong."""


def read_notebook(path: Path) -> dict:
    """The notebook JSON of ``path``, checked far enough for staging (BadNotebook otherwise)."""
    try:
        nb = json.loads(path.read_text(encoding="utf-8"))
    except json.JSONDecodeError as err:
        raise BadNotebook(f"{path}: not valid JSON ({err.msg} at line {err.lineno}, column {err.colno}; "
                          f"a truncated file?)") from None
    except UnicodeDecodeError:
        raise BadNotebook(f"{path}: not UTF-8 text") from None
    except OSError as err:
        raise BadNotebook(f"{path}: cannot be read ({err.strerror})") from None
    problem = notebook_problem(nb)
    if problem:
        raise BadNotebook(f"{path}: not a notebook ({problem})")
    return nb


def first_error(nb: dict) -> str | None:
    """``"cell 12 raised ClaimError: ..."`` for the first error output of a cell not tagged
    ``raises-exception`` (a notebook whose run stopped half-way), else None."""
    for i, cell in enumerate(nb["cells"], 1):
        if "raises-exception" in cell.get("metadata", {}).get("tags", []):
            continue
        for out in cell.get("outputs", []):
            if out.get("output_type") == "error":
                return f"cell {i} raised {out.get('ename', '?')}: {' '.join(str(out.get('evalue', '')).split())[:200]}"
    return None


def notebook_problem(nb: object) -> str | None:
    """What keeps ``nb`` from being an nbformat-4 notebook, or None."""
    if not isinstance(nb, dict):
        return f"a JSON {type(nb).__name__}, not an object"
    if not isinstance(nb.get("cells"), list):
        return 'no "cells" list' + (" (an empty JSON object)" if not nb else "")
    if nb.get("nbformat") != 4 or not isinstance(nb.get("metadata", {}), dict):
        return f"nbformat {nb.get('nbformat')!r}, expected 4" if nb.get("nbformat") != 4 else \
            '"metadata" is not an object'
    for i, cell in enumerate(nb["cells"], 1):
        if not isinstance(cell, dict) or not isinstance(cell.get("cell_type"), str) \
                or not isinstance(cell.get("source", ""), (str, list)):
            return f"cell {i} is not a cell"
        outputs = cell.get("outputs", [])
        if not isinstance(outputs, list) or not all(isinstance(o, dict) for o in outputs) \
                or not all(isinstance(o.get("data", {}), dict) for o in outputs):
            return f"the outputs of cell {i} are malformed"
    return None


def warning_cell(source: Path, text: str) -> dict:
    return {"cell_type": "markdown", "metadata": {}, "source": f":::{{warning}}\n{text}\n:::",
            "id": f"warning-{source.stem[:2]}"}


def missing_banner(source: Path, executed: Path) -> dict:
    return warning_cell(source, f"No executed copy of this notebook was found (`{executed}`), so this page shows "
                                f"its text and code without outputs. Run `make run` (or `make notebooks` for "
                                f"smoke outputs) and build the site again.")


def broken_banner(source: Path, err: BadNotebook) -> dict:
    return warning_cell(source, f"The executed copy of this notebook cannot be used: {err}. This page shows its "
                                f"text and code without outputs. Run `make run` again and rebuild the site.")


def stage_notebook(source: Path, executed_dir: Path, stage: Path) -> tuple[str, bool]:
    """Write the site copy of one notebook; ``-> (status, ran in smoke mode)``, status "executed",
    "missing" (no executed copy) or the BadNotebook message of an executed copy that cannot be read."""
    executed, status, nb = executed_dir / source.name, "executed", None
    if not executed.is_file():
        status, banner = "missing", missing_banner(source, executed)
    else:
        try:
            nb = read_notebook(executed)
            if first_error(nb):
                raise BadNotebook(f"{executed}: its run stopped half-way ({first_error(nb)})")
        except BadNotebook as err:
            nb, status, banner = None, str(err), broken_banner(source, err)
    if nb is None:
        nb = read_notebook(source)
        nb["cells"].insert(1 if nb["cells"] else 0, banner)
    else:
        if source.stat().st_mtime > executed.stat().st_mtime:
            print(f"note: {executed} is older than {source.relative_to(REPO)}; its outputs may be out of date")
        freeze_widgets(nb)
    localise_badges(nb)
    (stage / source.name).write_text(json.dumps(nb, ensure_ascii=False), encoding="utf-8")
    return status, status == "executed" and "smoke mode: True" in json.dumps(nb["cells"])


def home_page(books: list[Path], smoke: bool) -> str:
    """``_site/index.md`` with the notebooks' table of contents and, for smoke outputs, a note."""
    template = (SITE / "index.md").read_text(encoding="utf-8")
    toc = "\n".join(book.stem for book in books)
    return template.replace("{{ series }}", toc).replace("{{ outputs_note }}", SMOKE_NOTE if smoke else "")


def stage_site(executed_dir: Path, stage: Path) -> dict[str, list]:
    """Fill ``stage`` with the site's sources; ``-> {"missing": [notebooks without an executed copy],
    "broken": [messages of executed copies that cannot be read]}`` (those pages show no outputs)."""
    books, found, smoke = series(), {"missing": [], "broken": []}, False
    if not books:
        raise SystemExit(f"no notebooks found in {NOTEBOOKS}")
    for book in books:
        status, was_smoke = stage_notebook(book, executed_dir, stage)
        smoke |= was_smoke
        if status == "missing":
            found["missing"].append(book)
        elif status != "executed":
            found["broken"].append(status)
    for page in PAGES:  # their links to ../README.md point at the repository's README instead
        text = (NOTEBOOKS / page).read_text(encoding="utf-8")
        (stage / page).write_text(text.replace("](../README.md", f"]({README_ONLINE}"), encoding="utf-8")
    shutil.copy2(SITE / "colab-badge.svg", stage / "colab-badge.svg")
    (stage / "index.md").write_text(home_page(books, smoke), encoding="utf-8")
    return found


def build(executed_dir: Path, out: Path, *, strict: bool = False) -> int:
    """Stage and run Sphinx; 0 on success, 1 when an executed copy cannot be read (every other page is built)
    or, with ``strict``, one is missing. The output folder is replaced."""
    from sphinx.cmd.build import build_main

    executed_dir, out = executed_dir.resolve(), out.resolve()
    with tempfile.TemporaryDirectory(prefix="asd-book-") as tmp:
        stage, doctrees = Path(tmp) / "src", Path(tmp) / "doctrees"
        stage.mkdir()
        found = stage_site(executed_dir, stage)
        for book in found["missing"]:
            print(f"missing: {executed_dir / book.name} (not executed yet); its page shows no outputs")
        if found["missing"] and strict:
            print("--strict: every notebook needs an executed copy; run `make run` first")
            return 1
        if out.exists():
            shutil.rmtree(out)
        rc = build_main(["-b", "html", "-q", "-c", str(SITE), "-d", str(doctrees), str(stage), str(out)])
    with_outputs = len(series()) - len(found["missing"]) - len(found["broken"])
    if rc == 0:
        print(f"course website: {out / 'index.html'} ({with_outputs} of {len(series())} "
              f"notebooks with outputs from {executed_dir})")
    for message in found["broken"]:
        print(f"error: {message}; its page shows no outputs (run `make run` again)", file=sys.stderr)
    return rc or (1 if found["broken"] else 0)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--executed", type=Path, default=REPO / "build",
                        help="folder of the executed notebooks (default: build/, written by `make run`)")
    parser.add_argument("--out", type=Path, default=REPO / "build" / "book", help="output folder")
    parser.add_argument("--strict", action="store_true", help="fail if a notebook has no executed copy")
    args = parser.parse_args(argv)
    if not any(args.executed.glob("[0-9][0-9]_*.ipynb")):  # some may be missing, but not all
        print(f"no executed notebooks in {args.executed}: run `make run` first "
              f"(or `make notebooks` and then `make book BOOK_FROM=build/smoke`)")
        return 1
    return build(args.executed, args.out, strict=args.strict)


if __name__ == "__main__":
    sys.exit(main())
