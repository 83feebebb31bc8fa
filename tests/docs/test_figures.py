"""No measured figure is copied by hand into README.md or a hand-written page of docs/.

    pytest tests/docs/test_figures.py

A figure in prose is a copy that goes stale: measured figures live in generated files
(docs/benchmarks.md from `make bench`, docs/attack.md from `make attack`, the model's
metrics.json and model card from `make train`) and, dated, in docs/journal/. A page may
show one only inside a generated block (core/docblocks.py), which a test renders again
from its source. What counts as a measured figure is a number with a unit that only a
measurement gives; the allowances below are facts that are not measurements.
"""

from __future__ import annotations

import bisect
import re

import pytest

from tests.docs.markdown import FENCE, pages
from tests.helpers import ROOT

# Whole pages written by a tool: every figure in them is generated.
GENERATED_PAGES = {"docs/benchmarks.md": "make bench", "docs/attack.md": "make attack"}

_NUMBER = r"(?<![\w.,])\d[\d,]*(?:\.\d+)?"
_RANGE = rf"{_NUMBER}(?:\s*[–-]\s*\d[\d,]*(?:\.\d+)?)?"
# A goal or a limit ("≤ 1 %", "> 0.5 s") is not a measurement.
_NOT_A_THRESHOLD = r"(?<![≤≥<>] )(?<![≤≥<>])"
MEASURED = {
    "a rate": rf"{_NOT_A_THRESHOLD}{_RANGE}\s*(?:req/s|requests/s|digits/s|images/s)",
    "a latency": rf"{_NOT_A_THRESHOLD}{_RANGE}\s*(?:ms|µs)\b",
    # Whole seconds are mostly durations someone sets (a 30 s run, a 10 s timeout); a
    # decimal or a range of seconds is what a stopwatch gives.
    "a duration": rf"{_NOT_A_THRESHOLD}(?:{_NUMBER}\s*[–-]\s*{_NUMBER}|\d+\.\d+)\s*s\b",
    "a share": rf"{_NOT_A_THRESHOLD}[+−-]?{_RANGE}\s*%",
    # 1.42× is a ratio; 28×28 and 784 × 1024 are sizes.
    "a ratio": rf"{_NOT_A_THRESHOLD}{_RANGE}×(?!\s*\d)",
    # Decimal units are what a measurement reports; limits are set in binary ones
    # ("10 MiB", "16 KiB", "1 GiB").
    "a size": rf"{_NOT_A_THRESHOLD}{_RANGE}\s*(?:KB|MB|GB)\b",
    "an accuracy": r"(?<![\w.])0\.\d{3,}\b",
}
_MEASURED = {kind: re.compile(pattern) for kind, pattern in MEASURED.items()}
_GENERATED_BLOCK = re.compile(  # the syntax of core/docblocks.py, any block name
    r"<!-- generated: (\S+)(?= |-->)[^\n]*-->\n.*?<!-- end generated: \1 -->", re.S)
_CODE_SPAN = re.compile(r"`[^`\n]+`")


def _blank(match: re.Match[str]) -> str:
    """The match's text replaced by spaces, its line breaks kept: line numbers hold."""
    return re.sub(r"[^\n]", " ", match[0])


def prose(markdown: str) -> str:
    """The page without generated blocks, code blocks and code spans (commands,
    arguments and sample output), line for line."""
    for pattern in (_GENERATED_BLOCK, FENCE, _CODE_SPAN):
        markdown = pattern.sub(_blank, markdown)
    return markdown


def measured_figures(markdown: str) -> list[str]:
    """Each measured figure in the page's prose, as `line N: kind 'text'`."""
    text = prose(markdown)
    found = sorted((match.start(), kind, match[0].strip())
                   for kind, pattern in _MEASURED.items() for match in pattern.finditer(text))
    line_starts = [0, *(i + 1 for i, char in enumerate(text) if char == "\n")]
    return [f"line {bisect.bisect_right(line_starts, start)}: {kind} {figure!r}"
            for start, kind, figure in found]


def hand_written_pages() -> list[str]:
    """README.md and docs/, less the journal (dated records) and the generated pages."""
    return [page for page in pages()
            if not page.startswith("docs/journal/") and page not in GENERATED_PAGES]


@pytest.mark.parametrize("page", hand_written_pages())
def test_no_measured_figure_is_copied_by_hand(page):
    figures = measured_figures((ROOT / page).read_text())
    assert not figures, (
        f"{page} holds measured figures outside a generated block: link to where they are "
        "generated, or move the dated record to docs/journal/:\n  " + "\n  ".join(figures))


def test_the_generated_pages_exist():
    for page, writer in GENERATED_PAGES.items():
        assert (ROOT / page).is_file(), f"{page} ({writer}) is gone: update GENERATED_PAGES"


@pytest.mark.parametrize("text", [
    "the service gave 798 req/s", "p99 88 ms", "a batch-1 call took 224 µs",
    "replaced in 5–7 s", "cold start 1.5 s", "test accuracy 99.06 %", "+40 % at 32 users",
    "0.83× the peer", "at 1.42–1.45× the peer", "167–184 MB per worker", "0.9869 offline",
])
def test_a_measured_figure_is_found(text):
    assert measured_figures(f"Some prose: {text}.\n")


@pytest.mark.parametrize("text", [
    "a 28×28 digit", "784 × 1024 weights", "the 10 MiB body limit", "headers over 16 KiB",
    "ECE ≤ 1 %", "a goal of ≥ 0.8× the peer", "a 30 s Locust run", "the two 503s",
    "the 1.32 schemas", "`--timeout 150s`", "`MNIST_BATCH_MAX_LATENCY_MS=1000`",
])
def test_a_fact_that_is_not_a_measurement_passes(text):
    assert not measured_figures(f"Some prose: {text}.\n")


def test_figures_in_code_and_generated_blocks_pass():
    page = ("```\n$ make bench   # 798 req/s\n```\n"
            "<!-- generated: bench (make bench) -->\n| 798 req/s | 0.83× |\n"
            "<!-- end generated: bench -->\n"
            "then 798 req/s\n")
    assert measured_figures(page) == ["line 7: a rate '798 req/s'"]
