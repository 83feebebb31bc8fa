"""The KServe Python SDK against a running service, as a new user calls it: liveness,
readiness, model readiness, metadata and inference, over REST (protocol v2) or gRPC.

    .venv-kserve/bin/python tests/service/kserve_client.py request.json   # JSON on stdout

Run by tests/service/test_oip_clients.py with the python of the SDK's own venv (make
kserve-venv): it imports the SDK, numpy and the standard library, nothing of the project.
request.json: {"transport": "rest" or "grpc", "url": the server's, "model": its name,
"input": the input's name, "digits": an .npy file of FP32 [N, 28, 28] raw intensities}.
The answer: what each call returned, and every output as {"shape", "data"}.
"""

from __future__ import annotations

import asyncio
import json
import sys
from typing import Any

import kserve
import numpy as np


def _request(job: dict[str, Any]) -> kserve.InferRequest:
    """Every output, with the SDK's defaults: binary tensor data in, as it sends them."""
    digits = np.load(job["digits"])
    pixels = kserve.InferInput(job["input"], list(digits.shape), "FP32")
    pixels.set_data_from_numpy(digits)  # binary_data=True: the SDK's default
    return kserve.InferRequest(job["model"], [pixels])


def _outputs(result: kserve.InferResponse) -> dict[str, Any]:
    return {out.name: {"shape": list(out.shape), "data": out.as_numpy().tolist()}
            for out in result.outputs}


async def over_rest(job: dict[str, Any]) -> dict[str, Any]:
    """The SDK's REST client, protocol v2. It has no metadata call: none is made."""
    url, model = job["url"], job["model"]
    async with kserve.InferenceRESTClient(kserve.RESTConfig(protocol="v2")) as client:
        answer = {"live": await client.is_server_live(url),
                  "ready": await client.is_server_ready(url),
                  "model_ready": await client.is_model_ready(url, model)}
        result = await client.infer(url, _request(job), model_name=model)
    return {**answer, "model_name": result.model_name, "outputs": _outputs(result)}


async def _grpc_metadata(url: str, model: str) -> dict[str, Any]:
    """Server and model metadata through the stub the SDK ships: its client has no call
    for them."""
    import grpc
    from google.protobuf.json_format import MessageToDict
    from kserve.protocol.grpc import grpc_predict_v2_pb2 as pb
    from kserve.protocol.grpc.grpc_predict_v2_pb2_grpc import GRPCInferenceServiceStub

    async with grpc.aio.insecure_channel(url) as channel:
        stub = GRPCInferenceServiceStub(channel)
        server = await stub.ServerMetadata(pb.ServerMetadataRequest(), timeout=30)
        meta = await stub.ModelMetadata(pb.ModelMetadataRequest(name=model), timeout=30)
    return {"server": MessageToDict(server, preserving_proto_field_name=True),
            "model": MessageToDict(meta, preserving_proto_field_name=True)}


async def over_grpc(job: dict[str, Any]) -> dict[str, Any]:
    """The SDK's gRPC client, with its defaults (raw tensor contents both ways)."""
    url, model = job["url"], job["model"]
    async with kserve.InferenceGRPCClient(url) as client:
        answer = {"live": await client.is_server_live(),
                  "ready": await client.is_server_ready(),
                  "model_ready": await client.is_model_ready(model)}
        result = await client.infer(_request(job))
    return {**answer, "metadata": await _grpc_metadata(url, model),
            "model_name": result.model_name, "outputs": _outputs(result)}


def main(path: str) -> None:
    with open(path) as f:
        job = json.load(f)
    transport = {"rest": over_rest, "grpc": over_grpc}[job["transport"]]
    print(json.dumps(asyncio.run(transport(job))))


if __name__ == "__main__":
    main(sys.argv[1])
