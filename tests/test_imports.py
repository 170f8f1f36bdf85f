"""The package's import graph (issue 29): no cycle inside `tinyresnet/`, and nothing below the console
scripts of `cli.py` imports it. Read from the source with `ast`, imports inside functions included."""

import ast
import os

PACKAGE = os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))), "tinyresnet")


def _module_name(path):
    relative = os.path.relpath(path, os.path.dirname(PACKAGE))[:-3].replace(os.sep, ".")
    return relative[:-len(".__init__")] if relative.endswith(".__init__") else relative


def package_modules():
    """`{module: path}` of every module of the package."""
    modules = {}
    for root, _, files in os.walk(PACKAGE):
        for name in files:
            if name.endswith(".py"):
                modules[_module_name(os.path.join(root, name))] = os.path.join(root, name)
    return modules


def imports_of(module, modules):
    """The package's modules that `module` imports (`modules`: `package_modules()`)."""
    path, found = modules[module], set()
    for node in ast.walk(ast.parse(open(path).read(), path)):
        if isinstance(node, ast.Import):
            found |= {alias.name for alias in node.names}
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            found.add(node.module)
            found |= {f"{node.module}.{alias.name}" for alias in node.names}
    return {m for m in found if m in modules and m != module and not module.startswith(m + ".")}


def import_graph():
    """`{module: {tinyresnet module it imports}}` for every module of the package."""
    modules = package_modules()
    return {module: imports_of(module, modules) for module in modules}


def cycles(graph):
    """Every import cycle, each as a list of modules (found by depth-first search)."""
    found, state = [], {}

    def visit(module, path):
        state[module] = "open"
        for other in sorted(graph.get(module, ())):
            if state.get(other) == "open":
                found.append(path[path.index(other):] + [other])
            elif other not in state:
                visit(other, path + [other])
        state[module] = "done"
    for module in sorted(graph):
        if module not in state:
            visit(module, [module])
    return found


def test_no_import_cycle_inside_the_package():
    graph = import_graph()
    assert "tinyresnet.tuning.command" in graph and "tinyresnet.train" in graph["tinyresnet.tuning.tuner"]
    assert cycles(graph) == []


def test_nothing_below_the_console_scripts_imports_them():
    graph = import_graph()
    importers = sorted(m for m, imported in graph.items() if "tinyresnet.cli" in imported)
    assert importers == [], f"{importers} import tinyresnet.cli, the top layer"


def test_a_cycle_is_found():
    assert cycles({"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": {"a"}}) == [["a", "b", "c", "a"]]
