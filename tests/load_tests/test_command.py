"""Locust's command line, built in one place, and the Aggregated row read back."""

from __future__ import annotations

import pytest

from load_tests.command import CONFIG, Totals, locust_command, read_totals, slo_options


def _option(cmd: list[str], name: str) -> str | None:
    return cmd[cmd.index(name) + 1] if name in cmd else None


def test_the_load_tests_config_and_every_given_option():
    cmd = locust_command("http://h:1", users=16, seconds=20, csv_prefix="out/r",
                         html="out/r.html", extra=["--load-profile", "soak"])
    assert cmd[1:3] == ["-m", "locust"]
    assert _option(cmd, "--config") == CONFIG and "--locustfile" not in cmd
    assert [_option(cmd, o) for o in ("--host", "--users", "--spawn-rate", "--run-time",
                                       "--csv", "--html")] == \
        ["http://h:1", "16", "16", "20s", "out/r", "out/r.html"]
    assert "--headless" in cmd and "--only-summary" in cmd
    assert cmd[-2:] == ["--load-profile", "soak"]


def test_another_locustfile_without_the_config_and_a_spawn_rate():
    cmd = locust_command("http://h:1", users=32, seconds=5, config=None,
                         locustfile="benchmarks/locustfile.py", spawn_rate=4)
    assert "--config" not in cmd and _option(cmd, "--locustfile") == "benchmarks/locustfile.py"
    assert _option(cmd, "--spawn-rate") == "4"
    assert "--csv" not in cmd and "--html" not in cmd


def test_slo_values_only_when_given():
    assert not any(a.startswith("--slo-") for a in locust_command("h", users=1, seconds=1))
    cmd = locust_command("h", users=1, seconds=1, slo={"p99_ms": 1000.0})
    assert [a for a in cmd if a.startswith("--slo-")] == ["--slo-p99-ms"]
    assert _option(cmd, "--slo-p99-ms") == "1000.0"
    assert slo_options({"min_accuracy": 0.85, "max_fail_ratio": 0}) == [
        "--slo-min-accuracy", "0.85", "--slo-max-fail-ratio", "0"]


def test_a_name_that_is_not_an_slo_field_is_refused():
    with pytest.raises(ValueError, match="p99"):
        slo_options({"p99": 100})


STATS = ("Type,Name,Request Count,Failure Count,Median Response Time,Requests/s,50%,99%\n"
         "POST,/predict,90,1,12,45.5,12,80\n"
         ",Aggregated,100,2,13,50.25,13,95\n")


def test_the_aggregated_row(tmp_path):
    (tmp_path / "r_stats.csv").write_text(STATS)
    assert read_totals(tmp_path / "r") == Totals(requests=100, failures=2, rps=50.25,
                                                 p50_ms=13.0, p99_ms=95.0)


def test_no_file_or_no_aggregated_row_yet(tmp_path):
    with pytest.raises(OSError):
        read_totals(tmp_path / "missing")
    (tmp_path / "r_stats.csv").write_text(STATS.rsplit("\n", 2)[0] + "\n")
    with pytest.raises(LookupError):
        read_totals(tmp_path / "r")
