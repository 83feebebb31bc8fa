"""Error messages cap what they echo of a client's values; pixel data is numbers only.

    pytest tests/security/test_echoes.py

An OIP request with a 1 MB model input name got a 1 MB error message, and a 3 MB `id`
was echoed in the answer; `[true, 0, ...]` was accepted as pixel data (numpy reads it as
integers) while all-boolean data was refused.
"""

from __future__ import annotations

import json

import pytest

from core.contract import MODEL_NAME
from service.errors import ECHO_CHARS, InputError, echo
from service.oip import parse_infer

INFER = f"/v2/models/{MODEL_NAME}/infer"


def _request(**tensor) -> bytes:
    base = {"name": "pixels", "datatype": "UINT8", "shape": [1, 28, 28], "data": [0] * 784}
    return json.dumps({"inputs": [{**base, **tensor}]}).encode()


@pytest.mark.parametrize("tensor", [
    {"name": "n" * 1_000_000}, {"datatype": "D" * 1_000_000},
    {"shape": [1, 28, 28] + [7] * 300_000},
])
def test_an_error_message_is_short_whatever_the_client_sent(client, tensor):
    resp = client.post(INFER, content=_request(**tensor),
                       headers={"content-type": "application/json"})
    assert resp.status_code == 400
    assert len(resp.json()["error"]) < 200, resp.json()["error"][:300]


def test_a_long_id_is_refused_not_echoed():
    body = json.loads(_request())
    with pytest.raises(InputError, match="at most 256") as info:
        parse_infer(json.dumps({**body, "id": "i" * 3_000_000}).encode(), 256, 256)
    assert info.value.status == 400
    assert parse_infer(json.dumps({**body, "id": "i" * 256}).encode(), 256, 256).id


@pytest.mark.parametrize("data", [[True] + [0] * 783, [0] * 783 + [False]])
def test_booleans_are_not_pixels_even_among_numbers(data):
    for dtype in ("UINT8", "FP32"):
        with pytest.raises(InputError, match="must be"):
            parse_infer(_request(data=data, datatype=dtype), 256, 256)
    with pytest.raises(InputError, match="must be"):  # nested, as tritonclient sends it
        parse_infer(_request(data=[[data[i:i + 28] for i in range(0, 784, 28)]]), 256, 256)


def test_echo_cuts_long_values_and_keeps_short_ones():
    assert echo("pixels") == "'pixels'"
    assert len(echo("x" * 10_000)) <= ECHO_CHARS
    assert len(echo(list(range(100_000)))) <= ECHO_CHARS
