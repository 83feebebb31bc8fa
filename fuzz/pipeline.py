"""One fuzz input through the service's decode path, exactly as a request takes it.

    python -c "from fuzz.pipeline import run_one; print(run_one(b'\\0\\x89PNG\\r\\n\\x1a\\n'))"

An input is a control byte and a payload. The control byte's low two bits choose how the
payload becomes a request: 0, one file in field `image` (/predict); 1, the payload cut
at SEP into files in field `images` (/predict_batch); 2, one file in a part with an image
content type and no filename; 3, the payload *is* the request: a content-type line, a
newline, the multipart body verbatim (bit 4: the batch endpoint). In modes 0-2, bit 4
repairs every PNG chunk's CRC, so that mutated chunks get past the CRC checks to the
parsers. Bit 2: the body arrives in small ASGI messages (size from bits 5-7); bit 3: it
declares its Content-Length.

The request goes through service.http_input.read_files, then the service's own decode
(MNISTService._decode: the PNG fast path, open_images, to_model_batch), with the limits
of service/settings.py (MNIST_* variables apply). A finding is anything but a 4xx
ServiceError or a well-formed model input: another exception, a status of 500 or more, a
message that leaks internals, a malformed or blank batch, or a fast path that disagrees
with the general one. Time and memory are bounded by libFuzzer (fuzz/run.py).
"""

from __future__ import annotations

import asyncio
import logging
import re
import struct
import types
import warnings
import zlib
from dataclasses import dataclass
from typing import Any

import numpy as np
from starlette.requests import Request

from core.contract import CONTRACT
from core.png import SIGNATURE as PNG_SIGNATURE
from service.backpressure import HeavyWork
from service.errors import ServiceError
from service.http_input import read_files
from service.preprocess import fast_model_batch, for_decoders, open_images, to_model_batch
from service.service import SETTINGS, MNISTService

BOUNDARY = b"fuzz-7MA4YWxkTrZu0gW"
SEP = b"\r\n--next-file--\r\n"  # between the files of a batch input (mode 1)
MULTIPART = b"multipart/form-data; boundary=" + BOUNDARY
# 0-255, and float32 rounding: scaling the peak to 255 may land one ulp above it.
TOP = float(np.nextafter(np.float32(255), np.float32(256)))
MAX_MESSAGES = 256  # a chunked body arrives in at most this many ASGI messages
# What a client's error message must never carry: heap addresses, tracebacks, our paths.
LEAK = re.compile(rb"object at 0x[0-9a-fA-F]+|Traceback \(most|File \"/|/site-packages/")
# The bytes an HTTP server lets through in a header value (llhttp, h11): no controls
# but tab.
_HEADER_BYTES = bytes(b for b in range(256) if b == 9 or 32 <= b < 127 or b >= 128)

_DECODE = MNISTService.inner._decode  # type: ignore[attr-defined]
_SERVICE = types.SimpleNamespace(
    settings=SETTINGS, heavy=HeavyWork(SETTINGS.decode_slots, SETTINGS.decode_queue))
_LOOP = asyncio.new_event_loop()
_MULTIPART_LOG = logging.getLogger("python_multipart")  # a warning line a bad body


class Finding(AssertionError):
    """The decode path did something a client's bytes must never make it do."""


@dataclass(frozen=True)
class Upload:
    """What one fuzz input sends: the field and its file limit, the content type and the
    body, and how the body arrives."""

    field: str
    max_files: int
    content_type: bytes
    body: bytes
    chunk: int  # bytes per ASGI message; 0: the whole body in one
    content_length: bool


def multipart(field: str, files: list[bytes], filename: bool = True,
              part_type: bytes = b"image/png") -> bytes:
    """A well-formed multipart/form-data body (boundary BOUNDARY), one part per file."""
    name = b'form-data; name="' + field.encode() + b'"'
    if filename:
        name += b'; filename="digit.png"'
    parts = [b"--" + BOUNDARY + b"\r\nContent-Disposition: " + name + b"\r\nContent-Type: "
             + part_type + b"\r\n\r\n" + data + b"\r\n" for data in files]
    return b"".join(parts) + b"--" + BOUNDARY + b"--\r\n"


def with_png_crcs(data: bytes) -> bytes:
    """A PNG with the CRC of every complete chunk set right; anything else as it is."""
    if not data.startswith(PNG_SIGNATURE):
        return data
    out, pos = bytearray(data), len(PNG_SIGNATURE)
    while pos + 12 <= len(out):
        (length,) = struct.unpack_from(">I", out, pos)
        end = pos + 8 + length
        if end + 4 > len(out):
            break
        struct.pack_into(">I", out, end, zlib.crc32(out[pos + 4:end]))
        pos = end + 4
    return bytes(out)


def _raw(payload: bytes) -> tuple[bytes, bytes]:
    """(content type, body) of a mode-3 payload: its first line, the rest."""
    line, newline, body = payload.partition(b"\n")
    if not newline:
        return MULTIPART, payload
    # A server strips the value's surrounding whitespace and refuses control bytes.
    return line.translate(None, bytes(set(range(256)) - set(_HEADER_BYTES))).strip(), body


