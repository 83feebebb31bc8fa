"""The service's errors: one base, a named type per answer, each owning its status.

    pytest tests/service/test_errors.py

Everything below the endpoints (HTTP input, preprocessing, the batcher, the decode slots)
raises a ServiceError subclass that says what happened (TooLarge, Unprocessable, Busy,
...), never a bare status number; the class holds the status, and its docstring is what
the OpenAPI document says of it (service/openapi.py, from the errors each route
declares). `renders_errors` (BentoML API methods) and `renders_route_errors` (plain
routes) turn one into its `{"error": ...}` response, both through error_response().
BentoML's own handler would answer a JSON list and log a traceback for a client's
mistake, so it never sees one.
"""

from __future__ import annotations

import functools
import reprlib
from collections.abc import Awaitable, Callable, Iterator
from contextlib import contextmanager
from typing import Any, ClassVar, TypeVar

from starlette.requests import Request
from starlette.responses import JSONResponse, Response

T = TypeVar("T")


class ServiceError(Exception):
    """A request the service answers with `status` and `{"error": message}`.

    A subclass declares its answer on its class line, `class TooLarge(InputError,
    status=413)`, and what the OpenAPI document says of it in its docstring."""

    status: ClassVar[int] = 500
    # A Retry-After header, for a busy server: declared by the class, or (a setting) by
    # the instance.
    retry_after_s: int | None = None

    def __init_subclass__(cls, status: int | None = None, retry_after_s: int | None = None,
                          **kwargs: Any) -> None:
        super().__init_subclass__(**kwargs)
        if status is not None:
            cls.status = status
        if retry_after_s is not None:
            cls.retry_after_s = retry_after_s

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message

    def __str__(self) -> str:  # the message as amended (e.g. by about_image), not as raised
        return self.message

    @property
    def headers(self) -> dict[str, str]:
        return {} if self.retry_after_s is None else {"Retry-After": str(self.retry_after_s)}

    @classmethod
    def description(cls) -> str:
        """What the OpenAPI document says of this error: the docstring's first line."""
        return (cls.__doc__ or cls.__name__).strip().splitlines()[0]


class InputError(ServiceError, status=400):
    """The client's mistake (a 4xx): its subclasses name which."""


class BadRequest(InputError, status=400):
    """Malformed request: not multipart or JSON, a missing or repeated field, not an image."""


class UnknownModel(InputError, status=404):
    """A model or model version this server does not serve (the Open Inference Protocol)."""


class BodyTimeout(InputError, status=408):
    """The body did not arrive within the body timeout."""


class TooLarge(InputError, status=413):
    """Body, image, batch or file structure over a limit (see GET /model `limits`)."""


class UnsupportedMedia(InputError, status=415):
    """A file that is not a PNG or JPEG image, or a body of another media type."""


class Unprocessable(InputError, status=422):
    """Valid syntax but no digit to read: a blank image, or pixels out of range."""


class NoRoute(ServiceError, status=404):
    """No such path (service/safe_responses.py renders Starlette's own 404 as this)."""


class MethodNotAllowed(ServiceError, status=405):
    """The path exists, not for this method."""


class ClientGone(ServiceError, status=499):  # nginx's "client closed request"
    """The client closed the connection before its request was complete (never read)."""


class Unexpected(ServiceError, status=500):
    """A fault of the service's own, logged; the answer tells nothing of its inside."""


class Busy(ServiceError, status=503, retry_after_s=1):
    """Too many large images are being decoded: retry after `Retry-After` seconds."""


class Overloaded(ServiceError, status=503, retry_after_s=1):
    """The inference could not be served within the batching latency budget: retry."""


class FeedbackUnavailable(ServiceError, status=503):
    """The feedback database is down, slow or refused the row: retry after `Retry-After`
    seconds (nothing was acknowledged)."""

    def __init__(self, message: str, retry_after_s: int) -> None:
        super().__init__(message)
        self.retry_after_s = retry_after_s  # MNIST_FEEDBACK_RETRY_AFTER_S


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


def error_response(exc: ServiceError) -> JSONResponse:
    return JSONResponse({"error": exc.message}, status_code=exc.status, headers=exc.headers)


def renders_errors(
    endpoint: Callable[..., Awaitable[T]],
) -> Callable[..., Awaitable[T | JSONResponse]]:
    """Decorate an async BentoML endpoint taking `ctx`: a ServiceError becomes its response."""

    @functools.wraps(endpoint)  # BentoML reads the signature through __wrapped__
    async def wrapper(self: Any, *args: Any, ctx: Any, **kwargs: Any) -> T | JSONResponse:
        try:
            return await endpoint(self, *args, ctx=ctx, **kwargs)
        except ServiceError as exc:
            # BentoML copies ctx's status onto whatever the API returns: set both.
            ctx.response.status_code = exc.status
            ctx.response.headers.update(exc.headers)
            return error_response(exc)

    return wrapper


def renders_route_errors(
    route: Callable[[Request], Awaitable[Response]],
) -> Callable[[Request], Awaitable[Response]]:
    """The same for a plain Starlette route (service/routes.py): a ServiceError becomes its
    response."""

    @functools.wraps(route)
    async def wrapper(request: Request) -> Response:
        try:
            return await route(request)
        except ServiceError as exc:
            return error_response(exc)

    return wrapper


@contextmanager
def about_image(index: int) -> Iterator[None]:
    """Name the image of a batch that an error is about: `images[3]: ...`."""
    try:
        yield
    except ServiceError as exc:
        exc.message = f"images[{index}]: {exc.message}"
        raise
