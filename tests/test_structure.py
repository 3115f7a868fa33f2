"""The package's shape, checked from its source: layers, no import circle, short functions.

Every `tfa_suite` import is read with `ast`, at module level and inside functions alike
(a lazy import hides a circle from Python, not from a reader). Layers, bottom up:

0. types: errors, config, precision
1. environments, replay storage, exported policies, the finance application
2. agents
3. loops
4. the catalog (agent names -> sections, loop and builder)
5. the run session
6. the CLI and the Python API (and the package's `__init__`, which names the API)

A module may import its own layer or lower ones, never a higher one. A new module must
be given a layer here, so the test cannot pass by not knowing it.
"""

from __future__ import annotations

import ast
import pathlib

import pytest

PACKAGE = pathlib.Path(__file__).resolve().parent.parent / "tfa_suite"
LAYERS = {
    # The package's face: it selects Keras 2 and names the Python API (tfa_suite.api),
    # loaded on first use. No library module imports the bare package.
    "tfa_suite": 6,
    "tfa_suite.errors": 0,
    "tfa_suite.config": 0,
    "tfa_suite.precision": 0,
    "tfa_suite.startup": 0,
    "tfa_suite.envs": 1,
    "tfa_suite.replay": 1,
    "tfa_suite.policy": 1,
    "tfa_suite.finance": 1,
    "tfa_suite.agents": 2,
    "tfa_suite.loops": 3,
    "tfa_suite.catalog": 4,
    "tfa_suite.run": 5,
    "tfa_suite.flags": 6,
    "tfa_suite.cli": 6,
    "tfa_suite.api": 6,
    "tfa_suite.study": 6,
}
MAX_FUNCTION_LINES = 60


def module_name(path: pathlib.Path) -> str:
    parts = path.relative_to(PACKAGE.parent).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def modules() -> dict[str, pathlib.Path]:
    return {module_name(p): p for p in sorted(PACKAGE.rglob("*.py"))}


def imports(path: pathlib.Path, known: set[str]) -> set[str]:
    """The tfa_suite modules `path` imports, wherever in the file the import stands."""
    found = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Import):
            found |= {a.name for a in node.names if a.name.startswith("tfa_suite")}
        elif isinstance(node, ast.ImportFrom) and (node.module or "").startswith("tfa_suite"):
            for alias in node.names:
                # `from pkg import mod` imports the module; `from pkg import name`, the package.
                child = f"{node.module}.{alias.name}"
                found.add(child if child in known else node.module)
    return found


def graph() -> dict[str, set[str]]:
    mods = modules()
    known = set(mods)
    return {name: imports(path, known) - {name} for name, path in mods.items()}


def layer(name: str) -> int:
    prefixes = [p for p in LAYERS if name == p or name.startswith(p + ".")]
    if not prefixes:
        raise KeyError(f"{name} has no layer in tests/test_structure.py's LAYERS")
    return LAYERS[max(prefixes, key=len)]


def cycles(edges: dict[str, set[str]]) -> list[list[str]]:
    """Strongly connected components of more than one module (Tarjan)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    found: list[list[str]] = []

    def visit(v: str) -> None:
        index[v] = low[v] = len(index)
        stack.append(v)
        on_stack.add(v)
        for w in edges.get(v, ()):
            if w not in index:
                visit(w)
                low[v] = min(low[v], low[w])
            elif w in on_stack:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            component = []
            while True:
                w = stack.pop()
                on_stack.discard(w)
                component.append(w)
                if w == v:
                    break
            if len(component) > 1:
                found.append(sorted(component))

    for v in sorted(edges):
        if v not in index:
            visit(v)
    return found


def test_every_module_has_a_layer():
    missing = []
    for name in modules():
        try:
            layer(name)
        except KeyError as e:
            missing.append(str(e))
    assert not missing


def test_no_import_points_up_a_layer():
    upward = [
        f"{src} (layer {layer(src)}) imports {dst} (layer {layer(dst)})"
        for src, dsts in graph().items()
        for dst in sorted(dsts)
        if layer(dst) > layer(src)
    ]
    assert not upward, "\n".join(upward)


def test_no_import_circle():
    assert cycles(graph()) == []


def test_the_checks_catch_what_they_look_for():
    # A circle and an upward import, made up: both checks must see them.
    assert cycles({"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": {"a"}}) == [["a", "b", "c"]]
    assert layer("tfa_suite.run.session") > layer("tfa_suite.config")
    tree = ast.parse("def f():\n    from tfa_suite.run import train\n")
    assert any(isinstance(n, ast.ImportFrom) for n in ast.walk(tree))


def functions_over(limit: int) -> list[str]:
    long = []
    for name, path in modules().items():
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef):
                length = node.end_lineno - node.lineno + 1
                if length > limit:
                    long.append(f"{name}.{node.name}: {length} lines")
    return long


def test_no_library_function_is_over_60_lines():
    assert functions_over(MAX_FUNCTION_LINES) == []


@pytest.mark.parametrize("name", ["tfa_suite.config", "tfa_suite.errors", "tfa_suite.precision"])
def test_the_bottom_layer_imports_no_tensorflow(name):
    # The types layer is read by benchmarks and peers' scripts without TensorFlow: none of
    # its module-level imports may load it.
    body = ast.parse(modules()[name].read_text()).body
    names = {a.name for n in body if isinstance(n, ast.Import) for a in n.names}
    names |= {n.module for n in body if isinstance(n, ast.ImportFrom) and n.module}
    assert not {n for n in names if n.split(".")[0] in ("tensorflow", "tf_agents")}
