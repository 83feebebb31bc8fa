"""The hot path answers POSTs to its paths itself, as BentoML's API would, and hands every
other request on."""

from __future__ import annotations

import logging

import pytest
from starlette.requests import Request
from starlette.responses import PlainTextResponse
from starlette.testclient import TestClient

from service import hot_path
from service.errors import Overloaded
from service.hot_path import HotPath
from service.schemas import Prediction

ANSWER = Prediction(digit=3, confidence=0.5, probabilities=[0.5] + [0.5 / 9] * 9)
HEADERS = {"Server": "BentoML Service/test"}


async def inner(scope, receive, send) -> None:
    await PlainTextResponse(f"inner {scope['method']} {scope['path']}")(scope, receive, send)


async def answer(service: object, request: Request) -> Prediction:
    body = await request.body()
    if body == b"busy":
        raise Overloaded("the batcher is full")
    if body == b"bug":
        raise KeyError("a secret detail")
    assert service == "the service"
    return ANSWER


@pytest.fixture
def client(monkeypatch):
    monkeypatch.setattr(hot_path, "served", lambda: "the service")
    return TestClient(HotPath(inner, answers={"/predict": answer}, headers=HEADERS))


def test_a_post_to_its_path_is_answered_as_bentoml_renders_the_model(client):
    r = client.post("/predict", content=b"image")
    assert r.status_code == 200 and r.content == ANSWER.model_dump_json().encode()
    assert r.headers["content-type"] == "application/json"
    assert r.headers["server"] == "BentoML Service/test"


def test_every_other_request_goes_on_inward(client):
    assert client.get("/predict").text == "inner GET /predict"
    assert client.post("/predict/", content=b"x").text == "inner POST /predict/"
    assert client.post("/predict_batch", content=b"x").text == "inner POST /predict_batch"


def test_a_service_error_is_its_answer_with_the_same_headers(client):
    r = client.post("/predict", content=b"busy")
    assert r.status_code == 503 and r.json() == {"error": "the batcher is full"}
    assert r.headers["retry-after"] == "1" and r.headers["server"] == "BentoML Service/test"


def test_an_unexpected_fault_is_logged_and_a_500_that_tells_nothing(client, caplog):
    with caplog.at_level(logging.ERROR, logger=hot_path.__name__):
        r = client.post("/predict", content=b"bug")
    assert r.status_code == 500 and "secret" not in r.text
    assert r.json() == {"error": "an unexpected error happened: see the server log"}
    assert "a secret detail" in caplog.text  # the log has it, for the operator


def test_the_service_serves_its_single_image_answers_on_the_hot_path(trained):
    from service.service import MNISTService

    hot = [options for cls, options in MNISTService.middlewares if cls is HotPath]
    assert [sorted(options["answers"]) for options in hot] == [["/predict", "/predict_pixels"]]
