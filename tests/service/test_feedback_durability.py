"""Nothing acknowledged is lost: `bentoml serve` for real, on a real SQLite file and a real
PostgreSQL server (tests/postgres.py), each killed with SIGKILL right after a 200.

    pytest tests/service/test_feedback_durability.py

A SIGKILL of the service's whole process group, or of PostgreSQL's postmaster, leaves no
time to flush anything: a row whose 200 arrived must be in the database after the
restart. While PostgreSQL is down, /predict keeps answering and /feedback is a 503 with
Retry-After.
"""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest

from clients import server_process as process
from clients.uploads import png
from core.feedback import open_store
from service.settings import load_settings
from tests import postgres

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def cluster():
    with postgres.cluster() as pg:
        yield pg


@pytest.fixture(scope="module")
def home(trained, tmp_path_factory) -> Path:
    """A model store of this module's servers: every `bentoml serve` empties its store's
    metrics folder, which would wipe the session server's."""
    root = tmp_path_factory.mktemp("durability") / "home"
    shutil.copytree(trained[2] / "models", root / "models")
    return root


@contextmanager
def _serving(home: Path, url: str) -> Iterator[tuple[subprocess.Popen, str]]:
    """`bentoml serve` writing feedback to `url`, ready; stopped on the way out if alive."""
    port = process.free_port()
    with open(home.parent / f"server-{port}.log", "w") as log:
        proc = process.start(port, log, env={"BENTOML_HOME": str(home),
                                             "MNIST_FEEDBACK_URL": url})
        try:
            try:
                process.wait_ready(proc, f"http://127.0.0.1:{port}")
            except RuntimeError as exc:
                pytest.fail(f"{exc}:\n{(home.parent / f'server-{port}.log').read_text()}")
            yield proc, f"http://127.0.0.1:{port}"
        finally:
            process.stop(proc)


def _kill(proc: subprocess.Popen) -> None:
    """SIGKILL of the service's whole process group (the server and its workers)."""
    os.killpg(proc.pid, signal.SIGKILL)
    proc.wait()


def _feedback(base: str, image: bytes, digit: int):
    import httpx

    return httpx.post(base + "/feedback", files={"image": ("d.png", image, "image/png")},
                      data={"digit": str(digit)}, timeout=30)


def _stored(url: str) -> dict[int, int]:
    """{row id: digit} of every row in the database."""
    store = open_store(url, timeout_s=10)
    try:
        return {row.id: row.truth for row in store.rows()}
    finally:
        store.close()


@pytest.mark.parametrize("backend", ["sqlite", "postgresql"])
def test_a_row_survives_a_sigkill_of_the_service(backend, home, test_digits, tmp_path,
                                                 request):
    url = (f"sqlite:///{tmp_path}/feedback.db" if backend == "sqlite"
           else request.getfixturevalue("cluster").url)
    x, y = test_digits
    with _serving(home, url) as (proc, base):
        resp = _feedback(base, png(x[0]), int(y[0]))
        _kill(proc)  # at once, after the 200
    assert resp.status_code == 200, resp.text
    acknowledged = resp.json()["id"]
    with _serving(home, url) as (_, base):
        assert _stored(url)[acknowledged] == y[0]
        again = _feedback(base, png(x[1]), int(y[1]))
        assert again.status_code == 200 and again.json()["id"] > acknowledged


def test_a_row_survives_a_sigkill_of_postgres_and_predict_serves_meanwhile(
        cluster, home, test_digits):
    import httpx

    x, y = test_digits
    image = png(x[2])
    with _serving(home, cluster.url) as (_, base):
        resp = _feedback(base, image, int(y[2]))
        cluster.kill()  # the postmaster, right after the 200
        try:
            assert resp.status_code == 200, resp.text
            predicted = httpx.post(base + "/predict", files={"image": ("d.png", image)},
                                   timeout=30)
            assert predicted.status_code == 200 and predicted.json()["digit"] in range(10)
            down = _feedback(base, image, int(y[2]))
            assert down.status_code == 503 and "error" in down.json()
            assert down.headers["Retry-After"] == str(load_settings().feedback_retry_after_s)
        finally:
            cluster.start()
        assert _stored(cluster.url)[resp.json()["id"]] == y[2]
        back = _feedback(base, image, int(y[2]))  # the worker opens its store again
        assert back.status_code == 200 and back.json()["id"] > resp.json()["id"]


def test_a_database_down_at_start_up_stops_neither_the_start_nor_predict(home,
                                                                           test_digits):
    import httpx

    nobody = f"postgresql://mnist:pw@127.0.0.1:{process.free_port()}/mnist"
    image = png(test_digits[0][3])
    with _serving(home, nobody) as (_, base):  # ready: the database is never asked
        assert httpx.post(base + "/predict", files={"image": ("d.png", image)},
                          timeout=30).status_code == 200
        down = _feedback(base, image, int(test_digits[1][3]))
        assert down.status_code == 503 and "Retry-After" in down.headers
        assert "pw@" not in down.text
