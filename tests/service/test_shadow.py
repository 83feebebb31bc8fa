"""service/shadow.py: a share of the answers scored by the challenger off the response path,
counted; the champion's answer never changed, delayed or broken by it.

    pytest tests/service/test_shadow.py
"""

from __future__ import annotations

import json
import threading
import time
import urllib.request
from types import SimpleNamespace

import numpy as np
import prometheus_client as prom
import pytest

from service import shadow as shadows
from service.evidence_report import shadow_report
from service.shadow import SHADOW_BATCH, Sampler, Shadow, open_shadow

CHAMPION = "unit-champion"


class Labelled:
    """A model stand-in: logits whose answer is each image's first pixel (a digit), moved
    by `shift` for a challenger that differs; slow or raising on demand."""

    def __init__(self, shift: int = 0) -> None:
        self.shift, self.delay, self.error = shift, 0.0, None
        self.calls = 0

    def logits(self, batch: np.ndarray) -> np.ndarray:
        self.calls += 1
        if self.delay:
            time.sleep(self.delay)
        if self.error is not None:
            raise self.error
        digits = (batch[:, 0, 0].astype(int) + self.shift) % 10
        return np.eye(10, dtype=np.float32)[digits] * 5


def _images(digits) -> np.ndarray:
    batch = np.zeros((len(digits), 28, 28), np.float32)
    batch[:, 0, 0] = digits
    return batch


def _shadow(tag: str, challenger=None, share: float = 1.0, queue: int = 1024) -> Shadow:
    return Shadow(Labelled(), challenger or Labelled(), CHAMPION, f"mnist_mlp:{tag}", share,
                  queue)


def _offer(shadow: Shadow, digits) -> np.ndarray:
    batch = _images(digits)
    shadow.offer(batch, Labelled().logits(batch))
    return batch


def _value(name: str, tag: str, **labels) -> float:
    return prom.REGISTRY.get_sample_value(
        name, {"model_version": CHAMPION, "challenger_version": tag, **labels}) or 0.0


@pytest.mark.parametrize("share", [0.0, 0.1, 0.25, 0.5, 1.0])
def test_the_sampled_share_is_the_setting_whatever_the_batch_sizes(share):
    sampler, rng = Sampler(share), np.random.default_rng(0)
    sizes = rng.integers(1, 40, 2000)
    kept = [sampler.rows(int(n)) for n in sizes]
    rows = sum(len(k) for k in kept if k is not None)
    assert rows == pytest.approx(share * sizes.sum(), abs=1)
    assert all(k is None or (len(set(k)) == len(k) and k.max() < n)
               for k, n in zip(kept, sizes, strict=True))


def test_one_image_requests_at_a_quarter_send_every_fourth():
    sampler = Sampler(0.25)
    assert [sampler.rows(1) is not None for _ in range(8)] == [False, False, False, True] * 2


def test_a_full_queue_drops_and_counts_what_does_not_fit():
    shadow = _shadow("queue", queue=10)
    _offer(shadow, [1] * 6)
    _offer(shadow, [2] * 7)  # 4 fit
    _offer(shadow, [3] * 5)  # none
    assert _value("mnist_shadow_dropped_total", "queue") == 3 + 5
    shadow.score_queued()
    assert _value("mnist_shadow_images_total", "queue") == 10
    _offer(shadow, [4] * 2)  # room again once scored
    shadow.score_queued()
    assert _value("mnist_shadow_images_total", "queue") == 12


def test_agreement_and_each_disagreement_are_counted_and_reported():
    challenger = Labelled(shift=1)
    shadow = _shadow("differs", challenger)
    digits = [0, 1, 2, 3, 3, 9]
    _offer(shadow, digits)
    shadow.score_queued()
    challenger.shift = 0
    _offer(shadow, [5, 5])  # the same answers: agreement
    shadow.score_queued()
    assert _value("mnist_shadow_answers_total", "differs", champion="3", challenger="4",
                  agree="false") == 2
    assert _value("mnist_shadow_answers_total", "differs", champion="5", challenger="5",
                  agree="true") == 2
    body = shadow_report([s for f in prom.REGISTRY.collect() for s in f.samples], shadow)
    assert body["challenger_version"] == "differs" and body["share"] == 1.0
    assert body["answers"] == 8 and body["agreement"] == pytest.approx(2 / 8)
    expected = np.zeros((10, 10), int)
    for d in digits:
        expected[d, (d + 1) % 10] += 1
    assert body["disagreements"] == expected.tolist() and body["dropped"] == 0
    seconds = {role: _value("mnist_shadow_seconds_total", "differs", role=role)
               for role in shadows.ROLES}
    assert all(s > 0 for s in seconds.values())
    assert body["latency_ratio"] == pytest.approx(seconds["challenger"] / seconds["champion"])


