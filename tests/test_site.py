"""The course website (``make book``): built from the smoke-mode executed notebooks, complete, and offline.

The site is built once per session from the notebooks that ``tests/test_notebooks.py`` executed (fixture
``series_build``; this file runs after it); notebooks missing there are executed here first. The checks parse
the HTML, so no browser is needed: every page exists, no script, stylesheet, image or font comes from another
host, the math is MathML (no LaTeX left in the text), outputs (figures, sound players, static progress bars)
and the Colab/Binder links are there. The README describes the browser check (a screenshot taken offline).
"""
from __future__ import annotations

import importlib.util
import json
import re
import subprocess
import sys
import time
from html.parser import HTMLParser
from pathlib import Path

import pytest

from asdlib.teaching.saved_widgets import WIDGET_STATE, WIDGET_VIEW
from asdlib.teaching.series import execute_notebook, list_notebooks

REPO = Path(__file__).resolve().parents[1]
SITE_DIR = REPO / "notebooks" / "_site"
NOTEBOOKS = list_notebooks()
PAGES = [p.stem for p in NOTEBOOKS] + ["index", "instructor_guide", "glossary", "search", "genindex"]
MATH_IN_TEXT = re.compile(r"\$\$?[^$\s][^$]*\$|\\(frac|theta|lambda|mathrm|cos|log|sum|max|sigma|begin)\b")
REMOTE = re.compile(r"^\s*(https?:)?//", re.I)


