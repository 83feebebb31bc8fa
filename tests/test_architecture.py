"""The layers hold: read from the source with `ast`, so the rule stays true as code changes.

    pytest tests/test_architecture.py

core is the ground floor (stdlib and numpy, nothing of ours); training, service and
load_tests stand on core only, never on each other; clients may also use load_tests (the
demo runs the load test), never the reverse; benchmarks and fuzz (the decode path's
fuzzer) may use them; deploy (Prometheus's rules, generated from core's thresholds and
load_tests' SLO; the Swarm proof) stands on core and load_tests; nothing imports in a
circle, lazy imports inside functions included.
"""

from __future__ import annotations

import ast
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
PACKAGES = ("core", "training", "service", "clients", "load_tests", "benchmarks", "fuzz",
            "deploy")
ALLOWED = {  # package -> the packages of ours it may import (itself always)
    "core": set(),
    "training": {"core"},
    "service": {"core"},
    "clients": {"core", "load_tests"},
    "load_tests": {"core"},
    "benchmarks": {"core", "service", "clients", "load_tests"},
    "fuzz": {"core", "service", "clients", "benchmarks"},
    "deploy": {"core", "load_tests"},
}
CORE_THIRD_PARTY = {"numpy"}
# Imported inside a function, only where that backend is used: the images that never
# reach PostgreSQL need not carry its driver.
CORE_LAZY_IMPORTS = {"core.feedback": {"psycopg"}}


def modules(root: Path) -> dict[str, Path]:
    """Dotted module name -> file, for every .py of our packages under root."""
    found = {}
    for pkg in PACKAGES:
        for path in sorted((root / pkg).rglob("*.py")):
            parts = path.relative_to(root).with_suffix("").parts
            name = ".".join(parts[:-1] if parts[-1] == "__init__" else parts)
            found[name] = path
    return found


def imports_of(path: Path, name: str, known: set[str]) -> set[str]:
    """Every module a file imports (top-level names for foreign ones), at any depth."""
    package = name if path.name == "__init__.py" else name.rpartition(".")[0]
    out = set()
    for node in ast.walk(ast.parse(path.read_text(), str(path))):
        if isinstance(node, ast.Import):
            out.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:  # relative: resolve against this module's package
                anchor = package.split(".")[:len(package.split(".")) - node.level + 1]
                base = ".".join([*anchor, base] if base else anchor)
            # `from pkg import mod` imports the module pkg.mod when there is one.
            subs = {f"{base}.{a.name}" for a in node.names} & known
            out.update(subs or {base})
    return out


def graph(root: Path) -> dict[str, set[str]]:
    mods = modules(root)
    known = set(mods)
    return {name: imports_of(path, name, known) for name, path in mods.items()}


def layer_violations(g: dict[str, set[str]]) -> list[str]:
    out = []
    for mod, deps in g.items():
        pkg = mod.split(".")[0]
        for dep in deps:
            top = dep.split(".")[0]
            if top in ALLOWED and top != pkg and top not in ALLOWED[pkg]:
                out.append(f"{mod} imports {dep}")
            if top == "tests":
                out.append(f"{mod} imports the tests ({dep})")
    return sorted(out)


def core_foreign_imports(g: dict[str, set[str]]) -> list[str]:
    return sorted(f"{mod} imports {dep}" for mod, deps in g.items() if mod.startswith("core")
                  for dep in deps
                  if dep.split(".")[0] not in sys.stdlib_module_names | CORE_THIRD_PARTY | {
                      "core", "__future__"} | CORE_LAZY_IMPORTS.get(mod, set()))


def cycles(g: dict[str, set[str]]) -> list[list[str]]:
    """Every import cycle among our modules, each found once (depth-first search)."""
    ours = {m: {d for d in deps if d in g and d != m} for m, deps in g.items()}
    found, done = [], set()

    def visit(mod: str, stack: list[str]) -> None:
        if mod in stack:
            found.append(stack[stack.index(mod):] + [mod])
            return
        if mod in done:
            return
        for dep in sorted(ours[mod]):
            visit(dep, [*stack, mod])
        done.add(mod)

    for mod in sorted(ours):
        visit(mod, [])
    return found


def test_training_and_service_never_import_each_other_nor_go_up_a_layer():
    assert layer_violations(graph(ROOT)) == []


def test_core_imports_only_the_standard_library_and_numpy():
    assert core_foreign_imports(graph(ROOT)) == []


def test_no_import_cycle_anywhere():
    assert cycles(graph(ROOT)) == []


def test_every_package_is_checked():
    top = {p.parent.name for p in ROOT.glob("*/__init__.py")} - {"tests"}
    assert top == set(PACKAGES)


@pytest.fixture
def bad_tree(tmp_path):
    """A tree that breaks every rule, so the checks above are seen to fail."""
    files = {
        "core/__init__.py": "",
        "core/contract.py": "import PIL\nfrom service import engine\n",
        "service/__init__.py": "",
        "service/engine.py": "def f():\n    from training.pipeline import run\n",
        "training/__init__.py": "",
        "training/pipeline.py": "from . import loop\n",
        "training/loop.py": "from training.pipeline import run\n",
    }
    for rel, text in files.items():
        (tmp_path / rel).parent.mkdir(parents=True, exist_ok=True)
        (tmp_path / rel).write_text(text)
    for pkg in set(PACKAGES) - {"core", "service", "training"}:
        (tmp_path / pkg).mkdir()
    return tmp_path


def test_the_checks_catch_what_they_forbid(bad_tree):
    g = graph(bad_tree)
    assert layer_violations(g) == ["core.contract imports service.engine",
                                   "service.engine imports training.pipeline"]
    assert core_foreign_imports(g) == ["core.contract imports PIL",
                                       "core.contract imports service.engine"]
    assert cycles(g) == [["training.pipeline", "training.loop", "training.pipeline"]]
