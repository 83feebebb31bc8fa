"""The Open Inference Protocol over gRPC (`inference.GRPCInferenceService`), served by every
worker of `bentoml serve` beside its HTTP server: the same model, batcher, limits and metrics.

    MNIST_GRPC_PORT=8001 bentoml serve service.service:MNISTService --host 127.0.0.1
    python -c "import tritonclient.grpc as g; \\
      print(g.InferenceServerClient('127.0.0.1:8001').is_server_ready())"

BentoML's service API serves no gRPC, so each worker starts a grpc.aio server on its own
event loop (service/service.py's start-up hook) on MNIST_GRPC_PORT, bound to the host of
its HTTP socket; the workers share the port through SO_REUSEPORT, the kernel spreading
connections among them. Each call delegates to service/oip.py, the protocol every transport
shares, and ModelInfer to the service's logits(): the worker's adaptive batcher, as over
REST, with no thread pool of its own. Outputs come as raw_output_contents. A ServiceError
becomes its gRPC status (GRPC_STATUS); a message larger than any valid request is refused
by grpc before it is read whole (RESOURCE_EXHAUSTED).
"""

from __future__ import annotations

import asyncio
import logging
import os
import socket
import sys
from collections.abc import Awaitable, Callable
from typing import Any

import grpc
import numpy as np
from google.protobuf import json_format
from google.protobuf.message import DecodeError

from core.contract import CONTRACT
from service import oip
from service.drain import DrainMarker
from service.errors import (
    BadRequest,
    BodyTimeout,
    Busy,
    ClientGone,
    FeedbackUnavailable,
    InputError,
    MethodNotAllowed,
    NoRoute,
    Overloaded,
    ServiceError,
    TooLarge,
    Unexpected,
    UnknownModel,
    Unprocessable,
    UnsupportedMedia,
)
from service.metrics import measured
from service.oip_proto import SERVICE, Protocol, protocol
from service.oip_routes import package_version
from service.served import Served
from service.settings import Settings

log = logging.getLogger("mnist_service")

Code = grpc.StatusCode
# Every error the service names, as a gRPC status: tests/service/test_oip_grpc.py checks
# that each ServiceError type is here.
GRPC_STATUS: dict[type[ServiceError], grpc.StatusCode] = {
    ServiceError: Code.INTERNAL,
    InputError: Code.INVALID_ARGUMENT,
    BadRequest: Code.INVALID_ARGUMENT,
    UnknownModel: Code.NOT_FOUND,
    BodyTimeout: Code.DEADLINE_EXCEEDED,
    TooLarge: Code.RESOURCE_EXHAUSTED,
    UnsupportedMedia: Code.INVALID_ARGUMENT,
    Unprocessable: Code.INVALID_ARGUMENT,
    NoRoute: Code.UNIMPLEMENTED,
    MethodNotAllowed: Code.UNIMPLEMENTED,
    ClientGone: Code.CANCELLED,
    Unexpected: Code.INTERNAL,
    Busy: Code.UNAVAILABLE,
    Overloaded: Code.UNAVAILABLE,
    FeedbackUnavailable: Code.UNAVAILABLE,
}
# Where InferTensorContents carries each datatype of oip.DATATYPES (the protocol puts
# UINT8, UINT16 and UINT32 in uint_contents).
CONTENTS = {"FP32": "fp32_contents", "UINT8": "uint_contents"}


def status_of(exc: ServiceError) -> grpc.StatusCode:
    """The gRPC status of a ServiceError: its own type's, or its nearest base's."""
    return next(GRPC_STATUS[cls] for cls in type(exc).__mro__ if cls in GRPC_STATUS)


def max_message_bytes(limits: Settings) -> int:
    """The largest request grpc reads: a REST body's limit (MNIST_MAX_BODY_BYTES), or less
    where no valid request can be that large (the JSON form of the largest batch, larger
    than any protobuf encoding of it)."""
    return min(limits.max_body_bytes, oip.body_limit(limits.max_batch))


