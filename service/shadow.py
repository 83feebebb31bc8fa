"""The challenger in shadow: a second model version scores a share of the answered images
off the response path, and its agreement with the champion is counted.

    MNIST_CHALLENGER_TAG=mnist_mlp:<version> bentoml serve service.service:MNISTService
    curl -s http://127.0.0.1:3000/metrics | grep '^mnist_shadow_'

The champion is the model `MNIST_MODEL_TAG` serves, the challenger `MNIST_CHALLENGER_TAG`,
loaded in every worker beside it and never answering a client. Where inference ran, the
service `offer`s the batch and the champion's logits: a counter keeps MNIST_SHADOW_SHARE
of the images (systematic sampling: no RNG call per request), copies them into a queue
bounded at MNIST_SHADOW_QUEUE images (full: the rest are dropped and counted), and
returns. One scoring thread per worker takes the queue in batches of up to SHADOW_BATCH
images, runs the challenger and the champion on the same batch, timed, and counts each
image's pair of digits (docs/shadow.md lists the series).

Why a thread and not a task on the event loop: onnxruntime releases the GIL while it runs,
so the thread's inference never holds up a request being parsed or answered on the
loop; on the loop, every request arriving during a shadow batch would wait for it (the
batch's run time, both models: `python -m benchmarks.shadow_overhead` prints it). The
thread's CPU still counts on a machine with fewer cores than work, which is why the
images are sampled and scored in batches (one onnxruntime call per model per batch), and
why `make bench` measures /predict with and without a challenger side by side.
"""

from __future__ import annotations

import logging
import threading
import time
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass
from functools import cache
from typing import Any, Protocol

import numpy as np
import prometheus_client as prom

from service.monitoring import DIGITS, VERSION
from service.settings import Settings

log = logging.getLogger("mnist_service")

SHADOW_BATCH = 64  # images per scoring call: most of onnxruntime's per-call cost amortised
SHADOW_WAIT_S = 0.05  # a batch not yet full waits this long for more before it is scored
STOP_WAIT_S = 5.0  # on shutdown, the batch being scored gets this long to finish
CHALLENGER_VERSION = "challenger_version"
ROLES = ("champion", "challenger")


class Scorer(Protocol):
    """What the shadow runs: service/engine.py's Engine, or a stand-in in tests."""

    def logits(self, batch: np.ndarray) -> np.ndarray: ...


@dataclass(frozen=True)
class ShadowSeries:
    """The process's shadow series (prometheus_client refuses to make one twice)."""

    answers: prom.Counter
    seconds: prom.Counter
    images: prom.Counter
    dropped: prom.Counter


@cache
def shadow_series() -> ShadowSeries:
    """Created with the first Shadow, in the worker: a service without a challenger has no
    shadow series at all."""
    pair = (VERSION, CHALLENGER_VERSION)
    return ShadowSeries(
        answers=prom.Counter("mnist_shadow_answers_total", "Images scored in shadow, by "
                             "each model's digit", (*pair, "champion", "challenger", "agree")),
        seconds=prom.Counter("mnist_shadow_seconds_total", "Inference seconds of each model "
                             "on the same shadow batches", (*pair, "role")),
        images=prom.Counter("mnist_shadow_images_total", "Images scored in shadow", pair),
        dropped=prom.Counter("mnist_shadow_dropped_total", "Sampled images dropped: the "
                             "shadow queue was full", pair),
    )


@cache
def _model_info() -> prom.Gauge:
    return prom.Gauge("mnist_model_info", "1 for each model version a worker holds, by role "
                      "(champion: answers clients; challenger: scored in shadow)",
                      ("role", "version"), multiprocess_mode="max")


def export_model_info(role: str, version: str) -> None:
    """mnist_model_info{role, version} 1: which version holds which role, for Prometheus."""
    _model_info().labels(role, version).set(1)


class Sampler:
    """Systematic sampling: `share` of the images offered, whatever the batch sizes, with
    no random draw (a running credit; a quarter takes every fourth image of one-image
    requests)."""

    def __init__(self, share: float) -> None:
        self.share = share
        self._credit = 0.0

    def rows(self, n: int) -> np.ndarray | None:
        """The rows of a batch of n to keep, or None (the common case, at no cost)."""
        self._credit += n * self.share
        take = min(int(self._credit), n)
        if take <= 0:
            return None
        self._credit -= take
        return np.arange(n) if take == n else (np.arange(take) * n) // take


