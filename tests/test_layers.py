"""The package's layers: every import in ``asdlib`` (also those inside functions) goes to the same or a lower
layer, the modules import each other without a cycle, and no module grows past the size the rest keep."""
from __future__ import annotations

import ast
from pathlib import Path

import pytest

PACKAGE = Path(__file__).resolve().parents[1] / "asdlib"
LAYERS = {"data": 0, "nn": 1, "training": 2, "evaluation": 2, "experiment": 3, "teaching": 4, "cli": 5,
          "__main__": 6}
SIDE_BY_SIDE = {("training", "evaluation"), ("evaluation", "training")}  # same rank, neither uses the other
MAX_LINES = 420


def module_name(path: Path) -> str:
    parts = path.relative_to(PACKAGE.parent).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def imported_modules(path: Path) -> set[str]:
    """Every ``asdlib`` module that ``path`` imports, at the top or inside a function (``from asdlib.x import y``
    counts ``asdlib.x.y`` when that is a module, else ``asdlib.x``)."""
    tree = ast.parse(path.read_text(encoding="utf-8"))
    found = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            found |= {a.name for a in node.names if a.name.startswith("asdlib")}
        elif isinstance(node, ast.ImportFrom) and node.module and node.module.startswith("asdlib") and not node.level:
            for alias in node.names:
                sub = f"{node.module}.{alias.name}"
                found.add(sub if sub in MODULES else node.module)
    return found


FILES = sorted(p for p in PACKAGE.rglob("*.py") if "solutions" not in p.parts)
MODULES = {module_name(p) for p in FILES}


def layer(module: str) -> str | None:
    parts = module.split(".")
    return parts[1] if len(parts) > 1 else None  # "asdlib" itself (REPO, __version__) is below every layer


def test_every_module_belongs_to_a_layer():
    assert not [m for m in MODULES if m != "asdlib" and layer(m) not in LAYERS]


@pytest.mark.parametrize("path", FILES, ids=lambda p: module_name(p))
def test_no_upward_import(path):
    here = layer(module_name(path))
    if here is None:
        assert not imported_modules(path) - {"asdlib"}, "asdlib/__init__.py must stay free of imports"
        return
    upward = [m for m in imported_modules(path) if layer(m) is not None and layer(m) != here
              and (LAYERS[layer(m)] > LAYERS[here] or (here, layer(m)) in SIDE_BY_SIDE)]
    assert not upward, f"{module_name(path)} (layer {here}) imports {upward} from a higher or sibling layer"


def test_no_import_cycle():
    graph = {module_name(p): imported_modules(p) & MODULES - {module_name(p), "asdlib"} for p in FILES}
    for package in [m for m in MODULES if (PACKAGE.parent / m.replace(".", "/") / "__init__.py").is_file()]:
        graph[package] -= {m for m in graph[package] if m.startswith(package + ".")}  # a package's own modules
    state: dict[str, int] = {}

    def visit(node, stack):
        state[node] = 1
        for nxt in graph.get(node, ()):
            if state.get(nxt) == 1:
                raise AssertionError("import cycle: " + " -> ".join(stack[stack.index(nxt):] + [nxt]))
            if nxt not in state:
                visit(nxt, stack + [nxt])
        state[node] = 2

    for node in sorted(graph):
        if node not in state:
            visit(node, [node])


def test_the_checker_sees_an_upward_import(tmp_path):
    bad = PACKAGE / "data" / "_probe_upward.py"
    bad.write_text("def f():\n    from asdlib.training.loop import pick_device\n")
    try:
        assert "asdlib.training.loop" in imported_modules(bad)
        with pytest.raises(AssertionError, match="higher or sibling layer"):
            test_no_upward_import(bad)
    finally:
        bad.unlink()


@pytest.mark.parametrize("path", FILES, ids=lambda p: module_name(p))
def test_module_size(path):
    n = len(path.read_text(encoding="utf-8").splitlines())
    assert n <= MAX_LINES, f"{path.relative_to(PACKAGE.parent)} has {n} lines: split it along its seams"
