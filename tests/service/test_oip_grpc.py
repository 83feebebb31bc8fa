"""The Open Inference Protocol over gRPC: the proto against tritonclient's, service/oip_grpc.py,
and Triton's own gRPC client against a real `bentoml serve`.

    pytest tests/service/test_oip_grpc.py
"""

from __future__ import annotations

import asyncio
import json
import socket
import urllib.request

import grpc
import numpy as np
import pytest
from google.protobuf import json_format

from core.contract import MODEL_NAME
from service import oip
from service.engine import Engine
from service.errors import BadRequest, InputError, ServiceError, TooLarge, UnknownModel
from service.oip_grpc import (
    CONTENTS,
    GRPC_STATUS,
    Calls,
    http_host,
    max_message_bytes,
    pixels_of,
    status_of,
)
from service.oip_proto import protocol
from service.settings import Settings


def _ours_and_tritons():
    """(our message or enum descriptor, tritonclient's of the same name), for each one
    our proto declares, nested ones included."""
    from tritonclient.grpc import service_pb2

    theirs = service_pb2.DESCRIPTOR.pool
    pairs, pending = [], []
    for name in ("grpc_predict_v2.proto", "model_config.proto"):
        file = protocol().pool.FindFileByName(name)
        pending += [*file.message_types_by_name.values()]
        pairs += [(e, theirs.FindEnumTypeByName(e.full_name))
                  for e in file.enum_types_by_name.values()]
    while pending:
        message = pending.pop()
        pending += message.nested_types
        pairs += [(e, theirs.FindEnumTypeByName(e.full_name)) for e in message.enum_types]
        pairs.append((message, theirs.FindMessageTypeByName(message.full_name)))
    return pairs


def _field(field) -> tuple:
    """What decides a field's encoding and meaning on the wire."""
    return (field.name, field.type, field.is_repeated,
            field.message_type.full_name if field.message_type else None,
            field.enum_type.full_name if field.enum_type else None,
            field.containing_oneof.name if field.containing_oneof else None)


def test_every_message_and_field_we_declare_is_tritons_on_the_wire():
    pairs = _ours_and_tritons()
    assert len(pairs) > 25  # the messages, the map entries and the enums
    for ours, theirs in pairs:
        if hasattr(ours, "values_by_number"):  # an enum
            assert {n: v.name for n, v in ours.values_by_number.items()}.items() <= \
                {n: v.name for n, v in theirs.values_by_number.items()}.items(), ours.full_name
            continue
        for number, field in ours.fields_by_number.items():
            assert number in theirs.fields_by_number, f"{ours.full_name}: {field.name}"
            assert _field(field) == _field(theirs.fields_by_number[number]), field.full_name
    from tritonclient.grpc import service_pb2

    triton = service_pb2.DESCRIPTOR.services_by_name["GRPCInferenceService"]
    ours = protocol().pool.FindServiceByName(triton.full_name)
    for method in ours.methods:
        theirs = triton.methods_by_name[method.name]
        assert (method.input_type.full_name, method.output_type.full_name) == \
            (theirs.input_type.full_name, theirs.output_type.full_name)


def test_every_service_error_has_its_grpc_status():
    def subclasses(cls):
        return {cls}.union(*(subclasses(sub) for sub in cls.__subclasses__()))

    assert subclasses(ServiceError) <= set(GRPC_STATUS)
    assert status_of(BadRequest("x")) == grpc.StatusCode.INVALID_ARGUMENT
    assert status_of(UnknownModel("x")) == grpc.StatusCode.NOT_FOUND
    assert status_of(TooLarge("x")) == grpc.StatusCode.RESOURCE_EXHAUSTED
    assert set(CONTENTS) == set(oip.DATATYPES)


def test_the_message_limit_is_the_rest_bodys():
    default = Settings()
    assert max_message_bytes(default) == oip.body_limit(default.max_batch) \
        < default.max_body_bytes
    small = Settings(max_body_bytes=1000)
    assert max_message_bytes(small) == 1000


def test_http_host_is_the_inherited_sockets_and_leaves_it_open():
    with socket.socket() as listening:
        listening.bind(("127.0.0.1", 0))
        listening.listen()
        assert http_host(["worker.py", "svc:Svc", "--fd", str(listening.fileno())]) \
            == "127.0.0.1"
        assert listening.getsockname()[0] == "127.0.0.1"  # still ours, still open


def _request(datatype="FP32", shape=(1, 28, 28), raw=None, contents=None):
    request = protocol().message("ModelInferRequest")(model_name=MODEL_NAME)
    tensor = request.inputs.add(name="pixels", datatype=datatype, shape=list(shape))
    if raw is not None:
        request.raw_input_contents.append(raw)
    if contents is not None:
        getattr(tensor.contents, contents[0]).extend(contents[1])
    return request


def test_raw_and_typed_contents_give_the_same_pixels():
    x = (np.arange(784) % 256).reshape(1, 28, 28)
    raw = pixels_of(_request(raw=x.astype("<f4").tobytes()), 256)
    assert np.array_equal(raw, x) and raw.dtype == np.float32
    assert np.array_equal(pixels_of(_request(raw=x.astype("u1").tobytes(), datatype="UINT8"),
                                    256), raw)
    typed = _request(contents=("fp32_contents", x.ravel().tolist()))
    assert np.array_equal(pixels_of(typed, 256), raw)
    typed = _request("UINT8", contents=("uint_contents", x.ravel().tolist()))
    assert np.array_equal(pixels_of(typed, 256), raw)


