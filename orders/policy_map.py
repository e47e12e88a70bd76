"""The policy map (`docs/policy-map.md`, `manage.py policy_map`): every clause id of both
policy texts, the functions that implement it and the tests that name it, read from the code
with `ast` so that the document cannot drift from it.

- Clauses: the texts of `orders/policy_texts/` (version 1, as `policy_seed` publishes them),
  parsed by `orders.policy_text`.
- Implemented by: every function or method outside the edges (views, admin, API, forms,
  management commands, template tags) whose docstring cites the clause ("K-B1..3" counts for
  K-B1, K-B2 and K-B3) or whose body names it as a string (`clauses=("L-2.1",)`). Policy
  decisions are listed first, then services, tasks, selectors and the rest.
- Tested by: every `test_*` function whose name, docstring, body or parametrization names it
  (the tests of the policy page and of this map, which name every clause, left out).

Pure apart from reading the source files; deterministic (sorted, relative paths).
"""

import ast
import re
from collections import defaultdict
from dataclasses import dataclass
from pathlib import Path

from orders.policy_seed import TEXTS
from orders.policy_text import PolicyDocument, parse_policy

ROOT = Path(__file__).resolve().parent.parent
APPS = ("core", "orders", "refunds", "credits", "disputes")
EDGES = {
    "admin",
    "api",
    "api_views",
    "forms",
    "management",
    "seller_forms",
    "seller_views",
    "templatetags",
    "urls",
    "seller_urls",
    "views",
    "context_processors",
    "migrations",
}
# About the texts themselves (parsing, linking, this map), not carrying out a clause.
NOT_IMPLEMENTATIONS = {"orders/policy_text.py", "orders/policy_map.py", "orders/clause_links.py"}
NOT_CLAUSE_TESTS = {
    "tests/orders/test_policy_text.py",
    "tests/orders/test_clause_links.py",
    "tests/test_docs.py",
}
# Where a function sits decides its place in the list: the decision first.
LAYER_ORDER = ("policy", "services", "tasks", "selectors")
TEXT_FILES = ("lojix-refund-policy.txt", "kajet-cancellation-policy.txt")

_CITED = re.compile(r"(?<![\w-])([LK])-(\d+(?:\.\d+)?|[A-Z]{1,2})(\d?)(?:\.\.(\d))?(?![\w-]|\.\d)")


@dataclass(frozen=True)
class Citation:
    """A function citing a clause: "refunds.policy.late_tier" in refunds/policy.py."""

    name: str
    path: str


def policy_document() -> PolicyDocument:
    """The published texts, as version 1 stores them."""
    return parse_policy(
        "\n\n".join((TEXTS / name).read_text(encoding="utf-8").strip() for name in TEXT_FILES)
    )


def cited_clauses(text: str) -> set[str]:
    """Clause ids a text cites: "L-2.1, K-B1..3 and K-OV" -> {L-2.1, K-B1, K-B2, K-B3, K-OV}."""
    found = set()
    for prefix, head, digit, last in _CITED.findall(text):
        if last and digit:
            found |= {f"{prefix}-{head}{n}" for n in range(int(digit), int(last) + 1)}
        else:
            found.add(f"{prefix}-{head}{digit}")
    return found


def implementations(root: Path = ROOT) -> dict[str, list[Citation]]:
    """Clause id -> the functions outside the edges that cite it, policy decisions first."""
    found: dict[str, list[Citation]] = defaultdict(list)
    for path in _app_sources(root):
        module = ".".join(path.relative_to(root).with_suffix("").parts)
        source = path.read_text(encoding="utf-8")
        for qualname, node in _functions(ast.parse(source)):
            clauses = cited_clauses(ast.get_docstring(node) or "") | _string_constants(node)
            citation = Citation(f"{module}.{qualname}", str(path.relative_to(root)))
            for clause in clauses:
                found[clause].append(citation)
    return {clause: sorted(cites, key=_layer_rank) for clause, cites in found.items()}


def naming_tests(root: Path = ROOT) -> dict[str, list[str]]:
    """Clause id -> "tests/<path>::<test name>" of every test that names it."""
    found: dict[str, list[str]] = defaultdict(list)
    for path in sorted((root / "tests").rglob("test_*.py")):
        if str(path.relative_to(root)) in NOT_CLAUSE_TESTS:
            continue
        source = path.read_text(encoding="utf-8")
        for _, node in _functions(ast.parse(source)):
            if not node.name.startswith("test_"):
                continue
            parts = [_name_citations(node.name)]
            parts += [ast.get_source_segment(source, d) or "" for d in node.decorator_list]
            parts.append(ast.get_source_segment(source, node) or "")
            for clause in cited_clauses("\n".join(parts)):
                found[clause].append(f"{path.relative_to(root)}::{node.name}")
    return {clause: sorted(set(tests)) for clause, tests in found.items()}


