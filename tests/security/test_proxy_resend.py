"""The Swarm proxy resends photo uploads a dying replica dropped.

The second security round: docs/journal/security.md.

    pytest tests/security/test_proxy_resend.py       # needs Docker: HAProxy runs from its image

HAProxy resends a request only when the whole of it sits in one buffer. With
`tune.bufsize 16384`, a photo upload (~265 KB, what deploy/swarm/e2e.py sends) never
did: when its replica was stopped or killed mid-request, the client got a 502, or, when
the replica died while the body was still being forwarded, its connection was closed
with no response at all. Here the real deploy/swarm/proxy/haproxy.cfg runs in front of
two stand-in replicas on loopback, the first upload's replica dies, and the client must
get the other replica's answer. The header limit the bigger buffer would otherwise
raise is checked too.
"""

from __future__ import annotations

import http.client
import re
import socket
import socketserver
import threading
import time
from collections.abc import Iterator

import pytest

from clients.server_process import free_port
from tests.deploy.proxy_image import PROXY, running_proxy, skip_without_docker

pytestmark = pytest.mark.slow

IMAGE = "mnist-proxy:resend-test"
PHOTO_BYTES = 270_000  # a 1024x1024 JPEG of a digit on paper, multipart-encoded


class _Quiet(socketserver.ThreadingTCPServer):
    daemon_threads = True

    def handle_error(self, request, client_address) -> None:
        """A replica "dying" resets connections on purpose: no traceback for those."""


class Replicas:
    """Two stand-in replicas on loopback: /readyz is 200; a POST is answered 200 with the
    number of body bytes it read, unless `die` is set: then the replica that gets it dies
    on it, reading `die` bytes of the body first and closing with the rest unread (a
    reset, as when the kernel closes a killed process's sockets)."""

    def __init__(self) -> None:
        self.die: int | None = None
        self.lock = threading.Lock()
        self.posts: list[int] = []  # the port of each replica a POST reached
        self.servers = [self._server() for _ in range(2)]

    def _server(self) -> socketserver.ThreadingTCPServer:
        replicas = self

        class Handler(socketserver.StreamRequestHandler):
            def handle(self) -> None:
                while replicas.answer(self.rfile, self.connection, self.server):
                    pass

        server = _Quiet(("127.0.0.1", 0), Handler)
        threading.Thread(target=server.serve_forever, daemon=True).start()
        return server

    def answer(self, rfile, conn: socket.socket, server) -> bool:
        line = rfile.readline()
        if not line:
            return False
        length = 0
        while (header := rfile.readline()) not in (b"\r\n", b""):
            name, _, value = header.partition(b":")
            if name.strip().lower() == b"content-length":
                length = int(value)
        if line.startswith(b"POST"):
            with self.lock:
                self.posts.append(server.server_address[1])
                die, self.die = self.die, None
            if die is not None:
                rfile.read(min(die, length))
                return False  # closed with the rest of the body unread
        body = str(len(rfile.read(length))).encode()
        conn.sendall(b"HTTP/1.1 200 OK\r\nContent-Length: %d\r\n\r\n%s" % (len(body), body))
        return True

    @property
    def ports(self) -> list[int]:
        return [s.server_address[1] for s in self.servers]


def proxy_config(frontend: int, ports: list[int]) -> str:
    """deploy/swarm/proxy/haproxy.cfg with loopback addresses instead of Swarm's DNS."""
    cfg = (PROXY / "haproxy.cfg").read_text()
    # Without the gRPC frontend and backend (tests/deploy/test_proxy_grpc.py runs them).
    cfg = re.sub(r"\n(frontend|backend) grpc\n.*?\n\n", "\n", cfg, flags=re.S)
    servers = "\n    ".join(f"server api{i} 127.0.0.1:{p}" for i, p in enumerate(ports))
    cfg, n = re.subn(r"server-template api \d+ tasks\.api:3000", servers, cfg)
    assert n == 1, "the backend's server-template line changed: update this test"
    cfg = cfg.replace("resolvers docker init-addr none", "").replace(
        "bind :8080", f"bind 127.0.0.1:{frontend}")
    return re.sub(r"\nlisten stats\n.*", "\n", cfg, flags=re.S)


@pytest.fixture(scope="module")
def proxy(tmp_path_factory) -> Iterator[tuple[int, Replicas]]:
    """HAProxy (the proxy image's binary, this checkout's configuration) on a loopback
    port, in front of two stand-in replicas: (its port, the replicas)."""
    skip_without_docker()
    replicas, port = Replicas(), free_port()
    try:
        with running_proxy(proxy_config(port, replicas.ports), IMAGE,
                           tmp_path_factory.mktemp("proxy")):
            deadline = time.monotonic() + 30
            while _get(port, "/proxy/health") != 200:
                assert time.monotonic() < deadline, "the proxy did not start"
                time.sleep(0.2)
            time.sleep(1.5)  # both replicas checked
            yield port, replicas
    finally:
        for server in replicas.servers:
            server.shutdown()


def _get(port: int, path: str, headers: dict[str, str] | None = None) -> int:
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=5)
    try:
        conn.request("GET", path, headers=headers or {})
        return conn.getresponse().status
    except OSError:
        return 0
    finally:
        conn.close()


def _upload(port: int, size: int) -> tuple[int, bytes] | str:
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
    try:
        conn.request("POST", "/predict", body=b"x" * size,
                     headers={"Content-Type": "application/octet-stream"})
        resp = conn.getresponse()
        return resp.status, resp.read()
    except OSError as exc:  # reset, closed without a response
        return type(exc).__name__
    finally:
        conn.close()


@pytest.mark.parametrize("size", [2_000, PHOTO_BYTES], ids=["small", "photo"])
@pytest.mark.parametrize("read_before_dying", [4096, None], ids=["mid-body", "whole-body"])
def test_an_upload_whose_replica_dies_is_answered_by_another(proxy, size, read_before_dying):
    port, replicas = proxy
    replicas.posts.clear()
    replicas.die = read_before_dying if read_before_dying is not None else size
    assert _upload(port, size) == (200, str(size).encode())
    assert len(replicas.posts) == 2 and len(set(replicas.posts)) == 2  # resent elsewhere


def test_the_request_header_limit_stays_at_16_kib(proxy):
    port, _ = proxy
    assert _get(port, "/readyz", {"X-Big": "a" * 12_000}) == 200
    assert _get(port, "/readyz", {"X-Big": "a" * 20_480}) == 400
