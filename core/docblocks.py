"""Generated blocks inside hand-written markdown: how a table or a figure from a generated
source enters README.md or docs/ without being copied by hand.

    python -c "import core.docblocks as b; print(b.read_block(open('README.md').read(),'settings'))"

A block is delimited by two HTML comments, which markdown does not show:

    <!-- generated: settings (python -m service.settings_table --write) -->
    | variable | default | meaning |
    <!-- end generated: settings -->

The text after the name says what writes the block. Its writer calls write_block() (a
module whose command prints or writes one block: block_command()); a test
renders the block from its source again and compares it with read_block(), so a figure in
a page can never drift from the file it comes from.
"""

from __future__ import annotations

import argparse
import re
from collections.abc import Callable
from pathlib import Path


class BlockError(ValueError):
    """A page lacks the named block, or holds it more than once."""


def _pattern(name: str) -> re.Pattern[str]:
    return re.compile(rf"(<!-- generated: {re.escape(name)}(?= |-->)[^\n]*-->\n)(.*?)"
                      rf"(<!-- end generated: {re.escape(name)} -->)", re.S)


def _one_match(text: str, name: str) -> re.Match[str]:
    found = list(_pattern(name).finditer(text))
    if len(found) != 1:
        raise BlockError(f"expected one generated block {name!r}, found {len(found)}")
    return found[0]


def read_block(text: str, name: str) -> str:
    """The body of block `name`, without its delimiters and trailing newline."""
    return _one_match(text, name)[2].rstrip("\n")


def replace_block(text: str, name: str, body: str) -> str:
    """`text` with block `name`'s body replaced by `body`; its delimiters are kept."""
    match = _one_match(text, name)
    return text[:match.start(2)] + body.rstrip("\n") + "\n" + text[match.end(2):]


def write_block(path: Path, name: str, body: str) -> bool:
    """Replace block `name` in the file at `path`; whether the file changed."""
    old = path.read_text()
    new = replace_block(old, name, body)
    if new != old:
        path.write_text(new)
    return new != old


def block_command(path: Path, name: str, body: Callable[[], str], description: str,
                  argv: list[str] | None = None) -> int:
    """The command line of a generated block: print its body, or with --write replace
    block `name` of the file at `path` with it and say whether that changed the file."""
    parser = argparse.ArgumentParser(description=description)
    parser.add_argument("--write", action="store_true",
                        help=f"replace the block {name!r} of {path.name}")
    if parser.parse_args(argv).write:
        print(f"{path.name}: {'updated' if write_block(path, name, body()) else 'unchanged'}")
    else:
        print(body())
    return 0