def pixels_of(request: Any, max_batch: int) -> np.ndarray:
    """A ModelInferRequest's one input as float32 [N, 28, 28], from raw_input_contents or
    from the typed contents of its datatype; a BadRequest for anything else."""
    if len(request.inputs) != 1:
        raise BadRequest(f"`inputs` must list exactly one tensor, {CONTRACT.input_name!r}")
    tensor = request.inputs[0]
    shape = oip.check_header(tensor.name, tensor.datatype, list(tensor.shape), max_batch)
    raw, field = request.raw_input_contents, CONTENTS[tensor.datatype]
    typed = [described.name for described, _ in tensor.contents.ListFields()]
    if raw and not typed:
        if len(raw) != 1:
            raise BadRequest(f"raw_input_contents holds {len(raw)} entries: one per input "
                             "(1) expected")
        return oip.pixels_from_raw(tensor.datatype, shape, raw[0])
    if raw or typed != [field]:
        raise BadRequest(f"input {CONTRACT.input_name!r}: {tensor.datatype} data come in "
                         f"raw_input_contents or in contents.{field}, one of them")
    values = list(getattr(tensor.contents, field))
    return oip.pixels_from_json(tensor.datatype, shape, values, may_hold_bools=False)


class Calls:
    """The RPCs, each from its parsed request to its response message: the protocol from
    service/oip.py, the model from the service."""

    def __init__(self, service: Served, proto: Protocol) -> None:
        self.service, self.proto = service, proto
        self.drain = DrainMarker()

    def _served_version(self, name: str, version: str) -> str:
        """The served version, once the request names the served model (NOT_FOUND else)."""
        served = self.service.model_version
        oip.check_model(name, version or None, served)  # "": the server's choice
        return served

    async def ServerLive(self, _: Any) -> Any:
        return self.proto.message("ServerLiveResponse")(live=True)

    async def ServerReady(self, _: Any) -> Any:
        # Not ready while the supervisor drains (service/drain.py), as /readyz.
        return self.proto.message("ServerReadyResponse")(ready=not self.drain.draining())

    async def ModelReady(self, request: Any) -> Any:
        self._served_version(request.name, request.version)
        return self.proto.message("ModelReadyResponse")(ready=True)

    async def ServerMetadata(self, _: Any) -> Any:
        return json_format.ParseDict(oip.server_metadata(package_version()),
                                     self.proto.message("ServerMetadataResponse")())

    async def ModelMetadata(self, request: Any) -> Any:
        version = self._served_version(request.name, request.version)
        return json_format.ParseDict(oip.model_metadata(version),
                                     self.proto.message("ModelMetadataResponse")())

    async def ModelConfig(self, request: Any) -> Any:
        version = self._served_version(request.name, request.version)
        limits = self.service.settings
        config = oip.model_config(version, limits.max_batch, limits.batch_max_latency_ms)
        # Triton's ModelConfig has no `versions` (REST's answer names them beside it).
        message = json_format.ParseDict(config, self.proto.message("ModelConfig")(),
                                        ignore_unknown_fields=True)
        return self.proto.message("ModelConfigResponse")(config=message)

    async def ModelInfer(self, request: Any) -> Any:
        version = self._served_version(request.model_name, request.model_version)
        limits = self.service.settings
        pixels = pixels_of(request, limits.max_batch)
        names = [oip.check_output(out.name, out.parameters)
                 for out in request.outputs] or oip.OUTPUTS
        asked = oip.InferRequest(pixels, tuple((name, True) for name in dict.fromkeys(names)),
                                 oip.check_id(request.id, limits.oip_max_id_chars) or None)
        answer, raw = oip.infer_response(asked, await self.service.logits(pixels), version)
        response = self.proto.message("ModelInferResponse")(
            model_name=answer["model_name"], model_version=version, id=request.id)
        offset = 0
        for out in answer["outputs"]:  # every output binary: its bytes, in order
            size = out["parameters"][oip.BINARY_SIZE]
            response.outputs.add(name=out["name"], datatype=out["datatype"],
                                 shape=out["shape"])
            response.raw_output_contents.append(raw[offset:offset + size])
            offset += size
        return response


