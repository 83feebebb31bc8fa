"""The Open Inference Protocol v2 (KServe v2, Triton's): what KServe, Triton and MLServer
speak, in pure functions that every transport shares (service/routes.py serves REST).

    curl -s http://127.0.0.1:3000/v2/models/mnist_mlp/config          # Triton's model config
    curl -s -H 'Content-Type: application/json' http://127.0.0.1:3000/v2/models/mnist_mlp/infer \\
      -d '{"inputs": [{"name": "pixels", "datatype": "UINT8", "shape": [1, 28, 28],
           "data": [0, 0, ..., 0]}], "outputs": [{"name": "probabilities"}]}'

One input, `pixels`: shape [N, 28, 28], raw intensities 0-255 (the model contract),
datatype FP32 or UINT8. Its data come as JSON (flat or nested) or, with the binary tensor
data extension, as raw little-endian bytes after the JSON (`binary_data_size`). Outputs:
`logits` and `probabilities`, [N, 10] FP32, all of them unless the request names some;
each as JSON or as binary data (`binary_data`, or the request's `binary_data_output`).
A request the protocol or the contract does not allow is a BadRequest (400); an unknown
model or version an UnknownModel (404). Unlike /predict_pixels, a blank image is
inferred: this is a tensor API, and tools such as Triton's perf_analyzer send zeros.
"""

from __future__ import annotations

import itertools
import math
from collections.abc import Collection
from dataclasses import dataclass
from typing import Any

import numpy as np
import pydantic_core

from core.contract import CONTRACT, MODEL_NAME
from service.engine import softmax
from service.errors import BadRequest, UnknownModel, echo
from service.http_input import json_limit

PLATFORM = "onnxruntime_onnx"
# The protocol's datatypes we take, as numpy reads their raw little-endian bytes.
DATATYPES: dict[str, np.dtype[Any]] = {"FP32": np.dtype("<f4"), "UINT8": np.dtype("u1")}
OUTPUTS = (CONTRACT.output_name, "probabilities")
# What GET /v2 lists, and the Triton model-configuration names of our datatypes.
EXTENSIONS = ("binary_tensor_data", "model_configuration")
CONFIG_TYPES = {"FP32": "TYPE_FP32", "UINT8": "TYPE_UINT8"}
# The binary tensor data extension: the JSON's length, before the tensors' bytes.
HEADER_LENGTH = "inference-header-content-length"
BINARY_SIZE, BINARY, BINARY_OUTPUT = "binary_data_size", "binary_data", "binary_data_output"
CLASSIFICATION = "classification"  # an output parameter of an extension we do not serve


def body_limit(max_batch: int) -> int:
    """The largest body a valid inference request can need, in bytes: JSON numbers are
    longer than any binary encoding of them."""
    return json_limit(max_batch * CONTRACT.height * CONTRACT.width)


def _tensor(name: str, dims: list[int]) -> dict[str, Any]:
    return {"name": name, "datatype": "FP32", "shape": [-1, *dims]}


def server_metadata(version: str) -> dict[str, Any]:
    return {"name": "mnist-serve", "version": version, "extensions": list(EXTENSIONS)}


def model_metadata(version: str) -> dict[str, Any]:
    """The real input and outputs, from the contract."""
    return {"name": MODEL_NAME, "versions": [version], "platform": PLATFORM,
            "inputs": [_tensor(CONTRACT.input_name, [CONTRACT.height, CONTRACT.width])],
            "outputs": [_tensor(name, [CONTRACT.num_classes]) for name in OUTPUTS]}


def model_config(version: str, max_batch: int, batch_latency_ms: int) -> dict[str, Any]:
    """Triton's model configuration (the model_configuration extension), as perf_analyzer
    reads it: the batch limit is the service's MNIST_MAX_BATCH; dynamic batching is there
    when the service batches single requests across clients (MNIST_BATCH_MAX_LATENCY_MS:
    BentoML's adaptive dispatcher, which waits only while waiting pays)."""
    config: dict[str, Any] = {
        "name": MODEL_NAME, "versions": [version], "platform": PLATFORM,
        "backend": "onnxruntime", "max_batch_size": max_batch,
        "input": [{"name": CONTRACT.input_name, "data_type": CONFIG_TYPES["FP32"],
                   "dims": [CONTRACT.height, CONTRACT.width]}],
        "output": [{"name": name, "data_type": CONFIG_TYPES["FP32"],
                    "dims": [CONTRACT.num_classes]} for name in OUTPUTS],
    }
    if batch_latency_ms:
        config["dynamic_batching"] = {"max_queue_delay_microseconds": batch_latency_ms * 1000}
    return config


def check_model(name: str, version: str | None, served: str) -> None:
    """UnknownModel (404) for a model or version this server does not serve."""
    if name != MODEL_NAME:
        raise UnknownModel(f"no model {echo(name)}: this server serves {MODEL_NAME!r}")
    if version is not None and version != served:
        raise UnknownModel(f"model {MODEL_NAME!r} has no version {echo(version)}: it serves "
                           f"version {served!r}")


