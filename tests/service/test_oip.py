"""The Open Inference Protocol v2: service/oip.py, its routes, and a client nobody here wrote.

    pytest tests/service/test_oip.py
"""

from __future__ import annotations

import json

import numpy as np
import pytest

from core.contract import CONTRACT, MODEL_NAME
from service.engine import Engine
from service.errors import InputError
from service.oip import infer_response, parse_infer, split_body

INFER = f"/v2/models/{MODEL_NAME}/infer"


def _request(data, shape=(1, 28, 28), datatype="UINT8", name="pixels", **extra) -> bytes:
    return json.dumps({"inputs": [{"name": name, "datatype": datatype, "shape": list(shape),
                                   "data": data}], **extra}).encode()


def test_flat_and_nested_data_in_both_datatypes_give_the_same_tensor():
    img = np.arange(784).reshape(28, 28) % 256
    flat = parse_infer(_request(img.ravel().tolist()), 256, 256)
    nested = parse_infer(_request([img.tolist()], datatype="FP32"), 256, 256)
    assert flat.pixels.dtype == np.float32 and flat.pixels.shape == (1, 28, 28)
    assert np.array_equal(flat.pixels, nested.pixels)
    # The protocol: every output when none is named, as JSON unless binary is asked for.
    assert flat.outputs == ((CONTRACT.output_name, False), ("probabilities", False))
    wanted = parse_infer(_request(img.ravel().tolist(), id="r1", outputs=[
        {"name": "probabilities"}, {"name": "logits"}]), 256, 256)
    assert (wanted.outputs, wanted.id) == ((("probabilities", False), ("logits", False)), "r1")


ZEROS = [0] * 784
BAD = {
    "not json": b"{",
    "no inputs": json.dumps({"outputs": []}).encode(),
    "two inputs": json.dumps({"inputs": [{}, {}]}).encode(),
    "wrong name": _request(ZEROS, name="image"),
    "wrong datatype": _request(ZEROS, datatype="INT64"),
    "wrong shape": _request(ZEROS, shape=(1, 784)),
    "batch 0": _request([], shape=(0, 28, 28)),
    "batch over the limit": _request([0] * 784 * 3, shape=(3, 28, 28)),
    "too few values": _request(ZEROS[:-1]),
    "ragged": _request([[0] * 28] * 27 + [[0] * 27]),
    "strings": _request(["0"] * 784),
    "booleans": _request([True] * 784),
    "floats as UINT8": _request([0.5] * 784),
    "over 255": _request([256] + ZEROS[1:], datatype="FP32"),
    "negative": _request([-1] + ZEROS[1:], datatype="FP32"),
    "binary size without its bytes": json.dumps({"inputs": [{
        "name": "pixels", "datatype": "UINT8", "shape": [1, 28, 28],
        "parameters": {"binary_data_size": 784}}]}).encode(),
    "unknown output": _request(ZEROS, outputs=[{"name": "softmax"}]),
    "numeric id": _request(ZEROS, id=7),
}


@pytest.mark.parametrize("case", sorted(BAD))
def test_what_the_protocol_forbids_is_a_400(case):
    with pytest.raises(InputError) as err:
        parse_infer(BAD[case], max_batch=2, max_id_chars=256)
    assert err.value.status == 400 and err.value.message


def test_nan_is_refused_not_inferred():
    body = _request([0] * 783 + [1], datatype="FP32").replace(b"1]", b"NaN]")
    with pytest.raises(InputError, match="raw intensities"):
        parse_infer(body, 256, 256)


def test_routes_answer_metadata_from_the_contract(client):
    assert client.get("/v2/health/live").json() == {"live": True}
    assert client.get("/v2/health/ready").json() == {"ready": True}
    assert client.get(f"/v2/models/{MODEL_NAME}/ready").json()["ready"] is True
    meta = client.get(f"/v2/models/{MODEL_NAME}").json()
    assert meta["inputs"] == [{"name": "pixels", "datatype": "FP32", "shape": [-1, 28, 28]}]
    assert [o["name"] for o in meta["outputs"]] == ["logits", "probabilities"]
    assert meta["versions"] == [client.get("/model").json()["tag"].split(":")[1]]


def test_infer_matches_the_model_offline(client, trained, test_digits):
    x = test_digits[0][:32]
    body = _request(x.astype(int).tolist(), shape=x.shape, id="batch-1",
                    outputs=[{"name": "logits"}, {"name": "probabilities"}])
    resp = client.post(INFER, content=body, headers={"content-type": "application/json"})
    assert resp.status_code == 200, resp.text
    out = {o["name"]: o for o in resp.json()["outputs"]}
    assert resp.json()["id"] == "batch-1" and out["logits"]["shape"] == [32, 10]
    offline = Engine(trained[1] / "model.onnx").logits(x.astype(np.float32))
    np.testing.assert_allclose(np.array(out["logits"]["data"]).reshape(32, 10), offline,
                               rtol=1e-5, atol=1e-5)
    assert np.allclose(np.array(out["probabilities"]["data"]).reshape(32, 10).sum(1), 1)


