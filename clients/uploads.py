"""Upload-style renderings of MNIST digits: what real users send instead of 28x28 tensors.

    python -m clients.accuracy --url http://127.0.0.1:3000    # accuracy per style

Used by the demo, the accuracy CLI and the tests, so that every figure about
"real uploads" is measured on the same renderings. A digit as it is, a 28x28
PNG, is what the load tests send too (core/png.py).
"""

from __future__ import annotations

import io
from collections.abc import Callable

import numpy as np
from PIL import Image

from core.png import encode_png as png


def jpeg_on_paper(digit: np.ndarray, size: int = 112, seed: int = 0) -> bytes:
    """Dark ink on textured light paper, RGB, JPEG: a phone photo or scan."""
    rng = np.random.default_rng(seed)
    resized = Image.fromarray(digit).resize((size, size), Image.Resampling.BICUBIC)
    big = np.asarray(resized, np.float32)
    img = np.clip(235 + rng.normal(0, 6, big.shape) - 0.85 * big, 0, 255).astype(np.uint8)
    buf = io.BytesIO()
    Image.fromarray(np.stack([img, img, img], -1), "RGB").save(buf, "JPEG", quality=75)
    return buf.getvalue()


def canvas_rgba(digit: np.ndarray, size: int = 280) -> bytes:
    """Black strokes on a transparent background: a browser canvas export."""
    alpha = np.asarray(Image.fromarray(digit).resize((size, size), Image.Resampling.BILINEAR))
    rgba = np.zeros((size, size, 4), np.uint8)
    rgba[..., 3] = alpha
    return png(rgba)


def off_centre(digit: np.ndarray, seed: int = 0) -> bytes:
    """A small dark digit somewhere on a big white canvas."""
    rng = np.random.default_rng(seed)
    canvas = np.zeros((600, 800), np.uint8)
    side = int(rng.integers(60, 140))
    small = np.asarray(Image.fromarray(digit).resize((side, side), Image.Resampling.BILINEAR))
    y, x = int(rng.integers(0, 600 - side)), int(rng.integers(0, 800 - side))
    canvas[y:y + side, x:x + side] = small
    return png(255 - canvas)


def inverted(digit: np.ndarray) -> bytes:
    """Black digit on white at MNIST size."""
    return png(255 - digit)


Render = Callable[[np.ndarray], bytes]

UPLOAD_STYLES: dict[str, Render] = {
    "already_mnist": png,
    "inverted": inverted,
    "jpeg_on_paper": jpeg_on_paper,
    "rgba_transparent": canvas_rgba,
    "large_canvas_off_centre": off_centre,
}
