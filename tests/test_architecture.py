"""D-3 as tests: no import cycle between lojix's modules, no function-level import of a project
module (outside `apps.py`), and no services module over 600 lines. The layer contracts themselves
are import-linter's (`make lint`, pyproject.toml)."""

import ast
import subprocess
import sys
from pathlib import Path

import grimp
import pytest

PACKAGES = ("config", "core", "orders", "refunds", "credits", "disputes")
ROOT = Path(__file__).resolve().parent.parent
MAX_SERVICES_LINES = 600


def _sources():
    for package in PACKAGES:
        for path in sorted((ROOT / package).rglob("*.py")):
            if "migrations" not in path.parts:
                yield path


def _strongly_connected(graph: dict[str, set[str]]) -> list[set[str]]:
    """Tarjan's algorithm: the groups of modules that import each other, directly or not."""
    index, low, stack, on_stack, groups = {}, {}, [], set(), []

    def visit(node):
        index[node] = low[node] = len(index)
        stack.append(node)
        on_stack.add(node)
        for other in graph[node]:
            if other not in index:
                visit(other)
                low[node] = min(low[node], low[other])
            elif other in on_stack:
                low[node] = min(low[node], index[other])
        if low[node] == index[node]:
            group = set()
            while True:
                member = stack.pop()
                on_stack.discard(member)
                group.add(member)
                if member == node:
                    break
            groups.append(group)

    for node in graph:
        if node not in index:
            visit(node)
    return groups


def test_no_import_cycle_between_modules():
    import_graph = grimp.build_graph(*PACKAGES)
    graph = {
        module: import_graph.find_modules_directly_imported_by(module)
        for module in import_graph.modules
    }
    cycles = [sorted(group) for group in _strongly_connected(graph) if len(group) > 1]
    assert cycles == []


def _function_level_project_imports(path: Path) -> list[str]:
    found = []
    for node in ast.walk(ast.parse(path.read_text())):
        if not isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)):
            continue
        for inner in ast.walk(node):
            names = []
            if isinstance(inner, ast.ImportFrom) and inner.module and inner.level == 0:
                names = [inner.module]
            elif isinstance(inner, ast.Import):
                names = [alias.name for alias in inner.names]
            found += [
                f"{path.relative_to(ROOT)}:{inner.lineno} {name}"
                for name in names
                if name.split(".")[0] in PACKAGES
            ]
    return found


def test_no_function_level_import_of_a_project_module():
    found = [
        line
        for path in _sources()
        if path.name != "apps.py"
        for line in _function_level_project_imports(path)
    ]
    assert found == []


@pytest.mark.parametrize(
    "path",
    [p for p in _sources() if "services" in p.parts or p.name == "services.py"],
    ids=lambda p: str(p.relative_to(ROOT)),
)
def test_services_modules_stay_small(path):
    assert len(path.read_text().splitlines()) <= MAX_SERVICES_LINES


def test_import_linter_contracts_are_kept():
    """The layer and direction contracts of pyproject.toml, as `make lint` runs them."""
    linter = Path(sys.executable).parent / "lint-imports"
    result = subprocess.run(
        [str(linter), "--no-cache"], cwd=ROOT, capture_output=True, text=True, check=False
    )
    assert result.returncode == 0, result.stdout[-4000:]