@pytest.mark.parametrize("kwargs, status", [
    (dict(content=b"x", headers={"content-type": "text/plain"}), 415),
    (dict(content=b"{" * 11_000_000, headers={"content-type": "application/json"}), 413),
    (dict(content=BAD["wrong shape"], headers={"content-type": "application/json"}), 400),
])
def test_infer_errors_are_json_with_the_usual_limits(client, kwargs, status):
    resp = client.post(INFER, **kwargs)
    assert resp.status_code == status and set(resp.json()) == {"error"}, resp.text


def _binary_request(x: np.ndarray, datatype: str = "FP32", size: int | None = None,
                    **extra) -> tuple[bytes, bytes]:
    """(JSON, tensor bytes) as the binary tensor data extension sends them."""
    raw = x.astype("<f4" if datatype == "FP32" else "u1").tobytes()
    header = json.dumps({"inputs": [{
        "name": "pixels", "datatype": datatype, "shape": list(x.shape),
        "parameters": {"binary_data_size": len(raw) if size is None else size}}],
        **extra}).encode()
    return header, raw


@pytest.mark.parametrize("datatype", ["FP32", "UINT8"])
def test_binary_tensor_data_gives_the_tensor_json_gives(test_digits, datatype):
    x = test_digits[0][:3]
    as_json = parse_infer(_request(x.astype(int).tolist(), shape=x.shape, datatype=datatype),
                          256, 256)
    header, raw = _binary_request(x, datatype)
    assert np.array_equal(parse_infer(header, 256, 256, raw).pixels, as_json.pixels)


@pytest.mark.parametrize("case", ["size lies", "bytes for another shape", "undeclared bytes",
                                  "json and bytes", "negative in binary", "nan in binary"])
def test_binary_tensor_data_that_lies_is_a_400(test_digits, case):
    x = test_digits[0][:2].astype(np.float32)
    header, raw = _binary_request(x)
    if case == "size lies":
        header, _ = _binary_request(x, size=len(raw) - 4)
    elif case == "bytes for another shape":
        header, raw = _binary_request(x[:1])
        raw += raw
        header = header.replace(b'"binary_data_size": 3136', b'"binary_data_size": 6272')
    elif case == "undeclared bytes":
        header = _request(x.astype(int).tolist(), shape=x.shape)
    elif case == "json and bytes":
        header = header.replace(b'"parameters"', b'"data": [0], "parameters"')
    else:
        x[0, 0, 0] = -1 if case == "negative in binary" else np.nan
        header, raw = _binary_request(x)
    with pytest.raises(InputError) as err:
        parse_infer(header, 256, 256, raw)
    assert err.value.status == 400, err.value.message


@pytest.mark.parametrize("length", ["-1", "12x", "99999", "١٢"])
def test_a_header_length_that_is_not_a_length_within_the_body_is_a_400(length):
    with pytest.raises(InputError, match="Inference-Header-Content-Length") as err:
        split_body(b'{"inputs": []}', length)
    assert err.value.status == 400


def test_outputs_come_as_binary_data_when_asked(test_digits):
    x = test_digits[0][:4].astype(np.float32)
    header, raw = _binary_request(x, outputs=[{"name": "probabilities",
                                               "parameters": {"binary_data": True}},
                                              {"name": "logits"}])
    req = parse_infer(header, 256, 256, raw)
    logits = np.arange(40, dtype=np.float32).reshape(4, 10)
    answer, tail = infer_response(req, logits, "v1")
    probs, logits_out = answer["outputs"]
    assert probs["parameters"] == {"binary_data_size": 160} and "data" not in probs
    assert np.allclose(np.frombuffer(tail, "<f4").reshape(4, 10).sum(1), 1)
    assert logits_out["data"] == logits.ravel().tolist()  # JSON: not asked as binary
    header, raw = _binary_request(x, parameters={"binary_data_output": True})
    everything = parse_infer(header, 256, 256, raw)
    assert everything.outputs == (("logits", True), ("probabilities", True))


def test_the_server_lists_its_extensions_and_serves_the_model_config(client):
    from service.service import SETTINGS

    assert client.get("/v2").json()["extensions"] == ["binary_tensor_data",
                                                      "model_configuration"]
    config = client.get(f"/v2/models/{MODEL_NAME}/config").json()
    assert config["max_batch_size"] == SETTINGS.max_batch
    assert config["input"] == [{"name": "pixels", "data_type": "TYPE_FP32", "dims": [28, 28]}]
    assert [o["name"] for o in config["output"]] == ["logits", "probabilities"]
    assert ("dynamic_batching" in config) == (SETTINGS.batch_max_latency_ms > 0)


