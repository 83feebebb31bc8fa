"""Quality monitoring cannot be turned against the service, by a client or by a damaged
model store.

    pytest tests/security/test_monitoring_attacks.py

A reference profile is read from the store at every worker's start-up: one whose numbers
were strings, nulls or lists made the reference gauges raise in the worker's __init__, so
BentoML restarted it in a loop and the model was never served; NaN shares were exported
and scored as if they were a reference ("ok" drift, a null score that broke the page);
a deeply nested file raised RecursionError through the store's handler; the metadata could
name a file outside the model's folder (`../../dev/zero` read without end).
"""

from __future__ import annotations

import copy
import json
import math
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import numpy as np
import pytest

from core import profile as profiles
from service.monitoring import Monitor, check_reference
from service.monitoring_report import drift
from service.store import reference_profile


def _good() -> dict[str, Any]:
    rng = np.random.default_rng(0)
    x = np.zeros((200, 28, 28), np.float32)
    x[:, 6:22, 12:16] = rng.uniform(128, 255, (200, 16, 4))
    profile = profiles.build("unit", x, rng.dirichlet(np.ones(10) * 0.2, 200))
    return json.loads(json.dumps(profile.to_dict()))  # as a file holds it: lists


def _model(folder: Path, name: str = profiles.REFERENCE_FILE) -> SimpleNamespace:
    """A store entry as BentoML's Model resolves a file of it (`path_of`: no checks)."""
    return SimpleNamespace(info=SimpleNamespace(metadata={profiles.META_REFERENCE: name}),
                           tag="mnist_mlp:hostile",
                           path_of=lambda item: str(folder / item.lstrip("/")))


def _set(path: tuple[Any, ...], value: Any):
    def mutate(d: dict[str, Any]) -> None:
        for key in path[:-1]:
            d = d[key]
        d[path[-1]] = value
    return mutate


NAN, INF = float("nan"), float("inf")
DAMAGED = {
    "a NaN digit share": _set(("digit_share", 0), NAN),
    "a string digit share": _set(("digit_share", 0), "x"),
    "a null digit share": _set(("digit_share", 3), None),
    "digit shares that do not sum to 1": _set(("digit_share", 0), 0.9),
    "a negative digit share": _set(("digit_share", 0), -0.5),
    "a list as low-confidence share": _set(("low_confidence_share",), [0.1]),
    "an infinite low-confidence share": _set(("low_confidence_share",), INF),
    "NaN histogram shares": _set(("confidence", "shares"), [NAN] * 11),
    "objects as histogram shares": _set(("entropy", "shares"), [{}] * 12),
    "histogram shares out of 0..1": _set(("confidence", "shares"), [-5.0] * 10 + [51.0]),
    "a string mean": _set(("confidence", "mean"), "abc"),
    "an infinite std": _set(("inputs", "ink", "std"), INF),
    "a null mean": _set(("inputs", "shift", "mean"), None),
}


@pytest.mark.parametrize("damage", DAMAGED.values(), ids=DAMAGED.keys())
def test_a_damaged_reference_is_no_reference_and_the_worker_starts(tmp_path, damage):
    hostile = copy.deepcopy(_good())
    damage(hostile)
    (tmp_path / profiles.REFERENCE_FILE).write_text(json.dumps(hostile))
    reference = reference_profile(_model(tmp_path), check_reference)
    assert reference is None
    monitor = Monitor("hostile-profile", reference, enabled=True)  # what a worker does
    assert drift(monitor.reference, {"answers": 10**6})["status"] == "no reference"


def test_the_good_profile_those_are_made_from_is_a_reference(tmp_path):
    (tmp_path / profiles.REFERENCE_FILE).write_text(json.dumps(_good()))
    reference = reference_profile(_model(tmp_path), check_reference)
    assert reference is not None and math.isclose(sum(reference.digit_share), 1.0)


def test_a_deeply_nested_file_is_no_reference(tmp_path):
    (tmp_path / profiles.REFERENCE_FILE).write_text("[" * 100_000 + "]" * 100_000)
    assert reference_profile(_model(tmp_path), check_reference) is None


@pytest.mark.parametrize("name", ["../elsewhere.json", "sub/../../elsewhere.json",
                                  "/../elsewhere.json"])
def test_the_metadata_cannot_name_a_file_outside_the_models_folder(tmp_path, name):
    (tmp_path / "elsewhere.json").write_text(json.dumps(_good()))
    folder = tmp_path / "model"
    (folder / "sub").mkdir(parents=True)
    assert reference_profile(_model(folder, name), check_reference) is None


def test_a_file_larger_than_any_profile_is_not_read(tmp_path):
    # A valid profile padded with whitespace: it would parse, but no profile is this big
    # (a few KiB: its length is fixed by the bucket edges); /dev/zero would never end.
    text = json.dumps(_good())
    (tmp_path / profiles.REFERENCE_FILE).write_text(text + " " * (8 << 20))
    assert reference_profile(_model(tmp_path), check_reference) is None


# Cost: a client cannot make /monitoring's work pile up against the event loop.

def test_concurrent_monitoring_calls_share_one_read_at_a_time(client, monkeypatch):
    """Each GET /monitoring read every worker's files and recomputed the drift on a
    thread of its own: 50 at once took /predict's median from ~7 ms to ~620 ms (two
    workers, 2 CPUs). Callers that come during a read now share the next one."""
    import threading
    import time
    from concurrent.futures import ThreadPoolExecutor

    import service.routes as routes

    lock, running, most, runs = threading.Lock(), [0], [0], [0]
    real = routes.report

    def slow_report(*args: Any) -> Any:
        with lock:
            running[0] += 1
            runs[0] += 1
            most[0] = max(most[0], running[0])
        time.sleep(0.05)  # a read of many workers' files
        try:
            return real(*args)
        finally:
            with lock:
                running[0] -= 1

    monkeypatch.setattr(routes, "report", slow_report)
    calls = 24
    with ThreadPoolExecutor(calls) as pool:
        codes = list(pool.map(lambda _: client.get("/monitoring").status_code, range(calls)))
    assert codes == [200] * calls
    assert most[0] == 1, f"{most[0]} reads at once"
    assert runs[0] < calls / 2, f"{runs[0]} reads for {calls} calls"


def test_concurrent_scrapes_share_one_read_at_a_time(client, monkeypatch):
    """/metrics reads every worker's files too (a little more than /monitoring does): the
    same pile-up, the same remedy."""
    import threading
    import time
    from concurrent.futures import ThreadPoolExecutor

    import service.metrics as metrics

    lock, running, most, runs = threading.Lock(), [0], [0], [0]
    real = metrics.exposition

    def slow_exposition() -> bytes:
        with lock:
            running[0] += 1
            runs[0] += 1
            most[0] = max(most[0], running[0])
        time.sleep(0.05)
        try:
            return real()
        finally:
            with lock:
                running[0] -= 1

    metrics._expositions.cache_clear()  # the reader reads the function it was made with
    monkeypatch.setattr(metrics, "exposition", slow_exposition)
    calls = 24
    try:
        with ThreadPoolExecutor(calls) as pool:
            codes = list(pool.map(lambda _: client.get("/metrics").status_code, range(calls)))
    finally:
        metrics._expositions.cache_clear()
    assert codes == [200] * calls
    assert most[0] == 1, f"{most[0]} reads at once"
    assert runs[0] < calls / 2, f"{runs[0]} reads for {calls} calls"
