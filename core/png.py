"""PNG on zlib alone: a writer, so clients and load tests can send real PNGs without
Pillow, and a reader for the one plain case the service sees most.

    python -c "import numpy as np, core.png as p; print(p.encode_png(np.eye(28, dtype=np.uint8)))"

encode_png: 8-bit grayscale ([H, W]), RGB ([H, W, 3]) or RGBA ([H, W, 4]) arrays; no
filtering, which is what a 28x28 digit needs. Decoders see exactly the array's values.
decode_plain_gray: the inverse for grayscale; anything else is None, for Pillow.
"""

from __future__ import annotations

import struct
import zlib

import numpy as np

COLOUR_TYPE = {1: 0, 3: 2, 4: 6}  # channels -> PNG colour type (gray, RGB, RGBA)
SIGNATURE = b"\x89PNG\r\n\x1a\n"


def chunk(tag: bytes, data: bytes) -> bytes:
    return (struct.pack(">I", len(data)) + tag + data
            + struct.pack(">I", zlib.crc32(tag + data) & 0xFFFFFFFF))


def encode_png(array: np.ndarray, level: int = 6) -> bytes:
    """The PNG file of a uint8 image array."""
    a = np.asarray(array)
    if a.dtype != np.uint8:
        raise ValueError(f"expected uint8 pixels, got {a.dtype}")
    channels = 1 if a.ndim == 2 else (a.shape[2] if a.ndim == 3 else 0)
    if channels not in COLOUR_TYPE or min(a.shape[:2], default=0) < 1:
        raise ValueError(f"expected [H, W] or [H, W, 3|4] pixels, got shape {a.shape}")
    h, w = a.shape[:2]
    rows = np.ascontiguousarray(a).reshape(h, w * channels)
    # Each scanline starts with its filter type: 0, none.
    raw = np.hstack([np.zeros((h, 1), np.uint8), rows]).tobytes()
    header = struct.pack(">IIBBBBB", w, h, 8, COLOUR_TYPE[channels], 0, 0, 0)
    return (SIGNATURE + chunk(b"IHDR", header)
            + chunk(b"IDAT", zlib.compress(raw, level)) + chunk(b"IEND", b""))


_PLAIN_GRAY = (8, 0, 0, 0, 0)  # bit depth 8, grayscale, deflate, adaptive filtering, no interlace


def decode_plain_gray(data: bytes, width: int, height: int) -> np.ndarray | None:
    """The uint8 [height, width] pixels of a PNG that is exactly IHDR, IDAT..., IEND, 8-bit
    grayscale, not interlaced, every row unfiltered (as encode_png writes), with every CRC
    right and a complete zlib stream of exactly the right length; None for anything else.

    A fast path, not a decoder: it answers only where Pillow would give the same pixels
    (it is stricter than Pillow everywhere) and leaves everything else, errors included,
    to Pillow."""
    if not data.startswith(SIGNATURE):
        return None
    pos, end, idat, header = len(SIGNATURE), len(data), [], None
    while pos + 12 <= end:
        length, tag = struct.unpack_from(">I4s", data, pos)
        body_end = pos + 8 + length
        if body_end + 4 > end:
            return None
        body = data[pos + 8:body_end]
        (crc,) = struct.unpack_from(">I", data, body_end)
        if zlib.crc32(body, zlib.crc32(tag)) != crc:
            return None
        if header is None:  # IHDR must come first, once
            if tag != b"IHDR" or length != 13:
                return None
            header = struct.unpack(">IIBBBBB", body)
        elif tag == b"IDAT":  # consecutive: no other chunk gets this far
            idat.append(body)
        elif tag == b"IEND":
            break
        else:
            return None  # any other chunk (tRNS, eXIf, text...): Pillow's business
        pos = body_end + 4
    else:
        return None  # no IEND
    if header != (width, height, *_PLAIN_GRAY) or not idat:
        return None
    expected = height * (width + 1)
    inflate = zlib.decompressobj()
    try:
        raw = inflate.decompress(b"".join(idat), expected + 1)
    except zlib.error:
        return None
    if len(raw) != expected or not inflate.eof or inflate.unused_data:
        return None
    rows = np.frombuffer(raw, np.uint8).reshape(height, width + 1)
    if rows[:, 0].any():
        return None  # a filtered row: Pillow undoes filters
    return rows[:, 1:]
