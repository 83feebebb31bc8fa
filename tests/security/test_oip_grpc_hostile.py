"""Hostile input over gRPC: each a clear status, never a crash, never a stalled worker.

    pytest tests/security/test_oip_grpc_hostile.py

Against a real `bentoml serve` of two workers sharing the gRPC port (SO_REUSEPORT), with
a model store of its own so that its /metrics count only these calls. A shape or byte
count that lies, another dtype, NaN/inf, an unknown model or version, a message that is
not one, a huge message, many calls at once: INVALID_ARGUMENT, NOT_FOUND,
RESOURCE_EXHAUSTED, or an answer, and the server still ready after.
"""

from __future__ import annotations

import re
import shutil
import socket
from concurrent.futures import ThreadPoolExecutor

import grpc
import numpy as np
import psutil
import pytest

from clients import server_process as process
from core.contract import MODEL_NAME
from service.oip_proto import SERVICE, protocol
from tests.helpers import serve_expecting_refusal

pytestmark = pytest.mark.slow
WORKERS = 2
Code = grpc.StatusCode


@pytest.fixture(scope="module")
def served(trained, tmp_path_factory):
    """(the HTTP base URL, the gRPC port, the server process) of a two-worker server."""
    root = tmp_path_factory.mktemp("grpc-hostile")
    shutil.copytree(trained[2] / "models", root / "home" / "models")
    port = process.free_port()
    env = {"BENTOML_HOME": str(root / "home"), "MNIST_WORKERS": str(WORKERS),
           "MNIST_GRPC_PORT": str(port)}
    with open(root / "server.log", "w") as log:
        try:
            with process.serving(log, env=env) as (proc, base):
                yield base, port, proc
        except RuntimeError as exc:
            pytest.fail(f"{exc}:\n{(root / 'server.log').read_text()}")


@pytest.fixture(scope="module")
def channel(served):
    # The client's own send limit lifted: the server's limit is what is under test.
    with grpc.insecure_channel(f"127.0.0.1:{served[1]}",
                               options=[("grpc.max_send_message_length", -1)]) as ch:
        yield ch


def _call(channel, method: str, payload: bytes) -> grpc.StatusCode:
    try:
        channel.unary_unary(f"/{SERVICE}/{method}")(payload, timeout=60)
    except grpc.RpcError as err:
        assert err.details(), err  # every refusal says why
        return err.code()
    return Code.OK


def _infer(datatype="FP32", shape=(1, 28, 28), raw: bytes | None = None, name=MODEL_NAME,
           version="", **fields) -> bytes:
    request = protocol().message("ModelInferRequest")(model_name=name, model_version=version,
                                                      **fields)
    request.inputs.add(name="pixels", datatype=datatype, shape=list(shape))
    request.raw_input_contents.append(raw if raw is not None else bytes(3136))
    return request.SerializeToString()


def _classification() -> bytes:
    """An output asked for as classes: an extension not served."""
    request = protocol().message("ModelInferRequest").FromString(_infer())
    request.outputs.add(name="probabilities").parameters["classification"].int64_param = 3
    return request.SerializeToString()


def _fp32(value: float, n: int = 1) -> bytes:
    return np.full((n, 28, 28), value, "<f4").tobytes()


HOSTILE = {
    "a batch the bytes do not fill": (_infer(shape=(2, 28, 28)), Code.INVALID_ARGUMENT),
    "bytes for another shape": (_infer(shape=(1, 784)), Code.INVALID_ARGUMENT),
    "a batch of 10^12": (_infer(shape=(10**12, 28, 28)), Code.INVALID_ARGUMENT),
    "a negative batch": (_infer(shape=(-1, 28, 28)), Code.INVALID_ARGUMENT),
    "FP32 bytes said to be UINT8": (_infer("UINT8"), Code.INVALID_ARGUMENT),
    "another dtype": (_infer("FP64", raw=bytes(6272)), Code.INVALID_ARGUMENT),
    "NaN": (_infer(raw=_fp32(np.nan)), Code.INVALID_ARGUMENT),
    "inf": (_infer(raw=_fp32(np.inf)), Code.INVALID_ARGUMENT),
    "an unknown model": (_infer(name="resnet50"), Code.NOT_FOUND),
    "an unknown version": (_infer(version="7"), Code.NOT_FOUND),
    "not a message": (b"\xff" * 64, Code.INVALID_ARGUMENT),
    "an id longer than echoed": (_infer(id="x" * 5000), Code.INVALID_ARGUMENT),
    "a huge message": (_infer(raw=bytes(16 * 1024 * 1024)), Code.RESOURCE_EXHAUSTED),
    "an extension not served": (_classification(), Code.INVALID_ARGUMENT),
}


