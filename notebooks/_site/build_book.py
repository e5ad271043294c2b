"""Build the course website from the executed notebooks: ``python notebooks/_site/build_book.py`` (``make book``).

It stages a Sphinx source folder — the executed copies of ``notebooks/NN_topic.ipynb`` that ``make run`` wrote
to ``build/`` (``--executed``), the instructor guide, the glossary and a home page — and runs Sphinx with
``conf.py`` from this folder into ``build/book/`` (``--out``). Nothing is executed again. Before staging, each
notebook is made self-contained for offline reading: saved widget views (tqdm progress bars) become static
HTML drawn from the saved widget state, and the remote "Open in Colab" badge image becomes a local copy.

A notebook without an executed copy is staged from its source (text, math and code, no outputs) under a
warning banner, and listed at the end; ``--strict`` makes that an error instead (as does having no executed
notebook at all).
"""
from __future__ import annotations

import argparse
import html
import json
import shutil
import sys
import tempfile
from pathlib import Path

SITE = Path(__file__).resolve().parent  # notebooks/_site: conf.py, mathml.py, index.md, _static/
NOTEBOOKS = SITE.parent
REPO = NOTEBOOKS.parent
PAGES = ("instructor_guide.md", "glossary.md")  # Markdown pages of notebooks/ that the site includes
WIDGET_VIEW = "application/vnd.jupyter.widget-view+json"
WIDGET_STATE = "application/vnd.jupyter.widget-state+json"
COLAB_BADGE = "https://colab.research.google.com/assets/colab-badge.svg"
README_ONLINE = "https://github.com/asd-notebooks/asd-notebooks/blob/main/README.md"  # the site has no README page
SMOKE_NOTE = """:::{note}
These pages show **smoke-mode** outputs (a tiny dataset and a few training steps, as the tests run the series):
the numbers and figures only show that everything runs. Build the site after `make run` for the real outputs.
:::"""


def series() -> list[Path]:
    """The numbered notebooks ``notebooks/NN_topic.ipynb``, in order."""
    return sorted(NOTEBOOKS.glob("[0-9][0-9]_*.ipynb"))


# --- widgets: the saved state of a widget view, drawn as static HTML -----------------------------------------

def widget_html(model_id: str, state: dict) -> str | None:
    """Static HTML for the widget ``model_id`` (boxes, HTML/Label text, progress bars); None if unknown."""
    model = state.get(model_id)
    if model is None:
        return None
    name, s = model.get("model_name", ""), model.get("state", {})
    if name in ("HBoxModel", "VBoxModel", "BoxModel"):
        kids = [widget_html(ref.removeprefix("IPY_MODEL_"), state) for ref in s.get("children", [])]
        if any(k is None for k in kids):
            return None
        progress = " static-widget-progress" if any("<progress" in k for k in kids) else ""
        kind = "vbox" if name == "VBoxModel" else "hbox"
        return f'<div class="static-widget-box {kind}{progress}">{"".join(kids)}</div>'
    if name == "HTMLModel":  # its value is HTML already (tqdm escapes its text)
        return f"<span>{s.get('value', '')}</span>"
    if name == "LabelModel":
        return f"<span>{html.escape(str(s.get('value', '')))}</span>"
    if name in ("FloatProgressModel", "IntProgressModel"):
        return f'<progress value="{s.get("value", 0)}" max="{s.get("max", 100)}"></progress>'
    return None


def freeze_widgets(nb: dict) -> int:
    """Replace every widget view by static HTML from the notebook's saved widget state; drop the state."""
    state = nb.get("metadata", {}).pop("widgets", {}).get(WIDGET_STATE, {}).get("state", {})
    frozen = 0
    for cell in nb["cells"]:
        for out in cell.get("outputs", []):
            data = out.get("data", {})
            if WIDGET_VIEW not in data:
                continue
            static = widget_html(data.pop(WIDGET_VIEW).get("model_id", ""), state)
            if static is not None:  # else the text/plain fallback stays
                data["text/html"] = static
                frozen += 1
    return frozen


# --- staging --------------------------------------------------------------------------------------------------