_NAMED_L = re.compile(r"(?:^|_)l_(\d+)(?:_(\d+))?(?=_|$)")
_NAMED_K = re.compile(r"(?:^|_)k_(ov|dr|up|[bs]\d)(?=_|$)")


def _name_citations(name: str) -> str:
    """The clause ids a test's name spells: "..._citing_l_8_1" -> "L-8.1", "k_ov" -> "K-OV"."""
    ids = [
        f"L-{major}.{minor}" if minor else f"L-{major}" for major, minor in _NAMED_L.findall(name)
    ]
    ids += [f"K-{code.upper()}" for code in _NAMED_K.findall(name)]
    return " ".join(ids)


def _app_sources(root: Path):
    for app in APPS:
        for path in sorted((root / app).rglob("*.py")):
            inside = path.relative_to(root / app).with_suffix("").parts
            if not EDGES & set(inside) and str(path.relative_to(root)) not in NOT_IMPLEMENTATIONS:
                yield path


def _functions(tree: ast.Module):
    """(qualified name, node) of every function and method, nested ones included."""

    def walk(node, prefix):
        for child in ast.iter_child_nodes(node):
            if isinstance(child, ast.ClassDef):
                yield from walk(child, f"{prefix}{child.name}.")
            elif isinstance(child, (ast.FunctionDef, ast.AsyncFunctionDef)):
                yield f"{prefix}{child.name}", child
                yield from walk(child, f"{prefix}{child.name}.")

    yield from walk(tree, "")


def _string_constants(node: ast.AST) -> set[str]:
    """Clause ids written as whole strings in a function (`clauses=("L-2.1", "K-B3")`)."""
    return {
        inner.value
        for inner in ast.walk(node)
        if isinstance(inner, ast.Constant)
        and isinstance(inner.value, str)
        and cited_clauses(inner.value) == {inner.value}
    }


def _layer_rank(citation: Citation) -> tuple:
    parts = citation.name.split(".")
    layer = next((i for i, name in enumerate(LAYER_ORDER) if name in parts), len(LAYER_ORDER))
    return (layer, citation.name)


# -- the document ------------------------------------------------------------------------------


def render_policy_map(root: Path = ROOT) -> str:
    """The whole of docs/policy-map.md (markdown)."""
    document = policy_document()
    implemented, tested = implementations(root), naming_tests(root)
    lines = [
        "# Policy map",
        "",
        "Every clause of the two published policies (`orders/policy_texts/`), the code that "
        "carries it out and the tests that name it. Generated from the code by "
        "`python manage.py policy_map` (`make docs`); `tests/test_docs.py` fails when this "
        "file differs from a fresh generation, so regenerate it after changing the code. "
        "A function is listed when its docstring cites the clause or its body names it "
        "(`clauses=(...)`); the edges (views, admin, API, forms) are left out: they call these. "
        "The clause ids are the anchors of the policy page, `/policy/#L-2.1`.",
        "",
        "| clause | title | functions | tests |",
        "| --- | --- | ---: | ---: |",
    ]
    sections = document.sections()
    for section in sections:
        anchor = section.anchor.lower().replace(".", "")
        lines.append(
            f"| [{section.anchor}](#{anchor}) | {section.title} | "
            f"{len(implemented.get(section.anchor, []))} | "
            f"{len(tested.get(section.anchor, []))} |"
        )
    for text in document.texts:
        lines += ["", f"## {text.title}"]
        for section in [s for top in text.sections for s in (top, *top.sections)]:
            lines += _clause_entry(section, implemented, tested)
    unknown = sorted(set(implemented) - set(document.clause_ids()))
    if unknown:
        lines += ["", "## Cited but not in the texts", "", ", ".join(unknown)]
    return "\n".join(lines) + "\n"


def _clause_entry(section, implemented, tested) -> list[str]:
    lines = ["", f"### {section.anchor}", "", f"**{section.title}**", ""]
    functions = implemented.get(section.anchor, [])
    if functions:
        lines.append("Implemented by:")
        lines += [f"- `{c.name}` ({c.path})" for c in functions]
    elif section.sections:
        lines.append(
            f"Implemented by its clauses: {', '.join(s.anchor for s in section.sections)}."
        )
    else:
        lines.append("Implemented by: no function cites it by id.")
    tests = tested.get(section.anchor, [])
    lines.append("")
    if tests:
        lines.append("Tested by:")
        by_file: dict[str, list[str]] = defaultdict(list)
        for test in tests:
            path, name = test.split("::")
            by_file[path].append(name)
        lines += [
            f"- {path}: {', '.join(f'`{n}`' for n in names)}" for path, names in by_file.items()
        ]
    else:
        lines.append("Tested by: no test names it.")
    return lines
