"""Every relative link in README.md and docs/ resolves, anchors included.

    pytest tests/docs/test_links.py

Pages move (a dated record to docs/journal/, a section renamed): a link that points at a
file or a heading that is gone must fail here, not in a reader's browser. Anchors are
made from headings as GitHub makes them.
"""

from __future__ import annotations

import re
from collections import Counter

import pytest

from tests.docs.markdown import FENCE, pages
from tests.helpers import ROOT

_LINK = re.compile(r"\[[^\]]*\]\(([^)\s]+)\)")
_HEADING = re.compile(r"^#{1,6}\s+(.+?)\s*#*\s*$", re.M)


def slug(heading: str) -> str:
    """GitHub's anchor for a heading: lower case, punctuation dropped, spaces to hyphens."""
    text = re.sub(r"`|\*\*|\[([^\]]*)\]\([^)]*\)", r"\1", heading).strip().lower()
    return re.sub(r"[^\w\- ]", "", text).replace(" ", "-")


def anchors(markdown: str) -> set[str]:
    """Every heading's anchor; a repeated heading gets -1, -2, ... as on GitHub."""
    seen: Counter[str] = Counter()
    found = set()
    for heading in _HEADING.findall(FENCE.sub("", markdown)):
        base = slug(heading)
        found.add(base if not seen[base] else f"{base}-{seen[base]}")
        seen[base] += 1
    return found


def relative_links(markdown: str) -> list[str]:
    return [target for target in _LINK.findall(FENCE.sub("", markdown))
            if not re.match(r"[a-z][a-z+.-]*:", target)]  # http:, https:, mailto: ...


@pytest.mark.parametrize("page", pages())
def test_every_relative_link_resolves(page):
    source = ROOT / page
    broken = []
    for target in relative_links(source.read_text()):
        path, _, anchor = target.partition("#")
        dest = (source.parent / path).resolve() if path else source
        if not dest.exists():
            broken.append(f"{target}: no such file")
        elif anchor and dest.suffix == ".md" and anchor not in anchors(dest.read_text()):
            broken.append(f"{target}: no heading with that anchor in {dest.relative_to(ROOT)}")
    assert not broken, f"{page}:\n  " + "\n  ".join(broken)


def test_anchors_are_made_as_github_makes_them():
    page = "# Top\n## Scaling out: Swarm and Kubernetes\n## `make bench` (2026-12-04)\n## Top\n"
    assert anchors(page) == {"top", "scaling-out-swarm-and-kubernetes",
                             "make-bench-2026-12-04", "top-1"}
