"""The promotion thresholds: their table in docs/loop.md is generated from them."""

from core.docblocks import read_block
from deploy.promotion import BLOCK, DOCS, THRESHOLDS, markdown_table


def test_docs_table_is_current():
    assert read_block(DOCS.read_text(), BLOCK) == markdown_table(), (
        "docs/loop.md's thresholds are stale: run python -m deploy.promotion --write")


def test_every_threshold_is_in_the_table_with_its_value():
    table = markdown_table()
    for name, value in THRESHOLDS.to_dict().items():
        assert f"| `{name}` | {value:g} |" in table


def test_thresholds_are_coherent():
    assert 0 < THRESHOLDS.min_agreement <= 1
    assert THRESHOLDS.min_feedback_gain > 0 and THRESHOLDS.max_accuracy_drop > 0
    assert THRESHOLDS.max_latency_ratio >= 1
