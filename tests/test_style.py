"""House rules that a reviewer would otherwise check by eye, read from the source.

    pytest tests/test_style.py

Functions short enough to read at once; no dates, issue numbers or commit hashes in
code, comments or help texts (git and docs/journal/ keep history).
"""

from __future__ import annotations

import ast
import re
import subprocess

import pytest

from tests.helpers import ROOT

MAX_FUNCTION_LINES = 60
# The Swarm proof is a script of steps read top to bottom (deploy/swarm/e2e.py).
LONG_FUNCTIONS_ALLOWED = {"deploy/swarm/e2e.py"}
CODE = ("*.py", "*.sh", "*.js", "*.html", "*.css", "*.yml", "*.yaml", "*.toml", "*.cfg",
        "*.conf", "Makefile", "*Dockerfile", ".ci/run")
HISTORY = re.compile(
    r"\b20\d\d-[01]\d-[0-3]\d\b"  # a date
    r"|\b[Ii]ssues? #?\d+"  # an issue number
    r"|\b[Bb]locks? \d+\b"  # a journal block
    r"|\b(?:commit|tree|hash|rev(?:ision)?)\s+[0-9a-f]{7,40}\b")  # a commit hash


def tracked(*patterns: str) -> list[str]:
    """The files git tracks that match, as they are in the working tree."""
    out = subprocess.run(["git", "ls-files", "--", *patterns], cwd=ROOT, capture_output=True,
                         text=True, check=True).stdout
    return [p for p in out.splitlines() if (ROOT / p).is_file()]


def long_functions(source: str, limit: int = MAX_FUNCTION_LINES) -> list[str]:
    return [f"{node.name} ({node.end_lineno - node.lineno + 1} lines)"
            for node in ast.walk(ast.parse(source))
            if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef)
            and node.end_lineno - node.lineno + 1 > limit]


def history_in(text: str) -> list[str]:
    return [m.group() for m in HISTORY.finditer(text)]


def test_the_checks_can_fail():
    source = "def f():\n" + "    x = 1\n" * MAX_FUNCTION_LINES
    assert long_functions(source) == [f"f ({MAX_FUNCTION_LINES + 1} lines)"]
    date = "20" + "26-12-02"  # spelled apart, so that this file passes its own test
    claim = f"measured on {date} for issue 13 at tree 4478cba, block 9"
    assert history_in(claim) == [date, "issue 13", "tree 4478cba", "block 9"]
    assert history_in("md5 f68b3c2dcbeaaa9fbdd348bbdeb94873, 28x28, SHA-256") == []


@pytest.mark.parametrize("path", [p for p in tracked("*.py") if p not in LONG_FUNCTIONS_ALLOWED])
def test_functions_fit_on_a_screen(path):
    assert long_functions((ROOT / path).read_text()) == []


def test_no_history_in_code_comments_or_help_texts():
    """Test data may carry dates (a rendered report's), so tests/ is not read."""
    found = {path: history_in((ROOT / path).read_text()) for path in tracked(*CODE)
             if not path.startswith("tests/")}
    assert {path: hits for path, hits in found.items() if hits} == {}
