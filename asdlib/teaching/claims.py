"""Claims: the sentences a notebook says about its results, checked on the results just computed.

Prose drifts: a sentence that was true of last month's runs stays in the notebook when the runs change. So the
notebooks state every result-dependent sentence in one of two ways:

* **computed text**: :func:`say` renders a Markdown sentence whose numbers and words are formatted from the
  outputs (``say(f"Noisy-ArcMix − ArcFace = {d:+.2f} AUC points")``);
* **a checked claim**: :func:`claim` prints the sentence the prose makes ("the attention is uniform") with the
  evidence and tests its condition on the data next to it.

At the series' default size a claim that no longer holds raises :class:`ClaimError`, so the notebook fails and
``run-series`` (``make run``) names the notebook, the cell and the claim. In smoke mode (``ASD_SMOKE=1``, tiny
data and a few training steps) claims are reported and not enforced: their numbers mean little there.
``ASD_CLAIMS=enforce`` or ``report`` overrides the default either way.
"""
from __future__ import annotations

import os
from dataclasses import dataclass

from asdlib.teaching.paths import smoke_mode

MODES = ("enforce", "report")


class ClaimError(AssertionError):
    """A sentence of a notebook no longer holds on the results it describes."""


@dataclass(frozen=True)
class Claim:
    words: str
    holds: bool
    evidence: str = ""

    def line(self) -> str:
        mark = "✓" if self.holds else "✗"
        return f"{mark} claim: {self.words}" + (f" ({self.evidence})" if self.evidence else "")


CHECKED: list[Claim] = []  # the claims of this kernel, in order (see :func:`summary`)


def mode() -> str:
    """``"enforce"`` at the default size, ``"report"`` in smoke mode; ``ASD_CLAIMS`` overrides."""
    value = os.environ.get("ASD_CLAIMS", "").strip().lower()
    if value and value not in MODES:
        raise ValueError(f"ASD_CLAIMS={value!r}: use 'enforce' or 'report'")
    return value or ("report" if smoke_mode() else "enforce")


def claim(words: str, holds, evidence: str = "") -> None:
    """Check the claim ``words`` (the sentence the prose makes) by the condition ``holds`` on the data just
    computed; print it with its ``evidence`` (the numbers behind it). A false claim raises :class:`ClaimError`
    when enforcing, else it is printed with ✗ and a note that it is not enforced here. Returns None (so a cell
    that ends with a claim shows only its line); the result is kept in :data:`CHECKED`."""
    result = Claim(str(words), bool(holds), str(evidence))
    CHECKED.append(result)
    if result.holds:
        print(result.line())
    elif mode() == "enforce":
        raise ClaimError(f"this claim no longer holds: {result.words}"
                         + (f" ({result.evidence})" if result.evidence else "")
                         + ". The results changed: rewrite the sentence and its check.")
    else:
        print(result.line() + " — not enforced in smoke mode (tiny data)")


def say(markdown: str) -> None:
    """Show computed text: a Markdown sentence formatted from the outputs (plain text outside a notebook)."""
    try:
        from IPython import get_ipython
        from IPython.display import Markdown, display
    except ImportError:  # pragma: no cover - IPython ships with the notebooks' dependencies
        print(markdown)
        return
    if get_ipython() is None:
        print(markdown)
    else:
        display(Markdown(markdown))


def summary() -> str:
    """One line: how many claims this kernel checked and which failed (reported, not enforced)."""
    failed = [c for c in CHECKED if not c.holds]
    text = f"{len(CHECKED)} claims checked, {len(CHECKED) - len(failed)} hold"
    return text + ("; not holding: " + "; ".join(c.words for c in failed) if failed else "")
