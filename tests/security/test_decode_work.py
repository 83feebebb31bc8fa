"""The work a file makes the decoder do is bounded before the decoder starts.

    pytest tests/security/test_decode_work.py

What the second round of attacks found (the figures: docs/journal/security.md):
- a 68 KB PNG (a 28x28 digit and 64 zTXt chunks) made Pillow inflate 64 MiB of text
  inside Image.open(), on the event loop, and keep it in `img.info`;
- a 10 MB JPEG declaring 512x512 (so decoded on the event loop) repeated one 12-byte
  scan 780,000 times: libjpeg passes over the image once a scan, 17 s of one worker;
- found on the way: Pillow walks a PNG's chunks and a JPEG's header segments (and any
  junk between them) one at a time in Python inside Image.open(): 400,000 empty chunks,
  500,000 comments or 2 MB of junk cost 0.1-1.5 s a request.
Memory is measured in a fresh process.
"""

from __future__ import annotations

import io
import json
import subprocess
import sys

import numpy as np
import pytest
from PIL import Image

from benchmarks.bombs import jpeg_repeating_scan, png_with_text
from clients.uploads import png
from core.png import SIGNATURE, chunk, encode_png
from service.errors import InputError
from service.preprocess import to_model_input
from service.settings import Settings
from tests.helpers import ROOT

LIMITS = Settings()

PEAK_RSS = r"""
import json, resource
from benchmarks.bombs import png_with_text
from service.preprocess import to_model_input
from service.settings import Settings
data = png_with_text(64, 1 << 20)
before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
x = to_model_input(data, Settings())
grown = (resource.getrusage(resource.RUSAGE_SELF).ru_maxrss - before) / 1024
print(json.dumps({"peak_growth_mb": grown, "size": len(data), "ink": float(x.max())}))
"""


def _status(data: bytes) -> int:
    try:
        to_model_input(data, LIMITS)
    except InputError as exc:
        return exc.status
    return 200


def _rgb_digit() -> bytes:
    digit = np.zeros((28, 28, 3), np.uint8)
    digit[6:22, 12:16] = 255
    return encode_png(digit)


def _after_ihdr(data: bytes, extra: bytes) -> bytes:
    at = len(SIGNATURE) + 25
    return data[:at] + extra + data[at:]


def test_png_text_is_never_inflated():
    """Before: +64 MB of peak memory for one 68 KB file; the digit is still read."""
    proc = subprocess.run([sys.executable, "-c", PEAK_RSS], cwd=ROOT, capture_output=True,
                          text=True, timeout=120, check=True)
    result = json.loads(proc.stdout.strip().splitlines()[-1])
    assert result["size"] < 70_000 and result["ink"] == 255
    assert result["peak_growth_mb"] < 16, result


def test_a_png_with_text_is_answered_like_the_same_png_without():
    assert np.array_equal(to_model_input(png_with_text(8, 1000), LIMITS),
                          to_model_input(_rgb_digit(), LIMITS))


def test_the_pixels_of_a_png_do_not_change_when_ancillary_chunks_are_dropped():
    """tRNS decides pixels and stays: a palette image whose index 0 is transparent."""
    img = Image.new("P", (40, 40), 0)
    img.putpalette([255, 255, 255, 0, 0, 0] + [0] * 762)  # 0: transparent, 1: black ink
    img.paste(1, (15, 5, 25, 35))
    buf = io.BytesIO()
    img.save(buf, "PNG", transparency=0)
    with_text = _after_ihdr(buf.getvalue(), chunk(b"tEXt", b"Comment\x00hello") +
                            chunk(b"iCCP", b"icc\x00\x00" + bytes(40)))
    assert np.array_equal(to_model_input(with_text, LIMITS),
                          to_model_input(buf.getvalue(), LIMITS))


@pytest.mark.parametrize("repeats, status", [(0, 200), (80, 200), (780_000, 413)])
def test_jpeg_scans_are_counted_before_decoding(repeats, status):
    """Before: 780,000 scans were decoded (17 s on one worker) and then got a 422."""
    data = jpeg_repeating_scan(512, repeats)
    got = _status(data)
    assert got == status or (status == 200 and got == 422)  # noise may have no digit


@pytest.mark.parametrize("name, data", [
    ("400,000 empty PNG chunks", _after_ihdr(_rgb_digit(), chunk(b"prIv", b"") * 400_000)),
    ("200,000 empty IDAT chunks", _after_ihdr(png(np.eye(28, dtype=np.uint8) * 255),
                                              chunk(b"IDAT", b"") * 200_000)),
    ("500,000 JPEG comments", (lambda j: j[:2] + b"\xff\xfe\x00\x02" * 500_000 + j[2:])(
        jpeg_repeating_scan(64, 0))),
    ("2 MB of junk between JPEG segments", (lambda j: j[:20] + bytes(2_000_000) + j[20:])(
        jpeg_repeating_scan(64, 0))),
])
def test_the_structure_walk_is_bounded(name, data):
    """Before: Pillow walked each in Python inside Image.open() (0.1-1.5 s of the loop)."""
    assert _status(data) == 413, name


def test_the_budget_is_shared_by_the_images_of_one_request():
    from service.preprocess import for_decoders

    files = [_after_ihdr(_rgb_digit(), chunk(b"prIv", b"") * 100)] * 100
    for_decoders(files, Settings(max_image_chunks=100 * 110))
    with pytest.raises(InputError, match="one request") as info:
        for_decoders(files, Settings(max_image_chunks=100 * 90))
    assert info.value.status == 413
