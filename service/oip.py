"""The Open Inference Protocol v2 (KServe v2, REST): what KServe, Triton and MLServer speak.

    curl -s http://127.0.0.1:3000/v2/models/mnist_mlp                 # model metadata
    curl -s -H 'Content-Type: application/json' http://127.0.0.1:3000/v2/models/mnist_mlp/infer \\
      -d '{"inputs": [{"name": "pixels", "datatype": "UINT8", "shape": [1, 28, 28],
           "data": [0, 0, ..., 0]}], "outputs": [{"name": "probabilities"}]}'

The protocol in pure functions (service/routes.py serves them). One input, `pixels`:
shape [N, 28, 28], raw intensities 0-255 (the model contract), datatype FP32 or UINT8,
in the JSON tensor encoding (flat or nested). Outputs: `logits` [N, 10] FP32 by default,
`probabilities` when asked for. A request the protocol does not allow is a 400 with the
protocol's `{"error": "..."}` body. Unlike /predict_pixels, a blank image is inferred:
this is a tensor API, and tools such as Triton's perf_analyzer send zeros.
"""

from __future__ import annotations

import itertools
import math
from dataclasses import dataclass
from typing import Any

import numpy as np
import pydantic_core

from core.contract import CONTRACT, MODEL_NAME
from service.engine import softmax
from service.errors import BadRequest, echo
from service.http_input import json_limit

PLATFORM = "onnxruntime_onnx"
DATATYPES = ("FP32", "UINT8")
OUTPUTS = (CONTRACT.output_name, "probabilities")


def body_limit(max_batch: int) -> int:
    """The largest body a valid inference request can need, in bytes."""
    return json_limit(max_batch * CONTRACT.height * CONTRACT.width)


def _tensor(name: str, dims: list[int]) -> dict[str, Any]:
    return {"name": name, "datatype": "FP32", "shape": [-1, *dims]}


def server_metadata(version: str) -> dict[str, Any]:
    return {"name": "mnist-serve", "version": version, "extensions": []}


def model_metadata(version: str) -> dict[str, Any]:
    """The real input and outputs, from the contract."""
    return {"name": MODEL_NAME, "versions": [version], "platform": PLATFORM,
            "inputs": [_tensor(CONTRACT.input_name, [CONTRACT.height, CONTRACT.width])],
            "outputs": [_tensor(name, [CONTRACT.num_classes]) for name in OUTPUTS]}


@dataclass(frozen=True)
class InferRequest:
    pixels: np.ndarray  # float32 [N, 28, 28], 0-255
    outputs: tuple[str, ...]
    id: str | None


def _bad(message: str) -> BadRequest:
    return BadRequest(message)


def _object(value: Any, what: str) -> dict[str, Any]:
    if not isinstance(value, dict):
        raise _bad(f"{what} must be a JSON object")
    return value


def _binary_requested(parameters: Any) -> bool:
    return isinstance(parameters, dict) and parameters.get("binary_data") is True


def _holds_bool(raw: Any) -> bool:
    """Whether a (nested) list holds a JSON true or false: numpy would read [true, 0] as
    [1, 0], integers, while an all-boolean list is refused as what it is."""
    while isinstance(raw, list) and raw and isinstance(raw[0], list):
        raw = list(itertools.chain.from_iterable(raw))
    return isinstance(raw, list) and bool in set(map(type, raw))


