"""When a challenger may replace the champion, and when its promotion is undone: the one
home of those thresholds.

    python -c "from deploy.promotion import THRESHOLDS; print(THRESHOLDS)"

The evidence is what the service measured live and Prometheus recorded (deploy/prometheus/
rules.py, over EVIDENCE_WINDOW): the challenger's answers beside the champion's on a share
of real requests (service/shadow.py), and both models' answers on the inputs users gave
the true digit of (service/feedback.py). `python -m deploy.promote` reads it and applies
these; docs/loop.md says what each means.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass

# Prometheus's window for the evidence: longer than any shadow period it judges, so the
# figures cover the challenger's whole life (its series begin when it is deployed).
EVIDENCE_WINDOW = "1h"


@dataclass(frozen=True)
class Thresholds:
    # Shadow answers enough to judge agreement and latency on.
    min_shadow_answers: int = 500
    # The challenger agrees with the champion on at least this share of real requests:
    # a model retrained to fix one population must not change its answers elsewhere.
    min_agreement: float = 0.80
    # Feedback answers enough (for each model) to judge accuracy on.
    min_feedback_answers: int = 100
    # The challenger's accuracy on feedback is at least this much above the champion's.
    min_feedback_gain: float = 0.02
    # The challenger's inference time, over the champion's on the same shadow batches.
    max_latency_ratio: float = 1.5
    # After promotion: seconds the live feedback accuracy is watched, the feedback answers
    # needed to judge it, and how far below the challenger's shadow accuracy it may fall
    # before the promotion is rolled back.
    watch_s: float = 300.0
    min_watch_answers: int = 50
    max_accuracy_drop: float = 0.05

    def to_dict(self) -> dict[str, float]:
        return asdict(self)


THRESHOLDS = Thresholds()