@dataclass(frozen=True)
class InferRequest:
    pixels: np.ndarray  # float32 [N, 28, 28], 0-255
    outputs: tuple[tuple[str, bool], ...]  # (name, as binary data), in the order asked
    id: str | None


def _object(value: Any, what: str) -> dict[str, Any]:
    if not isinstance(value, dict):
        raise BadRequest(f"{what} must be a JSON object")
    return value


def _flag(parameters: Any, key: str, default: bool = False) -> bool:
    """A boolean parameter of a tensor or request (`parameters: {key: true}`)."""
    value = parameters.get(key, default) if isinstance(parameters, dict) else default
    if not isinstance(value, bool):
        raise BadRequest(f"parameter {key!r} must be true or false")
    return value


def _holds_bool(raw: Any) -> bool:
    """Whether a (nested) list holds a JSON true or false: numpy would read [true, 0] as
    [1, 0], integers, while an all-boolean list is refused as what it is."""
    while isinstance(raw, list) and raw and isinstance(raw[0], list):
        raw = list(itertools.chain.from_iterable(raw))
    return isinstance(raw, list) and bool in set(map(type, raw))


def check_header(name: Any, datatype: Any, shape: Any, max_batch: int) -> list[int]:
    """The input's name, datatype and shape against the contract; its shape, checked."""
    if name != CONTRACT.input_name:
        raise BadRequest(f"unknown input {echo(name)}: the model's input is "
                         f"{CONTRACT.input_name!r}")
    if datatype not in DATATYPES:
        raise BadRequest(f"input {name!r}: datatype {echo(datatype)} is not one of "
                         f"{', '.join(DATATYPES)}")
    want = [CONTRACT.height, CONTRACT.width]
    if not (isinstance(shape, list) and len(shape) == 3 and shape[1:] == want
            and all(isinstance(d, int) and not isinstance(d, bool) for d in shape)):
        raise BadRequest(f"input {name!r}: shape {echo(shape)} is not [N, 28, 28]")
    if not 1 <= shape[0] <= max_batch:
        raise BadRequest(f"input {name!r}: batch size {shape[0]} is not within 1..{max_batch}")
    return shape


def pixels_from_raw(datatype: str, shape: list[int], raw: bytes) -> np.ndarray:
    """A checked header's tensor from its raw little-endian bytes (binary tensor data, or
    gRPC's raw_input_contents): float32 [N, 28, 28] 0-255; a byte count that does not fit
    the shape is a BadRequest."""
    dtype, expected = DATATYPES[datatype], math.prod(shape)
    if len(raw) != expected * dtype.itemsize:
        raise BadRequest(f"input {CONTRACT.input_name!r}: {len(raw)} bytes of {datatype} for "
                         f"shape {shape} ({expected * dtype.itemsize} expected)")
    return check_values(np.frombuffer(raw, dtype).reshape(shape))


def pixels_from_json(datatype: str, shape: list[int], raw: Any,
                     may_hold_bools: bool = True) -> np.ndarray:
    """A checked header's tensor from JSON data, flat or nested: float32 [N, 28, 28]."""
    name, expected = CONTRACT.input_name, math.prod(shape)

    def count_mismatch(n: int) -> BadRequest:
        return BadRequest(f"input {name!r}: {n} values for shape {shape} ({expected} expected)")

    # A flat list is counted before numpy converts it: a long wrong one costs nothing.
    if isinstance(raw, list) and raw and not isinstance(raw[0], list) and len(raw) != expected:
        raise count_mismatch(len(raw))
    try:
        data = np.array(raw)
    except ValueError:  # ragged nesting
        raise BadRequest(f"input {name!r}: data is not a regular array") from None
    if data.dtype.kind not in ("iu" if datatype == "UINT8" else "iuf") or data.dtype == bool \
            or (may_hold_bools and _holds_bool(raw)):
        raise BadRequest(f"input {name!r}: data must be "
                         f"{'integers' if datatype == 'UINT8' else 'numbers'}")
    if data.size != expected:
        raise count_mismatch(data.size)
    return check_values(data.reshape(shape))


def check_values(data: np.ndarray) -> np.ndarray:
    """Raw intensities: finite and within the contract's range; as float32."""
    if not np.all(np.isfinite(data)) or data.min() < CONTRACT.pixel_min \
            or data.max() > CONTRACT.pixel_max:
        raise BadRequest(f"input {CONTRACT.input_name!r}: values must be raw intensities "
                         f"{CONTRACT.pixel_min}-{CONTRACT.pixel_max}")
    return data.astype(np.float32)


