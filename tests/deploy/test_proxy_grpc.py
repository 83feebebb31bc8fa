"""The Swarm proxy carries the Open Inference Protocol's gRPC service to the replicas.

    pytest tests/deploy/test_proxy_grpc.py      # needs Docker: HAProxy runs from its image

The real deploy/swarm/proxy/haproxy.cfg runs (the proxy image's HAProxy, host network)
in front of two stand-in replicas on loopback, each an HTTP server answering /readyz and
a gRPC server with the OIP service. Triton's gRPC client, pointed at the proxy's gRPC
port, must reach them over plaintext HTTP/2; the gRPC pool must follow the replicas'
/readyz checked over HTTP/1.1 on their HTTP port (as a draining replica fails it);
a call's status, sent in HTTP/2 trailers, must come back through the proxy; and the
header limit of the HTTP frontend must hold on the gRPC one too.
"""

from __future__ import annotations

import http.server
import re
import subprocess
import threading
import time
from collections.abc import Iterator
from concurrent import futures
from dataclasses import dataclass, field

import pytest

from clients.server_process import free_port
from core.contract import MODEL_NAME
from tests.deploy.proxy_image import PROXY, running_proxy, skip_without_docker

pytestmark = pytest.mark.slow

IMAGE = "mnist-proxy:grpc-test"
BIG_METADATA_BYTES = 20 * 1024  # over the proxy's header limit


@dataclass
class Replica:
    """One stand-in replica: /readyz on HTTP (200, or 503 while `ready` is False) and the
    OIP gRPC service, whose ModelInfer answers with this replica's name as the model
    version (so that a test sees which replica a call reached)."""

    name: str
    ready: bool = True
    calls: list[str] = field(default_factory=list)

    def __post_init__(self) -> None:
        self.http = http.server.ThreadingHTTPServer(("127.0.0.1", 0), self._readyz())
        threading.Thread(target=self.http.serve_forever, daemon=True).start()
        self.grpc, self.grpc_port = self._grpc_server()

    def _readyz(self) -> type[http.server.BaseHTTPRequestHandler]:
        replica = self

        class Handler(http.server.BaseHTTPRequestHandler):
            def do_GET(self) -> None:  # noqa: N802  (the stdlib's name)
                ok = self.path == "/readyz" and replica.ready
                self.send_response(200 if ok else 503)
                self.send_header("Content-Length", "0")
                self.end_headers()

            def log_message(self, *args) -> None:
                """Checks come every second: no line for each."""

        return Handler

    def _grpc_server(self):
        import grpc
        from tritonclient.grpc import service_pb2, service_pb2_grpc

        replica = self

        class Servicer(service_pb2_grpc.GRPCInferenceServiceServicer):
            def ServerReady(self, request, context):  # noqa: N802  (the protocol's names)
                return service_pb2.ServerReadyResponse(ready=True)

            def ModelReady(self, request, context):  # noqa: N802
                if request.name != MODEL_NAME:
                    context.abort(grpc.StatusCode.NOT_FOUND, f"unknown model {request.name!r}")
                return service_pb2.ModelReadyResponse(ready=True)

            def ModelInfer(self, request, context):  # noqa: N802
                replica.calls.append(request.id)
                return service_pb2.ModelInferResponse(
                    model_name=request.model_name, model_version=replica.name, id=request.id)

        # Metadata up to 64 KiB (gRPC's default is 8 KiB): the proxy's limit is tested.
        server = grpc.server(futures.ThreadPoolExecutor(max_workers=4),
                             options=[("grpc.max_metadata_size", 64 * 1024)])
        service_pb2_grpc.add_GRPCInferenceServiceServicer_to_server(Servicer(), server)
        port = server.add_insecure_port("127.0.0.1:0")
        server.start()
        return server, port

    @property
    def http_port(self) -> int:
        return int(self.http.server_address[1])

    def stop(self) -> None:
        self.grpc.stop(0)
        self.http.shutdown()


def proxy_config(http_port: int, grpc_port: int, replicas: list[Replica]) -> str:
    """deploy/swarm/proxy/haproxy.cfg on loopback: the frontends on the given ports, the
    replicas' addresses instead of Swarm's DNS (each gRPC server checked on its own
    replica's HTTP port), without the stats listener."""
    cfg = (PROXY / "haproxy.cfg").read_text()
    http_servers = "\n    ".join(f"server api{i} 127.0.0.1:{r.http_port}"
                                   for i, r in enumerate(replicas))
    grpc_servers = "\n    ".join(f"server grpc{i} 127.0.0.1:{r.grpc_port} port {r.http_port}"
                                   for i, r in enumerate(replicas))
    for pattern, replacement in (
            (r"server-template api \d+ tasks\.api:\d+", http_servers),
            (r"server-template grpc \d+ tasks\.api:\d+", grpc_servers),
            (r"bind :8080\b", f"bind 127.0.0.1:{http_port}"),
            (r"bind :8001 proto h2", f"bind 127.0.0.1:{grpc_port} proto h2"),
            (r" resolvers docker init-addr none", ""),
            (r"\nlisten stats\n.*", "\n")):
        cfg, n = re.subn(pattern, replacement, cfg, flags=re.S)
        assert n, f"{pattern!r} is no longer in haproxy.cfg: update this test"
    return cfg


