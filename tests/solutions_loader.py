"""Shared by the exercise tests: import a notebook's worked solutions, and a learner function that crashes."""
from __future__ import annotations

import importlib.util
from pathlib import Path

SOLUTIONS = Path(__file__).resolve().parents[1] / "asdlib" / "teaching" / "exercises" / "solutions"


def solutions(number: str):
    """Import ``asdlib/teaching/exercises/solutions/<number>_solutions.py`` (a file name that is not a module name)."""
    spec = importlib.util.spec_from_file_location(f"solutions_{number}", SOLUTIONS / f"{number}_solutions.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def crash(*args, **kwargs):
    """A learner's function with a bug: checkers must say so, not raise."""
    raise RuntimeError("a learner's bug")


def verdict(capsys) -> tuple[bool, str]:
    """What the last checker printed: ``(passed, message)``; checkers print ✓ or ✗ and return None."""
    out = capsys.readouterr().out.strip()
    assert out.startswith(("✓", "✗ not yet:")), f"a checker printed no verdict: {out!r}"
    return out.startswith("✓"), out
