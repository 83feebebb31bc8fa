"""POST /feedback in process: the service's own app (its 4xx, its 200 and its metrics),
and the endpoint on a stand-in service whose database is down, slow or back, and whose
challenger is a stand-in for service/shadow.py's.

    pytest tests/service/test_feedback.py
"""

from __future__ import annotations

import functools
import time
import types

import numpy as np
import prometheus_client as prom
import pytest

from clients.uploads import png
from core.feedback import StoreUnavailable, open_store
from service.engine import Engine
from tests.helpers import assert_error

TOTAL, ERRORS = "mnist_feedback_total", "mnist_feedback_store_errors_total"


def _value(name: str, **labels: str) -> float:
    return prom.REGISTRY.get_sample_value(name, labels) or 0.0


def _form(image: bytes | None, **fields: str) -> dict:
    files = {"image": ("d.png", image, "image/png")} if image is not None else {}
    return {"files": files or {"none": ("n.txt", b"x", "text/plain")}, "data": fields}


def _served_version(client) -> str:
    return client.get("/model").json()["tag"].split(":")[1]


class ShiftedShadow:
    """What the service uses of service/shadow.py's Shadow, with a challenger that answers
    the champion's digit plus one. Not the real Shadow: that one makes shadow series
    under the served version, which tests/service/test_shadow.py expects to find only
    where it made them."""

    tag, version, share = "mnist_mlp:shifted", "shifted", 1.0

    def __init__(self, champion, champion_version: str) -> None:
        self.champion, self.champion_version = champion, champion_version

    def challenger_logits(self, batch: np.ndarray) -> np.ndarray:
        return np.roll(self.champion.logits(batch), 1, axis=1)

    def offer(self, batch: np.ndarray, champion_logits: np.ndarray) -> None:
        pass

    def start(self) -> None:
        pass

    def stop(self) -> None:
        pass


@pytest.fixture
def with_challenger(asgi_app):
    """The in-process service with a ShiftedShadow. First in this module: the app holds
    one service instance at a time, and `client` (module-scoped) holds it from its first
    use on."""
    from starlette.testclient import TestClient

    from service import service as service_module

    def shadow(champion, champion_version, settings, load):
        return ShiftedShadow(champion, champion_version)

    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(service_module, "open_shadow", shadow)
        with TestClient(asgi_app, raise_server_exceptions=False) as http:
            yield http


def test_both_roles_are_judged_on_the_same_row_in_monitoring(with_challenger, test_digits):
    http = with_challenger
    x, y = test_digits
    before = http.get("/monitoring").json()["feedback"]
    resp = http.post("/feedback", **_form(png(x[4]), digit=str(y[4])))
    assert resp.status_code == 200, resp.text
    champion = resp.json()["answered"]
    after = http.get("/monitoring").json()["feedback"]
    for role, answered in (("champion", champion), ("challenger", (champion + 1) % 10)):
        grew = np.subtract(after[role]["confusion"], before[role]["confusion"])
        assert grew.sum() == 1 and grew[y[4]][answered] == 1, role


def test_a_row_is_answered_with_its_id_once_stored(client, test_digits):
    from service.settings import load_settings

    x, y = test_digits
    before = open_store(load_settings().feedback_url).count()
    resp = client.post("/feedback", **_form(png(x[0]), digit=str(y[0]), answered="3"))
    assert resp.status_code == 200, resp.text
    body = resp.json()
    assert set(body) == {"id", "digit", "answered", "model_version"}
    assert body["digit"] == y[0] and body["model_version"] == _served_version(client)
    predicted = client.post("/predict", files={"image": ("d.png", png(x[0]))}).json()
    assert body["answered"] == predicted["digit"]  # the champion's answer, now
    store = open_store(load_settings().feedback_url)
    row = store.rows(after_id=body["id"] - 1)[0]
    assert store.count() == before + 1 and row.id == body["id"]
    assert (row.truth, row.answered) == (y[0], 3)  # what the client said it was answered
    assert row.pixels.shape == (28, 28) and row.pixels.dtype == np.uint8
    store.close()


