"""core.png: the zlib-only PNG writer decodes to exactly its input."""

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
