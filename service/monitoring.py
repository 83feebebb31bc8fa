"""Label-free quality metrics of the answers served, and the reference they are compared with.

    curl -s http://127.0.0.1:3000/metrics | grep '^mnist_'
    MNIST_MONITORING=0 bentoml serve service.service:MNISTService   # nothing observed

Every answer the model really gave (inference ran: never a rejected request) enters, per
served model version: the predicted digit, the top-1 confidence and the entropy of the
probabilities, low-confidence answers, and the statistics of the model input that
core/profile.py defines (ink, stroke width, scale, shift), bucketed with its edges. The
reference profile the training job stored with the model is exported as gauges beside
them (mode "max": every worker sets the same values), so that Prometheus's recording rules
compute drift with no state shared between workers; docs/monitoring.md lists the series.

Cost: observing one image at a time costs more than serving it (`input_stats` is ~60 µs
for one image, ~9 µs each in a batch of 32, and eight `Histogram.observe` calls take their
share too). So the inference sites only `record` (an append), and the worker observes what
accumulated in one vectorised pass (`flush`): when FLUSH_IMAGES are waiting, or FLUSH_S
after the first of them, on the event loop, adding whole bucket counts to each series at
once. Memory is bounded: at most FLUSH_IMAGES plus one request's batch wait.
"""

from __future__ import annotations

import asyncio
import logging
import math
from dataclasses import dataclass
from functools import cache
from typing import Any, NamedTuple

import numpy as np
import prometheus_client as prom
from prometheus_client.utils import floatToGoString

from core.contract import CONTRACT
from core.profile import (
    CONFIDENCE_EDGES,
    ENTROPY_EDGES,
    INPUT_EDGES,
    LOW_CONFIDENCE,
    STATS,
    Profile,
    bucket_counts,
    confidence_entropy,
    input_stats,
)
from service.engine import softmax

log = logging.getLogger("mnist_service")

FLUSH_IMAGES = 64  # observed together: most of input_stats' per-call cost is amortised
FLUSH_S = 1.0  # at most this stale: far under a Prometheus scrape interval
DIGITS = tuple(str(d) for d in range(CONTRACT.num_classes))
VERSION = "model_version"


class Observed(NamedTuple):
    """One histogram the service observes: its metric, its buckets, and the `stat` label
    of its reference series (the profile's and /monitoring's key is the dict's key)."""

    metric: str
    edges: tuple[float, ...]
    stat: str
    help: str


HISTOGRAMS: dict[str, Observed] = {
    "confidence": Observed("mnist_prediction_confidence", CONFIDENCE_EDGES, "confidence",
                           "Top-1 probability of each answer"),
    "entropy": Observed("mnist_prediction_entropy_bits", ENTROPY_EDGES, "entropy_bits",
                        "Entropy of each answer's probabilities, in bits"),
    **{stat: Observed(f"mnist_input_{stat}", INPUT_EDGES[stat], stat,
                      f"Model input statistic {stat} (core/profile.py)") for stat in STATS},
}


def le_label(edge: float) -> str:
    """A bucket bound as prometheus_client writes a histogram's `le` label ("+Inf" too)."""
    return str(floatToGoString(edge))


@dataclass(frozen=True)
class Series:
    """The process's monitoring series (prometheus_client refuses to make one twice)."""

    predictions: prom.Counter
    low_confidence: prom.Counter
    histograms: dict[str, prom.Histogram]
    available: prom.Gauge
    digit_share: prom.Gauge
    low_confidence_share: prom.Gauge
    bucket_share: prom.Gauge
    mean: prom.Gauge
    std: prom.Gauge


