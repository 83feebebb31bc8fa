"""HTTP input handling for the endpoints: size limits, multipart files, validated JSON.

    pytest tests/service/test_api.py    # exercised through the ASGI app

Why not BentoML's own parsing: for a file-typed field it downloads any URL a
client sends as text (we must never fetch), a binary part in a non-file field
ends in a 500, it reads bodies with no size limit, and its 4xx bodies are a
JSON list rather than {"error": ...}. The endpoints read the raw request here;
every problem is a named ServiceError (service/errors.py).
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncGenerator, AsyncIterator
from contextlib import asynccontextmanager

import numpy as np
from pydantic import ValidationError
from python_multipart.multipart import parse_options_header
from starlette.datastructures import FormData, UploadFile
from starlette.formparsers import MultiPartException, MultiPartParser
from starlette.requests import ClientDisconnect, Request

from core.contract import CONTRACT
from service.errors import (
    BadRequest,
    BodyTimeout,
    ClientGone,
    TooLarge,
    Unprocessable,
    UnsupportedMedia,
    echo,
)
from service.schemas import PixelsRequest
from service.settings import Settings


def media_type(request: Request) -> str:
    return request.headers.get("content-type", "").split(";")[0].strip().lower()


def _over(limit: int, what: str | None) -> str:
    return what or f"over the {limit}-byte limit"


async def _limited(request: Request, limit: int,
                   what: str | None = None) -> AsyncGenerator[bytes, None]:
    seen = 0
    try:
        async for chunk in request.stream():
            seen += len(chunk)
            if seen > limit:
                raise TooLarge(f"request body {_over(limit, what)}")
            yield chunk
    except ClientDisconnect:
        # Left to BentoML, a hang-up mid-upload is an ERROR traceback and a 500 sample.
        raise ClientGone("the client closed the connection before the body "
                         "was complete") from None


@asynccontextmanager
async def _body_deadline(seconds: float) -> AsyncIterator[None]:
    """The whole body must arrive within `seconds`: a Content-Length larger than what is
    sent, or a body dripped a byte at a time, would otherwise hold the connection until
    the request timeout and end in a 504."""
    try:
        async with asyncio.timeout(seconds):
            yield
    except TimeoutError:
        raise BodyTimeout(f"the request body did not arrive within {seconds:g} s") \
            from None


def _check_encoding(request: Request) -> None:
    """A compressed body is refused by name (415): read as it is, it would fail later with
    a message about its JSON or its multipart structure that misleads."""
    encoding = request.headers.get("content-encoding", "").strip().lower()
    if encoding not in ("", "identity"):
        raise UnsupportedMedia(f"Content-Encoding {echo(encoding)} is not supported: send "
                               "the body uncompressed")


def _check_declared_length(request: Request, limit: int, what: str | None = None) -> None:
    declared = request.headers.get("content-length")
    if declared is not None:
        if not (declared.isascii() and declared.isdigit()):
            raise BadRequest("invalid Content-Length header")
        # Past 18 digits it is over any limit (and int() refuses 4,300 digits).
        length = int(declared) if len(declared) <= 18 else limit + 1
        if length > limit:  # refuse before reading a byte
            shown = declared if len(declared) <= 18 else "over 10^18"
            raise TooLarge(f"request body of {shown} bytes is {_over(limit, what)}")
        if length == 0:
            raise BadRequest("the request body is empty")


# The longest way a client writes one JSON number of ours, separator included: a float32
# as a double's repr ("1.1754943508222875e-38, "). With 64 KiB for the JSON around the
# data, json_limit(n) holds any valid body of n numbers: a larger body is refused before it
# is read, since parsing JSON holds the GIL and stalls the event loop (tests/security).
BYTES_PER_VALUE = 24
JSON_SLACK = 64 * 1024


def json_limit(values: int) -> int:
    """The largest body a valid JSON request of `values` numbers can need, in bytes."""
    return values * BYTES_PER_VALUE + JSON_SLACK


JSON_TYPES = ("application/json", "")  # no content type: curl -d and many clients


async def read_body(request: Request, limits: Settings, *, largest_valid: int, kind: str,
                    media_types: tuple[str, ...] = JSON_TYPES) -> bytes:
    """The whole body of a `kind` request (one of `media_types`), refused unread (413)
    past the body limit or past `largest_valid`, the most bytes any valid one can need
    (json_limit)."""
    if media_type(request) not in media_types:
        expected = " or ".join(t for t in media_types if t)
        raise UnsupportedMedia(f"expected {expected}, got {echo(media_type(request))}")
    limit, what = limits.max_body_bytes, None
    if largest_valid < limit:
        limit, what = largest_valid, f"larger than any valid {kind} ({largest_valid} bytes)"
    _check_encoding(request)
    _check_declared_length(request, limit, what)
    async with _body_deadline(limits.body_timeout_s):
        body = b"".join([c async for c in _limited(request, limit, what)])
    if not body.strip():
        raise BadRequest("the request body is empty")
    return body


async def read_pixels(request: Request, limits: Settings) -> np.ndarray:
    """The JSON body's `pixels` as float32 [1, 28, 28], strictly validated (422 otherwise).
    A body larger than any valid one is refused unread (413)."""
    body = await read_body(request, limits, kind="pixels request",
                           largest_valid=json_limit(CONTRACT.height * CONTRACT.width))
    try:
        req = PixelsRequest.model_validate_json(body)
    except ValidationError as exc:
        first = exc.errors()[0]
        where = ".".join(str(p) for p in first["loc"]) or "body"
        raise Unprocessable(f"{where}: {first['msg']} "
                            f"({exc.error_count()} error(s) in all)") from None
    return np.asarray(req.pixels, dtype=np.float32)[None]


class _FilePartsParser(MultiPartParser):
    """RFC 7578 (4.2) asks a file part for a filename with a SHOULD, not a MUST: a part
    with an image Content-Type and no filename is a file too. Starlette would decode it
    as a text field, losing its bytes; a filename-less text part stays text."""

    def on_headers_finished(self) -> None:
        part = self._current_part
        ctype = dict(part.item_headers).get(b"content-type", b"").lower()
        if part.content_disposition is not None and ctype.startswith(b"image/") \
                and b"filename" not in part.content_disposition:
            part.content_disposition += b'; filename=""'
        super().on_headers_finished()


# Files a form may carry in other fields than ours, before the parser refuses the body: a
# browser form's extra inputs are answered with our own message, not a parser's.
OTHER_FILES = 8
# A body of one file declared this small is read whole, then parsed by _single_file's
# strict one-pass check; anything else (or anything it does not recognise) goes through
# Starlette's streaming parser. The parser holds files in memory up to the body limit
# anyway: reading 64 KiB first holds no more.
SINGLE_FILE_BYTES = 64 * 1024
_HEADERS_END = b"\r\n\r\n"


def _single_file(body: bytes, content_type: str, field: str) -> bytes | None:
    """The file of a body that is exactly one non-empty file part named `field` in the
    plain layout every client writes (no preamble, no epilogue, only Content-Disposition
    and Content-Type headers, a filename); None for anything else, which then gets the
    full parser and its exact errors. What it accepts, that parser reads the same."""
    _, params = parse_options_header(content_type)
    boundary = params.get(b"boundary")
    if not boundary:
        return None
    delimiter = b"--" + boundary
    first, last = delimiter + b"\r\n", b"\r\n" + delimiter + b"--\r\n"
    if not (body.startswith(first) and body.endswith(last)):
        return None
    part = body[len(first):len(body) - len(last)]
    head, found, data = part.partition(_HEADERS_END)
    if not found or not data or b"\r\n" + delimiter in part:
        return None
    names = []
    for line in head.split(b"\r\n"):
        name, colon, value = line.partition(b":")
        if b"\r" in line or b"\n" in line:  # a bare CR or LF: the full parser refuses it
            return None
        names.append(name.lower())
        if names[-1] == b"content-disposition":
            kind, options = parse_options_header(value.strip())
            if kind != b"form-data" or options.get(b"name") != field.encode() \
                    or b"filename" not in options or not colon:
                return None
    if names[0] != b"content-disposition" or not set(names) <= {
            b"content-disposition", b"content-type"} or len(set(names)) != len(names):
        return None
    return data


async def _replay(body: bytes) -> AsyncGenerator[bytes, None]:
    yield body


async def read_files(request: Request, field: str, max_files: int,
                     limits: Settings) -> list[bytes]:
    """The bytes of every file sent in multipart field `field` (at least one, at most max_files)."""
    files, _ = await read_form(request, field, max_files, limits)
    return files


async def read_form(request: Request, field: str, max_files: int, limits: Settings,
                    text_fields: tuple[str, ...] = ()) -> tuple[list[bytes], dict[str, str]]:
    """read_files, and the value of each of `text_fields` the form carries (at most once
    each, text, not a file): the same limits bound the fields as the files."""
    mt = media_type(request)
    if mt != "multipart/form-data":
        raise UnsupportedMedia(f"expected multipart/form-data with a file field {field!r}, "
                               f"got {echo(mt) if mt else 'no content type'}")
    limit = limits.max_body_bytes
    _check_encoding(request)
    _check_declared_length(request, limit)
    stream = _limited(request, limit)
    declared = request.headers.get("content-length", "")
    if max_files == 1 and not text_fields and declared and int(declared) <= SINGLE_FILE_BYTES:
        async with _body_deadline(limits.body_timeout_s):
            body = b"".join([chunk async for chunk in stream])
        file = _single_file(body, request.headers["content-type"], field)
        if file is not None:
            return [file], {}
        stream = _replay(body)
    parser = _FilePartsParser(request.headers, stream,
                             max_files=max_files + OTHER_FILES,
                             max_fields=limits.max_form_fields,
                             max_part_size=limits.max_form_part_bytes)
    # Files stay in memory (the body limit bounds them) instead of spilling over 1 MiB
    # to /tmp: a read-only container's small tmpfs would fill, and an OSError is a 500.
    parser.spool_max_size = limit
    try:
        async with _body_deadline(limits.body_timeout_s):
            form = await parser.parse()
    except MultiPartException as exc:
        raise BadRequest(f"malformed multipart body: {exc.message}") from None
    try:
        texts = {name: _text_field(form, name) for name in text_fields if name in form}
        return await _files(form, field, max_files), texts
    finally:
        await form.close()


def _text_field(form: FormData, name: str) -> str:
    values = form.getlist(name)
    if len(values) > 1:
        raise BadRequest(f"field {name!r} sent {len(values)} times; once at most")
    if not isinstance(values[0], str):
        raise BadRequest(f"field {name!r} must be text, got a file")
    return values[0]


async def _files(form: FormData, field: str, max_files: int) -> list[bytes]:
    values = form.getlist(field)
    if not values:
        raise BadRequest(f"missing file field {field!r}")
    if len(values) > max_files:
        # Too many for a batch is a size limit; two where one is expected is a mistake.
        raise (TooLarge if max_files > 1 else BadRequest)(
            f"{len(values)} files in {field!r}; at most {max_files}")
    files = []
    for i, value in enumerate(values):
        if not isinstance(value, UploadFile):
            # A URL or any other text: we never fetch anything on a client's behalf.
            raise BadRequest(f"field {field!r} must be a file upload, got text "
                             "(URLs are not fetched)")
        data = await value.read()
        if not data:
            raise BadRequest(f"file #{i + 1} in {field!r} is empty")
        files.append(data)
    return files


def read_digit(fields: dict[str, str], name: str) -> int:
    """Form text field `name` as a digit 0-9; a missing or bad one is a 400 that names
    the field."""
    text = fields.get(name)
    if text is None:
        raise BadRequest(f"missing text field {name!r}: a digit 0-9")
    value = text.strip()
    if len(value) != 1 or value not in "0123456789":
        raise BadRequest(f"field {name!r} must be one digit 0-9, got {echo(text)}")
    return int(value)
