"""What every response carries.

Finding 7 of the first security round: docs/journal/security.md.

    pytest tests/security/test_headers.py

404 and 405 answered in plain text while every other error is {"error": ...}; no
response had X-Content-Type-Options; predictions could be cached by a proxy; the
Swagger UI page loaded Google Tag Manager from outside (a privacy leak, and broken
offline), and nothing told the browser not to.
"""

from __future__ import annotations

import pytest

from core.png import encode_png


@pytest.mark.parametrize("method, path, status", [
    ("GET", "/no/such/path", 404), ("GET", "/predict", 405), ("POST", "/model", 405),
    ("DELETE", "/predict_batch", 405),
])
def test_unknown_routes_and_methods_answer_json(client, method, path, status):
    resp = client.request(method, path)
    assert resp.status_code == status
    assert resp.headers["content-type"] == "application/json"
    assert isinstance(resp.json()["error"], str) and resp.json()["error"]
    assert resp.headers["x-content-type-options"] == "nosniff"


def test_predictions_are_never_cached_and_not_sniffed(client, test_digits):
    resp = client.post("/predict", files={"image": ("d.png", encode_png(test_digits[0][0]))})
    assert resp.status_code == 200
    assert resp.headers["cache-control"] == "no-store"
    assert resp.headers["x-content-type-options"] == "nosniff"
    bad = client.post("/predict", files={"image": ("d.gif", b"GIF89a" + bytes(20))})
    assert bad.status_code == 415 and bad.headers["cache-control"] == "no-store"


def test_html_pages_may_load_nothing_from_outside(client):
    resp = client.get("/")
    assert resp.status_code == 200 and resp.headers["content-type"].startswith("text/html")
    csp = dict(d.strip().split(" ", 1) for d in resp.headers["content-security-policy"]
               .split(";") if d.strip())
    assert csp["default-src"] == "'self'"
    assert csp["script-src"] == "'self'"  # no inline script: the tag manager never runs
    assert "frame-src" in csp and csp["frame-src"] == "'none'"
