"""A body that stops arriving.

Finding 5 of the first security round: docs/journal/security.md.

    pytest tests/security/test_slow_body.py

A Content-Length larger than the body sent held the connection for the whole request
timeout (30 s) and then got a 504: a 5xx for the client's doing. Now the body has a
deadline of its own (MNIST_BODY_TIMEOUT_S, 10 s by default; 1 s here) and a stalled
body gets a 408. Against a real server on a loopback port, over a raw socket.
"""

from __future__ import annotations

import socket
import time

import pytest

from clients import server_process as process

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def impatient_server(trained, tmp_path_factory):
    log_path = tmp_path_factory.mktemp("slow-body") / "server.log"
    env = {"BENTOML_HOME": str(trained[2]), "MNIST_BODY_TIMEOUT_S": "1"}
    with open(log_path, "w") as log, process.serving(log, env) as (_, base):
        yield int(base.rsplit(":", 1)[1])


@pytest.mark.parametrize("path, ctype", [
    ("/predict", "multipart/form-data; boundary=x"), ("/predict_pixels", "application/json"),
])
def test_a_body_shorter_than_its_content_length_gets_a_408(impatient_server, path, ctype):
    with socket.create_connection(("127.0.0.1", impatient_server), timeout=20) as s:
        s.sendall(f"POST {path} HTTP/1.1\r\nHost: x\r\nContent-Type: {ctype}\r\n"
                  f"Content-Length: 1000\r\n\r\n".encode() + b"--x\r\n")
        t0 = time.monotonic()
        answer = s.recv(4096)
        waited = time.monotonic() - t0
        while b"}" not in answer and (more := s.recv(4096)):  # the body may come apart
            answer += more
    status_line = answer.split(b"\r\n", 1)[0]
    assert status_line.startswith(b"HTTP/1.1 408"), answer[:300]
    assert b'"error"' in answer
    assert waited < 15  # the goal; before the fix the answer was a 504 after 30 s