def decode_input(data: bytes) -> Upload:
    """The request a fuzz input stands for (see the module docstring)."""
    ctrl, payload = (data[0], data[1:]) if data else (0, b"")
    mode = ctrl & 3
    batch = mode == 1 or (mode == 3 and bool(ctrl & 16))
    field, max_files = ("images", SETTINGS.max_batch) if batch else ("image", 1)
    if mode == 3:
        content_type, body = _raw(payload)
    else:
        files = payload.split(SEP) if mode == 1 else [payload]
        if ctrl & 16:
            files = [with_png_crcs(f) for f in files]
        content_type, body = MULTIPART, multipart(field, files, mode != 2)
    chunk = 1 + 7 * (ctrl >> 5) if ctrl & 4 else 0
    return Upload(field, max_files, content_type, body, chunk, bool(ctrl & 8))


def request_for(up: Upload) -> Request:
    """A Starlette Request whose body comes from an in-memory ASGI receive."""
    headers = [(b"content-type", up.content_type)]
    if up.content_length:
        headers.append((b"content-length", str(len(up.body)).encode()))
    size = max(up.chunk, -(-len(up.body) // MAX_MESSAGES)) if up.chunk else len(up.body)
    size = max(size, 1)
    pieces = [up.body[i:i + size] for i in range(0, len(up.body), size)] or [b""]
    messages: list[dict[str, Any]] = [
        {"type": "http.request", "body": p, "more_body": True} for p in pieces]
    messages[-1]["more_body"] = False
    queue = iter(messages)

    async def receive() -> dict[str, Any]:
        return next(queue, {"type": "http.disconnect"})

    path = "/predict_batch" if up.field == "images" else "/predict"
    scope = {"type": "http", "method": "POST", "path": path, "raw_path": path.encode(),
             "headers": headers, "query_string": b"", "http_version": "1.1",
             "scheme": "http", "server": ("fuzz", 80), "client": ("fuzz", 1),
             "root_path": ""}
    return Request(scope, receive)


def check_batch(batch: np.ndarray, files: list[bytes]) -> None:
    """A model input: float32 [N, 28, 28], finite, 0-255, ink in every image, and the
    same as the general path's whenever the fast path answers."""
    want = (len(files), CONTRACT.height, CONTRACT.width)
    if batch.shape != want or batch.dtype != np.float32:
        raise Finding(f"model input {batch.dtype}{list(batch.shape)}, expected float32{want}")
    if not np.isfinite(batch).all() or batch.min() < 0 or batch.max() > TOP:
        raise Finding(f"model input outside 0-255: {batch.min()} to {batch.max()}")
    blank = [i for i, image in enumerate(batch) if image.max() < 1]
    if blank:
        raise Finding(f"blank model input for image(s) {blank}: answered, not a 422")
    files = for_decoders(files, SETTINGS)  # as preprocess.prepare does
    fast = fast_model_batch(files, SETTINGS)
    if fast is not None:
        try:
            general = to_model_batch(open_images(files, SETTINGS), SETTINGS)
        except ServiceError as exc:
            raise Finding(f"the fast path answered, the general one said {exc}") from exc
        if not np.array_equal(fast, general):
            raise Finding("the fast path's model input differs from the general path's")


def check_measured(measured: np.ndarray | None, n: int) -> None:
    """What preprocessing measured for monitoring: none, or [N, 2] rows of (scale, shift),
    positive and finite where it resampled, NaN where it did not."""
    if measured is None:
        return
    if measured.shape != (n, 2):
        raise Finding(f"measured placement of shape {list(measured.shape)}, expected [{n}, 2]")
    rows = measured[~np.isnan(measured).any(axis=1)]
    if not np.isfinite(rows).all() or (rows[:, 0] <= 0).any() or (rows[:, 1] < 0).any():
        raise Finding(f"measured placement out of range: {rows.tolist()[:4]}")


async def serve(up: Upload) -> np.ndarray:
    """What /predict or /predict_batch does with the request, up to the model input."""
    files = await read_files(request_for(up), up.field, up.max_files, SETTINGS)
    batch, measured = await _DECODE(_SERVICE, files)
    check_batch(batch, files)
    check_measured(measured, len(files))
    return batch


def run_one(data: bytes) -> int:
    """Run one fuzz input: 200 or the 4xx status it was answered with; a Finding (or
    whatever else escapes) otherwise."""
    level = _MULTIPART_LOG.level
    try:
        with warnings.catch_warnings():  # Pillow's about damaged files: not findings
            warnings.simplefilter("ignore")
            _MULTIPART_LOG.setLevel(logging.CRITICAL)
            _LOOP.run_until_complete(serve(decode_input(data)))
    except ServiceError as exc:
        if not 400 <= exc.status < 500:
            raise Finding(f"status {exc.status}: {exc.message}") from exc
        leak = LEAK.search(exc.message.encode("utf-8", "replace"))
        if leak and leak.group() not in data:
            raise Finding(f"the message shows internals: {exc.message!r}") from exc
        return exc.status
    finally:
        _MULTIPART_LOG.setLevel(level)
    return 200
