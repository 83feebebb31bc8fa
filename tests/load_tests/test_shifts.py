"""The shifted streams of the drift proof: what each one changes, that the service answers
every request of it 200, and which drift signals it moves, measured with core.profile on
the model inputs the service makes of the stream's own requests."""

from __future__ import annotations

import io
import json

import numpy as np
import pytest
from PIL import Image

import core.profile as p
from core.png import encode_png
from load_tests import shifts
from load_tests.shifts import MOVES, SIGNAL, STREAMS, Request


@pytest.fixture(scope="module")
def digits(test_digits) -> tuple[np.ndarray, np.ndarray]:
    """Real test digits, uint8 [N, 28, 28], and their labels."""
    images, labels = test_digits
    return images.astype(np.uint8), labels


def test_class_mix_keeps_the_form_digits_only(digits) -> None:
    images, labels = digits
    kept = shifts.class_mix(images, labels)
    assert len(kept) == np.isin(labels, shifts.FORM_DIGITS).sum() > 0
    assert np.array_equal(kept[0], images[np.flatnonzero(np.isin(labels, (1, 7)))[0]])


def test_inverted_digits_are_dark_on_white_and_invert_back(digits) -> None:
    images = digits[0][:20]
    flipped = shifts.inverted(images)
    assert np.median(flipped) == 255 and flipped.dtype == np.uint8
    assert np.array_equal(shifts.inverted(flipped), images)


def test_thin_strokes_are_one_pixel_wide_and_inside_the_ink(digits) -> None:
    images = digits[0][:200]
    thin = shifts.thin_strokes(images)
    assert set(np.unique(thin)) == {0, 255}
    assert not (thin.astype(bool) & (images < shifts.INK_LEVEL)).any()  # no ink added
    assert (thin.max(axis=(1, 2)) == 255).all()  # no digit erased
    # A 1-pixel line: its 4-neighbour perimeter, diagonal steps included, is about twice
    # its length, so its width measures 1 or just under.
    assert np.median(p.stroke_width(thin.astype(np.float32))) <= 1.0
    assert np.median(p.stroke_width(images.astype(np.float32))) > 1.5


def test_a_photo_is_a_jpeg_of_dark_ink_on_grey_paper(digits) -> None:
    jpeg = shifts.photo(digits[0][0], np.random.default_rng(0))
    img = Image.open(io.BytesIO(jpeg))
    grey = np.asarray(img.convert("L"), np.float32)
    border = np.concatenate([grey[0], grey[-1], grey[:, 0], grey[:, -1]])
    assert img.format == "JPEG" and img.size == (shifts.PHOTO_SIDE, shifts.PHOTO_SIDE)
    assert shifts.PHOTO_PAPER[0] - 20 < np.median(border) < shifts.PHOTO_PAPER[1] + 20
    assert grey.min() < shifts.PHOTO_INK + 40  # the ink is there


def test_photos_are_a_pure_function_of_the_digits_and_seed(digits) -> None:
    images = digits[0][:3]
    assert shifts.rotated_photos(images, seed=1) == shifts.rotated_photos(images, seed=1)
    assert shifts.rotated_photos(images, seed=1) != shifts.rotated_photos(images, seed=2)


@pytest.mark.parametrize("stream", STREAMS)
def test_the_service_answers_every_request_of_a_stream_200(client, digits, stream) -> None:
    images, labels = digits[0][:60], digits[1][:60]
    for request in shifts.requests(stream, images, labels):
        resp = client.post(request.path, content=request.body,
                           headers={"Content-Type": request.content_type})
        assert resp.status_code == 200, resp.text


def _file_of(request: Request) -> bytes:
    """The one file of a multipart upload."""
    part = request.body.split(b"\r\n\r\n", 1)[1]
    return part.rsplit(b"\r\n--", 1)[0]


def model_inputs(requests: list[Request]) -> np.ndarray:
    """What the service feeds the model for each request: the tensor as sent, or the
    upload after its preprocessing."""
    from service.preprocess import to_model_input
    from service.settings import Settings

    limits = Settings()
    out = []
    for request in requests:
        if request.path == "/predict":
            out.append(to_model_input(_file_of(request), limits))
        else:
            tensor = json.loads(request.body)["inputs"][0]
            out.append(np.reshape(tensor["data"], tensor["shape"][1:]))
    return np.stack(out).astype(np.float32)


def scores(live: p.Profile, reference: p.Profile) -> dict[str, float]:
    """Each signal's distance from the reference over its threshold (drift above 1)."""
    hists = {"confidence": (live.confidence, reference.confidence),
             "entropy": (live.entropy, reference.entropy),
             **{s: (live.inputs[s], reference.inputs[s]) for s in p.STATS}}
    distance = {"digit_mix": p.psi(live.digit_share, reference.digit_share),
                **{s: p.ks(a.shares, b.shares) for s, (a, b) in hists.items()}}
    return {s: distance[s] / p.DRIFT_THRESHOLDS[s] for s in p.SIGNALS}


@pytest.fixture(scope="module")
def profile_of(trained, digits):
    """(reference profile, a function: requests -> their profile), with the test model;
    the reference is made of the first half of the digits, as the training job makes it."""
    from service.engine import Engine, softmax

    engine = Engine(trained[1] / "model.onnx")
    images, labels = digits
    half = len(images) // 2

    def profile(x: np.ndarray) -> p.Profile:
        return p.build("test", x, softmax(engine.logits(x)))

    reference = profile(images[:half].astype(np.float32))
    return reference, lambda requests: profile(model_inputs(requests))


def test_in_distribution_digits_move_no_signal(profile_of, digits) -> None:
    reference, profile = profile_of
    half = len(digits[0]) // 2
    sent = [shifts.upload(encode_png(d)) for d in digits[0][half:]]
    measured = scores(profile(sent), reference)
    assert max(measured.values()) < 0.5, measured


@pytest.mark.parametrize("stream", STREAMS)
def test_each_stream_moves_the_signals_it_names(profile_of, digits, stream) -> None:
    reference, profile = profile_of
    half = len(digits[0]) // 2
    sent = shifts.requests(stream, digits[0][half:], digits[1][half:])
    measured = scores(profile(sent), reference)
    assert SIGNAL[stream] == MOVES[stream][0]
    assert {s: measured[s] for s in MOVES[stream] if measured[s] <= 1.2} == {}, measured
