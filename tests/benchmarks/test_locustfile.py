"""make bench's load generator checks every answer: the digit the model gives in process,
for every image, in order; the transport ceiling's constant answer passes only a status
check."""

from __future__ import annotations

import sys
from pathlib import Path

import numpy as np
import pytest

from benchmarks import side_by_side
from benchmarks.locustfile import expected_digits, wrong
from clients import server_process as process


def test_an_answer_is_right_only_with_every_expected_digit_in_order():
    assert wrong(b'{"digit":7,"confidence":0.9}', np.array([7])) is None
    assert wrong(b'{"predictions": [{"digit": 7}]}', np.array([7])) is None  # KServe's v1
    assert wrong(b'{"digit":3}', np.array([7])) == "answered [3], expected [7]"
    assert wrong(b'{"status":"ok"}', np.array([7])) == "answered [], expected [7]"
    batch = b'{"predictions":[{"digit":1},{"digit":2},{"digit":3}]}'
    assert wrong(batch, np.array([1, 2, 3])) is None
    assert wrong(batch, np.array([1, 3, 2])) is not None
    assert wrong(batch, np.array([1, 2])) is not None  # one answer too many


def test_the_expected_digits_are_the_models_own(trained, test_digits, monkeypatch):
    from service.engine import Engine

    _, out, _ = trained
    images, labels = test_digits[0][:500], test_digits[1][:500]
    monkeypatch.delenv("BENCH_ONNX_PATH", raising=False)
    assert expected_digits(images, labels) is labels
    monkeypatch.setenv("BENCH_ONNX_PATH", str(out / "model.onnx"))
    model = Engine(out / "model.onnx").probabilities(images.astype(np.float32)).argmax(1)
    expected = expected_digits(images, labels)
    assert (expected == model).all() and (expected != labels).any()  # the small model errs


@pytest.mark.slow
def test_a_constant_answer_passes_the_status_check_and_fails_the_digit_check(
        tmp_path, mnist_folder, monkeypatch):
    from benchmarks.run import locust

    monkeypatch.setenv("MNIST_DIR", str(mnist_folder))
    with open(tmp_path / "server.log", "w") as log:
        transport = side_by_side.Server(
            side_by_side.TRANSPORT, "transport", "/anything", "/", "status",
            lambda port: side_by_side.uvicorn("benchmarks.transport:app", port, 1, log,
                                              {"PATH": str(Path(sys.executable).parent)}),
            process.stop)
        status = side_by_side.measure([transport], 2, tmp_path, locust, 1, (2,))
        digit = side_by_side.measure([transport._replace(check="digit")], 2, tmp_path, locust,
                                     1, (2,))
    ok, = side_by_side.runs(status, side_by_side.TRANSPORT)
    bad, = side_by_side.runs(digit, side_by_side.TRANSPORT)
    assert ok["requests"] > 0 and ok["failures"] == 0 and ok["right_rps"] == ok["rps"]
    assert bad["requests"] > 0 and bad["failures"] == bad["requests"] and bad["right_rps"] == 0
