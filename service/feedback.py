"""POST /feedback: a user says which digit an image really is; the row goes to a database.

    curl -F image=@digit.png -F digit=7 -F answered=1 http://127.0.0.1:3000/feedback

The upload is decoded exactly as /predict decodes it (the same limits and 4xx), and
only the 28x28 model input is kept (core/feedback.py holds the store). The champion
scores it again, and the challenger when one is in shadow, so that both are judged on
the same rows: `mnist_feedback_total` counts each role's answer against the user's
digit, once the row is committed and never before. A database that is down, slower than
MNIST_FEEDBACK_TIMEOUT_S or refusing the row makes this a 503 with Retry-After
(MNIST_FEEDBACK_RETRY_AFTER_S), counted in `mnist_feedback_store_errors_total`; /predict
never touches the database. The store is opened on the first feedback a worker gets,
and again after a failure, so a database that is down when the service starts stops
neither its start-up nor its answers. docs/feedback.md says what is kept and for how long.
"""

from __future__ import annotations

import asyncio
import logging
import threading
from collections.abc import Awaitable, Callable
from functools import cache
from typing import Any, Protocol

import numpy as np
import prometheus_client as prom
from pydantic import BaseModel, Field
from starlette.requests import Request

from core.feedback import Feedback, FeedbackStore, StoreUnavailable, as_pixels, open_store
from core.profile import NO_CHALLENGER
from service.errors import FeedbackUnavailable
from service.http_input import read_digit, read_form
from service.monitoring import VERSION
from service.settings import Settings
from service.shadow import CHALLENGER_VERSION, Shadow

log = logging.getLogger("mnist_service")

FIELDS = ("digit", "answered")  # the form's text fields, beside the file field `image`
DIGIT = "^[0-9]$"  # as the OpenAPI document describes a digit field


def _without_default(schema: dict[str, Any]) -> None:
    schema.pop("default", None)  # an optional field left out, not an empty digit


class FeedbackForm(BaseModel):
    """multipart/form-data: file field `image` (PNG or JPEG), text fields `digit` and,
    optionally, `answered` (each one digit, 0-9)."""

    image: bytes = Field(description="PNG or JPEG file, as sent to /predict")
    digit: str = Field(pattern=DIGIT, description="the digit the image really is")
    answered: str = Field(default="", pattern=DIGIT, description="the digit the service "
                          "answered this client; leave the field out when unknown",
                          json_schema_extra=_without_default)


class FeedbackAnswer(BaseModel):
    """The stored row: answered once it is committed."""

    id: int = Field(description="the row's id in the feedback database")
    digit: int = Field(description="the digit the image is, as sent")
    answered: int = Field(description="the served model's answer on the stored input now")
    model_version: str = Field(description="the served model's version")


@cache
def series() -> tuple[prom.Counter, prom.Counter]:
    """Created on first use, in the worker: once per process."""
    return (
        prom.Counter("mnist_feedback_total", "Committed feedback rows, by each model's "
                     "answer on the stored input and the user's digit",
                     (VERSION, CHALLENGER_VERSION, "role", "answered", "truth", "correct")),
        prom.Counter("mnist_feedback_store_errors_total", "Feedback writes that failed "
                     "(answered 503)", (VERSION,)),
    )


class Served(Protocol):
    """What the feedback endpoint uses of MNISTService."""

    settings: Settings
    engine: Any  # service.engine.Engine: `logits(batch) -> [N, 10]`
    shadow: Shadow | None  # the challenger, when one is scored in shadow

    @property
    def model_version(self) -> str: ...

    def _decode(self, files: list[bytes]) -> Awaitable[tuple[np.ndarray, Any]]: ...


