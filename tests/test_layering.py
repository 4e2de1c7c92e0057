"""The package's import graph (read with ``ast``, lazy imports included): no cycles, no private names across modules."""

from __future__ import annotations

import ast
from pathlib import Path

SRC = Path(__file__).resolve().parents[1] / "src" / "smoacs"


def _module_name(path: Path) -> str:
    parts = path.relative_to(SRC.parent).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def _modules() -> dict[str, Path]:
    return {_module_name(path): path for path in SRC.rglob("*.py")}


def _imports(path: Path, name: str, known: set[str]) -> list[tuple[str, str | None]]:
    """(imported module, imported name or None) of every import statement in ``path``, resolved to known modules."""
    tree = ast.parse(path.read_text(encoding="utf-8"))
    package = name if path.name == "__init__.py" else name.rpartition(".")[0]
    found: list[tuple[str, str | None]] = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            found += [(alias.name, None) for alias in node.names if alias.name in known]
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                anchor = package.split(".")[: len(package.split(".")) - node.level + 1]
                base = ".".join([*anchor, base] if base else anchor)
            for alias in node.names:
                sub = f"{base}.{alias.name}"
                if sub in known:
                    found.append((sub, None))
                elif base in known:
                    found.append((base, alias.name))
    return found


def _graph() -> dict[str, set[str]]:
    modules = _modules()
    known = set(modules)
    graph: dict[str, set[str]] = {}
    for name, path in modules.items():
        targets = {target for target, _ in _imports(path, name, known) if target != name}
        # a package's __init__ re-exporting its own submodules is not a dependency of those submodules on it
        graph[name] = {t for t in targets}
    return graph


def _is_package_init(name: str) -> bool:
    return (SRC.parent / Path(*name.split(".")) / "__init__.py").is_file()


def _cycle(graph: dict[str, set[str]]) -> list[str] | None:
    """One import cycle between modules (package ``__init__`` files re-exporting their own members excluded)."""
    edges = {
        source: {t for t in targets if not (_is_package_init(t) and source.startswith(t + "."))
                 and not (_is_package_init(source) and t.startswith(source + "."))}
        for source, targets in graph.items()
    }  # fmt: skip
    state: dict[str, int] = {}
    stack: list[str] = []

    def visit(node: str) -> list[str] | None:
        state[node] = 1
        stack.append(node)
        for target in sorted(edges.get(node, ())):
            if state.get(target) == 1:
                return stack[stack.index(target) :] + [target]
            if target not in state:
                found = visit(target)
                if found:
                    return found
        stack.pop()
        state[node] = 2
        return None

    for node in sorted(edges):
        if node not in state:
            found = visit(node)
            if found:
                return found
    return None


def test_no_import_cycles() -> None:
    cycle = _cycle(_graph())
    assert cycle is None, "import cycle: " + " → ".join(cycle or [])


def test_no_private_names_across_modules() -> None:
    modules = _modules()
    known = set(modules)
    offences = []
    for name, path in modules.items():
        for target, imported in _imports(path, name, known):
            leaf = target.rpartition(".")[2]
            own_package = name.rpartition(".")[0] if path.name != "__init__.py" else name
            if imported is not None and imported.startswith("_") and not imported.startswith("__") and target != name:
                offences.append(f"{name} imports {target}.{imported}")
            elif leaf.startswith("_") and leaf != "__init__" and not target.startswith(own_package + "."):
                offences.append(f"{name} imports private module {target}")
    assert not offences, "; ".join(offences)


def test_checker_sees_a_cycle() -> None:
    assert _cycle({"a": {"b"}, "b": {"c"}, "c": {"a"}}) == ["a", "b", "c", "a"]
    assert _cycle({"a": {"b"}, "b": set()}) is None
