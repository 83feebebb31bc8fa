"""What `GET /monitoring` answers: the live picture, the reference, and their drift, as JSON.

    curl -s http://127.0.0.1:3000/monitoring | python -m json.tool

The same picture as Prometheus's recording rules draw, for those without Prometheus:
made from the monitoring series (service/monitoring.py) of every worker, summed, since the
service started; the distances are core/profile.py's (`psi` of the predicted-digit mix,
`ks` of each histogram), scored against its DRIFT_THRESHOLDS, and said only with at least
MIN_ANSWERS answers. The workers share no state: each answer is read back from the
series every worker writes.
"""

from __future__ import annotations

import math
from collections.abc import Iterable
from typing import Any

import numpy as np
import prometheus_client as prom
from prometheus_client.samples import Sample

from core.profile import DRIFT_THRESHOLDS, MIN_ANSWERS, SIGNALS, Profile, ks, psi
from service.errors import InputError
from service.evidence_report import feedback_report, shadow_report
from service.monitoring import DIGITS, HISTOGRAMS, VERSION, Monitor, le_label
from service.oip_grpc import GRPC_STATUS
from service.oip_routes import is_infer_path
from service.shadow import Shadow

REQUESTS = "bentoml_service_request_total"  # service/metrics.py's request counter
# A rejected request: the client's mistake, over HTTP (a 4xx but 499, a client that left)
# or over gRPC (the status of an InputError).
_GRPC_REJECTED = frozenset(code.name for cls, code in GRPC_STATUS.items()
                           if issubclass(cls, InputError))


def is_answering(endpoint: str) -> bool:
    """An endpoint label (service/metrics.py) of the requests the model answers: the
    /predict routes, and inference of the Open Inference Protocol, REST and gRPC."""
    return endpoint.startswith("/predict") or is_infer_path(endpoint) \
        or endpoint == "grpc:ModelInfer"


def is_rejected(code: str) -> bool:
    return (code.startswith("4") and code != "499") or code in _GRPC_REJECTED


def _samples(registry: prom.CollectorRegistry) -> list[Sample]:
    return [sample for family in registry.collect() for sample in family.samples]


def _histogram(samples: Iterable[Sample], metric: str, edges: tuple[float, ...]) -> list[int]:
    """Non-cumulative counts per bucket (the +Inf one last) of a histogram's samples."""
    cumulative = {s.labels["le"]: s.value for s in samples if s.name == metric + "_bucket"}
    counts = [cumulative.get(le_label(edge), 0.0) for edge in (*edges, math.inf)]
    return [int(c) for c in np.diff(counts, prepend=0.0)]


def _shares(counts: list[int]) -> list[float]:
    total = sum(counts)
    return [c / total if total else 0.0 for c in counts]


def live(samples: list[Sample], version: str) -> dict[str, Any]:
    """The answers served of one model version, every worker's summed."""
    ours = [s for s in samples if s.labels.get(VERSION) == version]
    digits = {s.labels["digit"]: s.value for s in ours if s.name == "mnist_predictions_total"}
    counts = [int(digits.get(d, 0)) for d in DIGITS]
    low = sum(s.value for s in ours if s.name == "mnist_low_confidence_total")
    rejected = sum(s.value for s in samples if s.name == REQUESTS
                   and is_answering(s.labels.get("endpoint", ""))
                   and is_rejected(s.labels.get("http_response_code", "")))
    answers = sum(counts)
    return {
        "answers": answers, "rejected": int(rejected),
        "digit_counts": counts, "digit_share": _shares(counts),
        "low_confidence_share": low / answers if answers else 0.0,
        "histograms": {key: {"edges": list(h.edges), "counts": _histogram(ours, h.metric,
                                                                          h.edges)}
                       for key, h in HISTOGRAMS.items()},
    }


def _reference_shares(reference: Profile, signal: str) -> tuple[float, ...]:
    if signal == "digit_mix":
        return reference.digit_share
    hist = {"confidence": reference.confidence, "entropy": reference.entropy,
            **reference.inputs}[signal]
    return hist.shares


def drift(reference: Profile | None, now: dict[str, Any]) -> dict[str, Any]:
    """Each signal's distance from the reference, its threshold and score (distance over
    threshold: drift above 1); a status instead when there is nothing to compare."""
    out: dict[str, Any] = {"status": "ok", "min_answers": MIN_ANSWERS, "signals": {}}
    if reference is None:
        return {**out, "status": "no reference"}
    if now["answers"] < MIN_ANSWERS:
        return {**out, "status": "too few answers"}
    for signal in SIGNALS:
        if signal == "digit_mix":
            distance = psi(tuple(now["digit_share"]), reference.digit_share)
        else:
            distance = ks(tuple(_shares(now["histograms"][signal]["counts"])),
                          _reference_shares(reference, signal))
        threshold = DRIFT_THRESHOLDS[signal]
        out["signals"][signal] = {"distance": distance, "threshold": threshold,
                                  "score": distance / threshold}
    if any(s["score"] > 1 for s in out["signals"].values()):
        out["status"] = "drift"
    return out


def finite(value: Any) -> Any:
    """JSON has no NaN: a profile's unknown accuracy is null."""
    if isinstance(value, float):
        return value if math.isfinite(value) else None
    if isinstance(value, dict):
        return {k: finite(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [finite(v) for v in value]
    return value


def report(monitor: Monitor, registry: prom.CollectorRegistry,
           shadow: Shadow | None = None) -> dict[str, Any]:
    """GET /monitoring's answer, from the series `registry` collects (service/metrics.py's
    `collected`: every worker's); `shadow`: the worker's challenger, if any
    (service/evidence_report.py)."""
    samples = _samples(registry)
    now = live(samples, monitor.version)
    reference = monitor.reference
    return finite({
        "model_version": monitor.version,
        "monitoring": "on" if monitor.enabled else "off",
        "reference": reference.to_dict() if reference is not None else None,
        "live": now,
        "drift": drift(reference, now),
        "shadow": shadow_report(samples, shadow),
        "feedback": feedback_report(samples, monitor.version, shadow),
    })
