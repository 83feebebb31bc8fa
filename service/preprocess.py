"""Image bytes -> the model's input: pure functions, testable without a server.

    python -c "import service.preprocess as p, service.settings as s; \
        print(p.to_model_input(open('d.png', 'rb').read(), s.Settings()))"

Users send phone photos, scans, browser-canvas exports with transparent
backgrounds and big canvases with a small off-centre digit. Everything is
brought to the MNIST layout the model was trained on: white ink on black, the
digit scaled to fit 20x20 and centred by centre of mass in 28x28.

Every limit comes from the service's Settings, passed in: what a request may cost, and
the one rule of what counts as ink (MNIST_MIN_INK).
"""

from __future__ import annotations

import io
import re
import warnings
from contextlib import nullcontext

import numpy as np
from PIL import Image, ImageOps

from core.contract import CONTRACT
from core.png import SIGNATURE as PNG_SIGNATURE
from core.png import decode_plain_gray
from core.profile import BOX  # MNIST: digits size-normalised to fit a 20x20 box in 28x28
from service.errors import BadRequest, TooLarge, Unprocessable, UnsupportedMedia, about_image
from service.image_structure import Budget, for_decoder
from service.settings import Settings

SIZE = CONTRACT.height
_REDUCIBLE = ("L", "LA", "RGB", "RGBA", "I", "F")

_SIGNATURES = {  # what clients send instead of PNG/JPEG, for a precise 415
    b"GIF87a": "GIF", b"GIF89a": "GIF", b"BM": "BMP", b"II*\x00": "TIFF", b"MM\x00*": "TIFF",
    b"RIFF": "WEBP", b"<svg": "SVG", b"<?xml": "SVG/XML", b"\x00\x00\x01\x00": "ICO",
    b"%PDF": "PDF",
}


def sniff_format(data: bytes) -> str:
    """'PNG' or 'JPEG' from the magic bytes; raise 415/400 for anything else."""
    if data.startswith(PNG_SIGNATURE):
        return "PNG"
    if data.startswith(b"\xff\xd8\xff"):
        return "JPEG"
    head = data[:256].lstrip()
    for magic, name in _SIGNATURES.items():
        if head.startswith(magic) or (name.startswith("SVG") and b"<svg" in head):
            raise UnsupportedMedia(f"unsupported image format {name}: send PNG or JPEG")
    raise BadRequest("the file is not a PNG or JPEG image")


def for_decoders(files: list[bytes], limits: Settings) -> list[bytes]:
    """Each file as its decoder may see it (service/image_structure.py): the chunks and
    segments of them all walked within one budget, before anything is decoded."""
    budget, out = Budget(limits.max_image_chunks, limits.max_jpeg_scans), []
    for i, data in enumerate(files):
        with about_image(i) if len(files) > 1 else nullcontext():
            out.append(for_decoder(data, budget))
    return out


def open_image(data: bytes) -> tuple[Image.Image, str]:
    """(lazily opened image, format): reads the header only, no pixel data."""
    if not data:
        raise BadRequest("the image file is empty")
    fmt = sniff_format(data)
    try:
        with warnings.catch_warnings():
            # Our own limits answer with the real size; PIL's warning adds nothing.
            warnings.simplefilter("ignore", Image.DecompressionBombWarning)
            return Image.open(io.BytesIO(data), formats=[fmt]), fmt
    except Image.DecompressionBombError:  # PIL's own limit, far above ours
        raise TooLarge("image exceeds the pixel limit") from None
    except (OSError, SyntaxError, ValueError) as exc:
        raise BadRequest(f"cannot read {fmt} image: {_reason(exc)}") from None


# What a decoder's message may carry that a client must not see: object reprs with heap
# addresses (`<_io.BytesIO object at 0x7f...>`), bare addresses and file paths.
_INTERNALS = re.compile(r"\s*<[^>]*>|\s*\b0x[0-9a-fA-F]+|\s*(?:/[\w.-]+){2,}")


def _reason(exc: BaseException) -> str:
    return _INTERNALS.sub("", str(exc)).strip(" :") or "damaged data"


Opened = tuple[Image.Image, str]  # a lazily opened image (header read) and its format


def _check_size(img: Image.Image, limits: Settings) -> None:
    w, h = img.size
    if w * h > limits.max_pixels or max(w, h) > limits.max_side:
        raise TooLarge(f"image is {w}x{h}: over the limit of {limits.max_pixels} pixels "
                       f"or {limits.max_side} pixels a side")
    if w < 1 or h < 1:
        raise BadRequest("image has no pixels")


