"""A stand-in api replica for the proxy's gRPC test: /readyz over HTTP, and the Open
Inference Protocol's gRPC service, each on a free loopback port.

    python -m tests.deploy.standin_replica NAME DOWN_FILE   # prints "HTTP_PORT GRPC_PORT"

/readyz answers 200, or 503 while DOWN_FILE exists (a draining replica). ModelInfer
answers with NAME as the model version, so that a test sees which replica a call
reached; ModelReady of any other model than ours is NOT_FOUND. It runs in a process of
its own: the test suite imports Locust, whose gevent patches would stall a gRPC server
run in the tests' process.
"""

from __future__ import annotations

import http.server
import sys
import threading
from concurrent import futures
from pathlib import Path

import grpc
from tritonclient.grpc import service_pb2, service_pb2_grpc

from core.contract import MODEL_NAME

MAX_METADATA_BYTES = 64 * 1024  # gRPC's default is 8 KiB: the proxy's limit is tested


class Servicer(service_pb2_grpc.GRPCInferenceServiceServicer):
    def __init__(self, name: str) -> None:
        self.name = name

    def ServerReady(self, request, context):  # noqa: N802  (the protocol's names)
        return service_pb2.ServerReadyResponse(ready=True)

    def ModelReady(self, request, context):  # noqa: N802
        if request.name != MODEL_NAME:
            context.abort(grpc.StatusCode.NOT_FOUND, f"unknown model {request.name!r}")
        return service_pb2.ModelReadyResponse(ready=True)

    def ModelInfer(self, request, context):  # noqa: N802
        return service_pb2.ModelInferResponse(model_name=request.model_name,
                                              model_version=self.name, id=request.id)


def readyz(down: Path) -> type[http.server.BaseHTTPRequestHandler]:
    class Handler(http.server.BaseHTTPRequestHandler):
        def do_GET(self) -> None:  # noqa: N802  (the stdlib's name)
            ok = self.path == "/readyz" and not down.exists()
            self.send_response(200 if ok else 503)
            self.send_header("Content-Length", "0")
            self.end_headers()

        def log_message(self, *args) -> None:
            """Checks come every second: no line for each."""

    return Handler


def main(argv: list[str]) -> None:
    name, down = argv[0], Path(argv[1])
    server = grpc.server(futures.ThreadPoolExecutor(max_workers=4),
                         options=[("grpc.max_metadata_size", MAX_METADATA_BYTES)])
    service_pb2_grpc.add_GRPCInferenceServiceServicer_to_server(Servicer(name), server)
    grpc_port = server.add_insecure_port("127.0.0.1:0")
    server.start()
    http_server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), readyz(down))
    threading.Thread(target=http_server.serve_forever, daemon=True).start()
    print(http_server.server_address[1], grpc_port, flush=True)
    sys.stdin.read()  # until the test closes our stdin (or ends)


if __name__ == "__main__":
    main(sys.argv[1:])