@cache
def series() -> Series:
    """Created on first use, in the worker: once per process."""

    def gauge(name: str, doc: str, *labels: str) -> prom.Gauge:
        return prom.Gauge(name, doc, (VERSION, *labels), multiprocess_mode="max")

    return Series(
        predictions=prom.Counter("mnist_predictions_total", "Answers by predicted digit",
                                 (VERSION, "digit")),
        low_confidence=prom.Counter("mnist_low_confidence_total", "Answers whose top-1 "
                                    f"probability is under {LOW_CONFIDENCE}", (VERSION,)),
        histograms={key: prom.Histogram(h.metric, h.help, (VERSION,),
                                        buckets=(*h.edges, math.inf))
                    for key, h in HISTOGRAMS.items()},
        available=gauge("mnist_reference_available", "1: the served model has a reference "
                        "profile; 0: none (no other reference series)"),
        digit_share=gauge("mnist_reference_digit_share", "Reference share of each "
                          "predicted digit", "digit"),
        low_confidence_share=gauge("mnist_reference_low_confidence_share", "Reference "
                                   "share of low-confidence answers"),
        bucket_share=gauge("mnist_reference_bucket_share", "Reference cumulative share "
                           "at or under each bucket bound", "stat", "le"),
        mean=gauge("mnist_reference_mean", "Reference mean of each statistic", "stat"),
        std=gauge("mnist_reference_std", "Reference standard deviation of each statistic",
                  "stat"),
    )


def _reference_histograms(profile: Profile) -> dict[str, Any]:
    """The profile's histogram of each HISTOGRAMS key."""
    return {"confidence": profile.confidence, "entropy": profile.entropy, **profile.inputs}


# Shares read back from a file, rounded there: their sum is 1 within this.
SHARE_SUM_TOLERANCE = 1e-3


def _is_number(value: Any) -> bool:
    """A finite real number (what a gauge can be set to), not a bool."""
    return isinstance(value, int | float) and not isinstance(value, bool) \
        and math.isfinite(value)


def _check_shares(what: str, shares: Any) -> None:
    """ValueError unless `shares` are numbers in 0..1 that sum to 1."""
    if not all(_is_number(s) and 0 <= s <= 1 for s in shares) \
            or abs(sum(shares) - 1) > SHARE_SUM_TOLERANCE:
        raise ValueError(f"{what}: not shares in 0..1 that sum to 1")


def check_reference(profile: Profile) -> None:
    """ValueError unless the profile describes what this service measures: ten digit
    shares, and every histogram on this code's bucket edges (a profile made with other
    edges cannot be compared bucket by bucket); and unless every number exported is one
    (a damaged file's NaN or string is no reference: a gauge set to it raises)."""
    if len(profile.digit_share) != CONTRACT.num_classes:
        raise ValueError(f"{len(profile.digit_share)} digit shares, expected "
                         f"{CONTRACT.num_classes}")
    _check_shares("digit_share", profile.digit_share)
    if not (_is_number(profile.low_confidence_share) and 0 <= profile.low_confidence_share <= 1):
        raise ValueError("low_confidence_share: not a share in 0..1")
    hists = _reference_histograms(profile)
    for key, observed in HISTOGRAMS.items():
        hist = hists.get(key)
        if hist is None or tuple(hist.edges) != observed.edges \
                or len(hist.shares) != len(observed.edges) + 1:
            raise ValueError(f"histogram {key!r} is missing or not on this service's edges")
        _check_shares(key, hist.shares)
        if not (_is_number(hist.mean) and _is_number(hist.std) and hist.std >= 0):
            raise ValueError(f"histogram {key!r}: its mean and std are not numbers")


def export_reference(version: str, profile: Profile | None) -> None:
    """The reference gauges of the served model: available 0 and nothing else without one."""
    s = series()
    s.available.labels(version).set(0 if profile is None else 1)
    if profile is None:
        return
    for digit, share in zip(DIGITS, profile.digit_share, strict=True):
        s.digit_share.labels(version, digit).set(share)
    s.low_confidence_share.labels(version).set(profile.low_confidence_share)
    hists = _reference_histograms(profile)
    for key, observed in HISTOGRAMS.items():
        hist = hists[key]
        cumulative = np.cumsum(hist.shares)
        for edge, share in zip((*observed.edges, math.inf), cumulative, strict=True):
            s.bucket_share.labels(version, observed.stat, le_label(edge)).set(float(share))
        s.mean.labels(version, observed.stat).set(hist.mean)
        s.std.labels(version, observed.stat).set(hist.std)


