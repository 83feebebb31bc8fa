"""docs/training.md's options table is the command line's (training/optionsdoc.py)."""

from __future__ import annotations

import argparse
from dataclasses import dataclass, field

from core.docblocks import read_block
from training import flags
from training.__main__ import build_parser
from training.flags import option
from training.optionsdoc import BLOCK, PAGE, options_table


def test_the_page_holds_the_current_options():
    """Stale after a new or changed option: run `python -m training.optionsdoc`."""
    assert read_block(PAGE.read_text(), BLOCK) == options_table(build_parser())


def test_the_table_has_a_row_per_flag_with_its_default_and_help():
    @dataclass(frozen=True)
    class Knobs:
        rate: float = field(default=0.5, metadata=option("how fast | how far", group="g"))
        quiet: bool = field(default=False, metadata=option("say less"))

    parser = argparse.ArgumentParser()
    flags.add_flags(parser, Knobs)
    assert options_table(parser).splitlines()[2:] == [
        "| `--quiet` |  | say less |",
        "| **g** | | |",
        "| `--rate` | `0.5` | how fast \\| how far |",
    ]