def test_batches_are_scored_in_one_call_per_model_up_to_the_batch_size():
    challenger = Labelled()
    shadow = _shadow("batches", challenger)
    for _ in range(SHADOW_BATCH + 10):
        _offer(shadow, [7])
    shadow.score_queued()
    assert challenger.calls == 2 and shadow.champion.calls == 2  # type: ignore[attr-defined]
    assert _value("mnist_shadow_images_total", "batches") == SHADOW_BATCH + 10


def test_the_thread_scores_what_is_offered_and_stops_with_the_worker():
    shadow = _shadow("thread")
    shadow.start()
    try:
        _offer(shadow, [1, 2, 3])
        deadline = time.monotonic() + 10
        while _value("mnist_shadow_images_total", "thread") < 3 and time.monotonic() < deadline:
            time.sleep(0.01)
        assert _value("mnist_shadow_images_total", "thread") == 3
    finally:
        shadow.stop()
    assert not any(t.name == "shadow" and t.is_alive() for t in threading.enumerate())


def test_a_slow_challenger_delays_no_offer_and_stopping_drops_the_queue():
    slow = Labelled()
    slow.delay = 1.0
    shadow = _shadow("slow", slow, queue=SHADOW_BATCH * 4)
    shadow.start()
    try:
        took = []
        for _ in range(200):
            start = time.perf_counter()
            _offer(shadow, [4])
            took.append(time.perf_counter() - start)
        assert max(took) < 0.1  # while the challenger sleeps a second per batch
    finally:
        start = time.perf_counter()
        shadow.stop()  # the batch in progress finishes; the queued ones are dropped
        assert time.perf_counter() - start < shadows.STOP_WAIT_S
    assert _value("mnist_shadow_images_total", "slow") <= SHADOW_BATCH


def test_a_failing_challenger_or_an_odd_offer_never_raises(caplog):
    broken = Labelled()
    broken.error = RuntimeError("the challenger's session is gone")
    shadow = _shadow("broken", broken)
    _offer(shadow, [1, 2])
    shadow.score_queued()  # logged, not raised
    shadow.offer(np.zeros((3, 28, 28)), np.zeros((2, 10)))  # shapes that do not fit
    assert _value("mnist_shadow_images_total", "broken") == 0
    assert "shadow could not score" in caplog.text


def test_without_a_challenger_tag_there_is_no_shadow():
    def never(tag):
        raise AssertionError("nothing to load")

    assert open_shadow(Labelled(), CHAMPION, SimpleNamespace(challenger_tag=""), never) is None
    made = open_shadow(Labelled(), CHAMPION, SimpleNamespace(
        challenger_tag="mnist_mlp:latest", shadow_share=0.25, shadow_queue=8),
        lambda tag: ("mnist_mlp:abc123", Labelled()))
    assert made is not None and (made.tag, made.version, made.share) == \
        ("mnist_mlp:abc123", "abc123", 0.25)
    assert prom.REGISTRY.get_sample_value("mnist_model_info",
                                          {"role": "challenger", "version": "abc123"}) == 1


# The service, in process, with and without a challenger.

@pytest.fixture(scope="module")
def shadowed(asgi_app):
    """The in-process service with a challenger stand-in that the tests steer (the real
    champion's answers, moved by `shift`), every answer sampled."""
    from starlette.testclient import TestClient

    from service import service as service_module

    made = {}

    def standin(champion, champion_version, settings, load):
        made["challenger"] = Steered(champion)
        made["shadow"] = Shadow(champion, made["challenger"], champion_version,
                                "mnist_mlp:standin", 1.0, 1024)
        return made["shadow"]

    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(service_module, "open_shadow", standin)
        with TestClient(asgi_app, raise_server_exceptions=False) as client:
            yield client, made["shadow"], made["challenger"]


class Steered(Labelled):
    """The real champion's logits, moved by `shift` digits, slow or raising on demand."""

    def __init__(self, champion) -> None:
        super().__init__()
        self.champion = champion

    def logits(self, batch: np.ndarray) -> np.ndarray:
        if self.delay:
            time.sleep(self.delay)
        if self.error is not None:
            raise self.error
        return np.roll(self.champion.logits(batch), self.shift, axis=1)


def _pixels(client, digit: np.ndarray):
    return client.post("/predict_pixels", json={"pixels": digit.astype(int).tolist()})


def _wait_for(read, expected, timeout: float = 20.0):
    deadline = time.monotonic() + timeout
    while (value := read()) != expected and time.monotonic() < deadline:
        time.sleep(0.05)
    return value


@pytest.fixture
def alone(asgi_app):
    """The in-process service as configured: no challenger. Closed before `shadowed`
    opens (the app holds one service instance at a time)."""
    from starlette.testclient import TestClient

    with TestClient(asgi_app, raise_server_exceptions=False) as client:
        yield client


