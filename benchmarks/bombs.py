"""Small files that cost a server far more than their size: made here, never committed.

    python -c "from benchmarks.bombs import jpeg_claiming; print(len(jpeg_claiming(9000, 2700)))"

Used by tests/security/ (each finding reproduced) and benchmarks/under_attack.py (figures).
"""

from __future__ import annotations

import io
import struct
import zlib

import numpy as np
from PIL import Image

from core.png import COLOUR_TYPE, SIGNATURE, chunk, encode_png


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


def png_with_text(count: int = 64, inflated_bytes: int = 1 << 20) -> bytes:
    """A 28x28 RGB digit with `count` zTXt chunks, each inflating to `inflated_bytes` of
    text: about 1 KB a chunk on the wire (zeros deflate 1000:1). Pillow inflates each one,
    up to its own 1 MiB-a-chunk and 64 MiB-an-image caps, inside Image.open()."""
    digit = np.zeros((28, 28, 3), np.uint8)
    digit[6:22, 12:16] = 255
    plain = encode_png(digit)
    text = zlib.compress(bytes(inflated_bytes), 9)
    chunks = b"".join(chunk(b"zTXt", b"k%d\x00\x00" % i + text) for i in range(count))
    ihdr_end = len(SIGNATURE) + 25  # the signature, then IHDR: 4 + 4 + 13 + 4 bytes
    return plain[:ihdr_end] + chunks + plain[ihdr_end:]


def _scans(data: bytes) -> list[tuple[int, int]]:
    """(start, end) of each start-of-scan segment of a JPEG, its entropy data included."""
    pos, scans = 2, []
    while data[pos + 1] != 0xD9:  # EOI
        start = pos
        pos += 2 + struct.unpack_from(">H", data, pos + 2)[0]
        if data[start + 1] == 0xDA:  # SOS: entropy data runs to the next real marker
            while data[pos] != 0xFF or data[pos + 1] == 0 or 0xD0 <= data[pos + 1] <= 0xD7:
                pos += 1
            scans.append((start, pos))
    return scans


def jpeg_repeating_scan(side: int = 512, repeats: int = 780_000) -> bytes:
    """A progressive JPEG of side x side grey noise with its smallest scan (one 12-byte AC
    refinement with no data) repeated `repeats` times before the end: libjpeg walks every
    scan over the whole image, so the work grows with the count, not with the pixels."""
    rng = np.random.default_rng(0)
    buf = io.BytesIO()
    # Grey noise in RGB: the colour channels are flat, so their AC scans carry no data.
    Image.fromarray(rng.integers(0, 256, (side, side), dtype=np.uint8)).convert("RGB").save(
        buf, "JPEG", progressive=True, quality=90)
    data = buf.getvalue()
    start, end = min(_scans(data), key=lambda s: s[1] - s[0])
    return data[:-2] + data[start:end] * repeats + data[-2:]


def pixels_rows(rows: int = 2_600_000) -> bytes:
    """A /predict_pixels body of `rows` one-value rows: {"pixels": [[0], [0], ...]}, about
    4 bytes a row, far over the 28 rows of 28 values a valid body has."""
    return b'{"pixels": [' + b", ".join([b"[0]"] * rows) + b"]}"
