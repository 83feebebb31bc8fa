"""Prometheus's recording rules for the service (alerts.py adds the alerts on them), from
the one home of every threshold: core/profile.py (drift, low confidence, answers enough to
judge), load_tests/slo.py (errors, p99 latency) and deploy/promotion.py (the window of the
feedback loop's evidence).

    python -m deploy.prometheus --write     # writes mnist-rules.yml beside this

Recording rules follow Prometheus's naming, `level:metric:operations` (the labels kept,
the metric, what was done to it), except the drift series the design names
`mnist:drift_distance` and `mnist:drift_score` (`{model_version, signal}`). Everything is
summed over the replicas (`instance`) and kept apart by `model_version`: each served model
is compared with its own reference. A model without a reference has no reference series,
and the rules below require one (`mnist_reference_available == 1`): it gets no score.

The loop's evidence (loop_rules) is kept apart by `model_version` and `challenger_version`
too: a challenger is judged on its own series only, never on an earlier challenger's.
"""

from __future__ import annotations

from typing import Any

from core.profile import DRIFT_THRESHOLDS, PSI_FLOOR, SIGNALS, STATS
from deploy.promotion import EVIDENCE_WINDOW

WINDOW = "5m"  # the window every rate, share and distance is taken over

# signal -> (the live histogram, its `stat` label in mnist_reference_bucket_share)
HISTOGRAMS: dict[str, tuple[str, str]] = {
    "confidence": ("mnist_prediction_confidence", "confidence"),
    "entropy": ("mnist_prediction_entropy_bits", "entropy_bits"),
    **{stat: (f"mnist_input_{stat}", stat) for stat in STATS},
}
# What the service exposes (the design's names; histograms with their _bucket and _count)
# and what the rules read of BentoML's request series.
SERVICE_METRICS = (
    "mnist_predictions_total", "mnist_low_confidence_total",
    *(f"{live}_{part}" for live, _ in HISTOGRAMS.values() for part in ("bucket", "count")),
    "mnist_reference_available", "mnist_reference_digit_share",
    "mnist_reference_low_confidence_share", "mnist_reference_bucket_share",
    "bentoml_service_request_total", "bentoml_service_request_duration_seconds_bucket")
# The feedback loop's counters (service/feedback.py, service/shadow.py): a service exposes
# them once feedback arrives or a challenger runs beside its champion.
LOOP_METRICS = ("mnist_feedback_total", "mnist_feedback_store_errors_total",
                "mnist_shadow_answers_total", "mnist_shadow_seconds_total")
# The answers users ask for: the service's predict routes, the OIP's inference routes
# (HTTP, by their templates) and its gRPC ModelInfer.
PREDICT_ENDPOINTS = "/predict|/predict_batch|/predict_pixels|/v2/models/.+/infer|grpc:ModelInfer"
# Health probes answer 503 by design while a replica drains: not errors.
PROBE_ENDPOINTS = ("/readyz|/livez|/healthz|/v2/health/.+"
                   "|grpc:ServerLive|grpc:ServerReady|grpc:ModelReady")
# A server's own failures: HTTP 5xx, and the gRPC statuses the service answers its own
# failures with (a client's bad or slow request is INVALID_ARGUMENT, DEADLINE_EXCEEDED...).
SERVER_ERRORS = "5..|INTERNAL|UNKNOWN|UNAVAILABLE|DATA_LOSS"

ANSWERS = f"model_version:mnist_predictions:increase{WINDOW}"
DIGIT_SHARE = f"model_version_digit:mnist_predictions:share{WINDOW}"
REF_DIGIT_SHARE = "model_version_digit:mnist_reference_digit_share:max"
REF_BUCKET_SHARE = "model_version_stat_le:mnist_reference_bucket_share:max"
LOW_SHARE = f"model_version:mnist_low_confidence:share{WINDOW}"
REF_LOW_SHARE = "model_version:mnist_reference_low_confidence_share:max"
ERROR_RATIO = f"job:bentoml_service_request_errors:ratio_rate{WINDOW}"
P99 = f"job_endpoint:bentoml_service_request_duration_seconds:p99_rate{WINDOW}"

