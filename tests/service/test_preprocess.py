from __future__ import annotations

import io

import numpy as np
import pytest
from PIL import Image

from benchmarks.bombs import png_bomb
from clients.uploads import UPLOAD_STYLES, png
from core.profile import placement
from service.errors import InputError
from service.preprocess import decode, ink_on_black, laid_out, mnist_layout, to_model_input
from service.settings import Settings

LIMITS = Settings()  # the service's defaults


def _limits(max_pixels: int, max_side: int) -> Settings:
    return Settings(max_pixels=max_pixels, max_side=max_side)


def _com(x):
    ys, xs = np.indices(x.shape)
    return (ys * x).sum() / x.sum() + 0.5, (xs * x).sum() / x.sum() + 0.5


def test_mnist_digit_comes_out_unchanged(test_digits):
    x, _ = test_digits
    for digit in x[:200]:
        assert np.array_equal(to_model_input(png(digit), LIMITS), digit.astype(np.float32))


def _general_path(data: bytes) -> np.ndarray:
    """What to_model_input gave before its 28x28 fast path: decode, invert, lay out."""
    return mnist_layout(ink_on_black(decode(data, _limits(10**7, 10**4))), LIMITS.min_ink)


def _near_misses(digit: np.ndarray) -> list[np.ndarray]:
    """The digit and the 28x28 greys that sit at each decision of the fast path."""
    off_centre = np.roll(digit, (3, -3), (0, 1))
    background_one = digit.copy()
    background_one[digit == 0] = np.where(np.arange((digit == 0).sum()) % 2, 1, 0)
    faint = (digit // 9).astype(np.uint8)  # under MNIST_MIN_INK
    bordered = digit.copy()
    bordered[0, :] = 200  # a light border: ink_on_black may invert
    return [digit, off_centre, background_one, faint, bordered, 255 - digit,
            np.roll(digit, 2, 0), np.roll(digit, -2, 1)]


def _same_as_general_path(data: bytes) -> None:
    try:
        expected = _general_path(data)
    except InputError as exc:
        with pytest.raises(InputError) as got:
            to_model_input(data, LIMITS)
        assert (got.value.status, got.value.message) == (exc.status, exc.message)
        return
    assert np.array_equal(to_model_input(data, LIMITS), expected)


def test_fast_path_for_28x28_greys_is_exactly_the_general_path(test_digits):
    """to_model_input takes a shortcut for plain 28x28 grey PNGs already in the MNIST
    layout (service/preprocess.py fast_model_input): same floats out, same errors, on
    real digits and on inputs at each of its decisions."""
    from service.preprocess import fast_model_input

    digits = test_digits[0][:150]
    taken = sum(fast_model_input(png(d), LIMITS) is not None for d in digits)
    assert taken >= 0.95 * len(digits)  # the shortcut is really the common case
    for digit in digits:
        for image in _near_misses(digit):
            _same_as_general_path(png(image))


def test_fast_path_gives_damaged_and_unusual_pngs_to_pillow(test_digits):
    """Byte flips, truncations, extra chunks, filtered rows (Pillow's own PNGs), other
    sizes and modes: the shortcut answers only what Pillow would answer the same."""
    from service.preprocess import fast_model_input

    digit = test_digits[0][0]
    good = png(digit)
    rng = np.random.default_rng(0)
    damaged = [good[:n] for n in (8, 20, 33, len(good) // 2, len(good) - 12, len(good) - 1)]
    for _ in range(300):
        flipped = bytearray(good)
        flipped[rng.integers(8, len(good))] ^= 1 << int(rng.integers(8))
        damaged.append(bytes(flipped))
    pillow = io.BytesIO()
    Image.fromarray(digit).save(pillow, "PNG")  # Pillow filters rows: not plain
    text = io.BytesIO()
    Image.fromarray(digit).save(text, "PNG", pnginfo=_text_chunk())
    unusual = [pillow.getvalue(), text.getvalue(), png(np.pad(digit, 1)), png(
        np.stack([digit] * 3, -1)), good + b"trailing bytes after IEND"]
    for data in damaged + unusual:
        _same_as_general_path(data)
    assert fast_model_input(pillow.getvalue(), LIMITS) is None
    assert fast_model_input(text.getvalue(), LIMITS) is None
    # limits stay open_images' call
    assert fast_model_input(good, Settings(max_pixels=100)) is None


def _text_chunk():
    from PIL.PngImagePlugin import PngInfo

    info = PngInfo()
    info.add_text("Comment", "a digit")
    return info


@pytest.mark.parametrize("style", sorted(UPLOAD_STYLES))
def test_upload_styles_land_in_mnist_layout(style, test_digits):
    out = to_model_input(UPLOAD_STYLES[style](test_digits[0][3]), LIMITS)
    assert out.shape == (28, 28) and out.dtype == np.float32
    assert out.min() >= 0 and out.max() == pytest.approx(255, abs=1)
    rows, cols = np.nonzero(out > 0)
    assert np.ptp(rows) < 22 and np.ptp(cols) < 22  # fits the 20x20 box (+ antialiasing)
    cy, cx = _com(out)
    assert abs(cy - 14) <= 1.0 and abs(cx - 14) <= 1.0
    assert np.median(out) == 0  # white ink on black


def _similarity(a, b):
    """Best correlation over shifts of up to 2 px: same digit, same scale, centring aside."""
    return max(np.corrcoef(np.roll(a, (dy, dx), (0, 1)).ravel(), b.ravel())[0, 1]
               for dy in range(-2, 3) for dx in range(-2, 3))


@pytest.mark.parametrize("style", sorted(UPLOAD_STYLES))
def test_upload_styles_look_like_the_original_digit(style, test_digits):
    x, _ = test_digits
    sims = [_similarity(to_model_input(UPLOAD_STYLES[style](x[i]), LIMITS),
                        x[i].astype(np.float32))
            for i in range(20)]
    assert min(sims) > 0.8 and np.mean(sims) > 0.95, (style, sims)


def test_dark_ink_on_light_paper_is_inverted():
    gray = np.full((50, 50), 240.0)
    gray[20:30, 20:30] = 10
    out = ink_on_black(gray)
    assert out[0, 0] == 15 and out[25, 25] == 245


def test_transparent_background_counts_as_paper():
    rgba = np.zeros((40, 40, 4), np.uint8)
    rgba[10:30, 18:22, 3] = 255  # opaque black stroke, transparent elsewhere
    gray = decode(png(rgba), _limits(10**6, 1000))
    assert gray[0, 0] == 255 and gray[20, 20] == 0


def test_exif_orientation_is_applied():
    img = np.zeros((20, 40), np.uint8)
    img[:, :5] = 255  # a bright band on the left
    buf = io.BytesIO()
    exif = Image.Exif()
    exif[0x0112] = 6  # rotate 90 degrees clockwise to display
    Image.fromarray(img).save(buf, "JPEG", exif=exif, quality=95)
    gray = decode(buf.getvalue(), _limits(10**6, 1000))
    assert gray.shape == (40, 20) and gray[:5].mean() > 200  # the band is now on top


@pytest.mark.parametrize("data, status, text", [
    (b"", 400, "empty"),
    (b"hello, this is text", 400, "not a PNG or JPEG"),
    (b"GIF89a" + bytes(20), 415, "GIF"),
    (b'<?xml version="1.0"?><svg xmlns="http://www.w3.org/2000/svg"/>', 415, "SVG"),
    (b"<svg xmlns='http://www.w3.org/2000/svg'></svg>", 415, "SVG"),
    (b"BM" + bytes(40), 415, "BMP"),
])
def test_decode_rejects_non_images_and_other_formats(data, status, text):
    with pytest.raises(InputError, match=text) as info:
        decode(data, _limits(10**6, 1000))
    assert info.value.status == status


def test_decode_rejects_truncated_png(test_digits):
    data = png(np.tile(test_digits[0][0], (8, 8)))
    with pytest.raises(InputError) as info:
        decode(data[: len(data) // 2], _limits(10**7, 10**4))
    assert info.value.status == 400


def test_decode_checks_pixel_count_before_decoding():
    with pytest.raises(InputError, match="12000x12000") as info:
        decode(png_bomb(12000, 12000, "L"), _limits(25_000_000, 100_000))
    assert info.value.status == 413


def test_decode_checks_longest_side():
    with pytest.raises(InputError, match="a side") as info:
        decode(png(np.zeros((2, 3000), np.uint8)), _limits(10**7, 2000))
    assert info.value.status == 413


def test_blank_image_is_a_client_error():
    with pytest.raises(InputError, match="no digit") as info:
        mnist_layout(np.zeros((100, 100), np.float32), LIMITS.min_ink)
    assert info.value.status == 422


def test_the_work_side_is_the_setting():
    """Decoding reduces an image to MNIST_WORK_SIDE pixels a side, whatever it is set to."""
    page = np.zeros((600, 800), np.uint8)
    page[100:300, 200:260] = 255
    assert max(decode(png(page), Settings(work_side=100)).shape) <= 100
    assert decode(png(page), Settings(work_side=800)).shape == (600, 800)


@pytest.mark.parametrize("shape", [(28, 28), (60, 60)], ids=["fast-path", "general-path"])
def test_the_ink_rule_is_the_setting_on_every_path(test_digits, shape):
    """A faint digit (peak 127) has ink under the default MNIST_MIN_INK and none under 128,
    on the 28x28 fast path and on the general one alike; /predict_pixels uses the same rule."""
    digit = np.zeros(shape, np.uint8)
    digit[:28, :28] = test_digits[0][0] // 2
    faint = png(digit)
    assert to_model_input(faint, LIMITS).max() > 0
    with pytest.raises(InputError, match="no digit") as info:
        to_model_input(faint, Settings(min_ink=128))
    assert info.value.status == 422
    from service.preprocess import over_background

    with pytest.raises(InputError, match="no digit"):
        over_background(digit.astype(np.float32), 128)


@pytest.mark.parametrize("upscale, offset", [(4, (0, 0)), (1, (0, 0)), (2, (0, 40))])
def test_a_resampled_upload_is_measured_as_placement_measures_it(upscale, offset, test_digits):
    """Scale and shift of a digit that preprocessing resizes and moves are measured before
    it does (the model input would say "scale 1, shift 0"): a test digit drawn `upscale`
    times larger on a larger, off-centre canvas measures the digit's own scale over
    `upscale`, and its distance from the canvas centre in model-input pixels."""
    for digit in test_digits[0][:10].astype(np.float32):
        big = np.kron(digit, np.ones((upscale, upscale), np.float32))
        canvas = np.zeros((big.shape[0] + 40, big.shape[1] + 40), np.float32)
        top, left = 20 + offset[0] // 2, 20 + offset[1] // 2
        canvas[top:top + big.shape[0], left:left + big.shape[1]] = big
        model_input, measured = laid_out(canvas, LIMITS.min_ink)
        assert measured is not None
        own_scale, _ = placement(digit[None])
        ys, xs = np.indices(canvas.shape) + 0.5
        away = np.hypot((ys * canvas).sum() / canvas.sum() - canvas.shape[0] / 2,
                        (xs * canvas).sum() / canvas.sum() - canvas.shape[1] / 2)
        scale, shift = measured
        assert scale == pytest.approx(own_scale[0] / upscale, rel=0.15)
        assert shift == pytest.approx(away * scale, abs=0.6)
        assert placement(model_input[None])[0][0] == pytest.approx(1.0, abs=0.1)


def test_a_digit_left_as_it_was_is_not_measured(test_digits):
    digit = test_digits[0][0].astype(np.float32)
    out, measured = laid_out(digit, LIMITS.min_ink)
    assert measured is None and np.array_equal(out, digit)
