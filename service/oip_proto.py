"""The Open Inference Protocol's gRPC messages, built from service/proto/ when asked for.

    python -c "from service.oip_proto import protocol; print(sorted(protocol().methods))"

protoc (grpcio-tools) compiles the .proto files into a FileDescriptorSet, which is loaded
into a descriptor pool of this module's own, and the message classes are made from that
pool: nothing generated is kept or edited. Not protobuf's default pool: tritonclient's
generated modules (KServe's too) register the same `inference.*` names there, and a
second registration fails with "duplicate symbol" in any process that holds both.
"""

from __future__ import annotations

import functools
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from google.protobuf import descriptor_pb2, descriptor_pool, message_factory
from grpc_tools import protoc

PROTO_DIR = Path(__file__).with_name("proto")
PROTO_FILE = "grpc_predict_v2.proto"  # imports the others of PROTO_DIR
PACKAGE = "inference"
SERVICE = f"{PACKAGE}.GRPCInferenceService"


def compile_protos(folder: Path = PROTO_DIR,
                   proto: str = PROTO_FILE) -> descriptor_pb2.FileDescriptorSet:
    """`proto` and every file it imports, compiled by protoc into descriptors."""
    with tempfile.TemporaryDirectory(prefix="mnist-proto-") as tmp:
        out = Path(tmp) / "descriptors.pb"
        code = protoc.main(["protoc", f"--proto_path={folder}", "--include_imports",
                            f"--descriptor_set_out={out}", proto])
        if code != 0:  # protoc has said why on stderr
            raise RuntimeError(f"protoc could not compile {folder / proto} (exit {code})")
        return descriptor_pb2.FileDescriptorSet.FromString(out.read_bytes())


@dataclass(frozen=True)
class Protocol:
    """The service's descriptors in their own pool, and the message classes made from it."""

    pool: descriptor_pool.DescriptorPool

    def message(self, name: str) -> Any:
        """The class of message `name` (in the package: "ModelInferRequest")."""
        return message_factory.GetMessageClass(
            self.pool.FindMessageTypeByName(f"{PACKAGE}.{name}"))

    @property
    def methods(self) -> dict[str, tuple[Any, Any]]:
        """Each RPC of the service: its name -> (request class, response class)."""
        service = self.pool.FindServiceByName(SERVICE)
        return {m.name: (message_factory.GetMessageClass(m.input_type),
                         message_factory.GetMessageClass(m.output_type))
                for m in service.methods}


@functools.cache
def protocol() -> Protocol:
    """The protocol, compiled once per process."""
    pool = descriptor_pool.DescriptorPool()
    for file in compile_protos().file:
        pool.Add(file)
    return Protocol(pool)
