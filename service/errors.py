"""Client errors: one exception type with an HTTP status, one place that renders it.

    pytest tests/service/test_errors.py

Everything below the endpoints (HTTP input, preprocessing) raises InputError; the
`renders_input_errors` decorator (BentoML API methods) and `renders_route_errors` (plain
routes) turn it into the 4xx `{"error": ...}` response, both through error_response().
BentoML's own handler would answer a JSON list and log a traceback for a client's
mistake, so it never sees an InputError.
"""

from __future__ import annotations

import functools
import reprlib
from collections.abc import Awaitable, Callable, Iterator
from contextlib import contextmanager
from typing import Any, TypeVar

from starlette.requests import Request
from starlette.responses import JSONResponse, Response

T = TypeVar("T")


class InputError(ValueError):
    """A client error: `status` is the HTTP status to answer with, `message` the reason."""

    def __init__(self, status: int, message: str, headers: dict[str, str] | None = None) -> None:
        super().__init__(message)
        self.status = status
        self.message = message
        self.headers = headers or {}

    def __str__(self) -> str:  # the message as amended (e.g. by about_image), not as raised
        return self.message


# What an error message shows of a client's value: enough to recognise it, never the
# megabyte a client sent (an error must not cost more than the request that caused it).
ECHO_CHARS = 64
_ECHO = reprlib.Repr()
_ECHO.maxstring = _ECHO.maxother = _ECHO.maxlong = ECHO_CHARS
_ECHO.maxlist = _ECHO.maxdict = 8
_ECHO.maxlevel = 3


def echo(value: object) -> str:
    """A client's value as an error message shows it: its repr, cut to ECHO_CHARS."""
    text = _ECHO.repr(value)
    return text if len(text) <= ECHO_CHARS else text[:ECHO_CHARS - 3] + "..."


def busy(retry_after_s: int = 1) -> InputError:
    """503: this worker has as much heavy work as it takes; the request was not started."""
    return InputError(503, "the server is busy decoding large images: retry shortly",
                      {"Retry-After": str(retry_after_s)})


def error_response(exc: InputError) -> JSONResponse:
    return JSONResponse({"error": exc.message}, status_code=exc.status, headers=exc.headers)


def renders_input_errors(
    endpoint: Callable[..., Awaitable[T]],
) -> Callable[..., Awaitable[T | JSONResponse]]:
    """Decorate an async BentoML endpoint taking `ctx`: an InputError becomes its response."""

    @functools.wraps(endpoint)  # BentoML reads the signature through __wrapped__
    async def wrapper(self: Any, *args: Any, ctx: Any, **kwargs: Any) -> T | JSONResponse:
        try:
            return await endpoint(self, *args, ctx=ctx, **kwargs)
        except InputError as exc:
            # BentoML copies ctx's status onto whatever the API returns: set both.
            ctx.response.status_code = exc.status
            ctx.response.headers.update(exc.headers)
            return error_response(exc)

    return wrapper


def renders_route_errors(
    route: Callable[[Request], Awaitable[Response]],
) -> Callable[[Request], Awaitable[Response]]:
    """The same for a plain Starlette route (service/routes.py): an InputError becomes its
    response."""

    @functools.wraps(route)
    async def wrapper(request: Request) -> Response:
        try:
            return await route(request)
        except InputError as exc:
            return error_response(exc)

    return wrapper


@contextmanager
def about_image(index: int) -> Iterator[None]:
    """Name the image of a batch that an InputError is about: `images[3]: ...`."""
    try:
        yield
    except InputError as exc:
        exc.message = f"images[{index}]: {exc.message}"
        raise