def test_without_a_challenger_no_shadow_series_nor_keys(alone, test_digits):
    client = alone
    assert _pixels(client, test_digits[0][0]).status_code == 200
    body = client.get("/monitoring").json()
    assert body["shadow"] is None and body["feedback"]["challenger"] is None
    # Its count is whatever feedback earlier tests of this process sent (test_feedback.py).
    assert set(body["feedback"]["champion"]) == {"answers", "accuracy", "confusion"}
    model = client.get("/model").json()
    assert model["challenger"] is None
    version = model["tag"].split(":")[1]
    lines = client.get("/metrics").text.splitlines()
    assert f'mnist_model_info{{role="champion",version="{version}"}} 1.0' in lines
    assert not [line for line in lines if line.startswith("mnist_shadow_")
                and f'model_version="{version}"' in line]


def test_the_champions_answers_are_unchanged_and_not_delayed_by_a_slow_challenger(
        shadowed, trained, test_digits):
    client, shadow, challenger = shadowed
    from service.engine import Engine

    offline = Engine(trained[1] / "model.onnx").probabilities(
        test_digits[0][:8].astype(np.float32))
    challenger.shift, challenger.delay = 3, 2.0
    try:
        for digit, expected in zip(test_digits[0][:8], offline, strict=True):
            start = time.perf_counter()
            body = _pixels(client, digit).json()
            assert time.perf_counter() - start < 1.0  # the challenger takes 2 s a batch
            assert body["digit"] == int(expected.argmax())
            assert body["probabilities"] == pytest.approx(expected.tolist(), abs=1e-6)
    finally:
        challenger.delay = 0.0
    assert client.get("/model").json()["challenger"] == "mnist_mlp:standin"


def test_a_raising_challenger_never_breaks_a_request(shadowed, test_digits):
    client, shadow, challenger = shadowed
    challenger.error = RuntimeError("challenger down")
    try:
        codes = {_pixels(client, d).status_code for d in test_digits[0][:6]}
        batch = client.post("/predict_pixels", json={"pixels": [[0] * 28] * 28})
    finally:
        challenger.error = None
    assert codes == {200} and batch.status_code == 422  # a blank: the usual 4xx


def test_the_service_reports_its_challengers_disagreements(shadowed, test_digits):
    client, shadow, challenger = shadowed
    challenger.shift = 1

    def scored() -> int:
        return client.get("/monitoring").json()["shadow"]["answers"]

    shadow.stop()  # what earlier tests queued: dropped, or scored before it returns
    shadow.start()
    before = scored()
    answers = [_pixels(client, d).json()["digit"] for d in test_digits[0][10:30]]
    assert _wait_for(scored, before + 20) == before + 20
    body = client.get("/monitoring").json()["shadow"]
    assert body["challenger_version"] == "standin" and body["share"] == 1.0
    for digit in set(answers):  # each answer d is disagreed with as d + 1
        assert body["disagreements"][digit][(digit + 1) % 10] >= answers.count(digit)


# A real server with a real challenger (the same trained model) and a refused one.

def test_a_served_challenger_is_scored_in_shadow(trained, tmp_path, test_digits):
    import shutil

    from clients.server_process import serving

    home = tmp_path / "home"
    shutil.copytree(trained[2] / "models", home / "models")
    env = {"BENTOML_HOME": str(home), "MNIST_CHALLENGER_TAG": "mnist_mlp:latest",
           "MNIST_SHADOW_SHARE": "0.5"}
    with open(tmp_path / "server.log", "w") as log, serving(log, env=env) as (_, base):
        for digit in test_digits[0][:40]:
            request = urllib.request.Request(
                base + "/predict_pixels", data=json.dumps(
                    {"pixels": digit.astype(int).tolist()}).encode(),
                headers={"Content-Type": "application/json"})
            urllib.request.urlopen(request, timeout=30).close()

        def read(path: str) -> dict:
            with urllib.request.urlopen(base + path, timeout=30) as response:
                return json.load(response)

        shadow = _wait_for(lambda: read("/monitoring")["shadow"]["answers"], 20)
        body = read("/monitoring")["shadow"]
        model = read("/model")
        with urllib.request.urlopen(base + "/metrics", timeout=30) as response:
            metrics = response.read().decode().splitlines()
    assert shadow == 20 and body["agreement"] == 1.0 and body["dropped"] == 0
    assert body["disagreements"] == [[0] * 10] * 10 and body["latency_ratio"] > 0
    assert model["challenger"] == model["tag"]
    version = model["tag"].split(":")[1]
    for role in ("champion", "challenger"):
        assert f'mnist_model_info{{role="{role}",version="{version}"}} 1.0' in metrics


def test_a_challenger_that_cannot_be_loaded_stops_the_start(trained, tmp_path):
    from tests.helpers import serve_expecting_refusal

    code, out = serve_expecting_refusal({"BENTOML_HOME": str(trained[2]),
                                         "MNIST_CHALLENGER_TAG": "mnist_mlp:nosuchversion"})
    assert code != 0
    last = out.strip().splitlines()[-1]
    assert last.startswith("mnist service cannot start: the challenger "
                           "(MNIST_CHALLENGER_TAG): model mnist_mlp:nosuchversion")
