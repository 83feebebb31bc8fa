"""What error messages and /model give away.

Finding 7 of the first security round: docs/journal/security.md.

    pytest tests/security/test_messages.py

A damaged image made Pillow's message carry a heap address
(`cannot identify image file <_io.BytesIO object at 0x7f...>`), and GET /model showed
the absolute path of the training data on the machine that trained the model.
"""

from __future__ import annotations

import re

import numpy as np
import pytest

from core.png import encode_png
from service.errors import InputError
from service.preprocess import decode
from service.settings import Settings

GOOD = encode_png(np.zeros((50, 50), np.uint8))
LEAKS = re.compile(r"0x[0-9a-f]{6,}|<[^>]*>|/[\w.-]+/")


@pytest.mark.parametrize("data", [
    b"\x89PNG\r\n\x1a\n" + b"garbage" * 5,
    b"\xff\xd8\xff" + b"x" * 40,
    GOOD[:33] + bytes(30),
    b"\xff\xd8\xff\xe0" + bytes(100),
    GOOD[:60],
], ids=["png-garbage", "jpeg-garbage", "png-zero-chunks", "jpeg-zeros", "png-truncated"])
def test_damaged_images_get_a_400_that_names_no_address_or_internals(data):
    with pytest.raises(InputError) as info:
        decode(data, Settings(max_pixels=10**7, max_side=10**4))
    assert info.value.status == 400
    assert not LEAKS.search(info.value.message), info.value.message
    assert re.match(r"^(cannot read|corrupt or truncated) (PNG|JPEG) image", info.value.message)


def test_model_endpoint_does_not_show_where_the_training_data_was(client):
    body = client.get("/model").json()
    assert "location" not in body["dataset"] and body["dataset"]["source"] == "idx"
    assert not LEAKS.search(str(body["dataset"]))