Call = Callable[[Any], Awaitable[Any]]


def _parsed(request_class: Any, raw: bytes) -> Any:
    try:
        return request_class.FromString(raw)
    except DecodeError:
        raise BadRequest(f"the request is not a valid "
                         f"{request_class.DESCRIPTOR.full_name} message") from None


def _handler(name: str, call: Call, request_class: Any, timeout_s: float) -> Any:
    """One RPC as grpc calls it: parsed here (a message that is not one is an
    INVALID_ARGUMENT, not grpc's INTERNAL), timed out as HTTP requests are
    (MNIST_TIMEOUT_S), its ServiceError as its status, and measured in the request
    metrics as `grpc:<name>`."""

    async def handle(raw: bytes, context: grpc.aio.ServicerContext) -> bytes:
        with measured(f"grpc:{name}", failed=Code.UNKNOWN.name) as outcome:
            try:
                async with asyncio.timeout(timeout_s):
                    response = await call(_parsed(request_class, raw))
            except ServiceError as exc:
                code, details = status_of(exc), exc.message
            except TimeoutError:
                code, details = Code.DEADLINE_EXCEEDED, f"no answer within {timeout_s:g} s"
            except asyncio.CancelledError:  # the client went away, or cancelled
                outcome.code = Code.CANCELLED.name
                raise
            except Exception:  # a bug: logged, answered without its details
                log.exception("gRPC %s failed", name)
                code, details = Code.INTERNAL, "internal error"
            else:
                outcome.code = Code.OK.name
                return bytes(response.SerializeToString())
            outcome.code = code.name
            await context.abort(code, details)
            raise AssertionError("unreachable: abort raises")

    # No deserializer: the handler parses, so that a bad message is the client's error.
    return grpc.unary_unary_rpc_method_handler(
        handle, response_serializer=None, request_deserializer=None)


def service_handler(service: Served, proto: Protocol) -> grpc.GenericRpcHandler:
    """Every RPC the protocol declares, handled by Calls; others are UNIMPLEMENTED."""
    calls, timeout_s = Calls(service, proto), service.settings.timeout_s
    return grpc.method_handlers_generic_handler(SERVICE, {
        name: _handler(name, getattr(calls, name), request_class, timeout_s)
        for name, (request_class, _) in proto.methods.items()})


def http_host(argv: list[str] | None = None) -> str:
    """The host this worker's HTTP socket is bound to: `bentoml serve --host`.

    BentoML hands --host to the serving process alone: a worker's configuration says
    0.0.0.0 whatever it was. The truth is the listening socket itself, which each worker
    inherits as the file descriptor after `--fd` on its command line."""
    argv = sys.argv if argv is None else argv
    fd = int(argv[argv.index("--fd") + 1])
    with socket.socket(fileno=os.dup(fd)) as sock:
        return str(sock.getsockname()[0])


def address(host: str, port: int) -> str:
    return f"[{host}]:{port}" if ":" in host else f"{host}:{port}"


def check_port(port: int) -> None:
    """An OSError when something listens on `port` already (on any address): with
    SO_REUSEPORT, the workers' binds would share it with that process, or fail."""
    with socket.socket() as probe:
        probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)  # TIME_WAIT is fine
        probe.bind(("0.0.0.0", port))


async def start(service: Served, host: str, port: int) -> grpc.aio.Server:
    """The gRPC server of this worker, on its event loop, serving on host:port."""
    server = grpc.aio.server(options=[
        ("grpc.max_receive_message_length", max_message_bytes(service.settings)),
        ("grpc.so_reuseport", 1),  # every worker binds the same port
    ])
    server.add_generic_rpc_handlers((service_handler(service, protocol()),))
    if not server.add_insecure_port(address(host, port)):  # older grpc: 0, not an error
        raise RuntimeError(f"gRPC could not bind {address(host, port)}")
    await server.start()
    log.info("serving the Open Inference Protocol over gRPC on %s", address(host, port))
    return server
