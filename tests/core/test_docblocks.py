from __future__ import annotations

import pytest

from core.docblocks import BlockError, block_command, read_block, replace_block, write_block

PAGE = """# Title
text before
<!-- generated: table (python -m somewhere) -->
| old |
<!-- end generated: table -->
text after
"""


def test_a_block_is_read_without_its_delimiters():
    assert read_block(PAGE, "table") == "| old |"


def test_replacing_a_block_keeps_everything_around_it():
    new = replace_block(PAGE, "table", "| a |\n| b |\n")
    assert read_block(new, "table") == "| a |\n| b |"
    assert new.startswith("# Title\ntext before\n<!-- generated: table (python -m somewhere) -->\n")
    assert new.endswith("<!-- end generated: table -->\ntext after\n")


def test_an_empty_body_can_be_filled():
    page = "<!-- generated: x -->\n<!-- end generated: x -->\n"
    assert read_block(replace_block(page, "x", "42"), "x") == "42"


@pytest.mark.parametrize("page", [PAGE.replace("table", "other"), PAGE + PAGE])
def test_a_missing_or_repeated_block_is_an_error(page):
    with pytest.raises(BlockError, match="expected one generated block 'table'"):
        read_block(page, "table")


@pytest.mark.parametrize("name", ["tab", "tab-"])
def test_a_name_is_not_a_prefix_of_another(name):
    page = PAGE.replace("table", f"{name}le")
    with pytest.raises(BlockError):
        read_block(page, name)


def test_write_block_reports_whether_the_file_changed(tmp_path):
    path = tmp_path / "page.md"
    path.write_text(PAGE)
    assert write_block(path, "table", "| new |") is True
    assert write_block(path, "table", "| new |") is False
    assert read_block(path.read_text(), "table") == "| new |"


def test_the_block_command_prints_or_writes_and_says_whether_it_changed(tmp_path, capsys):
    page = tmp_path / "page.md"
    page.write_text(PAGE)
    assert block_command(page, "table", lambda: "| new |", "d", []) == 0
    assert capsys.readouterr().out == "| new |\n" and page.read_text() == PAGE  # printed only
    block_command(page, "table", lambda: "| new |", "d", ["--write"])
    assert capsys.readouterr().out == "page.md: updated\n"
    assert read_block(page.read_text(), "table") == "| new |"
    block_command(page, "table", lambda: "| new |", "d", ["--write"])
    assert capsys.readouterr().out == "page.md: unchanged\n"