def _load(name: str):
    """A module of ``notebooks/_site`` (the builder or the MathML extension)."""
    spec = importlib.util.spec_from_file_location(f"site_{name}", SITE_DIR / f"{name}.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def _markdown_math(text: str) -> list[str]:
    """The LaTeX of every $...$ / $$...$$ in Markdown, parsed as MyST parses it."""
    from markdown_it import MarkdownIt
    from mdit_py_plugins.amsmath import amsmath_plugin
    from mdit_py_plugins.dollarmath import dollarmath_plugin

    md = MarkdownIt("commonmark").use(dollarmath_plugin, double_inline=True).use(amsmath_plugin)
    found, stack = [], list(md.parse(text))
    while stack:
        token = stack.pop()
        if token.type.startswith("math") or token.type == "amsmath":
            found.append(token.content)
        stack.extend(token.children or [])
    return found


def _sources(folder: Path = REPO / "notebooks") -> dict[str, str]:
    """Page name -> its Markdown text (notebooks in ``folder``: all Markdown cells)."""
    books = [folder / p.name for p in NOTEBOOKS]
    out = {p.stem: "\n\n".join("".join(c["source"]) for c in json.loads(p.read_text())["cells"]
                               if c["cell_type"] == "markdown") for p in books}
    for page in ("instructor_guide", "glossary"):
        out[page] = (REPO / "notebooks" / f"{page}.md").read_text()
    return out


class _Page(HTMLParser):
    """Collects a page's asset references and the text outside code, preformatted output and math."""
    SKIP = {"script", "style", "code", "pre", "math", "textarea", "kbd", "samp"}

    def __init__(self):
        super().__init__(convert_charrefs=True)
        self.assets, self.text, self.math, self._skip = [], [], 0, 0

    def handle_starttag(self, tag, attrs):
        attrs = dict(attrs)
        if tag == "math":
            self.math += 1
        if tag in ("script", "img", "audio", "source", "video", "iframe", "embed") and attrs.get("src"):
            self.assets.append((tag, attrs["src"]))
        if tag == "link" and attrs.get("href"):
            self.assets.append((f"link rel={attrs.get('rel')}", attrs["href"]))
        if tag in self.SKIP:
            self._skip += 1

    def handle_endtag(self, tag):
        if tag in self.SKIP:
            self._skip = max(0, self._skip - 1)

    def handle_data(self, data):
        if not self._skip and data.strip():
            self.text.append(data)


# --- fast checks: no notebook execution ----------------------------------------------------------------------

def test_every_equation_of_the_series_converts_to_mathml():
    mathml = _load("mathml")
    equations = [(page, tex) for page, text in _sources().items() for tex in _markdown_math(text)]
    assert len(equations) > 30, "expected the series' equations"
    for page, tex in equations:
        for display in (False, True):
            try:
                out = mathml.tex_to_mathml(tex, display=display)
            except ValueError as err:
                pytest.fail(f"{page}: {tex!r} does not convert: {err}")
            assert out.startswith("<math") and "merror" not in out, (page, tex)


def test_operator_names_get_thin_spaces_as_in_tex():
    mathml = _load("mathml")
    assert "<mi>s</mi><mspace" in mathml.tex_to_mathml(r"s\cos\theta", display=False)
    assert "<msub><mi>log</mi><mrow>" in mathml.tex_to_mathml(r"\log_{10} x", display=False)  # scripts intact


def test_builder_stages_missing_notebooks_with_a_clear_message(tmp_path):
    builder = _load("build_book")
    stage = tmp_path / "src"
    stage.mkdir()
    found = builder.stage_site(tmp_path / "nothing_executed", stage)
    assert [p.name for p in found["missing"]] == [p.name for p in NOTEBOOKS] and not found["broken"]
    for path in NOTEBOOKS:
        text = (stage / path.name).read_text()
        assert "No executed copy of this notebook" in text and "make run" in text
        assert builder.COLAB_BADGE not in text  # the badge image is a local file
    toc = (stage / "index.md").read_text()
    assert all(p.stem in toc for p in NOTEBOOKS) and "instructor_guide" in toc and "glossary" in toc


def test_progress_bar_widgets_become_static_html_and_finished():
    builder = _load("build_book")

    def bar(n: float, pct: str, shown: str) -> dict:  # tqdm's three models, as an executed notebook saves them
        return {"box": {"model_name": "HBoxModel", "state": {"children": ["IPY_MODEL_a", "IPY_MODEL_b", "IPY_MODEL_c"]}},
                "a": {"model_name": "HTMLModel", "state": {"value": f"epochs:\u2007{pct}"}},
                "b": {"model_name": "FloatProgressModel", "state": {"value": n, "max": 5.0}},
                "c": {"model_name": "HTMLModel", "state": {"value": f"\u2007{shown}/5\u2007[00:07&lt;00:00]"}}}

    for state in (bar(5.0, "100%", "5"), bar(5.0, "\u200780%", "4")):  # the second: frozen at its last redraw
        nb = {"metadata": {"widgets": {WIDGET_STATE: {"state": state}}},
              "cells": [{"cell_type": "code", "outputs": [{"output_type": "display_data", "data": {
                  WIDGET_VIEW: {"model_id": "box"}, "text/plain": "epochs: 0%"}}]}]}
        assert builder.freeze_widgets(nb) == 1
        data = nb["cells"][0]["outputs"][0]["data"]
        assert WIDGET_VIEW not in data and "widgets" not in nb["metadata"]
        page = data["text/html"].replace("\u2007", " ")
        assert '<progress value="5.0" max="5.0">' in page and "epochs: 100%" in page and "5/5 [00:07&lt;" in page


def _executed_copies(folder: Path) -> dict[str, str]:
    """Executed copies that cannot be used, one per way of being broken: -> {name: what the message says}."""
    folder.mkdir()
    names = [p.name for p in NOTEBOOKS]
    text = NOTEBOOKS[1].read_text()
    (folder / names[0]).write_text(NOTEBOOKS[0].read_text())  # a good one (no outputs, but a notebook)
    (folder / names[1]).write_text(text[: len(text) // 2])  # truncated
    (folder / names[2]).write_text("{}")
    (folder / names[3]).write_text("[]")
    half_run = json.loads(NOTEBOOKS[4].read_text())
    code = next(c for c in half_run["cells"] if c["cell_type"] == "code")
    code["outputs"] = [{"output_type": "error", "ename": "ClaimError", "evalue": "the gain grows", "traceback": []}]
    (folder / names[4]).write_text(json.dumps(half_run))
    return {names[1]: "not valid JSON", names[2]: 'not a notebook (no "cells" list', names[3]: "a JSON list",
            names[4]: "stopped half-way"}


def test_builder_names_executed_copies_it_cannot_use_and_stages_every_page(tmp_path):
    builder = _load("build_book")
    stage = tmp_path / "src"
    stage.mkdir()
    broken = _executed_copies(tmp_path / "executed")
    found = builder.stage_site(tmp_path / "executed", stage)
    assert len(found["broken"]) == len(broken), found["broken"]
    for message, (name, what) in zip(found["broken"], broken.items()):
        assert message.startswith(f"{tmp_path / 'executed' / name}: ") and what in message, message
        assert "cannot be used" in (stage / name).read_text()
    assert all((stage / p.name).is_file() for p in NOTEBOOKS)
    assert "cannot be used" not in (stage / NOTEBOOKS[0].name).read_text()


@pytest.mark.slow
def test_builder_exits_non_zero_on_a_broken_copy_after_building_the_other_pages(tmp_path):
    broken = _executed_copies(tmp_path / "executed")
    run = subprocess.run([sys.executable, str(SITE_DIR / "build_book.py"), "--executed", str(tmp_path / "executed"),
                          "--out", str(tmp_path / "book")], capture_output=True, text=True, timeout=600)
    assert run.returncode == 1, run.stdout[-2000:] + run.stderr[-2000:]
    errors = [line for line in run.stderr.splitlines() if line.startswith("error: ")]
    assert len(errors) == len(broken) and all(name in e for name, e in zip(broken, errors)), run.stderr[-3000:]
    assert "Traceback" not in run.stderr
    for path in NOTEBOOKS:
        assert (tmp_path / "book" / f"{path.stem}.html").is_file(), path.stem


def test_instructor_material_is_linked_and_cites_the_papers():
    readme = (REPO / "README.md").read_text()
    assert "notebooks/instructor_guide.md" in readme and "notebooks/glossary.md" in readme
    assert "make book" in readme
    glossary = (REPO / "notebooks" / "glossary.md").read_text()
    for term in ("Sgram", "Tgram", "TAgram", "SASgram", "Margin m", "Scale s", "Mixup lambda", "ArcMix",
                 "Noisy-ArcMix", "Machine ID", "AUC", "pAUC", "mAUC", "Honest selection", "Peeking",
                 "Precise BN", "Reference runs"):
        assert f"### {term}\n" in glossary, term
    for paper in ("ICASSP 2022", "ICASSP 2024", "CVPR 2019", "ICLR 2018", "DCASE 2020", "McClish"):
        assert paper in glossary, paper
    guide = (REPO / "notebooks" / "instructor_guide.md").read_text()
    for section in ("## Class 1 (90 min)", "## Class 2 (90 min)", "## One-day variant", "## Learning objectives",
                    "## Common mistakes", "## Discussion questions", "## Switching the class to the real"):
        assert section in guide, section
    assert "python -m asdlib download" in guide and "README" in guide


# --- the site, built from the executed smoke notebooks ---------------------------------------------------------

@pytest.fixture(scope="module")
def site(series_env, series_build, tmp_path_factory) -> Path:
    for path in NOTEBOOKS:  # normally all there already (tests/test_notebooks.py ran first)
        if not (series_build / path.name).is_file():
            execute_notebook(path, series_build, env=series_env, timeout=900)
    out = tmp_path_factory.mktemp("book")
    start = time.perf_counter()
    run = subprocess.run([sys.executable, str(SITE_DIR / "build_book.py"), "--executed", str(series_build),
                          "--out", str(out), "--strict"], capture_output=True, text=True, timeout=600)
    print(f"site built in {time.perf_counter() - start:.1f} s\n{run.stdout[-2000:]}")
    assert run.returncode == 0, run.stdout[-3000:] + run.stderr[-3000:]
    assert "WARNING" not in run.stderr, run.stderr[-3000:]
    return out


def _parse(path: Path) -> _Page:
    page = _Page()
    page.feed(path.read_text(encoding="utf-8"))
    return page


@pytest.mark.slow
def test_site_has_every_page_and_the_navigation(site):
    for name in PAGES:
        assert (site / f"{name}.html").is_file(), f"{name}.html missing"
    assert (site / "searchindex.js").is_file()
    index = (site / "index.html").read_text()
    for name in PAGES[:-2]:
        if name != "index":
            assert f'href="{name}.html"' in index, f"the home page does not link {name}"
    for path in NOTEBOOKS:  # the sidebar links every other page, and each page has its table of contents
        html = (site / f"{path.stem}.html").read_text()
        assert all(f'{p.stem}.html"' in html for p in NOTEBOOKS if p != path), f"{path.stem}: navigation"
        assert "bd-toc" in html, f"{path.stem}: no table of contents"
        assert "No executed copy" not in html, f"{path.stem}: built without outputs"
        assert html.count("search-button-field") == 1, f"{path.stem}: more than one search field"


@pytest.mark.slow
def test_site_fetches_nothing_from_another_host(site):
    for path in site.rglob("*.html"):
        for what, ref in _parse(path).assets:
            assert not REMOTE.match(ref), f"{path.name}: {what} from {ref}"
    for css in site.rglob("*.css"):
        for ref in re.findall(r"(?:url\(|@import\s+)\s*['\"]?([^'\")\s;]+)", css.read_text(errors="ignore")):
            assert not REMOTE.match(ref), f"{css.relative_to(site)}: {ref}"
    for path in site.glob("*.html"):  # the pages' local assets resolve (_static/ also holds theme templates)
        for what, ref in _parse(path).assets:
            if not ref.startswith(("data:", "#")):
                target = (path.parent / ref.split("?")[0].split("#")[0]).resolve()
                assert target.exists(), f"{path.name}: {what} {ref} not in the site"
    assert (site / "_static" / "fonts" / "latinmodern-math.otf").is_file()


@pytest.mark.slow
def test_site_math_is_rendered_as_mathml(site, series_build):
    for name, text in _sources(series_build).items():  # the executed copies the pages were built from
        page = _parse(site / f"{name}.html")
        expected = len(_markdown_math(text))
        assert page.math >= expected, f"{name}: {page.math} <math> elements for {expected} equations"
        leftovers = [t for t in page.text if MATH_IN_TEXT.search(t)]
        assert not leftovers, f"{name}: raw LaTeX in the text: {leftovers[:3]}"
        assert 'class="math-error"' not in (site / f"{name}.html").read_text()


@pytest.mark.slow
def test_site_shows_outputs_sound_players_and_launch_links(site):
    for path in NOTEBOOKS:
        html = (site / f"{path.stem}.html").read_text()
        nb = json.loads(path.read_text())
        assert "cell_output" in html, f"{path.stem}: no outputs"
        assert "application/vnd.jupyter.widget" not in html and "require.js" not in html, path.stem
        assert f"colab.research.google.com/github/asd-notebooks/asd-notebooks/blob/main/notebooks/{path.name}" in html
        assert f"urlpath=lab/tree/notebooks/{path.name}" in html, f"{path.stem}: no Binder link"
        assert nb["cells"], path.stem
    explore = (site / "01_data_exploration.html").read_text()
    assert "<audio" in explore and "data:audio/wav;base64," in explore, "no embedded sound players"
    assert "<progress" in explore, "progress bars not rendered as static HTML"
    assert explore.count('src="_images/') >= 3, "figures missing"
