"""deploy/swarm: the stack, the proxy and the service agree with each other, and the pure
parts of the proof (make swarm-e2e runs it whole).

    make swarm-e2e      # the proof under load: rollout, rollback, kill, scaling, drain
"""

from __future__ import annotations

import functools
import importlib.util
import re
import sys

import yaml

from service.settings import PREFIX, Settings
from tests.helpers import ROOT

SWARM = ROOT / "deploy/swarm"


def _stack() -> dict:
    return yaml.safe_load((SWARM / "stack.yml").read_text())["services"]


def _proxy_cfg() -> str:
    return (SWARM / "proxy/haproxy.cfg").read_text()


def _section(header: str) -> str:
    """One section of haproxy.cfg (e.g. "backend grpc"): its indented lines."""
    found = re.search(rf"^{header}\n((?:[ \t].*\n|\n)*?)(?=\S|\Z)", _proxy_cfg(), re.M)
    assert found, f"haproxy.cfg has no section {header!r}: update this test"
    return found[1]


def _seconds(duration: str) -> float:
    return float(re.fullmatch(r"(\d+)s", duration).group(1))  # type: ignore[union-attr]


def _api_setting(name: str) -> float:
    """A service setting as the stack's api replicas run it: the stack's value, else the
    service's default."""
    env = _stack()["api"]["environment"]
    return float(env.get(PREFIX + name.upper(), Settings.model_fields[name].default))


@functools.cache
def _e2e():
    """deploy/swarm/e2e.py, a script, imported by path."""
    spec = importlib.util.spec_from_file_location("swarm_e2e", SWARM / "e2e.py")
    assert spec and spec.loader
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module  # its dataclass looks its module up
    spec.loader.exec_module(module)
    return module


def test_docker_stops_a_replica_only_after_its_drain_and_a_whole_request():
    # Docker's SIGKILL comes after the drain and a whole request, not before.
    grace = _seconds(_stack()["api"]["stop_grace_period"])
    assert grace > _api_setting("drain_s") + _api_setting("timeout_s")


def test_the_stack_and_the_proxy_check_the_port_and_path_the_service_serves():
    api_check = " ".join(_stack()["api"]["healthcheck"]["test"])
    image_check = (ROOT / "service/Dockerfile").read_text()
    cfg = _proxy_cfg()
    port = re.search(r"server-template api \d+ tasks\.api:(\d+)", cfg)
    path = re.search(r"option httpchk GET (\S+)", cfg)
    assert port and path, "the proxy's servers or health check changed: update this test"
    assert f"http://127.0.0.1:{port[1]}{path[1]}'" in api_check
    assert f"EXPOSE {port[1]}" in image_check and f":{port[1]}{path[1]}'" in image_check


def test_the_stack_publishes_every_frontend_of_the_proxy():
    binds = {int(port) for port in re.findall(r"^\s+bind :(\d+)", _proxy_cfg(), re.M)}
    assert binds == {int(p["target"]) for p in _stack()["proxy"]["ports"]}
    expose = re.search(r"^EXPOSE (.*)$", (SWARM / "proxy/Dockerfile").read_text(), re.M)
    assert expose and set(map(int, expose[1].split())) == binds


def test_the_proxy_carries_grpc_over_http2_to_the_replicas_grpc_port():
    frontend, grpc, api = (_section(s) for s in ("frontend grpc", "backend grpc",
                                                   "backend api"))
    assert re.search(r"^\s+bind :\d+ proto h2$", frontend, re.M)
    assert re.search(r"^\s+default_backend grpc$", frontend, re.M)
    port = re.search(r"server-template grpc \d+ tasks\.api:(\d+)", grpc)
    assert port and int(port[1]) == _api_setting("grpc_port")
    assert re.search(r"^\s+default-server proto h2 ", grpc, re.M)
    # Its pool follows the HTTP pool's check: the same path and timing, over HTTP/1.1 on
    # the HTTP port (a draining replica fails /readyz; its gRPC server has no check).
    http_port = re.search(r"server-template api \d+ tasks\.api:(\d+)", api)
    path = re.search(r"option httpchk GET (\S+)", api)
    assert http_port and path, "the api backend changed: update this test"
    assert f" check port {http_port[1]} " in grpc and "http-check connect proto h1" in grpc
    assert f"http-check send meth GET uri {path[1]}\n" in grpc
    assert "http-check expect status 200" in api and "http-check expect status 200" in grpc
    timing = [re.search(r"inter .*", section)[0] for section in (api, grpc)]  # type: ignore[index]
    assert timing[0] == timing[1]


