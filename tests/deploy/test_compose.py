"""docker-compose.yml agrees with the service it runs: the api stops only after its drain
and a whole request, its memory limit is above the attack goal's worker peak, and it
publishes the ports the service serves on (HTTP, checked by its health check, and the
Open Inference Protocol's gRPC service).

    make compose-e2e     # the whole container procedure, run and checked
"""

from __future__ import annotations

import re

import pytest
import yaml

from benchmarks.goals import WORKER_PEAK_MB
from service.settings import PREFIX, Settings
from tests.helpers import ROOT

UNITS = {"s": 1, "m": 60}
SIZES = {"m": 1, "g": 1024}


def _compose(name: str = "docker-compose.yml") -> dict:
    return yaml.safe_load((ROOT / name).read_text())["services"]


def _api_setting(name: str) -> float:
    """A service setting as compose runs the api when no variable is set in the shell: its
    value there (a `${VAR:-default}`'s default), else the service's default."""
    value = str(_compose()["api"]["environment"].get(PREFIX + name.upper(), ""))
    interpolated = re.fullmatch(r"\$\{\w+:-(.*)\}", value)
    value = interpolated.group(1) if interpolated else value
    return float(value or Settings.model_fields[name].default)


def _seconds(duration: str) -> float:
    number, unit = re.fullmatch(r"(\d+)([sm])", duration).groups()  # type: ignore[union-attr]
    return float(number) * UNITS[unit]


def test_docker_stops_the_api_only_after_its_drain_and_a_whole_request():
    grace = _seconds(_compose()["api"]["stop_grace_period"])
    assert grace > _api_setting("drain_s") + _api_setting("timeout_s")


@pytest.mark.parametrize("name", ["docker-compose.yml", "docker-compose.gpu.yml"])
def test_the_apis_memory_holds_a_worker_at_the_attack_goals_peak(name):
    """make attack's goal bounds one worker's peak under attack; compose gives the api
    room for each of its workers at that peak."""
    limit = _compose(name)["api"]["mem_limit"]
    number, unit = re.fullmatch(r"(\d+)([mg])", limit).groups()  # type: ignore[union-attr]
    workers = _api_setting("workers") or 1
    assert float(number) * SIZES[unit] > workers * WORKER_PEAK_MB


def _published() -> dict[str, int]:
    """The api's published ports: the variable that sets each host port -> the container's
    port (entries of the form "${VAR:-default}:port")."""
    found = {}
    for entry in _compose()["api"]["ports"]:
        match = re.fullmatch(r"\$\{(\w+):-\d+\}:(\d+)", entry)
        assert match, f"{entry}: a published port changed form: update this test"
        found[match[1]] = int(match[2])
    return found


def test_the_api_publishes_the_grpc_port_it_serves_on():
    grpc = int(_api_setting("grpc_port"))
    assert _published()["GRPC_PORT"] == grpc
    assert re.search(rf"^EXPOSE .*\b{grpc}\b", (ROOT / "service/Dockerfile").read_text(), re.M)


def test_the_apis_health_check_probes_the_http_port_it_publishes():
    check = " ".join(_compose()["api"]["healthcheck"]["test"])
    assert f"http://127.0.0.1:{_published()['API_PORT']}/readyz" in check