ZEROS = [0] * 784
WRONG = {
    "no data": _request(),
    "raw and typed": _request(raw=bytes(3136), contents=("fp32_contents", ZEROS)),
    "another type's contents": _request("UINT8", contents=("fp32_contents", ZEROS)),
    "too few values": _request(contents=("fp32_contents", ZEROS[:-1])),
    "a value over 255": _request("UINT8", contents=("uint_contents", [256] + ZEROS[1:])),
    "two raw entries": _request(raw=bytes(3136)),
}
WRONG["two raw entries"].raw_input_contents.append(bytes(3136))


@pytest.mark.parametrize("case", sorted(WRONG))
def test_what_the_protocol_forbids_is_a_bad_request(case):
    with pytest.raises(InputError) as err:
        pixels_of(WRONG[case], 256)
    assert status_of(err.value) == grpc.StatusCode.INVALID_ARGUMENT, err.value.message


def test_the_server_is_not_ready_while_it_drains(tmp_path, monkeypatch):
    marker = tmp_path / "draining"
    monkeypatch.setenv("MNIST_DRAIN_MARKER", str(marker))
    calls = Calls(service=None, proto=protocol())  # type: ignore[arg-type]
    assert asyncio.run(calls.ServerReady(None)).ready is True
    marker.touch()
    assert asyncio.run(calls.ServerReady(None)).ready is False
    assert asyncio.run(calls.ServerLive(None)).live is True


@pytest.fixture(scope="module")
def triton(server, grpc_port):
    import tritonclient.grpc as grpcclient

    client = grpcclient.InferenceServerClient(f"127.0.0.1:{grpc_port}")
    yield client
    client.close()


def _rest(base: str, path: str) -> dict:
    with urllib.request.urlopen(base + path, timeout=10) as response:
        return json.load(response)


@pytest.mark.slow
def test_tritonclient_grpc_sees_what_rest_says(server, triton):
    """Health, metadata and Triton's model config over gRPC: what REST answers."""
    from tritonclient.grpc import model_config_pb2

    assert triton.is_server_live() and triton.is_server_ready()
    assert triton.is_model_ready(MODEL_NAME)
    assert json_format.MessageToDict(triton.get_server_metadata()) == _rest(server, "/v2")
    meta = triton.get_model_metadata(MODEL_NAME, as_json=True)
    rest_meta = _rest(server, f"/v2/models/{MODEL_NAME}")
    assert meta["versions"] == rest_meta["versions"] and meta["inputs"][0]["name"] == "pixels"
    assert [[int(d) for d in t["shape"]] for t in meta["outputs"]] == \
        [t["shape"] for t in rest_meta["outputs"]]
    config = triton.get_model_config(MODEL_NAME).config
    rest_config = _rest(server, f"/v2/models/{MODEL_NAME}/config")
    assert config == json_format.ParseDict(rest_config, model_config_pb2.ModelConfig(),
                                           ignore_unknown_fields=True)
    assert config.max_batch_size == rest_config["max_batch_size"] > 0


def _infer(triton, x: np.ndarray, datatype: str = "FP32", **kwargs):
    import tritonclient.grpc as grpcclient

    pixels = grpcclient.InferInput("pixels", list(x.shape), datatype)
    pixels.set_data_from_numpy(x.astype(np.float32 if datatype == "FP32" else np.uint8))
    return triton.infer(MODEL_NAME, [pixels], **kwargs)


@pytest.mark.slow
def test_tritonclient_grpc_infers_real_digits_as_the_model_does_offline(triton, trained,
                                                                         test_digits):
    x, y = test_digits[0][:200].astype(np.float32), test_digits[1][:200]
    offline = Engine(trained[1] / "model.onnx").logits(x)
    for datatype in ("FP32", "UINT8"):
        result = _infer(triton, x, datatype)
        np.testing.assert_allclose(result.as_numpy("logits"), offline, rtol=1e-5, atol=1e-5)
        probabilities = result.as_numpy("probabilities")
        assert np.allclose(probabilities.sum(1), 1)
        assert np.mean(probabilities.argmax(1) == y) == np.mean(offline.argmax(1) == y)


@pytest.mark.slow
def test_versioned_calls_and_named_outputs(triton, test_digits):
    import tritonclient.grpc as grpcclient
    from tritonclient.utils import InferenceServerException

    version = triton.get_model_metadata(MODEL_NAME).versions[0]
    assert triton.is_model_ready(MODEL_NAME, version)
    assert triton.get_model_metadata(MODEL_NAME, version).versions == [version]
    assert triton.get_model_config(MODEL_NAME, version).config.name == MODEL_NAME
    result = _infer(triton, test_digits[0][:3], model_version=version, request_id="r-1",
                    outputs=[grpcclient.InferRequestedOutput("probabilities")])
    response = result.get_response()
    assert (response.model_version, response.id) == (version, "r-1")
    assert [out.name for out in response.outputs] == ["probabilities"]
    assert result.as_numpy("probabilities").shape == (3, 10)
    for call in (lambda: triton.is_model_ready(MODEL_NAME, "7"),
                 lambda: triton.get_model_config("resnet50"),
                 lambda: _infer(triton, test_digits[0][:1], model_version="7")):
        with pytest.raises(InferenceServerException) as err:
            call()
        assert err.value.status() == "StatusCode.NOT_FOUND", err.value
        assert MODEL_NAME in err.value.message()