class LazyStore:
    """The feedback store of one worker: opened on first use, dropped after a failure and
    opened again on the next write. Called on a thread (opening may wait on the network)."""

    def __init__(self, url: str, timeout_s: float,
                 opener: Callable[[str, float], FeedbackStore] = open_store) -> None:
        self.url, self.timeout_s, self._open = url, timeout_s, opener
        self._store: FeedbackStore | None = None
        self._lock = threading.Lock()

    def add(self, row: Feedback) -> int:
        with self._lock:
            if self._store is None:
                try:
                    self._store = self._open(self.url, self.timeout_s)
                except ValueError as exc:  # a URL that names no backend: said each time
                    raise StoreUnavailable(str(exc)) from exc
            store = self._store
        try:
            return store.add(row)
        except StoreUnavailable:
            self.forget(store)
            raise

    def forget(self, store: FeedbackStore) -> None:
        """Drop `store`, which failed (a newer one opened since stays)."""
        with self._lock:
            if store is not self._store:
                return
            self._store = None
        try:
            store.close()
        except Exception:  # noqa: BLE001 - a broken connection may fail to close too
            log.debug("closing the feedback store failed", exc_info=True)


def _answers(logits: np.ndarray) -> int:
    return int(np.asarray(logits)[0].argmax())


def _challenger_answer(shadow: Shadow, batch: np.ndarray) -> dict[str, int]:
    """{"challenger": its answer}, or nothing when it fails: a broken challenger must not
    lose the user's feedback, nor the champion's count."""
    try:
        return {"challenger": _answers(shadow.challenger_logits(batch))}
    except Exception:  # noqa: BLE001 - whatever a second model raises; logged
        log.exception("the challenger could not score a feedback image")
        return {}


class FeedbackEndpoint:
    """The logic of `POST /feedback` for one worker (MNISTService.feedback delegates)."""

    def __init__(self, service: Served) -> None:
        self.service = service
        settings = service.settings
        self.store = LazyStore(settings.feedback_url, settings.feedback_timeout_s)
        self._zero_series()

    def _zero_series(self) -> None:
        """Every series this worker can count, at zero from the start: a series born at 1
        would lose that first row to Prometheus's increase(), and the rare ones (the wrong
        answers) would lose the most, making accuracy look better than it is."""
        shadow = self.service.shadow
        pair = (self.service.model_version, shadow.version if shadow else NO_CHALLENGER)
        for role in ("champion", "challenger") if shadow else ("champion",):
            for answered in range(10):
                for truth in range(10):
                    series()[0].labels(*pair, role, str(answered), str(truth),
                                       str(answered == truth).lower())
        series()[1].labels(self.service.model_version)

    async def answer(self, request: Request) -> FeedbackAnswer:
        settings = self.service.settings
        files, fields = await read_form(request, "image", 1, settings, FIELDS)
        truth = read_digit(fields, "digit")
        claimed = read_digit(fields, "answered") if "answered" in fields else None
        batch, _ = await self.service._decode(files)  # /predict's decoding, its 4xx
        answers = {"champion": _answers(self.service.engine.logits(batch))}
        shadow = self.service.shadow
        if shadow is not None:
            answers.update(_challenger_answer(shadow, batch))
        version = self.service.model_version
        row = Feedback(pixels=as_pixels(batch[0]), truth=truth, answered=claimed,
                       model_version=version)
        row_id = await self._commit(row)
        self._count(row.truth, answers, shadow.version if shadow else NO_CHALLENGER)
        return FeedbackAnswer(id=row_id, digit=row.truth, answered=answers["champion"],
                              model_version=version)

    async def _commit(self, row: Feedback) -> int:
        """The row's id once committed, or FeedbackUnavailable (503) within the timeout."""
        settings = self.service.settings
        try:
            async with asyncio.timeout(settings.feedback_timeout_s):
                return await asyncio.to_thread(self.store.add, row)
        except (StoreUnavailable, TimeoutError) as exc:
            series()[1].labels(self.service.model_version).inc()
            reason = str(exc) or f"no commit within {settings.feedback_timeout_s:g} s"
            log.warning("feedback not stored: %s", reason)
            raise FeedbackUnavailable("the feedback database is unavailable: not "
                                      "acknowledged, retry later",
                                      settings.feedback_retry_after_s) from None

    def _count(self, truth: int, answers: dict[str, int], challenger_version: str) -> None:
        total = series()[0]
        for role, answered in answers.items():
            total.labels(self.service.model_version, challenger_version, role, str(answered),
                         str(truth), str(answered == truth).lower()).inc()
