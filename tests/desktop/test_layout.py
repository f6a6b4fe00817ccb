"""The desktop side reads as packages with no import cycles: every ``edgekit.desktop`` import (top-level or
inside a function) is an edge, and the graph of modules has no loop."""

import ast
import os

import edgekit.desktop

ROOT = os.path.dirname(edgekit.desktop.__file__)


def desktop_modules():
    found = {}
    for dirpath, dirnames, filenames in os.walk(ROOT):
        dirnames[:] = [d for d in dirnames if d != "__pycache__"]
        for name in filenames:
            if name.endswith(".py"):
                rel = os.path.relpath(os.path.join(dirpath, name), ROOT)[:-3].replace(os.sep, ".")
                dotted = "edgekit.desktop" + ("" if rel == "__init__" else "." + rel.replace(".__init__", ""))
                found[dotted] = os.path.join(dirpath, name)
    return found


def imports(path, modules):
    with open(path) as handle:
        tree = ast.parse(handle.read())
    out = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.ImportFrom) and node.module and node.module.startswith("edgekit.desktop"):
            for alias in node.names:                      # `from edgekit.desktop.quantize import report`
                sub = node.module + "." + alias.name
                out.add(sub if sub in modules else node.module)
        elif isinstance(node, ast.Import):
            out.update(a.name for a in node.names if a.name.startswith("edgekit.desktop"))
    return out & set(modules)


def test_no_import_cycles():
    modules = desktop_modules()
    assert "edgekit.desktop.quantize.job" in modules and "edgekit.desktop.export.trt_ops.build_tables" in modules
    graph = {name: imports(path, modules) - {name} for name, path in modules.items()}
    state = {}

    def visit(name, trail):
        state[name] = "open"
        for dep in sorted(graph[name]):
            assert state.get(dep) != "open", "import cycle: " + " -> ".join(trail + [name, dep])
            if dep not in state:
                visit(dep, trail + [name])
        state[name] = "done"

    for name in sorted(graph):
        if name not in state:
            visit(name, [])


def test_no_flat_modules_left_where_packages_are():
    flat = sorted(n for n in os.listdir(ROOT) if n.endswith(".py"))
    assert flat == ["__init__.py", "bundle_make.py", "demo.py"]
