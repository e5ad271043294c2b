"""Saved widgets as text: the progress bars of an executed notebook, readable without a widget manager.

An executed notebook saves each widget output as a *view* (``application/vnd.jupyter.widget-view+json``, a
model id) plus the models' last state in ``metadata.widgets``. A reader without that state (JupyterLab after
a restart, GitHub, the course website) cannot draw the view. So the series runner gives every view a static
fallback next to it (:func:`add_static_fallbacks`): the bar as ``text/plain`` in tqdm's terminal format and
as ``text/html`` (the same HTML the course website shows).

tqdm's notebook bar (``tqdm.auto`` in a kernel) is an ``HBox`` of an ``HTML`` text ("epoch: 100%"), a
``FloatProgress`` and a second ``HTML`` text ("3/3 [00:01<00:00, 2.9it/s]"). tqdm redraws the texts at most
every ``mininterval`` seconds, and a bar made with ``leave=False`` is closed without a last redraw, so its
saved texts can stop at "98%" while its progress value reached the end. :func:`finish_progress_bars` makes
the texts of a bar whose value reached its maximum say so ("100%", "200/200"); a bar that stopped early
(tqdm draws it red) keeps what it saved.
"""
from __future__ import annotations

import html
import re

WIDGET_VIEW = "application/vnd.jupyter.widget-view+json"
WIDGET_STATE = "application/vnd.jupyter.widget-state+json"
PROGRESS = ("FloatProgressModel", "IntProgressModel")
BOXES = ("HBoxModel", "VBoxModel", "BoxModel")
FIGURE_SPACE = "\u2007"  # tqdm.notebook draws spaces as figure spaces so the text keeps its width
LEFT = re.compile(r"^(?P<desc>.*?)\s*(?P<pct>\d+)%\s*$", re.S)  # "epoch: 98%"
RIGHT = re.compile(r"^(?P<pad>\s*)(?P<n>[\d.]+)(?P<unit>[a-zA-Z]*)/(?P<total>[\d.]+[a-zA-Z]*)(?P<rest>.*)$", re.S)


def saved_state(nb: dict) -> dict:
    """The notebook's saved widget models, ``{model_id: {"model_name": ..., "state": {...}}}`` (maybe empty)."""
    return nb.get("metadata", {}).get("widgets", {}).get(WIDGET_STATE, {}).get("state", {})


def children(model: dict, state: dict) -> list[dict] | None:
    """The child models of a box, in order; None if one of them is not saved."""
    refs = [str(ref).removeprefix("IPY_MODEL_") for ref in model.get("state", {}).get("children", [])]
    kids = [state.get(ref) for ref in refs]
    return None if any(k is None for k in kids) else kids


def tqdm_parts(model: dict, state: dict) -> tuple[dict, dict, dict] | None:
    """``(left HTML, progress, right HTML)`` models if ``model`` is a tqdm bar, else None."""
    kids = children(model, state) if model.get("model_name") in BOXES else None
    if not kids or len(kids) != 3:
        return None
    names = [k.get("model_name") for k in kids]
    if names[0] != "HTMLModel" or names[1] not in PROGRESS or names[2] != "HTMLModel":
        return None
    return kids[0], kids[1], kids[2]


def _plain(value: object) -> str:
    """tqdm's HTML text as plain text: entities decoded, figure spaces as spaces."""
    return html.unescape(str(value)).replace(FIGURE_SPACE, " ")