def test_a_stopping_replica_fails_the_proxys_check_before_it_stops_serving():
    checks = re.findall(r"default-server .*check .*inter (\d+)s .*fall (\d+)", _proxy_cfg())
    assert len(checks) == 2, "the proxy's health checks changed: update this test"
    for inter, fall in checks:  # the HTTP and the gRPC pools
        # A check may be under way when the drain starts: one interval more, and a margin.
        assert _api_setting("drain_s") >= int(inter) * (int(fall) + 1) + 1
    cmd = (ROOT / "service/Dockerfile").read_text()
    assert re.search(r'^CMD \["python", "-m", "service\.drain", "--"', cmd, re.M)


def test_the_proxy_waits_for_a_request_as_long_as_the_service_may_take():
    cfg = _proxy_cfg()
    server = re.search(r"timeout server (\d+)s", cfg)
    request = re.search(r"timeout http-request (\d+)s", cfg)
    assert server and request, "the proxy's timeouts changed: update this test"
    assert int(server[1]) > _api_setting("timeout_s")  # else it cuts answers still due
    # The whole request is buffered (to be resent), so its body must arrive within
    # `timeout http-request`: the service's own body deadline.
    assert "option http-buffer-request" in cfg
    assert int(request[1]) == _api_setting("body_timeout_s")


def test_the_api_is_reached_only_through_the_proxy_and_its_limits():
    assert "ports" not in _stack()["api"]  # published, it would bypass the header limits
    limit = re.search(r"deny_status 400 if \{ req\.hdrs,length gt (\d+) \}", _proxy_cfg())
    assert limit, "the proxy's header limit changed: update this test"
    # The proof's oversized header must be over the limit, to see it refused.
    assert int(limit[1]) < _e2e().BIG_HEADER_BYTES
    # gRPC calls get the same limit, and the same timeouts: the defaults' only.
    for frontend in ("frontend http", "frontend grpc"):
        assert limit[0] in _section(frontend), frontend
    for section in ("frontend http", "frontend grpc", "backend api", "backend grpc"):
        assert "timeout " not in _section(section), section


def _mib(size: str) -> float:
    number, unit = re.fullmatch(r"(\d+)([kmg])", size.lower()).groups()  # type: ignore[union-attr]
    return int(number) * {"k": 1 / 1024, "m": 1, "g": 1024}[unit]


def test_the_proxy_can_resend_a_photo_upload_and_its_buffers_fit_its_memory():
    cfg = _proxy_cfg()
    bufsize = int(re.search(r"tune\.bufsize (\d+)", cfg).group(1))  # type: ignore[union-attr]
    maxconn = int(re.search(r"^\s+maxconn (\d+)", cfg, re.M).group(1))  # type: ignore[union-attr]
    # A request is resent only when it fits one buffer, less tune.maxrewrite (1 KiB):
    # the photo uploads of the Swarm proof (~265 KB) and their headers must.
    assert bufsize - 1024 >= 270_000 + 4096
    # Measured: about one buffer a request in flight, ~12 MiB besides; all connections
    # busy must stay well inside the container's limit.
    limit = _mib(_stack()["proxy"]["deploy"]["resources"]["limits"]["memory"])
    assert 12 + maxconn * bufsize / 2**20 <= 0.8 * limit
    # A gRPC connection carries several calls at once: the frontends' connections, gRPC's
    # times its streams, are at most maxconn requests in flight.
    http_conns, grpc_conns = (int(re.search(r"maxconn (\d+)", _section(f"frontend {f}"))[1])
                              for f in ("http", "grpc"))
    streams = int(re.search(r"tune\.h2\.max-concurrent-streams (\d+)", cfg)[1])
    assert http_conns + grpc_conns * streams <= maxconn


