"""deploy/postgres: the feedback database's image agrees with compose and the Swarm stack
that run it, and with the api they point at it; durability is left on; and the image,
run as they run it (where Docker is), initialises once, demands its password, stops fast
and cleanly, and keeps a committed row through a clean stop and a SIGKILL.

    pytest tests/deploy/test_postgres.py
    make compose-e2e     # the image behind the api: /feedback, stopped, started, row kept
"""

from __future__ import annotations

import importlib.util
import re
import subprocess
import sys
import time
import uuid
from collections.abc import Iterator
from urllib.parse import urlsplit

import numpy as np
import pytest
import yaml

from core.feedback import Feedback, StoreUnavailable, open_store
from tests.deploy.proxy_image import skip_without_docker
from tests.helpers import ROOT

IMAGE = ROOT / "deploy/postgres"
FILES = {"compose": "docker-compose.yml", "swarm": "deploy/swarm/stack.yml"}
DEFAULT = re.compile(r"\$\{(\w+):-([^}]*)\}")  # compose's ${VAR:-default}


def _services(form: str) -> dict:
    return yaml.safe_load((ROOT / FILES[form]).read_text())["services"]


def _dockerfile(instruction: str) -> str:
    found = re.search(rf"^{instruction} (.*)$", (IMAGE / "Dockerfile").read_text(), re.M)
    assert found, f"deploy/postgres/Dockerfile has no {instruction}: update this test"
    return found[1]


def _mounts(form: str) -> dict[str, str]:
    """The postgres service's mounts: target -> "tmpfs" or the volume's name."""
    svc = _services(form)["postgres"]
    if form == "compose":
        volumes = dict(reversed(v.split(":")) for v in svc["volumes"])
        return {**volumes, **{t.split(":")[0]: "tmpfs" for t in svc["tmpfs"]}}
    return {m["target"]: m.get("source", m["type"]) for m in svc["volumes"]}


@pytest.mark.parametrize("form", FILES)
def test_the_apis_feedback_url_is_the_postgres_services_role_and_database(form):
    services = _services(form)
    url = urlsplit(DEFAULT.sub(r"\2", services["api"]["environment"]["MNIST_FEEDBACK_URL"]))
    env = services["postgres"]["environment"]
    assert url.scheme == "postgresql" and url.hostname == "postgres"
    assert url.port == int(_dockerfile("EXPOSE"))
    assert (url.username, url.path) == (env["POSTGRES_USER"], "/" + env["POSTGRES_DB"])
    # One variable sets both sides, with one default.
    assert DEFAULT.findall(services["api"]["environment"]["MNIST_FEEDBACK_URL"]) == \
        DEFAULT.findall(env["POSTGRES_PASSWORD"]) == [("POSTGRES_PASSWORD", url.password)]


@pytest.mark.parametrize("form", FILES)
def test_the_data_lives_in_a_volume_where_the_image_keeps_it(form):
    data = _dockerfile("VOLUME")
    assert re.search(rf"^ENV .*\bPGDATA={re.escape(data)}\b", (IMAGE / "Dockerfile").read_text(),
                     re.M)
    mounts = _mounts(form)
    assert mounts[data] == "postgres-data"
    # The root file system is read-only: the socket's folder and /tmp are tmpfs.
    assert mounts["/run/postgresql"] == mounts["/tmp"] == "tmpfs"
    # A volume no service shares: one server per data folder.
    others = [m for name, svc in _services(form).items() if name != "postgres"
              for m in map(str, svc.get("volumes", [])) if "postgres-data" in m]
    assert others == []


def test_the_api_does_not_wait_for_the_database_to_serve():
    """/predict serves at once; /feedback answers 503 until the database answers."""
    assert _services("compose")["api"]["depends_on"]["postgres"] == {
        "condition": "service_started"}


def test_swarm_publishes_the_database_for_the_retraining_job_on_the_host():
    svc = _services("swarm")["postgres"]
    (port,) = svc["ports"]
    assert port["target"] == int(_dockerfile("EXPOSE")) and port["mode"] == "host"
    assert port["published"] == "${SWARM_POSTGRES_PORT:-5432}"
    assert svc["deploy"]["replicas"] == 1
    assert svc["deploy"]["update_config"]["order"] == "stop-first"
    script = (ROOT / "deploy/swarm/swarm.sh").read_text()
    assert 'docker build -q -t "$POSTGRES_IMAGE" deploy/postgres' in script
    assert "SWARM_POSTGRES_PORT" in (ROOT / "docs/deployment.md").read_text()


