"""The HTTP API in process: BentoML's ASGI app with its real lifespan, no server."""

from __future__ import annotations

import json

import numpy as np
import pytest

from benchmarks.bombs import png_bomb
from clients.uploads import canvas_rgba, jpeg_on_paper, png
from core.contract import CONTRACT
from tests.helpers import assert_error


def _pixels(digit):
    return {"pixels": digit.astype(int).tolist()}


def test_predict_returns_digit_confidence_and_probabilities(client, test_digits):
    resp = client.post("/predict", files={"image": ("d.png", png(test_digits[0][0]),
                                                    "image/png")})
    assert resp.status_code == 200
    body = resp.json()
    assert set(body) == {"digit", "confidence", "probabilities"}
    assert 0 <= body["digit"] <= 9 and len(body["probabilities"]) == 10
    assert body["confidence"] == pytest.approx(max(body["probabilities"]))
    assert sum(body["probabilities"]) == pytest.approx(1.0, abs=1e-4)


def test_predict_png_pixels_and_batch_agree(client, test_digits):
    x = test_digits[0][:12]
    single = [client.post("/predict", files={"image": ("d.png", png(d))}).json()["digit"]
              for d in x]
    pixels = [client.post("/predict_pixels", json=_pixels(d)).json()["digit"] for d in x]
    resp = client.post("/predict_batch", files=[("images", (f"{i}.png", png(d)))
                                                for i, d in enumerate(x)])
    assert resp.status_code == 200
    assert [p["digit"] for p in resp.json()["predictions"]] == single == pixels


def test_predict_reads_photos_and_canvas_drawings(client, test_digits):
    x, y = test_digits
    for make in (jpeg_on_paper, canvas_rgba):
        digits = [client.post("/predict", files={"image": ("u", make(d))}).json()["digit"]
                  for d in x[:30]]
        assert np.mean(np.array(digits) == y[:30]) >= 0.75, make.__name__


def test_model_endpoint_describes_model_and_provider(client, trained):
    body = client.get("/model").json()
    metrics = json.loads((trained[1] / "metrics.json").read_text())
    assert body["tag"].startswith("mnist_mlp:")
    assert body["sha256"] == metrics["onnx_sha256"]
    assert body["provider"] == "CPUExecutionProvider" and body["cuda_fell_back_to_cpu"] is False
    assert body["contract"]["input_name"] == CONTRACT.input_name
    assert body["contract"]["outputs"] == ["logits", "normalised"]  # the served graph's
    assert body["dataset"]["source"] == "idx"


# /metrics needs the Prometheus set-up of a real server: tests/service/test_serve.py.
@pytest.mark.parametrize("path", ["/livez", "/readyz", "/docs.json"])
def test_bentoml_endpoints_stay_available(client, path):
    assert client.get(path).status_code == 200


BAD_IMAGE_REQUESTS = {
    "empty_body_no_type": (dict(), 415, "multipart/form-data"),
    "empty_body_multipart": (dict(headers={"content-type": "multipart/form-data; boundary=x"},
                                  content=b""), 400, "empty"),
    "json_instead_of_form": (dict(json={"image": "x"}), 415, "multipart/form-data"),
    "missing_image_field": (dict(files={"picture": ("d.png", b"\x89PNG")}), 400,
                            "missing file field 'image'"),
    "empty_file": (dict(files={"image": ("d.png", b"")}), 400, "empty"),
    "not_an_image": (dict(files={"image": ("d.png", b"just some text")}), 400,
                     "not a png or jpeg"),
    "gif": (dict(files={"image": ("d.gif", b"GIF89a" + bytes(30))}), 415, "GIF"),
    "svg": (dict(files={"image": ("d.svg", b"<svg xmlns='http://www.w3.org/2000/svg'/>")}),
            415, "SVG"),
    "broken_multipart": (dict(headers={"content-type": "multipart/form-data"},
                              content=b"--x\r\ngarbage"), 400, "multipart"),
}


@pytest.mark.parametrize("case", sorted(BAD_IMAGE_REQUESTS))
def test_predict_rejects_bad_input_with_4xx(client, case):
    kwargs, status, text = BAD_IMAGE_REQUESTS[case]
    assert_error(client.post("/predict", **kwargs), status, text)