def finish_progress_bars(state: dict) -> int:
    """Bring the texts of every tqdm bar whose value reached its maximum to "100%" and "N/N"; -> bars changed."""
    changed = 0
    for model in state.values():
        parts = tqdm_parts(model, state)
        if parts is None:
            continue
        left, bar, right = (p.setdefault("state", {}) for p in parts)
        value, top = float(bar.get("value", 0) or 0), float(bar.get("max", 0) or 0)
        lmatch, rmatch = LEFT.match(_plain(left.get("value", ""))), RIGHT.match(_plain(right.get("value", "")))
        if top <= 0 or value < top or not lmatch or not rmatch:
            continue
        new_left = f"{lmatch['desc']} 100%" if lmatch["desc"] else "100%"
        new_right = f"{rmatch['pad']}{rmatch['total']}/{rmatch['total']}{rmatch['rest']}"
        if (new_left, new_right) != (_plain(left.get("value", "")), _plain(right.get("value", ""))):
            left["value"] = html.escape(new_left, quote=False).replace(" ", FIGURE_SPACE)
            right["value"] = html.escape(new_right, quote=False).replace(" ", FIGURE_SPACE)
            changed += 1
    return changed


def widget_html(model_id: str, state: dict) -> str | None:
    """Static HTML of the saved widget ``model_id`` (boxes, HTML/Label text, progress bars); None if unknown."""
    model = state.get(model_id)
    if model is None:
        return None
    name, s = model.get("model_name", ""), model.get("state", {})
    if name in BOXES:
        kids = [widget_html(str(ref).removeprefix("IPY_MODEL_"), state) for ref in s.get("children", [])]
        if any(k is None for k in kids):
            return None
        progress = " static-widget-progress" if any("<progress" in k for k in kids) else ""
        kind = "vbox" if name == "VBoxModel" else "hbox"
        return f'<div class="static-widget-box {kind}{progress}">{"".join(kids)}</div>'
    if name == "HTMLModel":  # its value is HTML already (tqdm escapes its text)
        return f"<span>{s.get('value', '')}</span>"
    if name == "LabelModel":
        return f"<span>{html.escape(str(s.get('value', '')))}</span>"
    if name in PROGRESS:
        return f'<progress value="{s.get("value", 0)}" max="{s.get("max", 100)}"></progress>'
    return None


def widget_text(model_id: str, state: dict, *, width: int = 10) -> str | None:
    """A tqdm bar as tqdm prints it in a terminal, ``"epoch: 100%|██████████| 3/3 [00:01<00:00, 2.9it/s]"``;
    None for any other widget."""
    model = state.get(model_id)
    parts = tqdm_parts(model, state) if model is not None else None
    if parts is None:
        return None
    left, bar, right = (p.get("state", {}) for p in parts)
    value, top = float(bar.get("value", 0) or 0), float(bar.get("max", 0) or 0)
    filled = round(width * min(max(value / top, 0.0), 1.0)) if top > 0 else 0
    return f"{_plain(left.get('value', ''))}|{'█' * filled}{' ' * (width - filled)}|{_plain(right.get('value', ''))}"


def add_static_fallbacks(nb: dict) -> int:
    """Finish the saved bars, then give every widget view ``text/plain`` and ``text/html`` drawn from the saved
    state (the view itself stays); -> the number of views that got a fallback."""
    state = saved_state(nb)
    finish_progress_bars(state)
    done = 0
    for cell in nb.get("cells", []):
        for out in cell.get("outputs", []):
            data = out.get("data", {})
            view = data.get(WIDGET_VIEW)
            if not isinstance(view, dict):
                continue
            static, text = widget_html(view.get("model_id", ""), state), widget_text(view.get("model_id", ""), state)
            if static is not None:
                data["text/html"] = static
                data["text/plain"] = text if text is not None else html.unescape(re.sub(r"<[^>]+>", " ", static))
                done += 1
    return done


def drop_views(nb: dict) -> int:
    """For readers without widget JavaScript (the standalone HTML, the course website): remove every widget
    view, keeping the fallbacks of :func:`add_static_fallbacks` (or the plain-text repr), and the saved state;
    -> views removed."""
    nb.get("metadata", {}).pop("widgets", None)
    dropped = 0
    for cell in nb.get("cells", []):
        for out in cell.get("outputs", []):
            if out.get("data", {}).pop(WIDGET_VIEW, None) is not None:
                dropped += 1
    return dropped