def test_the_confusion_counter_counts_each_committed_row(client, test_digits):
    x, y = test_digits
    version = _served_version(client)
    truth = str((int(y[1]) + 1) % 10)  # a digit it is not: the model answers y[1] (or not)
    answered = str(client.post("/feedback", **_form(png(x[1]), digit=truth)).json()["answered"])
    labels = {"model_version": version, "challenger_version": "none", "role": "champion",
              "answered": answered, "truth": truth, "correct": str(answered == truth).lower()}
    before = _value(TOTAL, **labels)
    assert client.post("/feedback", **_form(png(x[1]), digit=truth)).status_code == 200
    assert _value(TOTAL, **labels) == before + 1
    assert _value(TOTAL, **{**labels, "role": "challenger"}) == 0  # no challenger here


@pytest.mark.parametrize(("fields", "status", "text"), [
    ({}, 400, "missing text field 'digit'"),
    ({"digit": "12"}, 400, "'digit' must be one digit"),
    ({"digit": "x"}, 400, "'digit'"),
    ({"digit": "4", "answered": "ten"}, 400, "'answered'"),
])
def test_a_missing_or_bad_digit_is_a_400_naming_its_field(client, test_digits, fields,
                                                          status, text):
    assert_error(client.post("/feedback", **_form(png(test_digits[0][0]), **fields)),
                 status, text)


def test_a_digit_sent_twice_or_as_a_file_is_a_400(client, test_digits):
    image = ("d.png", png(test_digits[0][0]), "image/png")
    twice = client.post("/feedback", files=[("image", image), ("digit", (None, "1")),
                                            ("digit", (None, "2"))])
    assert_error(twice, 400, "'digit' sent 2 times")
    as_file = client.post("/feedback", files=[("image", image),
                                              ("digit", ("d.txt", b"1", "text/plain"))])
    assert_error(as_file, 400, "'digit' must be text")


def test_the_upload_is_refused_as_predict_refuses_it(client, test_digits):
    from service.settings import load_settings

    assert_error(client.post("/feedback", **_form(None, digit="1")), 400, "'image'")
    assert_error(client.post("/feedback", **_form(b"GIF89a" + bytes(40), digit="1")), 415)
    blank = png(np.zeros((28, 28), np.uint8))
    assert_error(client.post("/feedback", **_form(blank, digit="1")), 422)
    big = bytes(load_settings().max_body_bytes + 1)
    assert_error(client.post("/feedback", **_form(big, digit="1")), 413)
    assert_error(client.post("/feedback", json={"digit": 1}), 415, "multipart/form-data")
    digit = png(test_digits[0][0])
    assert_error(client.post("/feedback", files=[("image", ("a.png", digit)),
                                                 ("image", ("b.png", digit))],
                             data={"digit": "1"}), 400)


# The endpoint on a stand-in service: its database and its challenger are the test's.

class StandInShadow:
    """What service/shadow.py's Shadow offers feedback: a version and synchronous logits."""

    version = "challenger-v9"

    def __init__(self, digit: int) -> None:
        self.digit, self.batches = digit, []

    def challenger_logits(self, batch: np.ndarray) -> np.ndarray:
        self.batches.append(batch)
        logits = np.zeros((len(batch), 10), np.float32)
        logits[:, self.digit] = 5.0
        return logits


@pytest.fixture
def stand_in(trained, tmp_path):
    """(Starlette test client of /feedback, the stand-in service) on a SQLite file."""
    from starlette.applications import Starlette
    from starlette.responses import JSONResponse
    from starlette.routing import Route
    from starlette.testclient import TestClient

    from service.backpressure import HeavyWork
    from service.errors import renders_route_errors
    from service.feedback import FeedbackEndpoint
    from service.service import MNISTService
    from service.settings import load_settings

    settings = load_settings().model_copy(update={
        "feedback_url": f"sqlite:///{tmp_path}/fb.db", "feedback_timeout_s": 0.5,
        "feedback_retry_after_s": 7})
    service = types.SimpleNamespace(
        settings=settings, heavy=HeavyWork(settings.decode_slots, settings.decode_queue),
        engine=Engine(trained[1] / "model.onnx"), model_version="stand-in", shadow=None)
    service._decode = functools.partial(MNISTService.inner._decode, service)
    service.feedback_endpoint = FeedbackEndpoint(service)

    async def route(request):
        return JSONResponse((await service.feedback_endpoint.answer(request)).model_dump())

    app = Starlette(routes=[Route("/feedback", renders_route_errors(route), methods=["POST"])])
    with TestClient(app) as http:
        yield http, service


