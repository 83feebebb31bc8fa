"""A PNG writer on zlib alone, so clients and load tests can send real PNGs without Pillow.

    python -c "import numpy as np, core.png as p; print(p.encode_png(np.eye(28, dtype=np.uint8)))"

8-bit grayscale ([H, W]), RGB ([H, W, 3]) or RGBA ([H, W, 4]) arrays; no filtering,
which is what a 28x28 digit needs. Decoders see exactly the array's values.
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
