"""core.png: the zlib-only PNG writer decodes to exactly its input, and its reader agrees."""

from __future__ import annotations

import io

import numpy as np
import pytest
from PIL import Image

from core.png import encode_png


@pytest.mark.parametrize("shape, mode", [((28, 28), "L"), ((5, 7, 3), "RGB"),
                                         ((9, 4, 4), "RGBA")])
def test_png_decodes_to_the_same_pixels(shape, mode):
    a = np.random.default_rng(0).integers(0, 256, shape, dtype=np.uint8)
    img = Image.open(io.BytesIO(encode_png(a)))
    assert img.format == "PNG" and img.mode == mode
    assert np.array_equal(np.asarray(img), a)


@pytest.mark.parametrize("bad", [np.zeros((4, 4), np.float32), np.zeros((4, 4, 2), np.uint8),
                                 np.zeros((0, 4), np.uint8), np.zeros(16, np.uint8)])
def test_png_refuses_what_it_cannot_write(bad):
    with pytest.raises(ValueError, match="expected"):
        encode_png(bad)


def test_plain_gray_pngs_decode_without_pillow_and_others_are_left_to_it():
    from core.png import decode_plain_gray

    a = np.random.default_rng(0).integers(0, 256, (28, 28), dtype=np.uint8)
    assert np.array_equal(decode_plain_gray(encode_png(a), 28, 28), a)
    assert decode_plain_gray(encode_png(a), 27, 28) is None  # another size
    assert decode_plain_gray(encode_png(np.stack([a] * 3, -1)), 28, 28) is None  # RGB
    pillow = io.BytesIO()
    Image.fromarray(a).save(pillow, "PNG")  # filtered rows
    assert decode_plain_gray(pillow.getvalue(), 28, 28) is None
    assert decode_plain_gray(b"not a png", 28, 28) is None
