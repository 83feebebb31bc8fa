"""Found while adding the Open Inference Protocol: a large JSON body stalls the event loop.

    pytest tests/security/test_oip_bodies.py

Parsing JSON holds the GIL: a thread does not help. A 10 MB body of numbers cost ~0.43 s
of event loop (json.loads, then numpy) before it could be refused, so a few clients
posting such bodies delay every other request, /readyz included (finding 1 again, in
JSON). Now an OIP body is capped at what the largest valid request can take (256 x 784
values, each in the longest form a client writes an FP32 in) and parsed with jiter.
"""

from __future__ import annotations

import json

import numpy as np

from core.contract import MODEL_NAME
from service.oip import body_limit, parse_infer

INFER = f"/v2/models/{MODEL_NAME}/infer"


def test_a_body_larger_than_any_valid_request_is_refused_unread(client):
    junk = ('{"inputs":[{"name":"pixels","datatype":"FP32","shape":[256,28,28],"data":['
            + ",".join(["123.456"] * 1_300_000) + "]}]}").encode()  # 10.4 MB
    resp = client.post(INFER, content=junk, headers={"content-type": "application/json"})
    assert resp.status_code == 413, resp.text
    assert "larger than any valid" in resp.json()["error"]


def test_the_largest_valid_request_fits_under_the_cap():
    # float32 values as clients send them (tritonclient: .tolist(), json.dumps: ", ").
    x = np.nextafter(np.float32(255), np.float32(0)) * np.ones(256 * 784, np.float32)
    x[::2] = np.float32(1 / 3) * np.float32(100)  # long reprs: 33.33333206176758
    body = json.dumps({"id": "x" * 200, "inputs": [
        {"name": "pixels", "datatype": "FP32", "shape": [256, 28, 28], "data": x.tolist(),
         "parameters": {"binary_data": False}}],
        "outputs": [{"name": "logits", "parameters": {"binary_data": False}},
                    {"name": "probabilities", "parameters": {"binary_data": False}}]}).encode()
    assert len(body) <= body_limit(256)
    assert parse_infer(body, 256, 256).pixels.shape == (256, 28, 28)
