"""service/monitoring.py: every answer served is observed, on every transport, in bulk; the
reference is exported as gauges; nothing a client sends grows a series or enters unanswered.

    pytest tests/service/test_monitoring.py
"""

from __future__ import annotations

import json
import math
import shutil
from pathlib import Path

import numpy as np
import prometheus_client as prom
import pytest

from clients.uploads import png
from core import profile as profiles
from core.contract import MODEL_NAME
from service.engine import Engine
from service.monitoring import (
    FLUSH_IMAGES,
    HISTOGRAMS,
    Monitor,
    add_counts,
    check_reference,
    le_label,
)

INFER = f"/v2/models/{MODEL_NAME}/infer"


def _digits(n: int = 40, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """Digit-like inputs [n, 28, 28] and logits [n, 10] with a known argmax."""
    rng = np.random.default_rng(seed)
    x = np.zeros((n, 28, 28), np.float32)
    x[:, 8:20, 12:16] = rng.uniform(128, 255, (n, 12, 4))
    logits = rng.normal(0, 1, (n, 10)).astype(np.float32)
    logits[np.arange(n), np.arange(n) % 10] += 6.0
    return x, logits


def _value(name: str, labels: dict[str, str]) -> float:
    return prom.REGISTRY.get_sample_value(name, labels) or 0.0


def test_bulk_counts_are_what_observing_each_value_gives():
    values = np.array([0.0, 0.3, 0.30001, 0.5, 0.95, 0.999, 1.0, 0.45])
    edges = profiles.CONFIDENCE_EDGES
    one, bulk = prom.CollectorRegistry(), prom.CollectorRegistry()
    h1 = prom.Histogram("h", "h", ["v"], buckets=edges, registry=one).labels("x")
    h2 = prom.Histogram("h", "h", ["v"], buckets=edges, registry=bulk).labels("x")
    for v in values:
        h1.observe(float(v))
    add_counts(h2, values, edges)
    samples = [[(s.name, s.labels, s.value) for f in r.collect() for s in f.samples
                if not s.name.endswith("_created")] for r in (one, bulk)]
    assert samples[0] == samples[1]


def _answers(version: str) -> float:
    return _value("mnist_prediction_confidence_count", {"model_version": version})


def test_without_an_event_loop_answers_are_observed_at_once():
    monitor = Monitor("unit-now", None, enabled=True)
    x, logits = _digits(12)
    monitor.record(x, logits)
    assert _value("mnist_predictions_total", {"model_version": "unit-now", "digit": "1"}) == 2
    assert _answers("unit-now") == 12


def test_on_the_event_loop_answers_wait_for_a_full_pass_or_flush_s(monkeypatch):
    import asyncio

    from service import monitoring

    monkeypatch.setattr(monitoring, "FLUSH_S", 0.05)
    monitor = Monitor("unit-loop", None, enabled=True)
    x, logits = _digits(FLUSH_IMAGES)

    async def serve() -> list[float]:
        seen = []
        monitor.record(x[:10], logits[:10])
        seen.append(_answers("unit-loop"))  # waiting
        await asyncio.sleep(0.2)
        seen.append(_answers("unit-loop"))  # observed after FLUSH_S
        monitor.record(x[:-1], logits[:-1])
        seen.append(_answers("unit-loop"))  # waiting
        monitor.record(x[-1:], logits[-1:])
        seen.append(_answers("unit-loop"))  # FLUSH_IMAGES waited: observed at once
        return seen

    assert asyncio.run(serve()) == [0, 10, 10, 10 + FLUSH_IMAGES]


def test_what_preprocessing_measured_replaces_the_model_inputs_placement():
    version = "unit-measured"
    monitor = Monitor(version, None, enabled=True)
    x, logits = _digits(2)
    measured = np.array([[0.2, 7.0], [np.nan, np.nan]])  # only the first was resampled
    monitor.record(x, logits, measured)
    own_scale, own_shift = profiles.placement(x[1:])

    def bucket(stat: str, value: float) -> float:
        edges = HISTOGRAMS[stat].edges
        le = next((e for e in edges if value <= e), math.inf)
        return _value(f"mnist_input_{stat}_bucket", {"model_version": version,
                                                     "le": le_label(le)})

    assert bucket("scale", 0.2) >= 1 and bucket("shift", 7.0) >= 1
    assert _value("mnist_input_scale_sum", {"model_version": version}) == \
        pytest.approx(0.2 + own_scale[0])
    assert _value("mnist_input_shift_sum", {"model_version": version}) == \
        pytest.approx(7.0 + own_shift[0])


def test_off_observes_nothing():
    monitor = Monitor("unit-off", None, enabled=False)
    monitor.record(*_digits(FLUSH_IMAGES))
    monitor.flush()
    assert _value("mnist_prediction_confidence_count", {"model_version": "unit-off"}) == 0
    assert _value("mnist_reference_available", {"model_version": "unit-off"}) == 0


def test_a_failure_to_observe_never_reaches_the_answer(caplog):
    monitor = Monitor("unit-broken", None, enabled=True)
    monitor.record(np.zeros((3, 5)), np.zeros((2, 10)))  # shapes that cannot be observed
    assert "monitoring could not observe" in caplog.text


def _profile(n: int = 500, seed: int = 1) -> profiles.Profile:
    x, logits = _digits(n, seed)
    e = np.exp(logits - logits.max(1, keepdims=True))
    return profiles.build("unit", x, e / e.sum(1, keepdims=True))


def test_the_reference_is_exported_as_cumulative_shares_on_the_histograms_le_labels():
    version, reference = "unit-ref", _profile()
    Monitor(version, reference, enabled=True)
    assert _value("mnist_reference_available", {"model_version": version}) == 1
    for stat_key, observed in HISTOGRAMS.items():
        hist = {"confidence": reference.confidence, "entropy": reference.entropy,
                **reference.inputs}[stat_key]
        labels = {"model_version": version, "stat": observed.stat}
        shares = [_value("mnist_reference_bucket_share", {**labels, "le": le_label(e)})
                  for e in (*observed.edges, math.inf)]
        assert shares == pytest.approx(np.cumsum(hist.shares).tolist())
        assert shares[-1] == pytest.approx(1.0)
        assert _value("mnist_reference_mean", labels) == pytest.approx(hist.mean)
    # The live histogram's `le` labels are the same strings.
    live_les = {s.labels["le"] for f in prom.REGISTRY.collect() for s in f.samples
                if s.name == "mnist_prediction_confidence_bucket"}
    ref_les = {s.labels["le"] for f in prom.REGISTRY.collect() for s in f.samples
               if s.name == "mnist_reference_bucket_share" and s.labels["stat"] == "confidence"}
    assert ref_les == live_les


def test_without_a_reference_only_its_absence_is_exported():
    Monitor("unit-noref", None, enabled=True)
    mine = {s.name for f in prom.REGISTRY.collect() for s in f.samples
            if s.labels.get("model_version") == "unit-noref" and "reference" in s.name}
    assert mine == {"mnist_reference_available"}
    assert _value("mnist_reference_available", {"model_version": "unit-noref"}) == 0


def test_a_reference_on_other_edges_cannot_be_compared():
    good = _profile()
    check_reference(good)
    other = profiles.Profile(**{**good.__dict__, "confidence": profiles.Histogram(
        (0.5,), (0.5, 0.5), 0.5, 0.1)})
    with pytest.raises(ValueError, match="confidence"):
        check_reference(other)


# The service, in process: the `client` fixture (tests/conftest.py).

def _monitoring(client) -> dict:
    resp = client.get("/monitoring")
    assert resp.status_code == 200, resp.text
    return resp.json()


def _oip(x: np.ndarray, datatype: str = "UINT8") -> bytes:
    data = x.ravel().tolist() if datatype == "FP32" else x.astype(int).ravel().tolist()
    return json.dumps({"inputs": [{"name": "pixels", "shape": list(x.shape),
                                   "datatype": datatype, "data": data}]}).encode()


def test_every_transport_counts_each_answer_and_no_rejection(client, test_digits):
    x = test_digits[0][:24]
    before = _monitoring(client)["live"]
    digits = [client.post("/predict", files={"image": ("d.png", png(d))}).json()["digit"]
              for d in x[:6]]
    digits += [client.post("/predict_pixels", json={"pixels": d.astype(int).tolist()}
                           ).json()["digit"] for d in x[6:10]]
    batch = client.post("/predict_batch", files=[("images", (f"{i}.png", png(d)))
                                                 for i, d in enumerate(x[10:18])])
    digits += [p["digit"] for p in batch.json()["predictions"]]
    answer = client.post(INFER, content=_oip(x[18:24])).json()
    digits += np.array(answer["outputs"][0]["data"]).reshape(6, 10).argmax(1).tolist()
    client.post("/preprocess", files={"image": ("d.png", png(x[0]))})  # not an answer
    rejected = [client.post("/predict", files={"image": ("d.png", b"not a png")}),
                client.post("/predict_pixels", json={"pixels": [[0] * 28] * 28}),  # blank
                client.post("/predict_pixels", content=b'{"pixels": NaN}'),
                client.post(INFER, content=_oip(np.full((1, 28, 28), np.nan), "FP32")),
                client.post(INFER, content=_oip(np.full((1, 28, 28), np.inf), "FP32")),
                client.post(INFER, content=_oip(np.full((1, 28, 28), 300.0), "FP32"))]
    assert all(400 <= r.status_code < 500 for r in rejected), [r.text for r in rejected]
    after = _monitoring(client)
    now = after["live"]
    assert now["answers"] - before["answers"] == 24
    assert now["rejected"] - before["rejected"] == len(rejected)
    expected = np.bincount(digits, minlength=10)
    assert (np.array(now["digit_counts"]) - before["digit_counts"]).tolist() == \
        expected.tolist()
    for key, h in now["histograms"].items():
        assert len(h["counts"]) == len(h["edges"]) + 1
        assert sum(h["counts"]) - sum(before["histograms"][key]["counts"]) == 24, key
    assert after["monitoring"] == "on" and after["model_version"]


def test_monitoring_routes_stay_one_label_and_clients_grow_no_series(client, test_digits):
    def label_sets() -> set[tuple]:
        return {(s.name, tuple(sorted(s.labels.items()))) for f in prom.REGISTRY.collect()
                for s in f.samples if s.name.startswith("mnist_")}

    client.get("/monitoring")
    mnist_before = label_sets()
    for path in ("/monitoring?model_version=evil", "/monitoring/x%00y", "/monitoringz"):
        client.get(path)
    for junk in (b"\x89PNG\r\n\x1a\n" + b"\x00" * 64, b"GIF89a", b""):
        client.post("/predict", files={"image": ("d.png", junk)})
    client.post("/predict", files={"image": ("d.png", png(test_digits[0][0]))},
                headers={"X-Model-Version": "evil"})
    _monitoring(client)
    assert label_sets() == mnist_before
    endpoints = {s.labels["endpoint"] for f in prom.REGISTRY.collect() for s in f.samples
                 if s.name == "bentoml_service_request_total"}
    assert not any("evil" in e or "x%00y" in e or e == "/monitoringz" for e in endpoints)
    assert "/monitoring" in endpoints


# Real servers: `bentoml serve` of a copy of the trained store, with a reference profile
# (written here from the test digits unless the training job wrote one) or without one.

def _latest(home: Path) -> Path:
    folder = home / "models" / MODEL_NAME
    return folder / (folder / "latest").read_text().strip()


def _set_reference(version: Path, profile: profiles.Profile | None) -> None:
    import yaml

    info = yaml.safe_load((version / "model.yaml").read_text())
    if profile is None:
        info["metadata"].pop(profiles.META_REFERENCE, None)
    elif profiles.META_REFERENCE not in info["metadata"]:
        profiles.save(profile, version / profiles.REFERENCE_FILE)
        info["metadata"][profiles.META_REFERENCE] = profiles.REFERENCE_FILE
    (version / "model.yaml").write_text(yaml.safe_dump(info, sort_keys=False))


def _serve_copy(trained, root: Path, profile, env: dict[str, str]):
    from tests.conftest import _serving

    shutil.copytree(trained[2] / "models", root / "home" / "models")
    _set_reference(_latest(root / "home"), profile)
    yield from _serving(root / "home", root / "server.log", env)


@pytest.fixture(scope="module")
def profiled(trained, test_digits, tmp_path_factory):
    """(base URL, gRPC port, multiprocess folder) of two workers with gRPC, serving a
    model with a reference profile of the test digits."""
    from clients.server_process import free_port

    x = test_digits[0].astype(np.float32)
    probs = Engine(trained[1] / "model.onnx").probabilities(x)
    reference = profiles.build("test digits", x, probs, test_digits[1])
    root, port = tmp_path_factory.mktemp("profiled"), free_port()
    for base in _serve_copy(trained, root, reference,
                            {"MNIST_WORKERS": "2", "MNIST_GRPC_PORT": str(port)}):
        yield base, port, root / "home" / "prometheus_multiproc_dir"


@pytest.fixture(scope="module")
def unprofiled(trained, tmp_path_factory):
    """One worker serving a model registered without a reference profile."""
    yield from _serve_copy(trained, tmp_path_factory.mktemp("unprofiled"), None, {})


def _concurrently(base: str, requests: list[dict]) -> list[int]:
    """POSTs, 8 at a time, each on a connection of its own (so the workers share them)."""
    from concurrent.futures import ThreadPoolExecutor

    import httpx

    def post(kwargs: dict) -> int:
        return httpx.post(base + kwargs.pop("path"), timeout=60, **kwargs).status_code

    with ThreadPoolExecutor(8) as pool:
        return list(pool.map(post, requests))


def _settled(base: str, answers: int) -> dict:
    """GET /monitoring once every worker's answers are in (each observes within FLUSH_S)."""
    import time

    import httpx

    for _ in range(50):
        body = httpx.get(base + "/monitoring", timeout=30).json()
        if body["live"]["answers"] >= answers:
            return body
        time.sleep(0.2)
    return body


def _grpc_infer(port: int, x: np.ndarray) -> None:
    import tritonclient.grpc as grpcclient

    client = grpcclient.InferenceServerClient(f"127.0.0.1:{port}")
    try:
        pixels = grpcclient.InferInput("pixels", list(x.shape), "FP32")
        pixels.set_data_from_numpy(x.astype(np.float32))
        client.infer(MODEL_NAME, [pixels])
    finally:
        client.close()


def _per_worker_predictions(folder: Path) -> list[float]:
    from prometheus_client.mmap_dict import MmapedDict

    totals = []
    for file in sorted(folder.glob("counter_*.db")):
        values = MmapedDict.read_all_values_from_file(str(file))
        totals.append(sum(entry[1] for entry in values
                          if '"mnist_predictions_total"' in entry[0]))
    return [t for t in totals if t]


def _batches(x: np.ndarray, start: int, stop: int) -> list[dict]:
    """/predict_batch requests of 20 digits each, for x[start:stop]."""
    return [{"path": "/predict_batch", "files": [("images", (f"{i}.png", png(d)))
                                                 for i, d in enumerate(x[k:k + 20])]}
            for k in range(start, stop, 20)]


def _until_both_workers_answer(base: str, folder: Path, x: np.ndarray, sent: int) -> int:
    """More digits until each worker has answered some (the kernel may hand one worker all
    the connections); returns how many were answered in all."""
    while len(_per_worker_predictions(folder)) < 2 and sent + 160 <= 2000:
        assert set(_concurrently(base, _batches(x, sent, sent + 160))) == {200}
        sent += 160
    assert len(_per_worker_predictions(folder)) == 2, "one worker took every connection"
    return sent


@pytest.mark.slow
def test_two_workers_sum_and_a_shifted_stream_drifts(profiled, test_digits):
    from prometheus_client.parser import text_string_to_metric_families

    base, grpc_port, folder = profiled
    x = test_digits[0]
    assert set(_concurrently(base, _batches(x, 0, 300))) == {200}
    _grpc_infer(grpc_port, x[300:320])
    sent = _until_both_workers_answer(base, folder, x[320:], 0) + 320
    calm = _settled(base, sent)
    assert calm["live"]["answers"] == sent and calm["drift"]["status"] == "ok", calm["drift"]
    assert calm["reference"]["n"] == len(x)
    assert sum(_per_worker_predictions(folder)) == sent  # both workers answered, and summed
    metrics = text_string_to_metric_families(httpx_get(base + "/metrics"))
    samples = [s for f in metrics for s in f.samples]
    assert sum(s.value for s in samples if s.name == "mnist_predictions_total") == sent
    assert [s.value for s in samples if s.name == "mnist_reference_available"] == [1.0]

    # A client that inverts colours (a blank page to /predict_pixels), as many digits as the
    # calm stream so far: half the window shifted, whatever the kernel's share of connections.
    n = -(-sent // 32) * 32
    inverted = 255 - x[:n]
    shifted = [{"path": INFER, "content": _oip(inverted[k:k + 32])} for k in range(0, n, 32)]
    assert set(_concurrently(base, shifted)) == {200}
    drifted = _settled(base, sent + n)
    assert drifted["live"]["answers"] == sent + n
    ink = drifted["live"]["histograms"]["ink"]["counts"]
    assert ink[-1] - calm["live"]["histograms"]["ink"]["counts"][-1] == n  # ink > 0.6
    assert drifted["drift"]["status"] == "drift"
    assert drifted["drift"]["signals"]["ink"]["score"] > 1 > calm["drift"]["signals"]["ink"][
        "score"]


def httpx_get(url: str) -> str:
    import httpx

    return httpx.get(url, timeout=30).text


@pytest.mark.slow
def test_a_model_without_a_profile_serves_with_no_reference(unprofiled, test_digits):
    from prometheus_client.parser import text_string_to_metric_families

    assert set(_concurrently(unprofiled, [{"path": "/predict", "files": {
        "image": ("d.png", png(d))}} for d in test_digits[0][:5]])) == {200}
    body = _settled(unprofiled, 5)
    assert body["reference"] is None and body["live"]["answers"] == 5
    assert body["drift"]["status"] == "no reference" and body["drift"]["signals"] == {}
    samples = [s for f in text_string_to_metric_families(httpx_get(unprofiled + "/metrics"))
               for s in f.samples if s.name.startswith("mnist_reference")]
    assert [(s.name, s.value) for s in samples] == [("mnist_reference_available", 0.0)]
