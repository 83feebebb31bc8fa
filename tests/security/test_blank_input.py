"""A blank image is a 422 on every endpoint.

Finding 7 of the first security round: docs/journal/security.md.

    pytest tests/security/test_blank_input.py

/predict refused a blank PNG with 422 while /predict_pixels answered an all-zero image
with "1" at 0.9995: a confident answer about nothing.
"""

from __future__ import annotations

import numpy as np
import pytest

from core.png import encode_png


@pytest.mark.parametrize("value", [0, 255, 7])
def test_blank_pixels_are_a_422_like_a_blank_image(client, value):
    blank = np.full((28, 28), value, np.uint8)
    by_image = client.post("/predict", files={"image": ("b.png", encode_png(blank))})
    by_pixels = client.post("/predict_pixels", json={"pixels": blank.tolist()})
    assert by_image.status_code == by_pixels.status_code == 422, by_pixels.text
    assert by_pixels.json() == by_image.json() == {
        "error": "no digit found: the image has no visible ink"}


def test_a_blank_image_in_a_batch_is_named(client, test_digits):
    files = [("images", ("d.png", encode_png(test_digits[0][0]))),
             ("images", ("b.png", encode_png(np.zeros((28, 28), np.uint8))))]
    resp = client.post("/predict_batch", files=files)
    assert resp.status_code == 422
    assert resp.json()["error"].startswith("images[1]: no digit found")


def test_a_faint_dot_in_the_middle_is_blank_too(client):
    """It looks like an MNIST-layout digit (centred, small): the ink test still applies."""
    faint = np.zeros((28, 28), np.uint8)
    faint[14, 14] = 5
    by_image = client.post("/predict", files={"image": ("f.png", encode_png(faint))})
    by_pixels = client.post("/predict_pixels", json={"pixels": faint.tolist()})
    assert by_image.status_code == by_pixels.status_code == 422
