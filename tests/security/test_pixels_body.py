"""/predict_pixels takes no more body than its largest valid request can need.

    pytest tests/security/test_pixels_body.py

It accepted 10 MiB of JSON although a valid body is 28 rows of 28 numbers (~3 KB):
`{"pixels": [[0], [0], ...]}` with 2.6 M rows cost 1.9-2.7 s of event loop and +754 MB
per request before the 422. Now a body larger than any valid one is refused unread.
"""

from __future__ import annotations

import json

from benchmarks.bombs import pixels_rows
from service.http_input import json_limit

JSON = {"content-type": "application/json"}


def test_a_body_larger_than_any_valid_one_is_refused_unread(client):
    resp = client.post("/predict_pixels", content=pixels_rows(2_600_000), headers=JSON)
    assert resp.status_code == 413, resp.text
    assert "larger than any valid pixels request" in resp.json()["error"]


def test_the_largest_valid_body_still_fits(client):
    """Three-digit values, pretty-printed wide: still under the cap."""
    pixels = [[255 if 8 <= c < 20 else 100] * 28 for c in range(28)]
    body = json.dumps({"pixels": pixels}, indent=8).encode()
    assert len(body) <= json_limit(28 * 28)
    assert client.post("/predict_pixels", content=body, headers=JSON).status_code == 200


def test_a_lying_content_length_is_refused_without_a_server_error(client):
    for declared in (b"9" * 5000, "²".encode("latin-1")):
        resp = client.post("/predict_pixels", content=b"{}",
                           headers={**JSON, "content-length": declared})
        assert resp.status_code in (400, 413), (declared[:5], resp.status_code)
