"""Redirects never build a URL from what the client sent.

    pytest tests/security/test_redirects.py

Starlette answers a trailing slash (`/docs/`) with a 307 whose Location is an absolute
URL made from the request's Host header: `Host: evil.example` sent users to
`http://evil.example/docs`, and through the proxy an HTTP/1.0 request without Host
leaked the replica's own address. A Location is now a path on the same site.
"""

from __future__ import annotations

import pytest


@pytest.mark.parametrize("host", ["evil.example", "10.0.1.10:3000"])
def test_a_trailing_slash_redirect_does_not_echo_the_host(client, host):
    resp = client.get("/docs/?q=1", headers={"host": host}, follow_redirects=False)
    assert resp.status_code in (307, 308)
    assert resp.headers["location"] == "/docs?q=1"