def test_the_loop_proof_reaches_the_stacks_database_from_the_host(monkeypatch):
    monkeypatch.delenv("POSTGRES_PASSWORD", raising=False)
    monkeypatch.delenv("SWARM_POSTGRES_PORT", raising=False)
    spec = importlib.util.spec_from_file_location("loop_e2e", ROOT / "deploy/swarm/loop_e2e.py")
    assert spec and spec.loader
    loop = importlib.util.module_from_spec(spec)
    monkeypatch.setitem(sys.modules, spec.name, loop)  # its dataclasses look it up
    spec.loader.exec_module(loop)
    svc = _services("swarm")["postgres"]
    env, (port,) = svc["environment"], svc["ports"]
    published = DEFAULT.fullmatch(port["published"])[2]  # type: ignore[index]
    url = urlsplit(loop.feedback_url("a-fresh-password", published))
    assert (url.hostname, str(url.port)) == ("127.0.0.1", published)
    assert (url.username, url.password, url.path) == (
        env["POSTGRES_USER"], "a-fresh-password", "/" + env["POSTGRES_DB"])
    # The proof passes its own password to the stack, which gives it to the database.
    assert "${POSTGRES_PASSWORD" in env["POSTGRES_PASSWORD"]


def test_the_server_runs_as_pid_1_stops_fast_and_keeps_durability_on():
    entrypoint = (IMAGE / "entrypoint.sh").read_text()
    # exec: the server is PID 1 and gets the stop signal, SIGINT being its fast shutdown.
    assert entrypoint.rstrip().splitlines()[-1] == 'exec postgres -D "$PGDATA" "$@"'
    assert _dockerfile("STOPSIGNAL") == "SIGINT"
    assert "pg_isready" in _dockerfile("  CMD") and "-h 127.0.0.1" in _dockerfile("  CMD")
    # Nothing trades a committed row for speed, here or where the services start it.
    settings = entrypoint + "".join(str(svc.get("command", "")) for form in FILES
                                    for svc in [_services(form)["postgres"]])
    assert not re.search(r"fsync|synchronous_commit|full_page_writes", settings)
    assert "--auth-host=scram-sha-256" in entrypoint


def _docker(*args: str) -> str:
    done = subprocess.run(["docker", *args], capture_output=True, text=True)
    assert done.returncode == 0, done.stderr
    return (done.stdout + done.stderr).strip()  # `docker logs` passes the server's stderr


@pytest.fixture(scope="module")
def database() -> Iterator[str]:
    """The image, built from this checkout and run as compose runs it (read-only, no
    capabilities, a named volume), on a loopback port: its container's name."""
    skip_without_docker()
    name = f"mnist-postgres-test-{uuid.uuid4().hex[:8]}"
    _docker("build", "-q", "-t", "mnist-postgres:test", str(IMAGE))
    _docker("run", "-d", "--name", name, "--read-only", "--cap-drop", "ALL",
            "--tmpfs", "/run/postgresql", "--tmpfs", "/tmp",
            "-v", f"{name}:{_dockerfile('VOLUME')}",
            "-e", "POSTGRES_PASSWORD=test-secret", "-p", "127.0.0.1::5432", "mnist-postgres:test")
    try:
        yield name
    finally:
        subprocess.run(["docker", "rm", "-f", name], capture_output=True)
        subprocess.run(["docker", "volume", "rm", name], capture_output=True)


def _healthy(name: str) -> str:
    """Waits for the container's health check to pass: its URL (the loopback port changes
    with each start)."""
    for _ in range(120):
        if _docker("inspect", "-f", "{{.State.Health.Status}}", name) == "healthy":
            port = _docker("port", name, "5432/tcp").split(":")[-1]
            return f"postgresql://mnist:test-secret@127.0.0.1:{port}/mnist"
        time.sleep(0.5)
    pytest.fail(_docker("logs", name))


def _row(url: str) -> int:
    store = open_store(url, 5)
    try:
        return store.add(Feedback(pixels=np.full((28, 28), 7, np.uint8), truth=7, answered=1,
                                  model_version="test"))
    finally:
        store.close()


def _ids(url: str) -> list[int]:
    store = open_store(url, 5)
    try:
        return [row.id for row in store.rows() if row.id is not None]
    finally:
        store.close()


def test_the_image_demands_the_password_and_serves_as_pid_1(database):
    name = database
    url = _healthy(name)
    with pytest.raises(StoreUnavailable):
        _row(url.replace("test-secret", "wrong"))
    assert _docker("exec", name, "cat", "/proc/1/comm") == "postgres"
    assert _docker("exec", name, "psql", "-d", "mnist", "-Atc",
                   "show fsync; show synchronous_commit") == "on\non"


def test_a_committed_row_survives_a_clean_stop_and_a_sigkill(database):
    name = database
    first = _row(_healthy(name))
    started = time.monotonic()
    _docker("stop", name)  # the image's STOPSIGNAL: a fast shutdown, with no SIGKILL
    assert time.monotonic() - started < 5
    assert _docker("inspect", "-f", "{{.State.ExitCode}}", name) == "0"
    assert "database system is shut down" in _docker("logs", "--tail", "3", name)
    _docker("start", name)
    second = _row(_healthy(name))
    _docker("kill", "-s", "KILL", name)  # right after the commit
    _docker("start", name)
    assert {first, second} <= set(_ids(_healthy(name)))
    # The volume was initialised once, at the first start only.
    assert _docker("logs", name).count("initialising") == 1
