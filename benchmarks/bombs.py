"""Small files that cost a server far more than their size: made here, never committed.

    python -c "from benchmarks.bombs import jpeg_claiming; print(len(jpeg_claiming(9000, 2700)))"

Used by tests/security/ (each finding reproduced) and benchmarks/under_attack.py (figures).
"""

from __future__ import annotations

import io
import struct
import zlib

from PIL import Image


def jpeg_claiming(width: int, height: int) -> bytes:
    """A few hundred bytes of JPEG whose header declares width x height (the scan is tiny)."""
    buf = io.BytesIO()
    Image.new("RGB", (16, 16), (200, 200, 200)).save(buf, "JPEG", quality=50)
    data = bytearray(buf.getvalue())
    sof = data.find(b"\xff\xc0")  # baseline start-of-frame: length, precision, height, width
    struct.pack_into(">HH", data, sof + 5, height, width)
    return bytes(data)


def png_bomb(width: int, height: int, mode: str = "RGBA") -> bytes:
    """A valid PNG of width x height zero pixels: about 1/1000 of its decoded size."""
    channels, colour = {"L": (1, 0), "RGB": (3, 2), "RGBA": (4, 6)}[mode]

    def chunk(tag: bytes, payload: bytes) -> bytes:
        return (struct.pack(">I", len(payload)) + tag + payload
                + struct.pack(">I", zlib.crc32(tag + payload) & 0xFFFFFFFF))

    z = zlib.compressobj(9)
    row = bytes(1 + width * channels)  # filter byte 0, then the pixels
    idat = b"".join(z.compress(row) for _ in range(height)) + z.flush()
    header = struct.pack(">IIBBBBB", width, height, 8, colour, 0, 0, 0)
    return (b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", header) + chunk(b"IDAT", idat)
            + chunk(b"IEND", b""))