class Shadow:
    """One worker's challenger in shadow of its champion. `offer` is called where the
    champion answered; `start` and `stop` run the scoring thread with the worker."""

    def __init__(self, champion: Scorer, challenger: Scorer, champion_version: str,
                 tag: str, share: float, queue_images: int) -> None:
        """`tag`: the challenger's complete store tag, name:version."""
        self.champion, self.challenger = champion, challenger
        self.champion_version, self.tag = champion_version, tag
        self.version = tag.rsplit(":", 1)[-1]
        self.share, self.queue_images = share, queue_images
        self._sampler = Sampler(share)
        self._queue: deque[tuple[np.ndarray, np.ndarray]] = deque()
        self._queued = 0
        self._ready = threading.Condition()
        self._thread: threading.Thread | None = None
        self._stopping = False
        self._failed = False
        self._batches = 0
        s, pair = shadow_series(), (champion_version, self.version)
        self._answers = [[s.answers.labels(*pair, a, b, str(a == b).lower()) for b in DIGITS]
                         for a in DIGITS]
        self._seconds = {role: s.seconds.labels(*pair, role) for role in ROLES}
        self._images, self._dropped = s.images.labels(*pair), s.dropped.labels(*pair)
        export_model_info("challenger", self.version)

    def challenger_logits(self, batch: np.ndarray) -> np.ndarray:
        """float32 [N, 28, 28] -> the challenger's logits [N, 10], now (feedback's call)."""
        return self.challenger.logits(batch)

    def offer(self, batch: np.ndarray, champion_logits: np.ndarray) -> None:
        """Images the champion answered, and its logits: a share is queued for the
        challenger. O(1) in the queue's length, never blocks on scoring, never raises."""
        try:
            rows = self._sampler.rows(len(batch))
            if rows is not None:
                self._enqueue(batch[rows], champion_logits[rows].argmax(axis=1))
        except Exception:
            self._log_once("shadow could not queue %d images", len(batch))

    def _enqueue(self, images: np.ndarray, answered: np.ndarray) -> None:
        with self._ready:
            room = self.queue_images - self._queued
            kept = min(room, len(images))
            if kept > 0:
                self._queue.append((images[:kept], answered[:kept]))
                self._queued += kept
                self._ready.notify()
        if kept < len(images):
            self._dropped.inc(len(images) - kept)

    def start(self) -> None:
        """The worker's scoring thread (a daemon: it never holds a process that exits)."""
        if self._thread is None:
            self._stopping = False
            self._thread = threading.Thread(target=self._run, name="shadow", daemon=True)
            self._thread.start()

    def stop(self) -> None:
        """The batch being scored finishes (within STOP_WAIT_S); the queued ones are
        dropped: a worker that stops scores nothing it cannot finish."""
        with self._ready:
            self._stopping = True
            self._queue.clear()
            self._queued = 0
            self._ready.notify_all()
        if self._thread is not None:
            self._thread.join(STOP_WAIT_S)
            self._thread = None

    def _run(self) -> None:
        while (taken := self._take()) is not None:
            self.score(*taken)

    def _take(self) -> tuple[np.ndarray, np.ndarray] | None:
        """The next batch: up to SHADOW_BATCH images, waiting SHADOW_WAIT_S for a fuller
        one; None once stopping."""
        with self._ready:
            self._ready.wait_for(lambda: self._queued or self._stopping)
            if self._queued < SHADOW_BATCH and not self._stopping:
                self._ready.wait_for(lambda: self._queued >= SHADOW_BATCH or self._stopping,
                                     SHADOW_WAIT_S)
            if self._stopping:
                return None
            return self._pop(SHADOW_BATCH)

    def _pop(self, limit: int) -> tuple[np.ndarray, np.ndarray]:
        """Up to `limit` queued images (whole offers, the last one split), as one batch."""
        images, answered, count = [], [], 0
        while self._queue and count < limit:
            x, y = self._queue.popleft()
            if count + len(x) > limit:
                cut = limit - count
                self._queue.appendleft((x[cut:], y[cut:]))
                x, y = x[:cut], y[:cut]
            images.append(x)
            answered.append(y)
            count += len(x)
        self._queued -= count
        return np.concatenate(images), np.concatenate(answered)

    def score_queued(self) -> None:
        """Score everything queued now, on the caller's thread (what the scoring thread
        does; for code that runs no thread, and tests)."""
        while True:
            with self._ready:
                if not self._queued:
                    return
                taken = self._pop(SHADOW_BATCH)
            self.score(*taken)

    def score(self, images: np.ndarray, answered: np.ndarray) -> None:
        """One batch: both models timed on it, each image's pair of digits counted (the
        champion's is the answer the client got). Never raises: a failing challenger is
        logged once and its batch is not counted."""
        try:
            seconds, digits = {}, {}
            for role, model in self._in_turn():
                start = time.perf_counter()
                digits[role] = np.asarray(model.logits(images)).argmax(axis=1)
                seconds[role] = time.perf_counter() - start
            self._count(answered, digits["challenger"], seconds)
        except Exception:
            self._log_once("shadow could not score %d images", len(images))

    def _in_turn(self) -> list[tuple[str, Scorer]]:
        """Both models, the first one alternating batch by batch: whichever runs second
        finds the batch in the caches, so neither is always favoured in the timing."""
        self._batches += 1
        pairs = [("champion", self.champion), ("challenger", self.challenger)]
        return pairs if self._batches % 2 else pairs[::-1]

    def _count(self, champion: np.ndarray, challenger: np.ndarray,
               seconds: dict[str, float]) -> None:
        pairs = np.bincount(champion * len(DIGITS) + challenger, minlength=len(DIGITS) ** 2)
        for index in np.flatnonzero(pairs).tolist():
            self._answers[index // len(DIGITS)][index % len(DIGITS)].inc(int(pairs[index]))
        for role, spent in seconds.items():
            self._seconds[role].inc(spent)
        self._images.inc(len(champion))

    def _log_once(self, message: str, *args: Any) -> None:
        if not self._failed:
            log.exception(message, *args)
        self._failed = True


def open_shadow(champion: Scorer, champion_version: str, settings: Settings,
                load: Callable[[str], tuple[str, Scorer]]) -> Shadow | None:
    """The worker's Shadow, or None without a challenger (`settings.challenger_tag`
    empty). `load(tag)` gives the challenger's complete tag and its engine."""
    if not settings.challenger_tag:
        return None
    tag, challenger = load(settings.challenger_tag)
    return Shadow(champion, challenger, champion_version, tag, settings.shadow_share,
                  settings.shadow_queue)
