"""No import circles between hasten's modules, counting imports inside functions too (a
deferred import hides a circle from Python, not from a reader); imports only for type checkers
do not count. And optim never imports the trainer."""

import ast
from pathlib import Path

SRC = Path(__file__).resolve().parents[1] / "src"


def _module_name(path: Path) -> str:
    parts = list(path.relative_to(SRC).with_suffix("").parts)
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def _is_type_checking(node: ast.If) -> bool:
    return isinstance(node.test, ast.Name) and node.test.id == "TYPE_CHECKING"


def _imports(tree: ast.Module, known: set[str]) -> set[str]:
    found: set[str] = set()
    for node in tree.body:
        if isinstance(node, ast.If) and _is_type_checking(node):
            continue
        for child in ast.walk(node):
            if isinstance(child, ast.Import):
                found |= {a.name for a in child.names if a.name in known}
            elif isinstance(child, ast.ImportFrom) and child.module and child.level == 0:
                for alias in child.names:
                    sub = f"{child.module}.{alias.name}"
                    if sub in known:
                        found.add(sub)
                    elif child.module in known:
                        found.add(child.module)
    return found


def _graph() -> dict[str, set[str]]:
    files = {_module_name(p): p for p in SRC.rglob("*.py")}
    known = set(files)
    return {name: _imports(ast.parse(path.read_text()), known) - {name} for name, path in files.items()}


def _cycle(graph: dict[str, set[str]]) -> list[str] | None:
    state: dict[str, int] = {}
    stack: list[str] = []

    def visit(node: str) -> list[str] | None:
        state[node] = 1
        stack.append(node)
        for nxt in sorted(graph.get(node, ())):
            if state.get(nxt) == 1:
                return stack[stack.index(nxt) :] + [nxt]
            if nxt not in state and (found := visit(nxt)):
                return found
        stack.pop()
        state[node] = 2
        return None

    for start in sorted(graph):
        if start not in state and (found := visit(start)):
            return found
    return None


def test_no_module_level_import_circle():
    cycle = _cycle(_graph())
    assert cycle is None, " -> ".join(cycle or [])


def test_optim_does_not_import_the_trainer():
    for name, imported in _graph().items():
        if name.startswith("hasten.optim"):
            assert not any(i.startswith("hasten.trainer") for i in imported), (name, imported)
