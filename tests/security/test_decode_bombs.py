"""Tiny files that declare huge images.

Findings 1 and 2 of the first security round: docs/journal/security.md.

    pytest tests/security/test_decode_bombs.py

A 630-byte JPEG whose header claims 9000x2700, and a 97 KB RGBA PNG that inflates to
4999x5000, both under every limit. The cost of decoding must follow what the file
*declares*: decided from the header before decoding (inline or on a thread), done at
reduced scale, and bounded in memory. Memory is measured in a fresh process.
"""

from __future__ import annotations

import json
import subprocess
import sys

import numpy as np
import pytest

from benchmarks.bombs import jpeg_claiming, png_bomb
from clients.uploads import png
from service.preprocess import declared_pixels, decode, open_images
from service.settings import Settings
from tests.helpers import ROOT

LIMITS = Settings()  # the service's defaults: 25 Mpx, 10,000 a side

PEAK_RSS = r"""
import json, resource, sys
from benchmarks.bombs import jpeg_claiming, png_bomb
from service.errors import InputError
from service.preprocess import to_model_input
from service.settings import Settings
data = png_bomb(4999, 5000) if sys.argv[1] == "png" else jpeg_claiming(9000, 2700)
before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
try:
    to_model_input(data, Settings())
    status = 200
except InputError as exc:
    status = exc.status
grown = (resource.getrusage(resource.RUSAGE_SELF).ru_maxrss - before) / 1024
print(json.dumps({"status": status, "peak_growth_mb": grown, "size": len(data)}))
"""


def _peak(kind: str) -> dict:
    proc = subprocess.run([sys.executable, "-c", PEAK_RSS, kind], cwd=ROOT, capture_output=True,
                          text=True, timeout=120, check=True)
    return json.loads(proc.stdout.strip().splitlines()[-1])


def test_the_bombs_are_small_and_within_the_pixel_limit():
    jpeg, bomb = jpeg_claiming(9000, 2700), png_bomb(4999, 5000)
    assert len(jpeg) < 1000 and len(bomb) < 100_000
    assert declared_pixels(open_images([jpeg], LIMITS)) == 9000 * 2700
    assert declared_pixels(open_images([bomb], LIMITS)) == 4999 * 5000


def test_a_jpeg_is_decoded_at_reduced_scale():
    gray = decode(jpeg_claiming(9000, 2700), LIMITS)
    assert max(gray.shape) <= LIMITS.work_side


def test_a_huge_png_is_reduced_before_any_float_work():
    gray = decode(png_bomb(4999, 5000), LIMITS)
    assert max(gray.shape) <= LIMITS.work_side and gray.dtype == np.float32


def test_small_images_are_not_resampled():
    digit = np.zeros((600, 800), np.uint8)
    digit[100:300, 200:260] = 255
    assert np.array_equal(decode(png(digit), LIMITS), digit.astype(np.float32))


@pytest.mark.parametrize("kind, limit_mb", [("png", 160), ("jpeg", 60)])
def test_peak_memory_of_one_bomb_is_bounded(kind, limit_mb):
    """Before the fix: +454 MB for the PNG and +304 MB for the JPEG, in one request."""
    result = _peak(kind)
    assert result["status"] in (400, 422)  # blank or truncated: a client error either way
    assert result["peak_growth_mb"] <= limit_mb, result


def test_an_oversized_image_is_refused_from_its_header_before_any_decode_slot():
    from service.errors import InputError

    with pytest.raises(InputError, match="12000x12000") as info:
        open_images([png_bomb(12000, 12000, "L")], LIMITS)
    assert info.value.status == 413
