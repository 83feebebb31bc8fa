"""A client that hangs up mid-upload is not a server error.

Finding 4 of the first security round: docs/journal/security.md.

    pytest tests/security/test_disconnect.py

A disconnect while the body streams in raised Starlette's ClientDisconnect out of the
endpoint: BentoML logged an ERROR traceback and its metrics counted a 500, so anyone
could inflate the 5xx rate that alerts are built on. Driven here at the ASGI level: the
body stops half-way and the server is told the client is gone.
"""

from __future__ import annotations

import asyncio
import logging

import pytest

BOUNDARY = "b0undary"


async def _drive(app, path: str, chunks: list[bytes], content_type: str) -> list[dict]:
    sent: list[dict] = []
    events = [{"type": "http.request", "body": c, "more_body": True} for c in chunks]
    events.append({"type": "http.disconnect"})

    async def receive() -> dict:
        if events:
            return events.pop(0)
        await asyncio.sleep(3600)  # nothing more will come
        return {"type": "http.disconnect"}

    async def send(message: dict) -> None:
        sent.append(message)

    scope = {"type": "http", "asgi": {"version": "3.0"}, "http_version": "1.1",
             "method": "POST", "scheme": "http", "path": path, "raw_path": path.encode(),
             "query_string": b"", "root_path": "", "client": ("127.0.0.1", 50000),
             "server": ("127.0.0.1", 3000),
             "headers": [(b"content-type", content_type.encode()),
                         (b"content-length", b"100000")]}
    await asyncio.wait_for(app(scope, receive, send), 10)
    return sent


@pytest.mark.parametrize("path, chunks, ctype", [
    ("/predict", [f"--{BOUNDARY}\r\nContent-Disposition: form-data; name=\"image\"; "
                  f"filename=\"d.png\"\r\n\r\n".encode() + b"\x89PNG" + bytes(500)],
     f"multipart/form-data; boundary={BOUNDARY}"),
    ("/predict_pixels", [b'{"pixels": [[0, 0, 0'], "application/json"),
])
def test_a_client_gone_mid_upload_is_not_a_5xx_nor_an_error_log(client, asgi_app, caplog,
                                                                 path, chunks, ctype):
    with caplog.at_level(logging.ERROR):
        # On the test client's own event loop, where the app's lifespan ran.
        sent = client.portal.call(_drive, asgi_app, path, chunks, ctype)
    statuses = [m["status"] for m in sent if m["type"] == "http.response.start"]
    assert statuses and all(s < 500 for s in statuses), statuses
    assert not [r for r in caplog.records if r.levelno >= logging.ERROR], caplog.text
