"""Clients must not be able to grow the metrics.

Finding 3 of the first security round: docs/journal/security.md.

    pytest tests/security/test_metrics_labels.py

BentoML's metrics middleware labelled every request with its raw path: each unique
unknown path (a 404) made new Prometheus series (~257 MB of server memory and ~37 MB of
/metrics per 10,000 paths) and a `%00` in a path put a NUL byte into the exposition.
Against a real `bentoml serve` (the multiprocess Prometheus set-up exists only there).
"""

from __future__ import annotations

import re
import secrets
import urllib.request

import pytest

from clients import server_process as process

pytestmark = pytest.mark.slow

ENDPOINT = re.compile(rb'endpoint="([^"]*)"')


def _request(url: str, method: str = "GET") -> int:
    req = urllib.request.Request(url, method=method)
    try:
        with urllib.request.urlopen(req, timeout=5) as r:
            return r.status
    except urllib.error.HTTPError as e:
        return e.code


def _endpoints(base: str) -> set[bytes]:
    status, body = process.http_get(base + "/metrics")
    assert status == 200
    assert b"\x00" not in body
    return set(ENDPOINT.findall(body))


def test_unknown_paths_share_one_label_and_never_reach_the_exposition(metrics_server):
    server = metrics_server
    tokens = [secrets.token_hex(6) for _ in range(40)]
    for i, token in enumerate(tokens):
        path = f"/probe-{token}" + ("%00x" if i % 4 == 0 else "")
        assert _request(server + path, "GET" if i % 2 else "POST") in (404, 405)
    assert _request(server + "/predict") == 405  # a known path, a method it lacks
    endpoints = _endpoints(server)
    assert not [e for e in endpoints if b"probe-" in e], endpoints
    assert b"<unmatched>" in endpoints
    # Known routes keep their own label, so dashboards per endpoint still work.
    assert b"/predict" in endpoints


def test_the_label_set_does_not_grow_with_more_unknown_paths(metrics_server):
    server = metrics_server
    before = _endpoints(server)
    for _ in range(30):
        _request(server + f"/x/{secrets.token_hex(8)}")
    assert _endpoints(server) == before | {b"<unmatched>"}