# The loop's evidence over EVIDENCE_WINDOW (deploy/promote reads these names).
PAIR = "model_version, challenger_version"
_BY_PAIR, _BY_ROLE = "model_version_challenger_version", "model_version_challenger_version_role"
FEEDBACK_ANSWERS = f"{_BY_ROLE}:mnist_feedback_answers:increase{EVIDENCE_WINDOW}"
FEEDBACK_CORRECT = f"{_BY_ROLE}:mnist_feedback_correct:increase{EVIDENCE_WINDOW}"
FEEDBACK_ACCURACY = f"{_BY_ROLE}:mnist_feedback_accuracy:ratio{EVIDENCE_WINDOW}"
SHADOW_ANSWERS = f"{_BY_PAIR}:mnist_shadow_answers:increase{EVIDENCE_WINDOW}"
SHADOW_AGREEMENT = f"{_BY_PAIR}:mnist_shadow_agreement:ratio{EVIDENCE_WINDOW}"
SHADOW_LATENCY = f"{_BY_PAIR}:mnist_shadow_latency:ratio{EVIDENCE_WINDOW}"


def number(value: float) -> str:
    """A threshold as PromQL reads it (0.0001, not 1e-04)."""
    return f"{value:g}"


def _record(name: str, expr: str, **labels: str) -> dict[str, Any]:
    rule: dict[str, Any] = {"record": name, "expr": expr}
    return {**rule, "labels": labels} if labels else rule


def _le_as_number(expr: str) -> str:
    """`le` without a trailing ".0": prometheus_client writes "1.0", Prometheus 3 reads a
    histogram's "1.0" as "1" but leaves a gauge's label alone; both sides alike match."""
    return f'label_replace({expr}, "le", "$1", "le", "(.+)[.]0")'


def reference_rules() -> list[dict[str, Any]]:
    """The reference, once per model version (every replica exports the same)."""
    has_reference = "on(model_version) (model_version:mnist_reference_available:max == 1)"
    return [
        _record("model_version:mnist_reference_available:max",
                "max by (model_version) (mnist_reference_available)"),
        _record(REF_DIGIT_SHARE, "max by (model_version, digit) "
                f"(mnist_reference_digit_share)\n  and {has_reference}"),
        _record(REF_LOW_SHARE, "max by (model_version) (mnist_reference_low_confidence_share)"
                f"\n  and {has_reference}"),
        _record(REF_BUCKET_SHARE, _le_as_number(
            "max by (model_version, stat, le) (mnist_reference_bucket_share)")
            + f"\n  and {has_reference}"),
    ]


def live_rules() -> list[dict[str, Any]]:
    """What the replicas answered over the window, summed; shares only where answers were."""
    rate = f"model_version:mnist_predictions:rate{WINDOW}"
    digit_rate = f"model_version_digit:mnist_predictions:rate{WINDOW}"
    answered = f"on(model_version) ({rate} > 0)"
    return [
        _record(digit_rate,
                f"sum by (model_version, digit) (rate(mnist_predictions_total[{WINDOW}]))"),
        _record(rate, f"sum by (model_version) ({digit_rate})"),
        _record(ANSWERS, f"sum by (model_version) (increase(mnist_predictions_total[{WINDOW}]))"),
        # A digit never predicted has no series yet: its share is 0, not missing.
        _record(DIGIT_SHARE, f"{digit_rate}\n"
                f"  / ignoring(digit) group_left() ({rate} > 0)\nor\n"
                f"0 * {REF_DIGIT_SHARE} and {answered}"),
        _record(LOW_SHARE, f"(sum by (model_version) (rate(mnist_low_confidence_total[{WINDOW}]))"
                f" or 0 * {rate})\n  / ({rate} > 0)"),
        *(_record(f"model_version_le:{live}_bucket:share{WINDOW}", _le_as_number(
            f"sum by (model_version, le) (rate({live}_bucket[{WINDOW}]))")
            + f"\n  / ignoring(le) group_left() "
              f"(sum by (model_version) (rate({live}_count[{WINDOW}])) > 0)")
          for live, _ in HISTOGRAMS.values()),
    ]


