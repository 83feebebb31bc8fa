"""The hot path: single-image answers served before BentoML's router.

    curl -F image=@digit.png http://127.0.0.1:3000/predict     # answered here

BentoML's per-API machinery (its router's scan of every route and mount, the request
context, the input and output descriptors and their serde, the background tasks) cost a
large share of an answer of one 28x28 image (the breakdown before and after:
docs/journal/performance.md). So POST /predict and /predict_pixels are answered by this
middleware, the innermost of the service's, by the same service methods the BentoML API
methods call: the API stays declared there (the OpenAPI document, the bento, the
clients), and every middleware outside this one (BentoML's timeout, the metrics, the
security headers, the drain) sees these answers as it sees every other.
"""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable, Mapping

from pydantic import BaseModel
from starlette.requests import Request
from starlette.responses import Response
from starlette.types import ASGIApp, Receive, Scope, Send

from service.errors import ServiceError, Unexpected, error_response
from service.served import Served, served

log = logging.getLogger(__name__)

Answer = Callable[[Served, Request], Awaitable[BaseModel]]


async def _respond(answer: Answer, request: Request) -> Response:
    """The answer as BentoML renders a pydantic model (the same bytes), or the error's."""
    try:
        model = await answer(served(), request)
    except ServiceError as exc:
        return error_response(exc)
    except Exception:  # as BentoML does: logged, and a 500 that tells nothing inside
        log.exception("POST %s failed", request.url.path)
        return error_response(Unexpected("an unexpected error happened: see the server log"))
    return Response(model.model_dump_json(), media_type="application/json")


class HotPath:
    """POST to a path of `answers` is answered here, with the headers BentoML's API adds
    (`headers`); everything else goes on inward."""

    def __init__(self, app: ASGIApp, answers: Mapping[str, Answer],
                 headers: Mapping[str, str]) -> None:
        self.app = app
        self.answers = dict(answers)
        self.headers = dict(headers)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        answer = self.answers.get(scope["path"]) if scope["type"] == "http" else None
        if answer is None or scope["method"] != "POST":
            await self.app(scope, receive, send)
            return
        response = await _respond(answer, Request(scope, receive))
        response.headers.update(self.headers)
        await response(scope, receive, send)
