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
from core.docblocks import read_block
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


def test_the_docs_table_of_streams_is_the_modules() -> None:
    assert read_block(shifts.DOCS.read_text(), shifts.BLOCK) == shifts.table()
    assert set(shifts.CLIENT) == set(shifts.ROUTE) == set(MOVES) == set(STREAMS)


def _file_of(request: Request) -> bytes:
    """The one file of a multipart upload."""
    part = request.body.split(b"\r\n\r\n", 1)[1]
    return part.rsplit(b"\r\n--", 1)[0]


def model_inputs(requests: list[Request]) -> tuple[np.ndarray, np.ndarray]:
    """What the service feeds the model for each request (the tensor as sent, or the
    upload after its preprocessing) and the placement preprocessing measured ([N, 2],
    NaN where it left the image as it was), as the service records them."""
    from service.preprocess import measured_model_batch, open_images, prepare
    from service.settings import Settings

    limits = Settings()
    inputs, measured = [], []
    for request in requests:
        if request.path != "/predict":
            tensor = json.loads(request.body)["inputs"][0]
            inputs.append(np.reshape(tensor["data"], tensor["shape"]))
            measured.append(np.full((1, 2), np.nan))
            continue
        prepared = prepare([_file_of(request)], limits)
        if isinstance(prepared, np.ndarray):
            inputs.append(prepared)
            measured.append(np.full((1, 2), np.nan))
        else:
            batch, placed = measured_model_batch(open_images([_file_of(request)], limits), limits)
            inputs.append(batch)
            measured.append(placed if placed is not None else np.full((1, 2), np.nan))
    return np.concatenate(inputs).astype(np.float32), np.concatenate(measured)


@pytest.fixture(scope="module")
def scores_of(trained):
    """A function: (name, requests) -> each drift signal's score, as GET /monitoring of
    a service that answered just those requests says it, against the test model's own
    reference profile (the training job's, made on the test digits)."""
    import prometheus_client as prom

    from service.engine import Engine
    from service.monitoring import Monitor
    from service.monitoring_report import report

    engine = Engine(trained[1] / "model.onnx")
    reference = p.load(trained[1] / p.REFERENCE_FILE)

    def scores(name: str, requests: list[Request]) -> dict[str, float]:
        inputs, measured = model_inputs(requests)
        monitor = Monitor(f"shifts-{name}", reference, enabled=True)  # series of its own
        monitor.record(inputs, engine.logits(inputs), measured)
        signals = report(monitor, prom.REGISTRY)["drift"]["signals"]
        return {signal: s["score"] for signal, s in signals.items()}

    return scores


def test_in_distribution_digits_move_no_signal(scores_of, digits) -> None:
    measured = scores_of("in-distribution", [shifts.upload(encode_png(d)) for d in digits[0]])
    assert set(measured) == set(p.SIGNALS) and max(measured.values()) < 0.5, measured


@pytest.mark.parametrize("stream", STREAMS)
def test_each_stream_moves_the_signals_it_names(scores_of, digits, stream) -> None:
    measured = scores_of(stream, shifts.requests(stream, *digits))
    assert SIGNAL[stream] == MOVES[stream][0]
    assert {s: measured[s] for s in MOVES[stream] if measured[s] <= 1.2} == {}, measured