def _psi() -> str:
    live, ref = (f"clamp_min({name}, {number(PSI_FLOOR)})" for name in (DIGIT_SHARE,
                                                                          REF_DIGIT_SHARE))
    return f"sum by (model_version) (\n  ({live} - {ref})\n  * ln({live} / {ref}))"


def _ks(signal: str) -> str:
    live, stat = HISTOGRAMS[signal]
    return (f"max by (model_version) (abs(\n  model_version_le:{live}_bucket:share{WINDOW}\n"
            f'  - on(model_version, le) {REF_BUCKET_SHARE}{{stat="{stat}"}}))')


def drift_rules() -> list[dict[str, Any]]:
    """Per signal: its distance (PSI of the digit mix, KS of each histogram) and score
    (the distance over its threshold: 1 at the threshold)."""
    out = []
    for signal in SIGNALS:
        distance = _psi() if signal == "digit_mix" else _ks(signal)
        out.append(_record("mnist:drift_distance", distance, signal=signal))
        out.append(_record("mnist:drift_score", f'mnist:drift_distance{{signal="{signal}"}}'
                           f" / {number(DRIFT_THRESHOLDS[signal])}", signal=signal))
    return out


def service_rules() -> list[dict[str, Any]]:
    """The share of server errors (health probes aside) and the predict routes' p99."""
    requests = f'bentoml_service_request_total{{endpoint!~"{PROBE_ENDPOINTS}"}}'
    errors = requests[:-1] + f', http_response_code=~"{SERVER_ERRORS}"}}'
    durations = ("bentoml_service_request_duration_seconds_bucket"
                 f'{{endpoint=~"{PREDICT_ENDPOINTS}"}}')
    return [
        # No server error yet has no series: the ratio is 0, not missing.
        _record(ERROR_RATIO, f"(sum by (job) (rate({errors}[{WINDOW}]))\n"
                f"  or 0 * sum by (job) (rate({requests}[{WINDOW}])))\n"
                f"  / (sum by (job) (rate({requests}[{WINDOW}])) > 0)"),
        _record(P99, "histogram_quantile(0.99, sum by (job, endpoint, le) (rate(\n"
                f"  {durations}[{WINDOW}])))"),
    ]


def _increase(metric: str, by: str, matchers: str = "") -> str:
    return f"sum by ({by}) (increase({metric}{matchers}[{EVIDENCE_WINDOW}]))"


def loop_rules() -> list[dict[str, Any]]:
    """The feedback loop's evidence, summed over the replicas: each role's answers on
    feedback and their accuracy; the challenger's agreement with the champion and its
    inference time over the champion's on the same shadow batches."""
    by_role = f"{PAIR}, role"
    shadow_seconds = "mnist_shadow_seconds_total"
    return [
        _record(FEEDBACK_ANSWERS, _increase("mnist_feedback_total", by_role)),
        # Every answer wrong has no `correct="true"` series: 0 correct, not missing.
        _record(FEEDBACK_CORRECT, _increase("mnist_feedback_total", by_role, '{correct="true"}')
                + f"\n  or 0 * {FEEDBACK_ANSWERS}"),
        _record(FEEDBACK_ACCURACY, f"{FEEDBACK_CORRECT}\n  / ({FEEDBACK_ANSWERS} > 0)"),
        _record(SHADOW_ANSWERS, _increase("mnist_shadow_answers_total", PAIR)),
        # Likewise no agreement at all: 0, not missing.
        _record(SHADOW_AGREEMENT, "(" + _increase("mnist_shadow_answers_total", PAIR,
                                                  '{agree="true"}')
                + f"\n  or 0 * {SHADOW_ANSWERS})\n  / ({SHADOW_ANSWERS} > 0)"),
        _record(SHADOW_LATENCY,
                _increase(shadow_seconds, PAIR, '{role="challenger"}') + "\n  / ("
                + _increase(shadow_seconds, PAIR, '{role="champion"}') + " > 0)"),
    ]
