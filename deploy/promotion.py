"""When a challenger may replace the champion, and when its promotion is undone: the one
home of those thresholds.

    python -m deploy.promotion --write     # their table in docs/loop.md

The evidence is what the service measured live and Prometheus recorded (deploy/prometheus/
rules.py, over EVIDENCE_WINDOW): the challenger's answers beside the champion's on a share
of real requests (service/shadow.py), and both models' answers on the inputs users gave
the true digit of (service/feedback.py). `python -m deploy.promote` reads it and applies
these.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field, fields
from pathlib import Path

from core.docblocks import block_command

# Prometheus's window for the evidence: longer than any shadow period it judges, so the
# figures cover the challenger's whole life (its series begin when it is deployed).
EVIDENCE_WINDOW = "1h"
DOCS, BLOCK = Path(__file__).resolve().parents[1] / "docs/loop.md", "promotion-thresholds"


def _meaning(text: str) -> dict[str, str]:
    return {"meaning": text}


@dataclass(frozen=True)
class Thresholds:
    min_shadow_answers: int = field(default=500, metadata=_meaning(
        "shadow answers needed to judge agreement and latency"))
    # A model retrained to fix one population must not change its answers elsewhere.
    min_agreement: float = field(default=0.80, metadata=_meaning(
        "share of shadowed requests the challenger answers as the champion does, at least"))
    min_feedback_answers: int = field(default=100, metadata=_meaning(
        "feedback answers needed, for each model, to judge accuracy"))
    min_feedback_gain: float = field(default=0.02, metadata=_meaning(
        "the challenger's feedback accuracy minus the champion's (same rows), at least"))
    max_latency_ratio: float = field(default=1.5, metadata=_meaning(
        "the challenger's inference seconds over the champion's on the same shadow "
        "batches, at most"))
    watch_s: float = field(default=300.0, metadata=_meaning(
        "after promotion: seconds the live feedback accuracy is watched"))
    min_watch_answers: int = field(default=50, metadata=_meaning(
        "after promotion: feedback answers needed to judge it"))
    max_accuracy_drop: float = field(default=0.05, metadata=_meaning(
        "after promotion: how far live feedback accuracy may fall under the challenger's "
        "shadow feedback accuracy before the previous image is rolled out again"))

    def to_dict(self) -> dict[str, float]:
        return asdict(self)


THRESHOLDS = Thresholds()


def markdown_table(th: Thresholds = THRESHOLDS) -> str:
    rows = ["| threshold | value | meaning |", "|---|---|---|"]
    rows += [f"| `{f.name}` | {getattr(th, f.name):g} | {f.metadata['meaning']} |"
             for f in fields(th)]
    return "\n".join(rows)


def main(argv: list[str] | None = None) -> int:
    return block_command(DOCS, BLOCK, markdown_table, "Print or write the thresholds' table.",
                         argv)


if __name__ == "__main__":
    raise SystemExit(main())
