"""Prometheus's alerting rules for the service, on the recorded series of rules.py.

    python -m deploy.prometheus --write     # writes them into mnist-rules.yml

Each alert has a summary, a description and a runbook_url: its heading in
docs/monitoring.md, which says what it means, what to check and what to do. The model's
alerts judge a window only when it holds at least MIN_ANSWERS answers; the challenger's,
only on the shadow answers deploy/promotion.py needs to judge it.
"""

from __future__ import annotations

from typing import Any

from core.profile import LOW_CONFIDENCE_RISE, MIN_ANSWERS
from deploy.prometheus.config import JOB
from deploy.prometheus.rules import (
    ANSWERS,
    ERROR_RATIO,
    LOW_SHARE,
    P99,
    PAIR,
    REF_LOW_SHARE,
    SHADOW_AGREEMENT,
    SHADOW_ANSWERS,
    WINDOW,
    drift_rules,
    live_rules,
    loop_rules,
    number,
    reference_rules,
    service_rules,
)
from deploy.promotion import EVIDENCE_WINDOW, THRESHOLDS
from load_tests.slo import SLO

# How long a condition must hold before its alert fires: the model's answers are judged
# quickly (a window already averages them), the service's health over longer.
FOR = {"MnistDrift": "1m", "MnistLowConfidenceRise": "1m", "MnistNoReference": "1m",
       "MnistReplicaDown": "1m", "MnistHighErrorRate": "5m", "MnistHighLatencyP99": "5m",
       "MnistFeedbackStoreFailing": "5m", "MnistChallengerDisagrees": "10m"}
SEVERITY = {"MnistReplicaDown": "critical", "MnistHighErrorRate": "critical",
            "MnistNoReference": "info"}  # the others: warning
RUNBOOK = "docs/monitoring.md"  # each alert's runbook line is its heading there
ENOUGH_ANSWERS = f"on(model_version) ({ANSWERS} >= {MIN_ANSWERS})"


def _alert(name: str, expr: str, summary: str, description: str) -> dict[str, Any]:
    return {"alert": name, "expr": expr, "for": FOR[name],
            "labels": {"severity": SEVERITY.get(name, "warning")},
            "annotations": {"summary": summary, "description": description,
                            "runbook_url": f"{RUNBOOK}#{name.lower()}"}}


def model_alerts() -> list[dict[str, Any]]:
    """The model's answers: drift, a rise of low-confidence answers, no reference."""
    version = "{{ $labels.model_version }}"
    return [
        _alert("MnistDrift", f"mnist:drift_score > 1\nand {ENOUGH_ANSWERS}",
               f"Model {version}: its inputs or answers drifted ({{{{ $labels.signal }}}})",
               f"Over the last {WINDOW}, the {{{{ $labels.signal }}}} distribution of model "
               f"{version}'s answers is {{{{ $value | printf \"%.2f\" }}}} times the distance "
               "that is drift from its reference profile."),
        _alert("MnistLowConfidenceRise",
               f"{LOW_SHARE}\n  > on(model_version) {number(LOW_CONFIDENCE_RISE)} * "
               f"{REF_LOW_SHARE}\nand {ENOUGH_ANSWERS}",
               f"Model {version}: more low-confidence answers than in its reference",
               f"Over the last {WINDOW}, a share of {{{{ $value | humanizePercentage }}}} of "
               f"model {version}'s answers were low-confidence, over "
               f"{number(LOW_CONFIDENCE_RISE)} times its reference's share."),
        _alert("MnistNoReference",
               "model_version:mnist_reference_available:max == 0",
               f"Model {version} serves without a reference profile",
               f"Model {version} has no reference profile: its drift is not measured."),
    ]


def service_alerts() -> list[dict[str, Any]]:
    """The service's health: server errors, p99 latency of the answers, a replica down."""
    up = f'up{{job="{JOB}"}}'
    replica = '{{ or $labels.instance "no replica found" }}'  # absent(): no instance
    p99_s = SLO().p99_ms / 1000
    return [
        _alert("MnistHighErrorRate", f"{ERROR_RATIO} > {number(SLO().max_fail_ratio)}",
               "The service fails requests (server errors)",
               f"Over the last {WINDOW}, {{{{ $value | humanizePercentage }}}} of the "
               "requests (health probes aside) ended in a server error: the SLO allows "
               f"{number(SLO().max_fail_ratio)}."),
        _alert("MnistHighLatencyP99", f"{P99} > {number(p99_s)}",
               "{{ $labels.endpoint }} answers slower than the SLO's p99",
               f"Over the last {WINDOW}, the p99 latency of {{{{ $labels.endpoint }}}} is "
               f"{{{{ $value | humanizeDuration }}}}: the SLO is {number(p99_s)} s."),
        _alert("MnistReplicaDown", f"{up} == 0\nor\nabsent({up})",
               f"An api replica is down: {replica}",
               "Prometheus cannot scrape this api replica, or finds none at all: down, "
               "not ready to answer, or unreachable."),
    ]


def loop_alerts() -> list[dict[str, Any]]:
    """The feedback loop: feedback that cannot be stored, a challenger that answers
    differently from the champion far more often than a promotion allows."""
    pair = "{{ $labels.challenger_version }}", "{{ $labels.model_version }}"
    failed = f"increase(mnist_feedback_store_errors_total[{WINDOW}])"
    return [
        _alert("MnistFeedbackStoreFailing", f"sum by (model_version) ({failed}) > 0",
               "Feedback is not being stored: its database is down or refusing",
               f"Over the last {WINDOW}, {{{{ $value | printf \"%.0f\" }}}} feedback writes "
               "failed (each answered 503 with Retry-After); /predict is unaffected."),
        _alert("MnistChallengerDisagrees",
               f"{SHADOW_AGREEMENT} < {number(THRESHOLDS.min_agreement)}\n"
               f"and on({PAIR}) {SHADOW_ANSWERS} >= {THRESHOLDS.min_shadow_answers}",
               f"Challenger {pair[0]} disagrees with champion {pair[1]}",
               f"Over the last {EVIDENCE_WINDOW}, challenger {pair[0]} gave champion "
               f"{pair[1]}'s answer on {{{{ $value | humanizePercentage }}}} of the shadow "
               f"answers: a promotion needs {number(THRESHOLDS.min_agreement)}."),
    ]


def rule_groups() -> dict[str, Any]:
    """The rule file: one group, so that each rule reads the ones above it as they are now."""
    return {"groups": [{"name": "mnist", "rules": [
        *reference_rules(), *live_rules(), *drift_rules(), *service_rules(), *loop_rules(),
        *model_alerts(), *service_alerts(), *loop_alerts()]}]}
