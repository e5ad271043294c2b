"""Sphinx extension: LaTeX math rendered to MathML at build time, so pages need no JavaScript and no network.

Every modern browser draws MathML (Chromium ≥ 109, Firefox, Safari). The conversion is pure Python
(``latex2mathml``, with docutils' converter as a second try); math that neither can convert is shown as its
LaTeX source in a ``math-error`` box and reported as a Sphinx warning, so a build log (and the site test) can
catch it. Select it with ``extensions = [..., "mathml"]`` and ``html_math_renderer = "mathml"``.
"""
from __future__ import annotations

import html
import re
import xml.etree.ElementTree as ET

from docutils import nodes
from sphinx.locale import _
from sphinx.util import logging
from sphinx.util.math import get_node_equation_number

logger = logging.getLogger(__name__)

# aligned/split rows inside a display: latex2mathml handles split (and align*) but not a bare aligned.
_ALIASES = ((r"\begin{aligned}", r"\begin{split}"), (r"\end{aligned}", r"\end{split}"))
MATHML_NS = "http://www.w3.org/1998/Math/MathML"
FUNCTIONS = {"sin", "cos", "tan", "arcsin", "arccos", "arctan", "log", "ln", "exp", "lg"}
ROWS = {"math", "mrow", "mstyle", "mtd", "msqrt", "mpadded", "mphantom", "menclose"}  # any number of children
THIN_SPACE = "0.1667em"  # TeX's thin space, between an operator name and its neighbours


def _is_function(node: ET.Element) -> bool:
    """``<mi>cos</mi>``, or a scripted one such as ``<msub><mi>log</mi><mn>10</mn></msub>``."""
    tag = node.tag.removeprefix(f"{{{MATHML_NS}}}")
    if tag in ("msub", "msup", "msubsup") and len(node):
        return _is_function(node[0])
    return tag == "mi" and (node.text or "").strip() in FUNCTIONS


def space_functions(mathml: str) -> str:
    """Thin spaces around operator names (cos, log, ...), as TeX sets them; browsers add none to an ``<mi>``."""
    ET.register_namespace("", MATHML_NS)
    root = ET.fromstring(mathml)
    for parent in list(root.iter()):
        if parent.tag.removeprefix(f"{{{MATHML_NS}}}") not in ROWS:  # scripts and fractions: fixed children
            continue
        kids = list(parent)
        for i in reversed(range(len(kids))):
            if not _is_function(kids[i]):
                continue
            for j in (i + 1, i - 1):  # no space next to an operator or a parenthesis (an <mo>), as in TeX
                if 0 <= j < len(kids) and not kids[j].tag.endswith("}mo"):
                    parent.insert(max(i, j), ET.Element(f"{{{MATHML_NS}}}mspace", width=THIN_SPACE))
    return ET.tostring(root, encoding="unicode")


def tex_to_mathml(latex: str, *, display: bool) -> str:
    """``latex`` (no delimiters) as one ``<math>`` element; raises ValueError if no converter manages."""
    import latex2mathml.converter
    from docutils.utils.math import latex2mathml as docutils_l2m

    tex = latex.strip()
    for old, new in _ALIASES:
        tex = tex.replace(old, new)
    if display and r"\\" in tex and r"\begin" not in tex:  # several rows, as Sphinx's MathJax renderer does
        tex = r"\begin{split}" + tex + r"\end{split}"
    errors = []
    try:
        out = latex2mathml.converter.convert(tex, display="block" if display else "inline")
        if not re.search(r"<mi>&(amp;)?</mi>", out):  # an alignment '&' it did not understand
            return space_functions(out)
        errors.append("latex2mathml: unhandled '&'")
    except Exception as exc:  # noqa: BLE001 - any parser error means: try the next converter
        errors.append(f"latex2mathml: {exc}")
    try:
        return docutils_l2m.tex2mathml(tex, as_block=display)
    except Exception as exc:  # noqa: BLE001
        errors.append(f"docutils: {exc}")
    raise ValueError("; ".join(errors))


def _render(self, node: nodes.Element, latex: str, *, display: bool) -> str:
    try:
        return tex_to_mathml(latex, display=display)
    except ValueError as exc:
        logger.warning("math not converted to MathML (%s): %s", exc, latex, location=node, type="mathml")
        return f'<code class="math-error">{html.escape(latex)}</code>'


def visit_math(self, node: nodes.math) -> None:
    self.body.append(self.starttag(node, "span", "", CLASS="math notranslate"))
    self.body.append(_render(self, node, node.astext(), display=False) + "</span>")
    raise nodes.SkipNode


def visit_displaymath(self, node: nodes.math_block) -> None:
    self.body.append(self.starttag(node, "div", CLASS="math notranslate"))
    if node.get("number"):  # a labelled equation: its number and a permalink, like the MathJax renderer
        self.body.append(f'<span class="eqno">({get_node_equation_number(self, node)})')
        self.add_permalink_ref(node, _("Link to this equation"))
        self.body.append("</span>")
    for part in (p for p in node.astext().split("\n\n") if p.strip()):
        self.body.append(_render(self, node, part, display=True))
    self.body.append("</div>\n")
    raise nodes.SkipNode


def setup(app):
    app.add_html_math_renderer("mathml", (visit_math, None), (visit_displaymath, None))
    return {"version": "1.0", "parallel_read_safe": True, "parallel_write_safe": True}
