"""Exercise checkers for the notebooks: one module per notebook (``ex01`` for ``01_data_exploration``…).

A checker takes the learner's answer (a value or a function), compares it with what :mod:`asdlib` computes, and
prints ✓ or a hint; it returns True/False and never raises, so a notebook with unsolved exercises still runs
top to bottom. Worked solutions are in ``notebooks/solutions/``.
"""


def report(ok: bool, success: str, hint: str) -> bool:
    """Print the checker's verdict: ``✓ success`` or ``✗ not yet: hint``; return ``ok``."""
    print(f"✓ {success}" if ok else f"✗ not yet: {hint}")
    return ok