def test_every_container_is_locked_down():
    for name, svc in _stack().items():
        assert svc["read_only"] is True and svc["cap_drop"] == ["ALL"], name
        assert svc["deploy"]["resources"]["limits"], name


def test_the_proofs_load_passes_no_slo_value(tmp_path):
    cmd = _e2e().load_command("http://127.0.0.1:8080", 8, tmp_path / "kill",
                              "deploy/swarm/photo_locustfile.py")
    assert not [a for a in cmd if a.startswith("--slo-")]
    assert cmd[cmd.index("--locustfile") + 1] == "deploy/swarm/photo_locustfile.py"
    assert cmd[cmd.index("--csv") + 1] == str(tmp_path / "kill")
    assert cmd[cmd.index("--run-time") + 1] == "1800s"


def test_a_loads_figures_from_locusts_files(tmp_path):
    prefix = tmp_path / "photo_kill"
    (tmp_path / "photo_kill_stats.csv").write_text(
        "Type,Name,Request Count,Failure Count,Requests/s,50%,99%\n"
        "POST,/predict,1014,1,33.81,120,900\n,Aggregated,1014,1,33.84,120,900\n")
    (tmp_path / "photo_kill_failures.csv").write_text(
        "Method,Name,Error,Occurrences\nPOST,/predict,HTTP 502: bad gateway,1\n")
    (tmp_path / "photo_kill.log").write_text(
        "photo payloads: 32 JPEGs of 262001-266002 bytes\nAll users spawned\n")
    assert _e2e().load_figures(prefix) == {
        "requests": 1014, "failed": 1, "rps": 33.8, "p50_ms": 120.0, "p99_ms": 900.0,
        "failures": ["1 x HTTP 502: bad gateway"], "upload_bytes": [262001, 266002]}
    (tmp_path / "photo_kill_failures.csv").unlink()
    (tmp_path / "photo_kill.log").write_text("All users spawned\n")
    figures = _e2e().load_figures(prefix)
    assert figures["failures"] == [] and "upload_bytes" not in figures


def test_the_stopped_replicas_slot_from_the_proxys_log():
    e2e = _e2e()
    t_stop = e2e._stamp("2026-01-01T12:00:10.000000000Z x")
    lines = [
        "2026-01-01T11:50:00.000000000Z api/api3 changed its IP from (none) to 10.0.1.7 by "
        "DNS cache.",
        # The same replica in the gRPC pool: another slot, not the one the HTTP log names.
        "2026-01-01T11:50:00.000000000Z grpc/grpc5 changed its IP from (none) to 10.0.1.7 by "
        "DNS cache.",
        '2026-01-01T12:00:11.000000000Z 10.0.0.2 [..] http api/api3 0/0/1/2/3 200 "POST '
        '/predict HTTP/1.1"',
        "2026-01-01T12:00:12.500000000Z Server api/api3 is going DOWN for maintenance.",
        '2026-01-01T12:00:13.000000000Z 10.0.0.2 [..] http api/api1 0/0/1/2/3 200 "POST '
        '/predict HTTP/1.1"',
    ]
    view = e2e.slot_timeline(lines, ["10.0.1.7"], t_stop, t_stop + 4)
    assert view == {"proxy_slot": "api/api3", "out_of_proxy_after_s": 2.5,
                    "last_request_sent_after_s": 1.0}
    assert e2e.slot_timeline(lines, ["10.0.9.9"], t_stop, t_stop + 4)["proxy_slot"] is None