@pytest.mark.parametrize("case", sorted(HOSTILE))
def test_hostile_inference_requests_get_their_status(channel, case):
    payload, code = HOSTILE[case]
    assert _call(channel, "ModelInfer", payload) == code
    assert _call(channel, "ServerReady", b"") == Code.OK


def test_calls_it_does_not_serve_are_unimplemented(channel):
    assert _call(channel, "RepositoryModelLoad", b"") == Code.UNIMPLEMENTED
    assert _call(channel, "ModelStreamInfer", b"") == Code.UNIMPLEMENTED


def test_many_calls_at_once_are_each_answered(channel, served):
    payload = _infer(shape=(256, 28, 28), raw=_fp32(255, 256))
    with ThreadPoolExecutor(64) as pool:
        codes = list(pool.map(lambda _: _call(channel, "ModelInfer", payload), range(128)))
    # Each an answer, or the batcher's 503 (its latency budget spent): UNAVAILABLE.
    assert set(codes) <= {Code.OK, Code.UNAVAILABLE} and Code.OK in codes, set(codes)
    assert process.http_get(served[0] + "/readyz")[0] == 200
    assert _call(channel, "ModelInfer", _infer()) == Code.OK


def test_every_worker_listens_on_the_port_on_the_http_host_only(served):
    _, port, proc = served
    workers = psutil.Process(proc.pid).children(recursive=True)
    listening = [conn.laddr.ip for worker in workers
                 for conn in worker.net_connections("inet")
                 if conn.status == psutil.CONN_LISTEN and conn.laddr.port == port]
    assert len(listening) == WORKERS, listening
    assert set(listening) <= {"127.0.0.1", "::ffff:127.0.0.1"}  # loopback stays loopback


COUNT = re.compile(r'request_total\{endpoint="(grpc:[^"]+)",http_response_code="([^"]+)"'
                   r'[^}]*\} ([0-9.]+)')


def _grpc_counts(base: str) -> dict[tuple[str, str], float]:
    status, body = process.http_get(base + "/metrics")
    assert status == 200
    return {(endpoint, code): float(n) for endpoint, code, n in COUNT.findall(body.decode())}


def test_grpc_calls_are_counted_with_bounded_labels(channel, served):
    before = _grpc_counts(served[0])
    for _ in range(3):
        assert _call(channel, "ModelInfer", _infer()) == Code.OK
    assert _call(channel, "ModelInfer", _infer(raw=_fp32(np.nan))) == Code.INVALID_ARGUMENT
    assert _call(channel, "ModelReady", b"\n\x05other") == Code.NOT_FOUND
    after = _grpc_counts(served[0])
    grown = {key: n - before.get(key, 0) for key, n in after.items() if n != before.get(key)}
    assert grown == {("grpc:ModelInfer", "OK"): 3, ("grpc:ModelInfer", "INVALID_ARGUMENT"): 1,
                     ("grpc:ModelReady", "NOT_FOUND"): 1}
    # Labels from fixed sets: the service's methods, gRPC's status names.
    assert {endpoint for endpoint, _ in after} <= {f"grpc:{m}" for m in protocol().methods}
    assert {code for _, code in after} <= {code.name for code in Code}


def test_a_grpc_port_already_taken_is_one_line_and_exit_1(trained):
    """Not workers that would share it (SO_REUSEPORT) or fail to bind, one by one."""
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        code, out = serve_expecting_refusal({"BENTOML_HOME": str(trained[2]),
                                             "MNIST_GRPC_PORT": str(port)})
    lines = [line for line in out.splitlines() if line.strip()]
    assert code == 1 and len(lines) == 1, out
    assert lines[0].startswith(f"mnist service cannot start: MNIST_GRPC_PORT {port} "), out
