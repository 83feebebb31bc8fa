"""service/monitoring_report.py: GET /monitoring's live picture and drift, from the series."""

from __future__ import annotations

import json

import numpy as np
import prometheus_client as prom
import pytest

from core import profile as profiles
from service.monitoring import Monitor
from service.monitoring_report import is_answering, is_rejected, report


def _batch(n: int, seed: int, ink: float = 200.0) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    x = np.zeros((n, 28, 28), np.float32)
    x[:, 8:20, 12:16] = ink
    logits = rng.normal(0, 1, (n, 10)).astype(np.float32)
    logits[np.arange(n), np.arange(n) % 10] += 6.0
    return x, logits


def _reference() -> profiles.Profile:
    x, logits = _batch(1000, 0)
    e = np.exp(logits - logits.max(1, keepdims=True))
    return profiles.build("unit", x, e / e.sum(1, keepdims=True))


def _served(version: str, reference, batches) -> dict:
    monitor = Monitor(version, reference, enabled=True)
    for x, logits in batches:
        monitor.record(x, logits)
    return report(monitor, prom.REGISTRY)


def test_no_reference_says_so_and_scores_nothing():
    body = _served("rep-none", None, [_batch(300, 1)])
    assert body["reference"] is None and body["live"]["answers"] == 300
    assert body["drift"] == {"status": "no reference", "min_answers": profiles.MIN_ANSWERS,
                             "signals": {}}


def test_too_few_answers_say_nothing():
    body = _served("rep-few", _reference(), [_batch(profiles.MIN_ANSWERS - 1, 1)])
    assert body["drift"]["status"] == "too few answers" and body["drift"]["signals"] == {}


def test_answers_like_the_reference_are_ok_and_a_shift_is_drift():
    calm = _served("rep-ok", _reference(), [_batch(400, 1)])
    assert calm["drift"]["status"] == "ok"
    assert set(calm["drift"]["signals"]) == set(profiles.SIGNALS)
    assert all(s["score"] < 1 for s in calm["drift"]["signals"].values())
    heavy = _served("rep-drift", _reference(), [_batch(400, 1, ink=255.0)])
    ink = heavy["drift"]["signals"]["ink"]
    assert heavy["drift"]["status"] == "drift" and ink["score"] > 1
    assert ink["score"] == pytest.approx(ink["distance"] / profiles.DRIFT_THRESHOLDS["ink"])


def test_the_answer_is_strict_json_with_the_profiles_unknown_accuracy_as_null():
    body = _served("rep-json", _reference(), [])  # no labels: accuracy NaN
    assert body["reference"]["accuracy"] is None
    assert body["live"]["digit_share"] == [0.0] * 10
    json.dumps(body, allow_nan=False)


def test_rejected_is_the_clients_mistake_on_an_answering_endpoint():
    assert is_answering("/predict_pixels") and is_answering("/v2/models/{model}/infer")
    assert is_answering("grpc:ModelInfer")
    assert not is_answering("/preprocess") and not is_answering("<unmatched>")
    assert is_rejected("413") and is_rejected("INVALID_ARGUMENT")
    assert not is_rejected("499") and not is_rejected("503") and not is_rejected("OK")