def _labels(role: str, answered: int, truth: int, challenger: str = "none") -> dict:
    return {"model_version": "stand-in", "challenger_version": challenger, "role": role,
            "answered": str(answered), "truth": str(truth),
            "correct": str(answered == truth).lower()}


def test_the_challengers_answer_on_the_stored_input_is_counted(stand_in, test_digits):
    http, service = stand_in
    service.shadow = StandInShadow(digit=4)
    x = test_digits[0][:1]
    champion = int(service.engine.logits(x.astype(np.float32)).argmax())
    labels = _labels("challenger", 4, 2, StandInShadow.version)
    before = _value(TOTAL, **labels)
    resp = http.post("/feedback", **_form(png(x[0]), digit="2"))
    assert resp.status_code == 200 and resp.json()["answered"] == champion
    assert _value(TOTAL, **labels) == before + 1
    assert _value(TOTAL, **_labels("champion", champion, 2, StandInShadow.version)) >= 1
    (scored,) = service.shadow.batches  # the same 28x28 input as the stored row
    stored = open_store(service.settings.feedback_url).rows()[-1].pixels
    assert scored.shape == (1, 28, 28) and np.array_equal(np.round(scored[0]), stored)


def _down(url: str, timeout_s: float):
    raise StoreUnavailable(f"{url}: connection refused")


def test_a_database_that_is_down_is_a_503_with_retry_after_and_nothing_counted(
        stand_in, test_digits):
    http, service = stand_in
    service.feedback_endpoint.store._open = _down
    total = sum(_value(TOTAL, **_labels("champion", d, 5)) for d in range(10))
    errors = _value(ERRORS, model_version="stand-in")
    resp = http.post("/feedback", **_form(png(test_digits[0][0]), digit="5"))
    assert_error(resp, 503, "unavailable")
    assert resp.headers["Retry-After"] == "7"  # MNIST_FEEDBACK_RETRY_AFTER_S
    assert _value(ERRORS, model_version="stand-in") == errors + 1
    assert sum(_value(TOTAL, **_labels("champion", d, 5)) for d in range(10)) == total
    # Back up: the next feedback opens the store again and is stored.
    service.feedback_endpoint.store._open = open_store
    assert http.post("/feedback", **_form(png(test_digits[0][0]), digit="5")).status_code == 200


def test_a_database_slower_than_the_timeout_is_a_503(stand_in, test_digits):
    http, service = stand_in

    def slow(url: str, timeout_s: float):
        time.sleep(timeout_s * 3)
        return open_store(url, timeout_s)

    service.feedback_endpoint.store._open = slow
    started = time.monotonic()
    resp = http.post("/feedback", **_form(png(test_digits[0][0]), digit="5"))
    assert_error(resp, 503)
    assert time.monotonic() - started < service.settings.feedback_timeout_s * 2.5


def test_a_store_that_fails_a_write_is_opened_again(stand_in, test_digits):
    http, service = stand_in
    image = png(test_digits[0][0])
    assert http.post("/feedback", **_form(image, digit="1")).status_code == 200
    broken = service.feedback_endpoint.store._store
    broken.close()  # its next write fails: the connection is gone
    assert_error(http.post("/feedback", **_form(image, digit="1")), 503)
    resp = http.post("/feedback", **_form(image, digit="1"))
    assert resp.status_code == 200
    assert service.feedback_endpoint.store._store is not broken


def test_a_challenger_that_fails_loses_no_feedback(stand_in, test_digits, caplog):
    http, service = stand_in

    class Broken(StandInShadow):
        def challenger_logits(self, batch: np.ndarray) -> np.ndarray:
            raise RuntimeError("the second model is gone")

    service.shadow = Broken(digit=0)
    resp = http.post("/feedback", **_form(png(test_digits[0][0]), digit="6"))
    assert resp.status_code == 200
    champion = resp.json()["answered"]
    assert _value(TOTAL, **_labels("champion", champion, 6, Broken.version)) == 1
    assert "the challenger could not score" in caplog.text
