"""deploy/swarm: what the stack promises, checked in its files (make swarm-e2e runs it).

    make swarm-e2e      # the proof under load: rollout, rollback, kill, scaling, drain
"""

from __future__ import annotations

import re

import yaml

from tests.helpers import ROOT

SWARM = ROOT / "deploy/swarm"


def _stack() -> dict:
    return yaml.safe_load((SWARM / "stack.yml").read_text())["services"]


def _seconds(duration: str) -> float:
    return float(re.fullmatch(r"(\d+)s", duration).group(1))  # type: ignore[union-attr]


def test_api_rolls_out_one_ready_replica_at_a_time_and_rolls_back_on_failure():
    api = _stack()["api"]
    update = api["deploy"]["update_config"]
    assert (update["parallelism"], update["order"], update["failure_action"]) == \
        (1, "start-first", "rollback")
    assert "/readyz" in " ".join(api["healthcheck"]["test"])
    # Drain: Docker's SIGKILL comes after the request timeout, not before.
    assert _seconds(api["stop_grace_period"]) > float(api["environment"]["MNIST_TIMEOUT_S"])


def test_no_vip_and_no_ingress_mesh_this_kernel_lacks_ipvs():
    stack = _stack()
    assert stack["api"]["deploy"]["endpoint_mode"] == "dnsrr"
    assert "ports" not in stack["api"]
    assert [p["mode"] for p in stack["proxy"]["ports"]] == ["host"]


def test_the_proxy_finds_checks_and_retries_the_replicas():
    cfg = (SWARM / "proxy/haproxy.cfg").read_text()
    assert re.search(r"server-template api \d+ tasks\.api:3000", cfg)
    assert "option httpchk GET /readyz" in cfg
    assert re.search(r"retry-on .*conn-failure.*empty-response", cfg)
    # The header limits of the hardening issue live here (docs/security.md).
    assert re.search(r"timeout http-request 10s", cfg)
    assert re.search(r"tune\.bufsize 16384", cfg)


def test_every_container_is_locked_down():
    for name, svc in _stack().items():
        assert svc["read_only"] is True and svc["cap_drop"] == ["ALL"], name
        assert svc["deploy"]["resources"]["limits"], name