@pytest.fixture(scope="module")
def proxy(tmp_path_factory) -> Iterator[tuple[str, list[Replica]]]:
    """HAProxy (the proxy image's binary, this checkout's configuration) in front of two
    stand-in replicas: (its gRPC address, the replicas)."""
    pytest.importorskip("tritonclient.grpc", reason="tritonclient[grpc] is not installed")
    skip_without_docker()
    replicas = [Replica("r0"), Replica("r1")]
    http_port, grpc_port = free_port(), free_port()
    address = f"127.0.0.1:{grpc_port}"
    try:
        with running_proxy(proxy_config(http_port, grpc_port, replicas), IMAGE,
                           tmp_path_factory.mktemp("proxy")) as name:
            try:
                _wait_until_both_serve(address, replicas)
                yield address, replicas
            finally:
                logs = subprocess.run(["docker", "logs", "--tail", "40", name],
                                      capture_output=True, text=True)
                print(logs.stdout + logs.stderr)  # shown when a test failed
    finally:
        for replica in replicas:
            replica.stop()


def _infer(address: str, n: int) -> list[str]:
    """n ModelInfer calls through the proxy: the replica that answered each."""
    import numpy as np
    import tritonclient.grpc as grpcclient

    client = grpcclient.InferenceServerClient(address)
    pixels = grpcclient.InferInput("pixels", [1, 28, 28], "FP32")
    pixels.set_data_from_numpy(np.zeros((1, 28, 28), np.float32))
    try:
        return [client.infer(MODEL_NAME, [pixels], request_id=str(i)).get_response()
                .model_version for i in range(n)]
    finally:
        client.close()


def _wait_until_both_serve(address: str, replicas: list[Replica], timeout: float = 30) -> None:
    """Until the proxy is up and has checked both replicas ready (rise 2)."""
    from tritonclient.utils import InferenceServerException

    deadline = time.monotonic() + timeout
    while True:
        try:
            if set(_infer(address, 8)) == {r.name for r in replicas}:
                return
        except InferenceServerException:
            pass
        assert time.monotonic() < deadline, "the proxy did not route to both replicas"
        time.sleep(0.5)


def test_grpc_calls_reach_every_ready_replica_over_http2(proxy):
    import tritonclient.grpc as grpcclient

    address, replicas = proxy
    client = grpcclient.InferenceServerClient(address)
    assert client.is_server_ready()
    client.close()
    assert set(_infer(address, 20)) == {r.name for r in replicas}


def test_a_replica_failing_readyz_leaves_the_grpc_pool(proxy):
    """Its gRPC server still answers: only the HTTP check can have taken it out."""
    address, replicas = proxy
    replicas[0].ready = False
    try:
        time.sleep(2.5)  # fall 1 at inter 1s, with a check under way
        assert set(_infer(address, 20)) == {replicas[1].name}
    finally:
        replicas[0].ready = True
        _wait_until_both_serve(address, replicas)


def test_a_calls_status_comes_back_through_the_proxy(proxy):
    """gRPC sends its status in HTTP/2 trailers: NOT_FOUND must reach the client."""
    import tritonclient.grpc as grpcclient
    from tritonclient.utils import InferenceServerException

    client = grpcclient.InferenceServerClient(proxy[0])
    with pytest.raises(InferenceServerException) as error:
        client.is_model_ready("no_such_model")
    client.close()
    assert error.value.status() == "StatusCode.NOT_FOUND"
    assert "no_such_model" in error.value.message()


def test_the_header_limit_holds_on_the_grpc_frontend(proxy):
    import tritonclient.grpc as grpcclient
    from tritonclient.utils import InferenceServerException

    client = grpcclient.InferenceServerClient(proxy[0])
    assert client.is_server_ready(headers={"x-big": "a" * 12_000})
    with pytest.raises(InferenceServerException) as error:
        client.is_server_ready(headers={"x-big": "a" * BIG_METADATA_BYTES})
    client.close()
    # The proxy's 400, as gRPC maps an HTTP status that is not 200.
    assert error.value.status() == "StatusCode.INTERNAL"
    assert error.value.message().endswith("status: 400")
