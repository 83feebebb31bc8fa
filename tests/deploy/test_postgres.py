"""deploy/postgres: the feedback database's image agrees with compose and the Swarm stack
that run it, and with the api they point at it; durability is left on.

    pytest tests/deploy/test_postgres.py
    make compose-e2e     # the image run: /feedback into it, stopped, started, row kept
"""

from __future__ import annotations

import re
from urllib.parse import urlsplit

import pytest
import yaml

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