def open_images(files: list[bytes], limits: Settings) -> list[Opened]:
    """Headers only, no pixel data: each image's format and size, checked against the
    limits (413) before anything waits for or spends decoding time; errors name the image.

    One request decodes at most MNIST_MAX_PIXELS in all: a batch of many images, each just
    under the per-image limit, would otherwise be gigapixels of decoding (a CPU-time DoS)."""
    opened = []
    for i, data in enumerate(files):
        with about_image(i) if len(files) > 1 else nullcontext():
            img, fmt = open_image(data)
            _check_size(img, limits)
            opened.append((img, fmt))
    total = declared_pixels(opened)
    if len(files) > 1 and total > limits.max_pixels:
        raise TooLarge(f"the {len(files)} images total {total} pixels: over the "
                       f"{limits.max_pixels}-pixel limit of one request")
    return opened


def declared_pixels(opened: list[Opened]) -> int:
    """What decoding will cost, as the headers declare it (a file's size says nothing)."""
    return sum(img.size[0] * img.size[1] for img, _ in opened)


def _load_reduced(img: Image.Image, fmt: str, work_side: int) -> Image.Image:
    """Decode, at most work_side pixels a side before any conversion: a JPEG at reduced
    scale by the decoder itself (draft), anything else by a box reduction right after.
    A 25-Mpx image at full size would cost half a gigabyte of float work."""
    w, h = img.size
    factor = -(-max(w, h) // work_side)  # ceil
    if fmt == "JPEG" and factor > 1:
        img.draft(img.mode, (max(1, w // factor), max(1, h // factor)))
    img.load()
    factor = -(-max(img.size) // work_side)
    if factor > 1:
        if img.mode not in _REDUCIBLE:
            img = img.convert("RGBA" if "transparency" in img.info else "L")
        img = img.reduce(factor)
    return img


def decode_image(img: Image.Image, fmt: str, work_side: int) -> np.ndarray:
    """An opened, size-checked PNG/JPEG -> grayscale float32 [H, W], 0-255, alpha
    composited on white."""
    try:
        img = ImageOps.exif_transpose(_load_reduced(img, fmt, work_side))
    except (OSError, SyntaxError, ValueError) as exc:  # truncated or corrupt pixel data
        raise BadRequest(f"corrupt or truncated {fmt} image: {_reason(exc)}") from None
    if img.mode in ("RGBA", "LA", "PA") or (img.mode == "P" and "transparency" in img.info):
        # Canvas exports: strokes on a transparent background. Transparent means paper.
        rgba = img.convert("RGBA")
        white = Image.new("RGBA", rgba.size, (255, 255, 255, 255))
        img = Image.alpha_composite(white, rgba)
    gray = img.convert("L") if img.mode != "L" else img
    return np.asarray(gray, dtype=np.float32)


def decode(data: bytes, limits: Settings) -> np.ndarray:
    """Decode PNG/JPEG bytes to grayscale float32 [H, W], 0-255, alpha composited on white."""
    img, fmt = open_images(for_decoders([data], limits), limits)[0]
    return decode_image(img, fmt, limits.work_side)


def ink_on_black(gray: np.ndarray) -> np.ndarray:
    """Invert when the background is light (dark ink on paper), judged from the border."""
    border = np.concatenate([gray[0], gray[-1], gray[:, 0], gray[:, -1]])
    return 255.0 - gray if np.median(border) > 127.5 else gray


def has_ink(peak: float, background: float, min_ink: int) -> bool:
    """Whether an image has ink, the one rule of a blank image on every path and endpoint:
    its brightest ink stands at least min_ink (MNIST_MIN_INK) above the background level
    (the median)."""
    return peak - background >= min_ink


def _is_mnist_layout(x: np.ndarray, min_ink: int) -> bool:
    """Already a centred 28x28 MNIST-style digit: resampling it again would only blur it."""
    if x.shape != (SIZE, SIZE):
        return False
    background = np.median(x)
    if background >= 1.0 or not has_ink(x.max(), background, min_ink):
        return False
    rows, cols = np.nonzero(x > 0)
    fits = np.ptp(rows) < BOX + 2 and np.ptp(cols) < BOX + 2
    cy, cx = _centre_of_mass(x)
    return bool(fits and abs(cy - SIZE / 2) < 2.5 and abs(cx - SIZE / 2) < 2.5)


def _centre_of_mass(x: np.ndarray) -> tuple[float, float]:
    total = x.sum()
    ys, xs = np.indices(x.shape)
    # +0.5: pixel centres, so a symmetric digit in 28x28 sits at exactly 14.0
    return float((ys * x).sum() / total + 0.5), float((xs * x).sum() / total + 0.5)


def over_background(ink: np.ndarray, min_ink: int) -> np.ndarray:
    """Ink relative to the background level (the median); 422 when nothing stands out:
    a blank image gets no confident answer."""
    background = np.median(ink)  # the 50th percentile, at half its cost
    if not has_ink(ink.max(), background, min_ink):
        raise Unprocessable("no digit found: the image has no visible ink")
    return ink - background


def mnist_layout(ink: np.ndarray, min_ink: int) -> np.ndarray:
    """The MNIST recipe on a white-on-black image: crop, fit 20x20, centre of mass at 14,14."""
    return laid_out(ink, min_ink)[0]


# How preprocessing placed a digit it resampled: (scale, shift), core/profile.py's
# statistics as measured before the resampling erased them (see laid_out).
Measured = tuple[float, float]


def laid_out(ink: np.ndarray, min_ink: int) -> tuple[np.ndarray, Measured | None]:
    """mnist_layout's model input, and what it measured when it resampled the digit:
    scale = BOX / the longest side of the ink's crop (the factor it resized by), and
    shift = the distance of the ink's centre of mass from the image centre, times that
    scale (in model-input pixels). core.profile.placement of an input left as it was
    measures the same two things (its ink box against BOX, its centre of mass from the
    centre, in pixels that are model-input pixels already); on a resampled one it would
    always say "scale 1, shift 0", so those are measured here. None when the image was
    left as it was."""
    if _is_mnist_layout(ink, min_ink):
        return ink.astype(np.float32, copy=False), None
    # Paper texture and JPEG noise: drop what is close to the background level,
    # judged relative to the darkest and brightest ink.
    x = over_background(ink, min_ink)
    peak = x.max()
    x = np.where(x >= 0.25 * peak, x, 0.0) * (255.0 / peak)
    rows, cols = np.nonzero(x)
    crop = x[rows.min():rows.max() + 1, cols.min():cols.max() + 1]
    h, w = crop.shape
    scale = BOX / max(h, w)
    nh, nw = max(1, round(h * scale)), max(1, round(w * scale))
    resized = Image.fromarray(crop.astype(np.float32), mode="F").resize(
        (nw, nh), Image.Resampling.BOX if scale < 1 else Image.Resampling.BILINEAR)
    digit = np.clip(np.asarray(resized, dtype=np.float32), 0, 255)
    # Thin strokes shrink into faint ones; MNIST strokes peak at full intensity.
    digit *= 255.0 / max(float(digit.max()), 1.0)
    canvas = np.zeros((SIZE, SIZE), np.float32)
    top, left = (SIZE - nh) // 2, (SIZE - nw) // 2
    canvas[top:top + nh, left:left + nw] = digit
    cy, cx = _centre_of_mass(canvas)
    iy, ix = _centre_of_mass(x)
    shift = float(np.hypot(iy - x.shape[0] / 2, ix - x.shape[1] / 2)) * scale
    return _shift(canvas, round(SIZE / 2 - cy), round(SIZE / 2 - cx)), (scale, shift)


def _shift(x: np.ndarray, dy: int, dx: int) -> np.ndarray:
    out = np.zeros_like(x)
    h, w = x.shape
    ys, yd = (slice(0, h - dy), slice(dy, h)) if dy >= 0 else (slice(-dy, h), slice(0, h + dy))
    xs, xd = (slice(0, w - dx), slice(dx, w)) if dx >= 0 else (slice(-dx, w), slice(0, w + dx))
    out[yd, xd] = x[ys, xs]
    return out


_ROWS = np.arange(SIZE)
_HALF = SIZE * SIZE // 2


def _layout_as_is(a: np.ndarray, min_ink: int) -> bool:
    """What the general path decides for a uint8 [28, 28] grey image (ink_on_black leaves
    it alone and _is_mnist_layout says yes), decided on integers with a few reductions.
    False also means "not sure": the general path then decides."""
    row_sums, col_sums = a.sum(axis=1), a.sum(axis=0)
    if max(row_sums[0], row_sums[-1], col_sums[0], col_sums[-1]) > 127:
        return False  # perhaps a light border: ink_on_black might invert
    # _is_mnist_layout's median < 1: of 784 integers, the 392nd and 393rd smallest are
    # (0, 0), i.e. 393 zeros; or (0, 1), i.e. 392 zeros and a 1 (background 0.5).
    zeros = a.size - np.count_nonzero(a)
    if zeros > _HALF:
        background = 0.0
    elif zeros == _HALF and np.count_nonzero(a == 1):
        background = 0.5
    else:
        return False
    if not has_ink(int(a.max()), background, min_ink):
        return False  # blank: the general path answers 422
    rows, cols = np.flatnonzero(row_sums), np.flatnonzero(col_sums)
    if rows[-1] - rows[0] >= BOX + 2 or cols[-1] - cols[0] >= BOX + 2:
        return False
    total = int(row_sums.sum())
    cy, cx = int(row_sums @ _ROWS) / total + 0.5, int(col_sums @ _ROWS) / total + 0.5
    return abs(cy - SIZE / 2) < 2.5 and abs(cx - SIZE / 2) < 2.5


def fast_model_input(data: bytes, limits: Settings) -> np.ndarray | None:
    """The model input of the commonest upload, a plain 28x28 grey PNG of a digit already
    in the MNIST layout, without Pillow; None for anything else, which takes the general
    path (open_images, to_model_batch). Exactly the general path's output: its pixels
    are the PNG's, every decision is taken on integers (a test compares both paths on
    real digits, on inputs at each decision and on damaged files). Its speed against the
    general path: docs/benchmarks.md."""
    if limits.max_pixels < SIZE * SIZE or limits.max_side < SIZE:
        return None  # limits below one digit: let open_images answer 413
    a = decode_plain_gray(data, SIZE, SIZE)
    return a.astype(np.float32) if a is not None and _layout_as_is(a, limits.min_ink) \
        else None


def fast_model_batch(files: list[bytes], limits: Settings) -> np.ndarray | None:
    """float32 [N, 28, 28] when every file takes the shortcut (fast_model_input); None
    otherwise, and the whole request takes the general path (its limits count all files)."""
    inputs = []
    for data in files:
        one = fast_model_input(data, limits)
        if one is None:
            return None
        inputs.append(one)
    return np.stack(inputs) if len(inputs) > 1 else inputs[0][None]


def prepare(files: list[bytes], limits: Settings) -> np.ndarray | list[Opened]:
    """The cheap part of decoding a request's files, fit for the event loop: their
    structure walked (for_decoders), then the model inputs [N, 28, 28] if every file takes
    the fast path; else the images opened, headers only, and checked against the limits
    (413 here), for to_model_batch to decode (declared_pixels says what that costs)."""
    files = for_decoders(files, limits)
    fast = fast_model_batch(files, limits)
    return fast if fast is not None else open_images(files, limits)


def to_model_batch(opened: list[Opened], limits: Settings) -> np.ndarray:
    """Opened images (open_images) -> float32 [N, 28, 28]; an error names its image."""
    return measured_model_batch(opened, limits)[0]


def measured_model_batch(opened: list[Opened],
                         limits: Settings) -> tuple[np.ndarray, np.ndarray | None]:
    """to_model_batch's inputs, and the (scale, shift) laid_out measured of each image,
    float [N, 2] with NaN rows for images left as they were; None if it measured none."""
    batch = np.empty((len(opened), SIZE, SIZE), np.float32)
    measured = np.full((len(opened), 2), np.nan)
    for i, (img, fmt) in enumerate(opened):
        with about_image(i) if len(opened) > 1 else nullcontext():
            gray = decode_image(img, fmt, limits.work_side)
            batch[i], placed = laid_out(ink_on_black(gray), limits.min_ink)
            if placed is not None:
                measured[i] = placed
    return batch, None if np.isnan(measured).all() else measured


def to_model_input(data: bytes, limits: Settings) -> np.ndarray:
    """PNG/JPEG bytes -> float32 [28, 28] raw 0-255 white-on-black, per the contract."""
    prepared = prepare([data], limits)
    if isinstance(prepared, np.ndarray):
        return prepared[0]
    return to_model_batch(prepared, limits)[0]
