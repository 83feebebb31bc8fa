"""Small files that cost a server far more than their size: made here, never committed.

    python -c "from benchmarks.bombs import jpeg_claiming; print(len(jpeg_claiming(9000, 2700)))"

Used by tests/security/ (each finding reproduced) and benchmarks/under_attack.py (figures).
"""

from __future__ import annotations

import io
import struct
import zlib

from PIL import Image

from core.png import COLOUR_TYPE, SIGNATURE, chunk


def jpeg_claiming(width: int, height: int) -> bytes:
    """A few hundred bytes of JPEG whose header declares width x height (the scan is tiny)."""
    buf = io.BytesIO()
    Image.new("RGB", (16, 16), (200, 200, 200)).save(buf, "JPEG", quality=50)
    data = bytearray(buf.getvalue())
    sof = data.find(b"\xff\xc0")  # baseline start-of-frame: length, precision, height, width
    struct.pack_into(">HH", data, sof + 5, height, width)
    return bytes(data)


def png_bomb(width: int, height: int, mode: str = "RGBA") -> bytes:
    """A valid PNG of width x height zero pixels: about 1/1000 of its decoded size, written
    a row at a time (core.png.encode_png would need the whole array in memory)."""
    channels = {"L": 1, "RGB": 3, "RGBA": 4}[mode]
    z = zlib.compressobj(9)
    row = bytes(1 + width * channels)  # filter byte 0, then the pixels
    idat = b"".join(z.compress(row) for _ in range(height)) + z.flush()
    header = struct.pack(">IIBBBBB", width, height, 8, COLOUR_TYPE[channels], 0, 0, 0)
    return SIGNATURE + chunk(b"IHDR", header) + chunk(b"IDAT", idat) + chunk(b"IEND", b"")