def test_every_model_route_answers_under_its_version_and_404s_others(client, test_digits):
    version = client.get("/model").json()["tag"].split(":")[1]
    base = f"/v2/models/{MODEL_NAME}/versions/{version}"
    assert client.get(base + "/ready").json()["ready"] is True
    assert client.get(base).json()["versions"] == [version]
    assert client.get(base + "/config").json()["name"] == MODEL_NAME
    body = _request(test_digits[0][:1].astype(int).tolist(), shape=(1, 28, 28))
    resp = client.post(base + "/infer", content=body)
    assert resp.status_code == 200 and resp.json()["model_version"] == version
    assert resp.headers["cache-control"] == "no-store"
    for path, named in [(f"/v2/models/{MODEL_NAME}/versions/7/ready", version),
                        (f"/v2/models/{MODEL_NAME}/versions/7/infer", version),
                        ("/v2/models/resnet50", MODEL_NAME),
                        ("/v2/models/resnet50/versions/1/config", MODEL_NAME)]:
        resp = client.post(path, content=body) if path.endswith("infer") else client.get(path)
        assert resp.status_code == 404 and named in resp.json()["error"], (path, resp.text)


def test_a_binary_request_over_rest_gets_a_binary_answer(client, test_digits):
    x = test_digits[0][:2].astype(np.float32)
    header, raw = _binary_request(x, parameters={"binary_data_output": True})
    resp = client.post(INFER, content=header + raw, headers={
        "Inference-Header-Content-Length": str(len(header)),
        "Content-Type": "application/octet-stream"})
    assert resp.status_code == 200, resp.text
    length = int(resp.headers["inference-header-content-length"])
    answer = json.loads(resp.content[:length])
    sizes = [o["parameters"]["binary_data_size"] for o in answer["outputs"]]
    assert sizes == [80, 80] and len(resp.content) == length + sum(sizes)


def _classified(client, x: np.ndarray, binary: bool) -> np.ndarray:
    import tritonclient.http as httpclient

    pixels = httpclient.InferInput("pixels", list(x.shape), "FP32")
    pixels.set_data_from_numpy(x, binary_data=binary)
    outputs = [httpclient.InferRequestedOutput(n, binary_data=binary)
               for n in ("logits", "probabilities")]
    result = client.infer(MODEL_NAME, [pixels], outputs=outputs)
    logits, probs = result.as_numpy("logits"), result.as_numpy("probabilities")
    assert logits.shape == probs.shape == (len(x), 10)
    assert np.array_equal(logits.argmax(1), probs.argmax(1))
    return logits


@pytest.mark.slow
def test_tritonclient_sees_a_live_ready_server_and_infers_real_digits(server, trained,
                                                                      test_digits):
    """Triton's own HTTP client (tritonclient[http], PyPI), with its defaults (binary
    tensors both ways), with JSON tensors, and with a version: the offline answers."""
    import tritonclient.http as httpclient

    client = httpclient.InferenceServerClient(server.removeprefix("http://"))
    assert client.is_server_live() and client.is_server_ready()
    assert client.is_model_ready(MODEL_NAME)
    meta = client.get_model_metadata(MODEL_NAME)
    assert meta["inputs"][0]["name"] == "pixels" and meta["platform"] == "onnxruntime_onnx"
    version = meta["versions"][0]
    assert client.is_model_ready(MODEL_NAME, version)
    assert client.get_model_config(MODEL_NAME, version)["max_batch_size"] > 0

    x, y = test_digits[0][:200].astype(np.float32), test_digits[1][:200]
    offline = Engine(trained[1] / "model.onnx").logits(x)
    for binary in (True, False):
        np.testing.assert_allclose(_classified(client, x, binary), offline, rtol=1e-5,
                                   atol=1e-5)
    pixels = httpclient.InferInput("pixels", list(x.shape), "FP32")
    pixels.set_data_from_numpy(x)  # the client's defaults: binary in, every output binary
    result = client.infer(MODEL_NAME, [pixels], model_version=version)
    assert np.mean(result.as_numpy("logits").argmax(1) == y) == np.mean(offline.argmax(1) == y)


def test_an_extension_not_served_is_refused_by_name(client, test_digits):
    """classification would otherwise answer the FP32 tensor to a client that asked for
    classes; a compressed body would fail as 'not valid JSON'."""
    import gzip

    body = _request(test_digits[0][:1].astype(int).tolist(), outputs=[
        {"name": "probabilities", "parameters": {"classification": 3}}])
    resp = client.post(INFER, content=body)
    assert resp.status_code == 400 and "classification" in resp.json()["error"]
    resp = client.post(INFER, content=gzip.compress(_request(ZEROS)),
                       headers={"Content-Encoding": "gzip"})
    assert resp.status_code == 415 and "gzip" in resp.json()["error"]
