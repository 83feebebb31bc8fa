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
from service.oip import parse_infer

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
    assert flat.outputs == (CONTRACT.output_name,)  # logits unless asked otherwise
    wanted = parse_infer(_request(img.ravel().tolist(), id="r1", outputs=[
        {"name": "probabilities"}, {"name": "logits"}]), 256, 256)
    assert (wanted.outputs, wanted.id) == (("probabilities", "logits"), "r1")


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
    "binary data": json.dumps({"inputs": [{"name": "pixels", "datatype": "UINT8",
                                           "shape": [1, 28, 28], "data": ZEROS,
                                           "parameters": {"binary_data": True}}]}).encode(),
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


@pytest.mark.slow
def test_tritonclient_sees_a_live_ready_server_and_infers_real_digits(server, test_digits):
    """Triton's own HTTP client (tritonclient[http], PyPI), JSON tensors (binary_data=False)."""
    import tritonclient.http as httpclient

    client = httpclient.InferenceServerClient(server.removeprefix("http://"))
    assert client.is_server_live() and client.is_server_ready()
    assert client.is_model_ready(MODEL_NAME)
    meta = client.get_model_metadata(MODEL_NAME)
    assert meta["inputs"][0]["name"] == "pixels" and meta["platform"] == "onnxruntime_onnx"

    x, y = test_digits[0][:200].astype(np.float32), test_digits[1][:200]
    pixels = httpclient.InferInput("pixels", list(x.shape), "FP32")
    pixels.set_data_from_numpy(x, binary_data=False)
    outputs = [httpclient.InferRequestedOutput(n, binary_data=False)
               for n in ("logits", "probabilities")]
    result = client.infer(MODEL_NAME, [pixels], outputs=outputs)
    logits, probs = result.as_numpy("logits"), result.as_numpy("probabilities")
    assert logits.shape == probs.shape == (200, 10)
    assert np.array_equal(logits.argmax(1), probs.argmax(1))
    assert np.mean(logits.argmax(1) == y) > 0.9
