"""service/evidence_report.py: the "shadow" and "feedback" keys of GET /monitoring, from
counters made here as service/shadow.py and the feedback route record them."""

from __future__ import annotations

import json
from types import SimpleNamespace

import prometheus_client as prom

from service.monitoring import Monitor
from service.monitoring_report import report


def _feedback_counter(registry: prom.CollectorRegistry) -> prom.Counter:
    return prom.Counter("mnist_feedback_total", "feedback rows by role", (
        "model_version", "challenger_version", "role", "answered", "truth", "correct"),
        registry=registry)


def test_feedback_accuracy_and_confusion_of_each_role():
    registry = prom.CollectorRegistry()
    feedback = _feedback_counter(registry)
    rows = [("champion", 3, 3), ("champion", 5, 3), ("champion", 7, 7), ("champion", 1, 7),
            ("challenger", 3, 3), ("challenger", 3, 3), ("challenger", 7, 7),
            ("challenger", 2, 7)]
    for role, answered, truth in rows:
        feedback.labels("rep-fb", "chal", role, str(answered), str(truth),
                        str(answered == truth).lower()).inc()
    feedback.labels("rep-other", "chal", "champion", "0", "0", "true").inc(50)  # not ours
    feedback.labels("rep-fb", "older", "challenger", "4", "4", "true").inc(50)
    shadow = SimpleNamespace(champion_version="rep-fb", version="chal", share=0.25)
    body = report(Monitor("rep-fb", None, enabled=True), registry, shadow)["feedback"]
    champion, challenger = body["champion"], body["challenger"]
    assert champion["answers"] == 4 and champion["accuracy"] == 0.5
    assert challenger["answers"] == 4 and challenger["accuracy"] == 0.75
    assert champion["confusion"][3][5] == 1 and champion["confusion"][7][1] == 1
    assert challenger["confusion"][3][3] == 2 and challenger["confusion"][7][2] == 1
    assert sum(map(sum, champion["confusion"])) == 4


def test_no_feedback_and_nothing_scored_yet_say_none_not_zero():
    shadow = SimpleNamespace(champion_version="rep-empty", version="chal", share=0.25)
    body = report(Monitor("rep-empty", None, enabled=True), prom.CollectorRegistry(), shadow)
    assert body["feedback"]["champion"] == {"answers": 0, "accuracy": None,
                                            "confusion": [[0] * 10] * 10}
    assert body["shadow"] == {"challenger_version": "chal", "share": 0.25, "answers": 0,
                              "agreement": None, "disagreements": [[0] * 10] * 10,
                              "dropped": 0, "latency_ratio": None}
    json.dumps(body, allow_nan=False)
    alone = report(Monitor("rep-empty", None, enabled=True), prom.CollectorRegistry())
    assert alone["shadow"] is None and alone["feedback"]["challenger"] is None