def add_counts(child: Any, values: np.ndarray, edges: tuple[float, ...]) -> None:
    """Observe many values in one histogram child at once: each bucket's count added to its
    value (the multiprocess collector stores buckets uncumulated, as `observe` does), and
    their sum. prometheus_client has no bulk observe; these are its child's own values."""
    for value, count in zip(child._buckets, bucket_counts(values, edges).tolist(),
                            strict=True):
        if count:
            value.inc(count)
    child._sum.inc(float(values.sum()))


# Answers recorded: model inputs, their logits, the placement preprocessing measured.
Answers = tuple[np.ndarray, np.ndarray, np.ndarray | None]


class Monitor:
    """One worker's observer of one served model. `record` is called where inference ran,
    on the worker's event loop (every transport's requests reach inference there)."""

    def __init__(self, version: str, reference: Profile | None, enabled: bool) -> None:
        self.version, self.reference, self.enabled = version, reference, enabled
        self._pending: list[Answers] = []
        self._waiting = 0
        self._timer: asyncio.TimerHandle | None = None
        self._failed = False
        if enabled:
            s = series()
            self._digits = [s.predictions.labels(version, d) for d in DIGITS]
            self._low = s.low_confidence.labels(version)
            self._hists = {key: h.labels(version) for key, h in s.histograms.items()}
            export_reference(version, reference)

    def record(self, pixels: np.ndarray, logits: np.ndarray,
               measured: np.ndarray | None = None) -> None:
        """Answers given: model inputs [N, 28, 28], their logits [N, 10], and the scale
        and shift preprocessing measured of the images it resampled ([N, 2], NaN rows for
        the others: service/preprocess.py's measured_model_batch)."""
        if not self.enabled:
            return
        self._pending.append((pixels, logits, measured))
        self._waiting += len(pixels)
        if self._waiting >= FLUSH_IMAGES:
            self.flush()
        elif self._timer is None:
            try:
                self._timer = asyncio.get_running_loop().call_later(FLUSH_S, self.flush)
            except RuntimeError:  # no event loop: called from plain code (a test, a script)
                self.flush()

    def flush(self) -> None:
        """Observe every answer recorded so far. Never raises: monitoring must not turn an
        answer into an error (a failure is logged once and its answers are dropped)."""
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None
        pending, self._pending, self._waiting = self._pending, [], 0
        if not pending:
            return
        try:
            self._observe(*_joined(pending))
        except Exception:
            if not self._failed:
                log.exception("monitoring could not observe %d answers", len(pending))
            self._failed = True

    def _observe(self, batch: np.ndarray, logits: np.ndarray,
                 measured: np.ndarray | None) -> None:
        conf, entropy = confidence_entropy(softmax(logits))
        digits = np.bincount(logits.argmax(axis=1), minlength=len(DIGITS)).tolist()
        for child, count in zip(self._digits, digits, strict=True):
            if count:
                child.inc(count)
        low = int((conf < LOW_CONFIDENCE).sum())
        if low:
            self._low.inc(low)
        stats = input_stats(batch)
        if measured is not None:  # what preprocessing measured, where it did
            for column, name in enumerate(("scale", "shift")):
                stats[name] = np.where(np.isnan(measured[:, column]), stats[name],
                                       measured[:, column])
        for key, values in {"confidence": conf, "entropy": entropy, **stats}.items():
            add_counts(self._hists[key], values, HISTOGRAMS[key].edges)


def _joined(pending: list[Answers]) -> Answers:
    """The recorded answers as one batch, its logits and its measured placement (None
    when preprocessing measured none of them: the common case, at no cost)."""
    if len(pending) == 1:
        return pending[0]
    batch = np.concatenate([x for x, _, _ in pending])
    logits = np.concatenate([y for _, y, _ in pending])
    if all(m is None for _, _, m in pending):
        return batch, logits, None
    measured = [np.full((len(x), 2), np.nan) if m is None else m for x, _, m in pending]
    return batch, logits, np.concatenate(measured)
