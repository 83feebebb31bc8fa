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

import re
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from clients.server_process import free_port
from core.contract import MODEL_NAME
from tests.deploy.proxy_image import PROXY, running_proxy, skip_without_docker
from tests.helpers import ROOT

pytestmark = pytest.mark.slow

IMAGE = "mnist-proxy:grpc-test"
BIG_METADATA_BYTES = 20 * 1024  # over the proxy's header limit (under the stand-in's)


class Replica:
    """A stand-in replica (tests/deploy/standin_replica.py) in a process of its own: its
    name, which ModelInfer answers as the model version; its ports; `ready`, which
    /readyz follows."""

    def __init__(self, name: str, folder: Path) -> None:
        self.name, self.down = name, folder / f"{name}.down"
        self.proc = subprocess.Popen([sys.executable, "-m", "tests.deploy.standin_replica",
                                      name, str(self.down)], cwd=ROOT, text=True,
                                     stdin=subprocess.PIPE, stdout=subprocess.PIPE)
        assert self.proc.stdout
        self.http_port, self.grpc_port = map(int, self.proc.stdout.readline().split())

    @property
    def ready(self) -> bool:
        return not self.down.exists()

    @ready.setter
    def ready(self, ready: bool) -> None:
        if ready:
            self.down.unlink(missing_ok=True)
        else:
            self.down.touch()

    def stop(self) -> None:
        self.proc.communicate(timeout=30)  # closes its stdin: it exits


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
    folder = tmp_path_factory.mktemp("proxy")
    replicas = [Replica("r0", folder), Replica("r1", folder)]
    http_port, grpc_port = free_port(), free_port()
    address = f"127.0.0.1:{grpc_port}"
    try:
        with running_proxy(proxy_config(http_port, grpc_port, replicas), IMAGE,
                           folder) as name:
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