def localise_badges(nb: dict) -> None:
    """The "Open in Colab" badge image from a local file (the link itself still goes to Colab)."""
    for cell in nb["cells"]:
        if cell["cell_type"] == "markdown":
            src = "".join(cell["source"]) if isinstance(cell["source"], list) else cell["source"]
            cell["source"] = src.replace(COLAB_BADGE, "colab-badge.svg")


def missing_banner(source: Path, executed: Path) -> dict:
    text = (f":::{{warning}}\nNo executed copy of this notebook was found (`{executed}`), so this page shows "
            f"its text and code without outputs. Run `make run` (or `make notebooks` for smoke outputs) and "
            f"build the site again.\n:::")
    return {"cell_type": "markdown", "metadata": {}, "source": text, "id": f"missing-{source.stem[:2]}"}


def stage_notebook(source: Path, executed_dir: Path, stage: Path) -> tuple[bool, bool]:
    """Write the site copy of one notebook; ``-> (had an executed copy, ran in smoke mode)``."""
    executed = executed_dir / source.name
    found = executed.is_file()
    nb = json.loads((executed if found else source).read_text(encoding="utf-8"))
    if found:
        if source.stat().st_mtime > executed.stat().st_mtime:
            print(f"note: {executed} is older than {source.relative_to(REPO)}; its outputs may be out of date")
        freeze_widgets(nb)
    else:
        nb["cells"].insert(1 if nb["cells"] else 0, missing_banner(source, executed))
    localise_badges(nb)
    (stage / source.name).write_text(json.dumps(nb, ensure_ascii=False), encoding="utf-8")
    return found, found and "smoke mode: True" in json.dumps(nb["cells"])


def home_page(books: list[Path], smoke: bool) -> str:
    """``_site/index.md`` with the notebooks' table of contents and, for smoke outputs, a note."""
    template = (SITE / "index.md").read_text(encoding="utf-8")
    toc = "\n".join(book.stem for book in books)
    return template.replace("{{ series }}", toc).replace("{{ outputs_note }}", SMOKE_NOTE if smoke else "")


def stage_site(executed_dir: Path, stage: Path) -> list[Path]:
    """Fill ``stage`` with the site's sources; return the notebooks that had no executed copy."""
    books, missing, smoke = series(), [], False
    if not books:
        raise SystemExit(f"no notebooks found in {NOTEBOOKS}")
    for book in books:
        found, was_smoke = stage_notebook(book, executed_dir, stage)
        smoke |= was_smoke
        if not found:
            missing.append(book)
    for page in PAGES:  # their links to ../README.md point at the repository's README instead
        text = (NOTEBOOKS / page).read_text(encoding="utf-8")
        (stage / page).write_text(text.replace("](../README.md", f"]({README_ONLINE}"), encoding="utf-8")
    shutil.copy2(SITE / "colab-badge.svg", stage / "colab-badge.svg")
    (stage / "index.md").write_text(home_page(books, smoke), encoding="utf-8")
    return missing


def build(executed_dir: Path, out: Path, *, strict: bool = False) -> int:
    """Stage and run Sphinx; 0 on success. The output folder is replaced."""
    from sphinx.cmd.build import build_main

    executed_dir, out = executed_dir.resolve(), out.resolve()
    with tempfile.TemporaryDirectory(prefix="asd-book-") as tmp:
        stage, doctrees = Path(tmp) / "src", Path(tmp) / "doctrees"
        stage.mkdir()
        missing = stage_site(executed_dir, stage)
        for book in missing:
            print(f"missing: {executed_dir / book.name} (not executed yet); its page shows no outputs")
        if missing and strict:
            print("--strict: every notebook needs an executed copy; run `make run` first")
            return 1
        if out.exists():
            shutil.rmtree(out)
        rc = build_main(["-b", "html", "-q", "-c", str(SITE), "-d", str(doctrees), str(stage), str(out)])
    if rc == 0:
        print(f"course website: {out / 'index.html'} ({len(series()) - len(missing)} of {len(series())} "
              f"notebooks with outputs from {executed_dir})")
    return rc


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
