"""The `shadow` and `feedback` keys of `GET /monitoring`: the live evidence about the
champion and its challenger, from the series every worker writes.

    curl -s http://127.0.0.1:3000/monitoring | python -m json.tool   # "shadow", "feedback"

`shadow`: the challenger's agreement with the champion on the images scored in shadow
(service/shadow.py's series), a 10×10 matrix of the disagreements (row: the champion's
digit, column: the challenger's), the images dropped, and the challenger's inference
seconds over the champion's on the same batches. `feedback`: each model's accuracy on
the answers users corrected or confirmed (`mnist_feedback_total`, recorded where feedback
is stored), and its confusion matrix (row: the true digit, column: the model's answer).
Since the service started, every worker's summed; Prometheus's recording rules give the
same over a window (docs/shadow.md).
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from prometheus_client.samples import Sample

from service.monitoring import DIGITS, VERSION
from service.shadow import CHALLENGER_VERSION, Shadow

FEEDBACK = "mnist_feedback_total"
SHADOW_ANSWERS = "mnist_shadow_answers_total"


def _matrix(samples: Iterable[Sample], row: str, column: str) -> list[list[int]]:
    """Counts summed into a 10×10 matrix by two digit labels."""
    counts = [[0] * len(DIGITS) for _ in DIGITS]
    for s in samples:
        counts[int(s.labels[row])][int(s.labels[column])] += int(s.value)
    return counts


def _total(samples: Iterable[Sample], name: str) -> float:
    return sum(s.value for s in samples if s.name == name)


def shadow_report(samples: list[Sample], shadow: Shadow | None) -> dict[str, Any] | None:
    """The challenger against the champion in shadow; None without a challenger."""
    if shadow is None:
        return None
    ours = [s for s in samples if s.labels.get(VERSION) == shadow.champion_version
            and s.labels.get(CHALLENGER_VERSION) == shadow.version]
    answered = [s for s in ours if s.name == SHADOW_ANSWERS]
    answers = int(sum(s.value for s in answered))
    agreed = int(sum(s.value for s in answered if s.labels["agree"] == "true"))
    seconds = {s.labels["role"]: s.value for s in ours if s.name == "mnist_shadow_seconds_total"}
    disagreements = _matrix([s for s in answered if s.labels["agree"] == "false"],
                            "champion", "challenger")
    champion_s = seconds.get("champion", 0.0)
    return {
        "challenger_version": shadow.version, "share": shadow.share, "answers": answers,
        "agreement": agreed / answers if answers else None,
        "disagreements": disagreements,
        "dropped": int(_total(ours, "mnist_shadow_dropped_total")),
        "latency_ratio": seconds.get("challenger", 0.0) / champion_s if champion_s else None,
    }


def _accuracy(rows: list[Sample]) -> dict[str, Any]:
    confusion = _matrix(rows, "truth", "answered")
    answers = sum(map(sum, confusion))
    correct = sum(confusion[d][d] for d in range(len(DIGITS)))
    return {"answers": answers, "accuracy": correct / answers if answers else None,
            "confusion": confusion}


def feedback_report(samples: list[Sample], champion_version: str,
                    shadow: Shadow | None) -> dict[str, Any]:
    """Each model's accuracy on the feedback received: the champion's on all of it, the
    challenger's (None without one) on the rows it re-scored beside this champion."""
    ours = [s for s in samples if s.name == FEEDBACK
            and s.labels.get(VERSION) == champion_version]
    champion = [s for s in ours if s.labels.get("role") == "champion"]
    challenger = None if shadow is None else _accuracy(
        [s for s in ours if s.labels.get("role") == "challenger"
         and s.labels.get(CHALLENGER_VERSION) == shadow.version])
    return {"champion": _accuracy(champion), "challenger": challenger}
