"""The options table of docs/training.md, generated from the command line itself.

    python -m training.optionsdoc            # rewrites the block in docs/training.md

Every flag of `python -m training` (training/flags.py, from TrainConfig and the configs it
nests), its default and its help, grouped as --help groups them; a test renders it again
and compares it with the page, so the page cannot drift from the code.
"""

from __future__ import annotations

import argparse
from pathlib import Path

from core.docblocks import write_block
from training.__main__ import build_parser

BLOCK = "training-options"
PAGE = Path(__file__).resolve().parents[1] / "docs" / "training.md"


def _default(action: argparse.Action) -> str:
    if isinstance(action.default, bool) or action.default is None:
        return ""
    if isinstance(action.default, list):
        return "`" + " ".join(map(str, action.default)) + "`"
    return f"`{action.default}`"


def options_table(parser: argparse.ArgumentParser) -> str:
    """A markdown table: one row per flag, a bold row per group, in --help's order."""
    rows = ["| option | default | what it does |", "|---|---|---|"]
    # argparse has no public way to walk its groups; its help formatter walks these.
    for group in parser._action_groups:
        actions = [a for a in group._group_actions if a.help != argparse.SUPPRESS
                   and not isinstance(a, argparse._HelpAction)]
        if not actions:
            continue
        if group.title not in ("options", "optional arguments"):
            rows.append(f"| **{group.title}** | | |")
        for action in actions:
            flags = ", ".join(f"`{flag}`" for flag in action.option_strings)
            what = (action.help or "").replace("|", "\\|")
            rows.append(f"| {flags} | {_default(action)} | {what} |")
    return "\n".join(rows)


def main() -> int:
    changed = write_block(PAGE, BLOCK, options_table(build_parser()))
    print(f"{PAGE}: {'updated' if changed else 'already current'}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