def _input(tensor: dict[str, Any], binary: bytes, max_batch: int,
           may_hold_bools: bool) -> np.ndarray:
    shape = check_header(tensor.get("name"), tensor.get("datatype"), tensor.get("shape"),
                         max_batch)
    parameters = tensor.get("parameters")
    size = parameters.get(BINARY_SIZE) if isinstance(parameters, dict) else None
    if size is None:
        if binary:
            raise BadRequest(f"{len(binary)} bytes of binary data follow the JSON, but no "
                             f"input declares {BINARY_SIZE!r}")
        return pixels_from_json(tensor["datatype"], shape, tensor.get("data"), may_hold_bools)
    if not isinstance(size, int) or isinstance(size, bool) or size != len(binary):
        raise BadRequest(f"input {CONTRACT.input_name!r}: {BINARY_SIZE} {echo(size)} is not "
                         f"the {len(binary)} bytes that follow the JSON")
    if "data" in tensor:
        raise BadRequest(f"input {CONTRACT.input_name!r} has both JSON data and binary data")
    return pixels_from_raw(tensor["datatype"], shape, binary)


def _outputs(req: dict[str, Any]) -> tuple[tuple[str, bool], ...]:
    default_binary = _flag(req.get("parameters"), BINARY_OUTPUT)
    wanted = req.get("outputs")
    if wanted is None:  # the protocol: every output, in the request's default form
        return tuple((name, default_binary) for name in OUTPUTS)
    if not isinstance(wanted, list) or not wanted:
        raise BadRequest("`outputs`, when given, must list at least one output")
    chosen: dict[str, bool] = {}
    for out in wanted:
        out = _object(out, "an output")
        parameters = out.get("parameters")
        name = check_output(out.get("name"), parameters if isinstance(parameters, dict) else ())
        chosen.setdefault(name, _flag(out.get("parameters"), BINARY, default_binary))
    return tuple(chosen.items())


def check_output(name: Any, parameters: Collection[str] = ()) -> str:
    """A requested output's name: one of the model's outputs, or a BadRequest; so is an
    extension we do not serve (classification: the client would get the tensor instead)."""
    if name not in OUTPUTS:
        raise BadRequest(f"unknown output {echo(name)}: the model's outputs are "
                         f"{', '.join(OUTPUTS)}")
    if CLASSIFICATION in parameters:
        raise BadRequest(f"output {name!r}: the {CLASSIFICATION} extension is not served; "
                         "ask for 'probabilities' and take its top classes")
    return str(name)


def check_id(req_id: Any, max_id_chars: int) -> str | None:
    """A request's `id`, which the answer echoes: a string of at most max_id_chars."""
    if req_id is not None and not isinstance(req_id, str):
        raise BadRequest("`id`, when given, must be a string")
    if req_id is not None and len(req_id) > max_id_chars:
        raise BadRequest(f"`id` is {len(req_id)} characters long: at most {max_id_chars}")
    return req_id


def split_body(body: bytes, header_length: str | None) -> tuple[bytes, bytes]:
    """(the JSON, the binary tensor data after it), as Inference-Header-Content-Length
    divides the body; a length that is not a number within the body is a BadRequest."""
    if header_length is None:
        return body, b""
    if not (header_length.isascii() and header_length.isdigit()) \
            or int(header_length) > len(body):
        raise BadRequest(f"Inference-Header-Content-Length {echo(header_length)} is not a "
                         f"length within the {len(body)}-byte body")
    length = int(header_length)
    return body[:length], body[length:]


def parse_infer(body: bytes, max_batch: int, max_id_chars: int,
                binary: bytes = b"") -> InferRequest:
    """A validated inference request from its JSON and the binary tensor data after it;
    BadRequest (400) for anything the protocol or the contract forbids."""
    try:  # jiter (pydantic's parser): 3x json.loads on large number arrays
        req = _object(pydantic_core.from_json(body), "the request")
    except (ValueError, RecursionError):
        raise BadRequest("the inference request is not valid JSON") from None
    inputs = req.get("inputs")
    if not isinstance(inputs, list) or len(inputs) != 1:
        raise BadRequest(f"`inputs` must list exactly one tensor, {CONTRACT.input_name!r}")
    # Only a body with a JSON true or false in it can have one in its data (C-speed test).
    may_hold_bools = b"true" in body or b"false" in body
    pixels = _input(_object(inputs[0], "inputs[0]"), binary, max_batch, may_hold_bools)
    return InferRequest(pixels, _outputs(req), check_id(req.get("id"), max_id_chars))


def infer_response(req: InferRequest, logits: np.ndarray,
                   version: str) -> tuple[dict[str, Any], bytes]:
    """(the response's JSON, the binary data that follow it: empty when every output is
    JSON). A binary output's bytes come in the order of the outputs."""
    values = {CONTRACT.output_name: logits}
    if any(name == "probabilities" for name, _ in req.outputs):
        values["probabilities"] = softmax(logits)
    outputs, binary = [], []
    for name, as_binary in req.outputs:
        value = values[name].astype("<f4", copy=False)
        out: dict[str, Any] = {"name": name, "datatype": "FP32", "shape": list(value.shape)}
        if as_binary:
            binary.append(value.tobytes())
            out["parameters"] = {BINARY_SIZE: len(binary[-1])}
        else:
            out["data"] = value.ravel().tolist()
        outputs.append(out)
    response: dict[str, Any] = {"model_name": MODEL_NAME, "model_version": version,
                                "outputs": outputs}
    if req.id is not None:
        response["id"] = req.id
    return response, b"".join(binary)