def test_predict_rejects_truncated_png(client, test_digits):
    data = png(np.tile(test_digits[0][0], (6, 6)))
    assert_error(client.post("/predict", files={"image": ("d.png", data[:len(data) // 2])}),
                  400, "truncated")


def test_predict_rejects_12000_square_png_before_decoding(client):
    big = png_bomb(12000, 12000, "L")
    assert_error(client.post("/predict", files={"image": ("big.png", big)}), 413, "12000x12000")


def test_predict_batch_limits_total_pixels_of_one_request(client):
    big = png_bomb(3000, 3000, "L")  # 9 M pixels: fine alone, 27 M for three
    assert client.post("/predict_batch", files=[("images", ("a.png", big))]).status_code == 422
    assert_error(client.post("/predict_batch", files=[("images", (f"{i}.png", big))
                                                       for i in range(3)]),
                  413, "the 3 images total 27000000 pixels")


def test_predict_batch_rejects_too_many_and_names_the_bad_image(client, test_digits):
    good = png(test_digits[0][0])
    from service.service import SETTINGS

    too_many = SETTINGS.max_batch + 1
    assert_error(client.post("/predict_batch", files=[("images", ("d.png", good))] * too_many),
                 413, f"at most {SETTINGS.max_batch}")
    files = [("images", ("a.png", good)), ("images", ("b.gif", b"GIF89a" + bytes(9)))]
    assert_error(client.post("/predict_batch", files=files), 415, "images[1]")
    assert_error(client.post("/predict_batch", files={"image": ("d.png", good)}), 400,
                  "missing file field 'images'")


def test_service_stays_ready_after_bad_input(client, test_digits):
    client.post("/predict", files={"image": ("big.png", png_bomb(12000, 12000, "L"))})
    client.post("/predict_pixels", content=b"[[[", headers={"content-type": "application/json"})
    assert client.get("/readyz").status_code == 200
    assert client.post("/predict", files={"image": ("d.png", png(test_digits[0][1]))}
                       ).status_code == 200


def test_preprocess_returns_exactly_what_the_network_reads(client, trained, test_digits):
    import io

    from PIL import Image

    from service.engine import Engine
    from service.preprocess import to_model_input
    from service.schemas import SEEN_HEADER
    from service.service import SETTINGS

    photo = jpeg_on_paper(test_digits[0][3])
    resp = client.post("/preprocess", files={"image": ("d.jpg", photo, "image/jpeg")})
    assert resp.status_code == 200 and resp.headers["content-type"] == "image/png"
    assert resp.headers[SEEN_HEADER] == "normalised"
    seen = np.asarray(Image.open(io.BytesIO(resp.content))).astype(float)
    model_input = to_model_input(photo, SETTINGS)
    reads, _ = Engine(trained[1] / "model.onnx").seen(model_input[None])
    assert seen.shape == (28, 28)
    assert np.abs(seen - reads[0].clip(0, 255)).max() <= 0.5
    assert np.abs(seen - model_input).max() > 50  # thickened and deskewed: not the input
    named = client.post("/preprocess?tensor=normalised", files={"image": ("d.jpg", photo)})
    assert named.content == resp.content and named.headers[SEEN_HEADER] == "normalised"


def test_preprocess_gives_the_model_input_an_oip_client_sends_when_asked(client, test_digits):
    """?tensor=pixels: the 28x28 input itself, to send over the Open Inference Protocol
    (the graph normalises it; a normalised digit sent there would be normalised twice)."""
    import io

    from PIL import Image

    from service.preprocess import to_model_input
    from service.schemas import SEEN_HEADER
    from service.service import SETTINGS

    photo = jpeg_on_paper(test_digits[0][3])
    resp = client.post("/preprocess?tensor=pixels", files={"image": ("d.jpg", photo)})
    assert resp.status_code == 200 and resp.headers[SEEN_HEADER] == "pixels"
    model_input = to_model_input(photo, SETTINGS)
    assert np.array_equal(np.asarray(Image.open(io.BytesIO(resp.content))),
                          model_input.round().astype(np.uint8))
    assert_error(client.post("/preprocess?tensor=logits", files={"image": ("d.jpg", photo)}),
                 400, "tensor must be one of normalised, pixels")


@pytest.mark.parametrize("kwargs, status", [
    (dict(files={"image": ("d.gif", b"GIF89a" + bytes(30))}), 415),
    (dict(files={"image": ("d.png", png(np.zeros((28, 28), np.uint8)))}), 422),
    (dict(files={"image": ("d.png", png_bomb(12000, 12000))}), 413),
    (dict(json={"image": "x"}), 415),
])
def test_preprocess_refuses_what_predict_refuses(client, kwargs, status):
    assert_error(client.post("/preprocess", **kwargs), status)
    assert_error(client.post("/predict", **kwargs), status)


def test_a_request_builds_no_deprecation_warning(client, test_digits):
    """BentoML reads `model_fields` off the parsed input to build keyword arguments; on a
    pydantic instance that attribute is deprecated (2.11) and builds a warning object per
    request: a measurable share of a worker's time under load (py-spy,
    docs/journal/performance.md)."""
    import warnings

    from pydantic import PydanticDeprecatedSince211

    with warnings.catch_warnings(record=True) as seen:
        warnings.simplefilter("always")
        r = client.post("/predict", files={"image": ("d.png", png(test_digits[0][0]),
                                                     "image/png")})
    assert r.status_code == 200
    assert not [w for w in seen if issubclass(w.category, PydanticDeprecatedSince211)]
