"""Exercise checkers for the notebooks: one module per notebook (``ex01`` for ``01_data_exploration``…).

A checker takes the learner's answer (a value or a function), compares it with what :mod:`asdlib` computes, and
prints ✓ or a specific hint. It returns None, so a checking cell shows only the message (no ``Out[…]``), and it
never raises, so a notebook with unsolved exercises still runs top to bottom.

Worked solutions: ``exNN.solution(k)`` prints the solution of exercise ``k`` of notebook ``NN``. Their one copy is
``asdlib/teaching/exercises/solutions/NN_solutions.py``, package data, so ``pip install`` (Colab) brings them.
"""
from __future__ import annotations

import ast
import numbers
import re
from importlib import resources

import numpy as np

SUCCESS, FAILURE = "✓", "✗ not yet:"


def report(ok: bool, success: str, hint: str) -> None:
    """Print the checker's verdict: ``✓ success`` or ``✗ not yet: hint``."""
    print(f"{SUCCESS} {success}" if ok else f"{FAILURE} {hint}")


class NoResult(ValueError):
    """A learner's function that returned None (a missing ``return``)."""


def crash_hint(err: Exception, what: str = "your function") -> str:
    """The hint for a learner's code that raised: the exception's type and message."""
    if isinstance(err, NoResult):
        return f"{what} returned None: end it with return and the result"
    return f"{what} raised {type(err).__name__}: {err}"


def scalar(answer):
    """A 0-d numpy array or torch tensor as its Python number (``np.array(3)``, ``torch.tensor(3)`` -> 3);
    anything else unchanged."""
    if getattr(answer, "ndim", None) == 0 and hasattr(answer, "item"):
        return answer.item()
    return answer


def whole_number(answer) -> int | None:
    """``answer`` as an int if it is a whole number (int, numpy integer, a float such as 60.0, or a 0-d array
    or tensor holding one), else None."""
    answer = scalar(answer)
    if isinstance(answer, (bool, np.bool_)) or not isinstance(answer, numbers.Real):
        return None
    return int(answer) if float(answer).is_integer() else None


def to_numpy(value) -> np.ndarray:
    """A learner's array-like result (numpy array, torch tensor on any device, list, pandas object) as a
    float64 numpy array."""
    if hasattr(value, "detach"):
        value = value.detach().cpu()
    return np.asarray(value, dtype=np.float64)


def run_on_array_and_tensor(fn, x: np.ndarray) -> list[tuple[str, np.ndarray | None, Exception | None]]:
    """Call ``fn`` on a torch tensor and on a numpy array holding ``x`` (a copy each): a torch idiom
    (``index_select``, ``amax``) and a numpy one are both valid answers. ``-> [(kind, result, error)]``, the
    result as a float64 array, or None with the exception the call (or the conversion) raised."""
    import torch

    outcomes = []
    for kind, value in (("torch tensor", torch.from_numpy(x.copy())), ("numpy array", x.copy())):
        try:
            result = fn(value)
            if result is None:
                raise NoResult
            outcomes.append((kind, to_numpy(result), None))
        except Exception as err:  # a learner's bug is a hint, not a crash of the notebook
            outcomes.append((kind, None, err))
    return outcomes


def solution_source(number: str) -> str:
    """The text of the worked solutions of notebook ``number`` ("00" … "06"), as shipped in the package."""
    path = resources.files(__name__).joinpath("solutions", f"{number}_solutions.py")
    if not path.is_file():
        raise FileNotFoundError(f"no worked solutions for notebook {number!r} in asdlib/teaching/exercises/solutions/")
    return path.read_text(encoding="utf-8")


def solution_text(number: str, k: int) -> str:
    """The worked solution of exercise ``k`` of notebook ``number``: the imports, then the functions whose
    docstring starts with "Exercise k" and the module's functions they call."""
    source = solution_source(number)
    tree = ast.parse(source)
    functions = {node.name: node for node in tree.body if isinstance(node, ast.FunctionDef)}
    wanted = [name for name, node in functions.items()
              if re.match(rf"Exercise {k}\b", ast.get_docstring(node) or "")]
    if not wanted:
        known = sorted({int(m) for m in re.findall(r"Exercise (\d+)", source)})
        raise ValueError(f"notebook {number} has no worked solution for exercise {k}; there are {known}")
    needed, todo = [], list(wanted)
    while todo:  # the helpers a solution calls, defined in the same file, come along
        name = todo.pop()
        if name in needed:
            continue
        needed.append(name)
        todo += [n.id for n in ast.walk(functions[name]) if isinstance(n, ast.Name) and n.id in functions]
    imports = [ast.get_source_segment(source, node) for node in tree.body
               if isinstance(node, (ast.Import, ast.ImportFrom)) and getattr(node, "module", None) != "__future__"]
    bodies = [ast.get_source_segment(source, node) for name, node in functions.items() if name in needed]
    return "\n".join(imports) + "\n\n\n" + "\n\n\n".join(bodies) + "\n"


def show_solution(number: str, k: int) -> None:
    """Print the worked solution of exercise ``k`` of notebook ``number`` (or why there is none)."""
    try:
        print(f"# notebook {number}, exercise {k}: worked solution\n\n{solution_text(number, k)}")
    except (ValueError, FileNotFoundError) as err:
        print(err)
