from __future__ import annotations

import re
from dataclasses import dataclass

import pytest

from load_tests.shapes import users_at
from load_tests.slo import SLO, Accuracy, summary, violations


@dataclass
class FakeTotal:
    num_requests: int = 1000
    num_failures: int = 0
    fail_ratio: float = 0.0
    total_rps: float = 200.0
    p50: float = 5.0
    p99: float = 40.0

    def get_response_time_percentile(self, q: float) -> float:
        return self.p99 if q >= 0.99 else self.p50


def _acc(correct: int, total: int) -> Accuracy:
    return Accuracy(correct=correct, total=total)


def test_slo_passes_a_healthy_run():
    assert violations(FakeTotal(), _acc(99, 100), SLO(p99_ms=50, min_rps=100)) == []


@pytest.mark.parametrize("total, acc, slo, text", [
    (FakeTotal(num_failures=1, fail_ratio=0.001), _acc(1, 1), SLO(), "failure ratio"),
    (FakeTotal(p99=300), _acc(1, 1), SLO(p99_ms=250), "p99 300 ms > 250 ms"),
    (FakeTotal(total_rps=50), _acc(1, 1), SLO(min_rps=100), "throughput 50.0"),
    (FakeTotal(), _acc(90, 100), SLO(min_accuracy=0.95), "accuracy 0.9000"),
    (FakeTotal(num_requests=0), _acc(0, 0), SLO(), "no requests"),
])
def test_slo_names_each_violation(total, acc, slo, text):
    problems = violations(total, acc, slo)
    assert len(problems) == 1 and text in problems[0]


def test_accuracy_counts_matches():
    acc = Accuracy()
    acc.add([1, 2, 3], [1, 2, 4])
    acc.add([7], [7])
    assert (acc.correct, acc.total) == (3, 4) and acc.ratio == 0.75


def test_summary_is_one_line_with_the_figures():
    line = summary(FakeTotal(), _acc(98, 100))
    assert "\n" not in line
    assert "1000 requests, 0 failed, 200.0 req/s, p50 5 ms, p99 40 ms" in line
    assert "accuracy under load 0.9800" in line


def test_profiles_shape_the_user_count():
    assert [users_at("steady", t, 100, 20) for t in (0, 50, 99)] == [20, 20, 20]
    ramp = [users_at("ramp", t, 100, 20) for t in (0, 40, 80, 99)]
    assert ramp == sorted(ramp) and ramp[0] == 1 and ramp[-1] == 20
    spike = [users_at("spike", t, 100, 20) for t in (10, 45, 55, 70)]
    assert spike == [5, 20, 20, 5]
    assert users_at("soak", 30, 1800, 20) == 10 and users_at("soak", 600, 1800, 20) == 20


def _parsed_slo(argv: list[str], env: dict[str, str] | None = None) -> dict[str, float]:
    """The SLO options as Locust parses them with the load test's own parser listener."""
    import os
    from unittest import mock

    from locust import argument_parser, events

    import load_tests.locustfile  # noqa: F401  (registers the listener)

    parser = argument_parser.get_parser(default_config_files=[])
    events.init_command_line_parser.fire(parser=parser)
    with mock.patch.dict(os.environ, env or {}):
        opts = parser.parse_args(argv)
    return {k[4:]: v for k, v in vars(opts).items() if k.startswith("slo_")}


def test_the_slo_is_declared_once_and_its_defaults_are_the_gates():
    from dataclasses import asdict

    assert _parsed_slo([]) == asdict(SLO())


def test_changing_the_slo_in_its_one_place_changes_the_gate(monkeypatch):
    import dataclasses

    from load_tests import slo

    stricter = dataclasses.make_dataclass("SLO", [
        (f.name, float, dataclasses.field(default=1.0, metadata=f.metadata))
        for f in dataclasses.fields(SLO)], frozen=True)
    monkeypatch.setattr(slo, "SLO", stricter)
    monkeypatch.setattr("load_tests.locustfile.SLO", stricter)
    assert set(_parsed_slo([]).values()) == {1.0}


def test_a_user_can_still_set_the_slo_by_option_or_environment():
    assert _parsed_slo(["--slo-p99-ms", "40"])["p99_ms"] == 40
    assert _parsed_slo([], {"LOCUST_SLO_MIN_RPS": "12"})["min_rps"] == 12


def test_no_config_file_holds_a_copy_of_the_slo():
    import yaml

    from tests.helpers import ROOT

    conf = (ROOT / "load_tests" / "locust.conf").read_text()
    assert not re.search(r"^\s*slo-", conf, re.M), "locust.conf sets an SLO value"
    env = yaml.safe_load((ROOT / "docker-compose.yml").read_text())["services"]["locust"][
        "environment"]
    assert all(env[k] is None for k in env if k.startswith("LOCUST_SLO_")), env


def test_compose_passes_the_load_test_settings_only_when_set():
    """The load's defaults are locust.conf's: compose names Locust's variables without a
    value (passed only when set in the shell) and puts no load option on its command."""
    import yaml

    from tests.helpers import ROOT

    locust = yaml.safe_load((ROOT / "docker-compose.yml").read_text())["services"]["locust"]
    assert all(value is None for name, value in locust["environment"].items()
               if name.startswith("LOCUST_")), locust["environment"]
    words = locust["command"].split()
    assert not {"--users", "-u", "--spawn-rate", "-r", "--run-time", "-t",
                "--load-profile"} & set(words), words
    assert not [word for word in words if word.startswith("--slo-")], words


def test_the_test_process_is_not_patched_by_gevent():
    """This module imports Locust; the tests' own process stays unpatched (tests/conftest.py):
    gevent's Popen forks with os.fork, which runs gRPC's at-fork handlers, and a test that
    started a server while a gRPC channel was alive hung there."""
    import subprocess
    import sys

    assert "locust" in sys.modules
    assert subprocess.Popen.__module__ == "subprocess"
    assert "gevent.monkey" not in sys.modules or not sys.modules["gevent.monkey"].saved
