"""The simulator's modules import each other without a cycle, and its API keeps its routes."""

from __future__ import annotations

import ast
from pathlib import Path

import agentkit.sim
from agentkit.sim import Simulator

PACKAGE = "agentkit.sim"


def module_names(root: Path, package: str) -> dict[str, Path]:
    """Every module under ``root`` by dotted name; a package by its own name."""
    names = {}
    for path in root.rglob("*.py"):
        parts = list(path.relative_to(root).with_suffix("").parts)
        if parts[-1] == "__init__":
            parts.pop()
        names[".".join([package, *parts])] = path
    return names


def imports_of(name: str, path: Path, known: set[str]) -> set[str]:
    """The modules of ``known`` that ``name`` imports anywhere, TYPE_CHECKING blocks included."""
    is_package = path.name == "__init__.py"
    found = set()
    for node in ast.walk(ast.parse(path.read_text(), str(path))):
        if isinstance(node, ast.Import):
            targets = [alias.name for alias in node.names]
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                anchor = name.split(".")
                anchor = anchor[: len(anchor) - node.level + (1 if is_package else 0)]
                base = ".".join([*anchor, *([base] if base else [])])
            # `from pkg import mod` imports the module pkg.mod; `from mod import name`, mod.
            targets = [
                f"{base}.{alias.name}" if f"{base}.{alias.name}" in known else base
                for alias in node.names
            ]
        else:
            continue
        found.update(target for target in targets if target in known and target != name)
    return found


def find_cycle(graph: dict[str, set[str]]) -> list[str] | None:
    """One import cycle in ``graph`` as the path that closes it, or None."""
    done: set[str] = set()

    def visit(node: str, path: list[str]) -> list[str] | None:
        if node in path:
            return [*path[path.index(node):], node]
        if node in done:
            return None
        for target in sorted(graph[node]):
            cycle = visit(target, [*path, node])
            if cycle:
                return cycle
        done.add(node)
        return None

    for start in sorted(graph):
        cycle = visit(start, [])
        if cycle:
            return cycle
    return None


def import_graph(root: Path, package: str) -> dict[str, set[str]]:
    modules = module_names(root, package)
    return {name: imports_of(name, path, set(modules)) for name, path in modules.items()}


def test_sim_has_no_import_cycle() -> None:
    """No module of agentkit.sim imports, even for type checking only, one that imports it back."""
    graph = import_graph(Path(agentkit.sim.__file__).parent, PACKAGE)
    assert graph["agentkit.sim.simulator"] >= {"agentkit.sim.api", "agentkit.sim.control"}
    cycle = find_cycle(graph)
    assert cycle is None, " -> ".join(cycle or [])


def test_cycle_under_type_checking_is_found(tmp_path: Path) -> None:
    """An import made only under TYPE_CHECKING still closes a cycle the check reports."""
    (tmp_path / "__init__.py").write_text("")
    (tmp_path / "a.py").write_text("from pkg.b import B\n")
    (tmp_path / "b.py").write_text(
        "from typing import TYPE_CHECKING\nif TYPE_CHECKING:\n    from pkg import a\nB = 1\n"
    )
    assert find_cycle(import_graph(tmp_path, "pkg")) == ["pkg.a", "pkg.b", "pkg.a"]


def test_api_routes_unchanged() -> None:
    """The app serves exactly the documented routes, each with its methods."""
    rules = {
        (rule.rule, method)
        for rule in Simulator().app.url_map.iter_rules()
        for method in rule.methods or ()
        if method not in {"HEAD", "OPTIONS"} and not rule.rule.startswith(("/_sim/", "/static/"))
    }
    assert rules == {
        ("/v1/account", "GET"),
        ("/v1/users", "GET"),
        ("/v1/users", "POST"),
        ("/v1/users/<user_id>", "GET"),
        ("/v1/users/<user_id>", "PATCH"),
        ("/v1/users/<user_id>", "DELETE"),
        ("/v1/numbers", "GET"),
        ("/v1/numbers/search", "POST"),
        ("/v1/numbers/<number_id>/attach", "POST"),
        ("/v1/call_flows", "GET"),
        ("/v1/call_flows", "POST"),
        ("/v1/call_flows/<flow_id>", "GET"),
        ("/v1/call_flows/<flow_id>", "PATCH"),
        ("/v1/call_flows/<flow_id>", "DELETE"),
        ("/v1/calls", "GET"),
        ("/v1/calls", "POST"),
        ("/v1/calls/<call_id>", "GET"),
        ("/v1/calls/<call_id>/recording", "GET"),
        ("/v1/calls/<call_id>/transcript", "GET"),
        ("/recordings/<call_id>.mp3", "GET"),
        ("/v1/webhooks", "POST"),
    }
