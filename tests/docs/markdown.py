"""What the docs tests read of a markdown page (imported by tests/docs, not a test).

    python -c "from tests.docs.markdown import pages; print(pages())"
"""

from __future__ import annotations

import re

from tests.helpers import ROOT

# A fenced code block: commands and sample output, neither links nor prose.
FENCE = re.compile(r"^(```|~~~).*?^\1", re.S | re.M)


def pages() -> list[str]:
    """README.md and every page under docs/, journal included, relative to the root."""
    found = [ROOT / "README.md", *sorted((ROOT / "docs").rglob("*.md"))]
    return [str(page.relative_to(ROOT)) for page in found]
