"""Shifted streams: real test digits changed the way real clients change them, for the
drift proof (`make monitoring-e2e`).

    python -m load_tests.shifts            # each stream: what it sends, how many requests
    python -m load_tests.shifts --write    # their table in docs/monitoring.md

A production service meets inputs its model was never trained for, and keeps answering
200. Each stream here stands for one such client; every request in it is one the service
answers 200 (a rejected request never enters the drift statistics). Pure functions of the
digits given (and a seed): tests/load_tests/test_shifts.py measures, with core.profile on
each stream's own model inputs, the drift signals it moves (SIGNAL, MOVES).
"""

from __future__ import annotations

import io
import json
import sys
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from PIL import Image

from core.contract import CONTRACT, MODEL_NAME
from core.png import encode_png
from load_tests.payloads import multipart

STREAMS = ("class_mix", "inverted", "thin_strokes", "rotated_photos")
# The drift signal (core.profile.SIGNALS) each stream is built to move: the `signal` label
# the drift alert must fire with. MOVES: every signal the unit test measures past its
# threshold on the stream (the first is SIGNAL); the others may fire beside it.
SIGNAL = {"class_mix": "digit_mix", "inverted": "ink", "thin_strokes": "stroke_width",
          "rotated_photos": "confidence"}
MOVES = {"class_mix": ("digit_mix", "ink"),
         "inverted": ("ink", "digit_mix", "stroke_width", "scale", "shift"),
         "thin_strokes": ("stroke_width", "ink", "scale"),
         "rotated_photos": ("confidence", "entropy", "scale", "shift")}
# Who sends each stream in production, and where to (the docs' table: `--write`).
CLIENT = {"class_mix": "a form field of years: only ones and sevens, as PNG uploads",
          "inverted": "a client sending its raw tensor the way paper looks, black on white",
          "thin_strokes": "the draw page with a 1-pixel brush",
          "rotated_photos": "phone photos: the digit turned 30 to 60 degrees on grey grainy "
                            "paper, JPEG"}
ROUTE = {"class_mix": "/predict", "inverted": f"/v2/models/{MODEL_NAME}/infer",
         "thin_strokes": "/predict", "rotated_photos": "/predict"}
DOCS, BLOCK = Path(__file__).resolve().parents[1] / "docs/monitoring.md", "shift-streams"
FORM_DIGITS = (1, 7)  # a form field of years: mostly ones and sevens
INK_LEVEL = 128  # a thin stroke is drawn where the digit's ink is at least half intensity
# A phone photo: the digit enlarged, turned by 30 to 60 degrees either way, on grey paper
# with sensor grain, in a larger frame, as a JPEG.
PHOTO_ZOOM, PHOTO_SIDE, PHOTO_QUALITY = 3, 128, 80
PHOTO_TURN = (30.0, 60.0)
PHOTO_PAPER = (150, 200)  # paper grey levels
PHOTO_INK = 40  # the ink's grey level
PHOTO_GRAIN = 6.0  # standard deviation of the grain, in grey levels


@dataclass(frozen=True)
class Request:
    """One HTTP POST of a stream."""

    path: str
    body: bytes
    content_type: str


def class_mix(images: np.ndarray, labels: np.ndarray,
              digits: tuple[int, ...] = FORM_DIGITS) -> np.ndarray:
    """The digits whose label is one of `digits`, as they are."""
    return images[np.isin(labels, digits)]


def inverted(images: np.ndarray) -> np.ndarray:
    """Black ink on white: a client that sends its raw tensor the way paper looks."""
    return (CONTRACT.pixel_max - images.astype(np.int32)).astype(np.uint8)


def _neighbours(ink: np.ndarray) -> list[np.ndarray]:
    """The 8 neighbours of every pixel, clockwise from the one above (P2..P9 of
    Zhang and Suen), on a batch padded by one pixel."""
    h, w = ink.shape[1] - 2, ink.shape[2] - 2
    steps = ((-1, 0), (-1, 1), (0, 1), (1, 1), (1, 0), (1, -1), (0, -1), (-1, -1))
    return [ink[:, 1 + dy:1 + dy + h, 1 + dx:1 + dx + w] for dy, dx in steps]


def _thinning_pass(ink: np.ndarray, first: bool) -> bool:
    """One sub-iteration of Zhang-Suen thinning, in place; whether it removed a pixel."""
    p2, p3, p4, p5, p6, p7, p8, p9 = ring = _neighbours(ink)
    count = sum(neighbour.astype(np.int8) for neighbour in ring)
    # Exactly one 0 -> 1 step around the ring: the pixel is on the border of one stroke.
    steps = sum((~a & b).astype(np.int8) for a, b in zip(ring, ring[1:] + ring[:1], strict=True))
    keep_shape = (~(p2 & p4 & p6) & ~(p4 & p6 & p8)) if first \
        else (~(p2 & p4 & p8) & ~(p2 & p6 & p8))
    centre = ink[:, 1:-1, 1:-1]
    remove = centre & (count >= 2) & (count <= 6) & (steps == 1) & keep_shape
    centre &= ~remove
    return bool(remove.any())


