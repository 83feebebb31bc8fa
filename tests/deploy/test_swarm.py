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
    # Drain: Docker's SIGKILL comes after the drain and a whole request, not before.
    env = api["environment"]
    assert _seconds(api["stop_grace_period"]) > \
        float(env["MNIST_DRAIN_S"]) + float(env["MNIST_TIMEOUT_S"])


def test_a_stopping_replica_fails_the_proxys_check_before_it_stops_serving():
    cfg = (SWARM / "proxy/haproxy.cfg").read_text()
    check = re.search(r"default-server check inter (\d+)s .*fall (\d+)", cfg)
    assert check, "the proxy's health check changed: update this test"
    inter, fall = map(int, check.groups())
    # A check may be under way when the drain starts: one interval more, and a margin.
    drain_s = float(_stack()["api"]["environment"]["MNIST_DRAIN_S"])
    assert drain_s >= inter * (fall + 1) + 1
    cmd = (ROOT / "service/Dockerfile").read_text()
    assert re.search(r'^CMD \["python", "-m", "service\.drain", "--"', cmd, re.M)


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
    assert re.search(r"http-request deny deny_status 400 if \{ req\.hdrs,length gt 16384 \}",
                     cfg)


def _mib(size: str) -> float:
    number, unit = re.fullmatch(r"(\d+)([kmg])", size.lower()).groups()  # type: ignore[union-attr]
    return int(number) * {"k": 1 / 1024, "m": 1, "g": 1024}[unit]


def test_the_proxy_can_resend_a_photo_upload_and_its_buffers_fit_its_memory():
    cfg = (SWARM / "proxy/haproxy.cfg").read_text()
    bufsize = int(re.search(r"tune\.bufsize (\d+)", cfg).group(1))  # type: ignore[union-attr]
    maxconn = int(re.search(r"^\s+maxconn (\d+)", cfg, re.M).group(1))  # type: ignore[union-attr]
    # A request is resent only when it fits one buffer, less tune.maxrewrite (1 KiB):
    # the photo uploads of the Swarm proof (~265 KB) and their headers must.
    assert bufsize - 1024 >= 270_000 + 4096
    # Measured: about one buffer a request in flight, ~12 MiB besides; all connections
    # busy must stay well inside the container's limit.
    limit = _mib(_stack()["proxy"]["deploy"]["resources"]["limits"]["memory"])
    assert 12 + maxconn * bufsize / 2**20 <= 0.8 * limit


def test_every_container_is_locked_down():
    for name, svc in _stack().items():
        assert svc["read_only"] is True and svc["cap_drop"] == ["ALL"], name
        assert svc["deploy"]["resources"]["limits"], name