def _pixels(tensor: dict[str, Any], max_batch: int, may_hold_bools: bool) -> np.ndarray:
    name, dtype, shape = tensor.get("name"), tensor.get("datatype"), tensor.get("shape")
    if name != CONTRACT.input_name:
        raise _bad(f"unknown input {echo(name)}: the model's input is {CONTRACT.input_name!r}")
    if dtype not in DATATYPES:
        raise _bad(f"input {name!r}: datatype {echo(dtype)} is not one of {', '.join(DATATYPES)}")
    if _binary_requested(tensor.get("parameters")):
        raise _bad("the binary tensor data extension is not supported: send JSON data")
    want = [CONTRACT.height, CONTRACT.width]
    if not (isinstance(shape, list) and len(shape) == 3 and shape[1:] == want
            and all(isinstance(d, int) and not isinstance(d, bool) for d in shape)):
        raise _bad(f"input {name!r}: shape {echo(shape)} is not [N, 28, 28]")
    if not 1 <= shape[0] <= max_batch:
        raise _bad(f"input {name!r}: batch size {shape[0]} is not within 1..{max_batch}")
    raw, expected = tensor.get("data"), math.prod(shape)

    def count_mismatch(n: int) -> BadRequest:
        return _bad(f"input {name!r}: {n} values for shape {shape} ({expected} expected)")

    # A flat list is counted before numpy converts it: a long wrong one costs nothing.
    if isinstance(raw, list) and raw and not isinstance(raw[0], list) and len(raw) != expected:
        raise count_mismatch(len(raw))
    try:
        data = np.array(raw)
    except ValueError:  # ragged nesting
        raise _bad(f"input {name!r}: data is not a regular array") from None
    if data.dtype.kind not in ("iu" if dtype == "UINT8" else "iuf") or data.dtype == bool \
            or (may_hold_bools and _holds_bool(raw)):
        raise _bad(f"input {name!r}: data must be {'integers' if dtype == 'UINT8' else 'numbers'}")
    if data.size != expected:
        raise count_mismatch(data.size)
    if not np.all(np.isfinite(data)) or data.min() < CONTRACT.pixel_min \
            or data.max() > CONTRACT.pixel_max:
        raise _bad(f"input {name!r}: values must be raw intensities "
                   f"{CONTRACT.pixel_min}-{CONTRACT.pixel_max}")
    return data.reshape(shape).astype(np.float32)


def parse_infer(body: bytes, max_batch: int, max_id_chars: int) -> InferRequest:
    """A validated inference request; BadRequest (400) for anything the protocol forbids."""
    try:  # jiter (pydantic's parser): 3x json.loads on large number arrays
        req = _object(pydantic_core.from_json(body), "the request")
    except (ValueError, RecursionError):
        raise _bad("the request body is not valid JSON") from None
    inputs = req.get("inputs")
    if not isinstance(inputs, list) or len(inputs) != 1:
        raise _bad(f"`inputs` must list exactly one tensor, {CONTRACT.input_name!r}")
    # Only a body with a JSON true or false in it can have one in its data (C-speed test).
    may_hold_bools = b"true" in body or b"false" in body
    pixels = _pixels(_object(inputs[0], "inputs[0]"), max_batch, may_hold_bools)
    wanted = req.get("outputs", [{"name": CONTRACT.output_name}])
    if not isinstance(wanted, list) or not wanted:
        raise _bad("`outputs`, when given, must list at least one output")
    names = []
    for out in wanted:
        name = _object(out, "an output").get("name")
        if name not in OUTPUTS:
            raise _bad(f"unknown output {echo(name)}: the model's outputs are {', '.join(OUTPUTS)}")
        if _binary_requested(out.get("parameters")):
            raise _bad("the binary tensor data extension is not supported: ask for JSON data")
        names.append(name)
    req_id = req.get("id")
    if req_id is not None and not isinstance(req_id, str):
        raise _bad("`id`, when given, must be a string")
    if req_id is not None and len(req_id) > max_id_chars:  # it is echoed in the answer
        raise _bad(f"`id` is {len(req_id)} characters long: at most {max_id_chars}")
    return InferRequest(pixels, tuple(dict.fromkeys(names)), req_id)


def infer_response(req: InferRequest, logits: np.ndarray, version: str) -> dict[str, Any]:
    values = {CONTRACT.output_name: logits}
    if "probabilities" in req.outputs:
        values["probabilities"] = softmax(logits)
    response: dict[str, Any] = {"model_name": MODEL_NAME, "model_version": version, "outputs": [
        {"name": name, "datatype": "FP32", "shape": list(values[name].shape),
         "data": values[name].astype(np.float32).ravel().tolist()} for name in req.outputs]}
    if req.id is not None:
        response["id"] = req.id
    return response
