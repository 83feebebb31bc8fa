"""Image factories: the kinds of uploads real users send, made from real digits."""

from __future__ import annotations

import io

import numpy as np
from PIL import Image


def png(array: np.ndarray, mode: str | None = None) -> bytes:
    buf = io.BytesIO()
    Image.fromarray(array, mode).save(buf, "PNG")
    return buf.getvalue()


def jpeg_on_paper(digit: np.ndarray, size: int = 112, seed: int = 0) -> bytes:
    """Dark ink on textured light paper, RGB, JPEG: a phone photo or scan."""
    rng = np.random.default_rng(seed)
    big = np.asarray(Image.fromarray(digit).resize((size, size), Image.BICUBIC), np.float32)
    img = np.clip(235 + rng.normal(0, 6, big.shape) - 0.85 * big, 0, 255).astype(np.uint8)
    buf = io.BytesIO()
    Image.fromarray(np.stack([img, img, img], -1), "RGB").save(buf, "JPEG", quality=75)
    return buf.getvalue()


def canvas_rgba(digit: np.ndarray, size: int = 280) -> bytes:
    """Black strokes on a transparent background: a browser canvas export."""
    alpha = np.asarray(Image.fromarray(digit).resize((size, size), Image.BILINEAR))
    rgba = np.zeros((size, size, 4), np.uint8)
    rgba[..., 3] = alpha
    return png(rgba, "RGBA")


def off_centre(digit: np.ndarray, seed: int = 0) -> bytes:
    """A small dark digit somewhere on a big white canvas."""
    rng = np.random.default_rng(seed)
    canvas = np.zeros((600, 800), np.uint8)
    side = int(rng.integers(60, 140))
    small = np.asarray(Image.fromarray(digit).resize((side, side), Image.BILINEAR))
    y, x = int(rng.integers(0, 600 - side)), int(rng.integers(0, 800 - side))
    canvas[y:y + side, x:x + side] = small
    return png(255 - canvas)


def inverted(digit: np.ndarray) -> bytes:
    """Black digit on white at MNIST size."""
    return png(255 - digit)


UPLOAD_STYLES = {
    "already_mnist": png,
    "inverted": inverted,
    "jpeg_on_paper": jpeg_on_paper,
    "rgba_transparent": canvas_rgba,
    "large_canvas_off_centre": off_centre,
}


def huge_png(side: int) -> bytes:
    """A real, valid side x side black grayscale PNG, built with zlib (cheap to make)."""
    import struct
    import zlib

    def chunk(tag: bytes, data: bytes) -> bytes:
        return (struct.pack(">I", len(data)) + tag + data
                + struct.pack(">I", zlib.crc32(tag + data) & 0xFFFFFFFF))

    raw = (b"\x00" + bytes(side)) * side
    return (b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", struct.pack(">IIBBBBB", side, side, 8, 0, 0,
                                                              0, 0))
            + chunk(b"IDAT", zlib.compress(raw, 6)) + chunk(b"IEND", b""))