def thin_strokes(images: np.ndarray) -> np.ndarray:
    """Each digit redrawn with a 1-pixel pen: its strokes thinned to their skeleton
    (Zhang-Suen), at full intensity, as the draw page's thinnest brush leaves them."""
    ink = np.pad(images >= INK_LEVEL, ((0, 0), (1, 1), (1, 1)))
    while _thinning_pass(ink, first=True) | _thinning_pass(ink, first=False):
        pass
    return np.where(ink[:, 1:-1, 1:-1], CONTRACT.pixel_max, 0).astype(np.uint8)


def photo(digit: np.ndarray, rng: np.random.Generator) -> bytes:
    """A phone photo of one digit: enlarged, turned, dark ink on grey grainy paper off
    the frame's centre, a JPEG."""
    size = digit.shape[0] * PHOTO_ZOOM
    big = Image.fromarray(digit).resize((size, size), Image.Resampling.BICUBIC)
    turn = rng.uniform(*PHOTO_TURN) * rng.choice((-1.0, 1.0))
    turned = np.asarray(big.rotate(turn, Image.Resampling.BILINEAR, expand=True), np.float32)
    frame = np.zeros((PHOTO_SIDE, PHOTO_SIDE), np.float32)
    top, left = (rng.integers(0, PHOTO_SIDE - side + 1) for side in turned.shape)
    frame[top:top + turned.shape[0], left:left + turned.shape[1]] = turned / CONTRACT.pixel_max
    paper = rng.uniform(*PHOTO_PAPER)
    grey = paper - (paper - PHOTO_INK) * frame
    rgb = grey[..., None] + rng.normal(0.0, PHOTO_GRAIN, (PHOTO_SIDE, PHOTO_SIDE, 3))
    buf = io.BytesIO()
    Image.fromarray(np.clip(rgb, 0, 255).astype(np.uint8), "RGB").save(
        buf, "JPEG", quality=PHOTO_QUALITY)
    return buf.getvalue()


def rotated_photos(images: np.ndarray, seed: int = 0) -> list[bytes]:
    """One photo (JPEG bytes) of each digit."""
    rng = np.random.default_rng(seed)
    return [photo(digit, rng) for digit in images]


def upload(image: bytes, content_type: str = "image/png") -> Request:
    """A file posted to /predict, as the draw page and the upload clients send it."""
    filename = "digit." + content_type.rpartition("/")[2]
    return Request(ROUTE["class_mix"], *multipart("image", [image], filename, content_type))


def tensor(pixels: np.ndarray) -> Request:
    """One raw tensor posted to the Open Inference Protocol's REST route, UINT8."""
    body = {"inputs": [{"name": CONTRACT.input_name, "datatype": "UINT8",
                        "shape": [1, *pixels.shape], "data": pixels.ravel().tolist()}]}
    return Request(ROUTE["inverted"], json.dumps(body).encode(), "application/json")


def requests(stream: str, images: np.ndarray, labels: np.ndarray,
             seed: int = 0) -> list[Request]:
    """The requests of a stream, made from real test digits (uint8 [N, 28, 28]) and labels.
    /predict_pixels answers 422 to an inverted tensor (its background is the brightest
    level: no ink stands out), so that stream takes the tensor API, which infers anything."""
    builders: dict[str, Callable[[], list[Request]]] = {
        "class_mix": lambda: [upload(encode_png(digit))
                              for digit in class_mix(images, labels)],
        "inverted": lambda: [tensor(digit) for digit in inverted(images)],
        "thin_strokes": lambda: [upload(encode_png(digit)) for digit in thin_strokes(images)],
        "rotated_photos": lambda: [upload(jpeg, "image/jpeg")
                                   for jpeg in rotated_photos(images, seed)],
    }
    return builders[stream]()


def table() -> str:
    """The streams as a markdown table (docs/monitoring.md's generated block)."""
    rows = ["| stream | who sends it | to | MnistDrift must fire with | moves too |",
            "|---|---|---|---|---|"]
    rows += [f"| `{stream}` | {CLIENT[stream]} | `{ROUTE[stream]}` | `{SIGNAL[stream]}` | "
             f"{', '.join(f'`{moved}`' for moved in MOVES[stream][1:]) or 'nothing else'} |"
             for stream in STREAMS]
    return "\n".join(rows)


def main() -> None:
    from core.data import resolve
    from core.docblocks import write_block

    if sys.argv[1:] == ["--write"]:
        write_block(DOCS, BLOCK, table())
        return
    digits = resolve(None)
    images, labels = digits.test_images[:500], digits.test_labels[:500]
    for stream in STREAMS:
        sent = requests(stream, images, labels)
        size = sum(len(request.body) for request in sent) / len(sent)
        print(f"{stream:15} {len(sent):4} requests to {sent[0].path}, {size:.0f} bytes each; "
              f"moves {', '.join(MOVES[stream])}")


if __name__ == "__main__":
    main()
