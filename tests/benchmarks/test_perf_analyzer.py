"""perf_analyzer in `make bench`: its command line, its CSV report read, its errors said in
one line, and why it did not run; run end to end against a stand-in `docker` that behaves
as perf_analyzer does (a CSV report, or an error printed with exit code 0)."""

from __future__ import annotations

import json
import os
import stat
import sys
from pathlib import Path

import pytest

from benchmarks import perf_analyzer as pa
from benchmarks.goals import perf_analyzer_goals

# What perf_analyzer 2.60 wrote with --verbose-csv at concurrency 8 (latencies in µs).
CSV = ("Concurrency,Inferences/Second,Client Send,Client Recv,p50 latency,p90 latency,"
       "p95 latency,p99 latency,Avg latency,request/response,response wait\n"
       "8,1484.85,39,0,4416,8003,9622,14660,5370,39,5329\n")
# What it printed, exit code 0 and no CSV, against a port where nothing serves gRPC.
REFUSED = ("error: failed to get model metadata: failed to connect to all addresses; last "
           "error: UNKNOWN: ipv4:127.0.0.1:8001: Failed to connect to remote host: "
           "Connection refused\n")
# And against a server that refused its requests' data.
REFUSED_DATA = ("*** Measurement Settings ***\n  Batch size: 1\n\nRequest concurrency: 1\n"
                "  Pass [1] cb::Error: No valid requests recorded within time interval.\n"
                "Failed to maintain requested inference load. Worker thread(s) failed to "
                "generate concurrent requests.\n"
                "Thread [0] had error: input 'pixels': values must be raw intensities 0-255\n")

# A stand-in for `docker`: `info` and `image inspect` answer as FAKE_DOCKER says; `run`
# answers as perf_analyzer does, over HTTP with a CSV report, over gRPC with REFUSED.
FAKE_DOCKER = f"""#!{sys.executable}
import os, sys
args, state = sys.argv[1:], os.environ.get("FAKE_DOCKER", "ok")
if args[0] == "info":
    if state == "stopped":
        print("Cannot connect to the Docker daemon", file=sys.stderr)
    sys.exit(1 if state == "stopped" else 0)
if args[0] == "image":
    sys.exit(1 if state == "no-image" else 0)
if args[0] == "run":
    host = args[args.index("-v") + 1].split(":")[0]
    if args[args.index("-i") + 1] == "grpc":
        print({REFUSED!r}, end="")
        sys.exit(0)
    level = args[args.index("--concurrency-range") + 1]
    report = args[args.index("-f") + 1].replace("{pa.MOUNT}", host)
    with open(report, "w") as f:
        f.write({CSV!r}.replace("\\n8,", "\\n" + level + ","))
"""


@pytest.fixture
def fake_docker(tmp_path, monkeypatch):
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    docker = bin_dir / "docker"
    docker.write_text(FAKE_DOCKER)
    docker.chmod(docker.stat().st_mode | stat.S_IXUSR)
    monkeypatch.setenv("PATH", f"{bin_dir}{os.pathsep}{os.environ['PATH']}")
    return monkeypatch


def test_the_command_runs_one_concurrency_over_one_protocol_into_the_work_folder(tmp_path):
    cmd = pa.command("img:1", "grpc", "127.0.0.1:8001", 8, 2.5, tmp_path, "run-8")
    assert cmd[:3] == ["docker", "run", "--rm"]
    assert cmd[cmd.index("--network") + 1] == "host"
    assert cmd[cmd.index("-v") + 1] == f"{tmp_path.resolve()}:{pa.MOUNT}"
    image = cmd.index("img:1")
    assert cmd[image + 1:image + 3] == ["perf_analyzer", "-m"]
    assert cmd[cmd.index("-i") + 1] == "grpc" and cmd[cmd.index("-u") + 1] == "127.0.0.1:8001"
    assert cmd[cmd.index("--concurrency-range") + 1] == "8"
    assert cmd[cmd.index("-p") + 1] == "2500"
    assert cmd[cmd.index("-f") + 1] == f"{pa.MOUNT}/run-8.csv"
    assert cmd[cmd.index("--input-data") + 1] == f"{pa.MOUNT}/digits.json"


def test_its_csv_report_is_read_in_ms():
    assert pa.read_csv(CSV) == {"infer_per_s": 1484.85, "p50_ms": 4.416, "p99_ms": 14.66,
                                "avg_ms": 5.37}


def test_a_csv_report_without_a_figure_or_with_two_rows_is_an_error():
    with pytest.raises(ValueError, match="no column Avg latency"):
        pa.read_csv(CSV.replace("Avg latency", "Mean latency"))
    with pytest.raises(ValueError, match="2 rows"):
        pa.read_csv(CSV + CSV.splitlines()[1])


def test_a_refused_grpc_connection_says_what_is_missing():
    text = pa.failure(REFUSED, "grpc", "127.0.0.1:8001", 0)
    assert text.startswith("error: failed to get model metadata")
    assert "nothing answers gRPC on 127.0.0.1:8001" in text and "MNIST_GRPC_PORT" in text


def test_a_refused_request_is_said_with_the_servers_reason():
    text = pa.failure(REFUSED_DATA, "http", "127.0.0.1:3000", 0)
    assert "Thread [0] had error: input 'pixels': values must be raw intensities" in text
    assert "Failed to maintain requested inference load" in text
    assert "nothing answers" not in text and "Batch size" not in text
    assert pa.failure("", "http", "u", 125) == "no output (exit code 125)"


@pytest.mark.parametrize("state, why", [
    ("stopped", "Docker does not answer here (`docker info`: Cannot connect to the Docker "
                "daemon)"),
    ("no-image", "no image img:1 here: build one with NVIDIA's `perf-analyzer` wheel")])
def test_why_perf_analyzer_cannot_run(fake_docker, state, why):
    fake_docker.setenv("FAKE_DOCKER", state)
    assert pa.unavailable("img:1").startswith(why)
    fake_docker.setenv("FAKE_DOCKER", "ok")
    assert pa.unavailable("img:1") is None


def test_without_docker_it_says_so(monkeypatch, tmp_path):
    monkeypatch.setenv("PATH", str(tmp_path))
    assert pa.unavailable() == "Docker is not installed here (no `docker` on PATH)"


def test_a_run_measures_http_and_says_why_grpc_failed(fake_docker, mnist_folder, tmp_path):
    fake_docker.setenv("FAKE_DOCKER", "ok")
    result = pa.measure("img:1", {"http": "127.0.0.1:3000", "grpc": "127.0.0.1:8001"},
                        mnist_folder, 1.0, tmp_path)
    assert list(result["http"]["runs"]) == ["1", "8", "32"] and not result["http"]["error"]
    assert result["http"]["runs"]["32"]["p99_ms"] == 14.66
    assert result["grpc"]["runs"] == {}
    assert result["grpc"]["error"].startswith("concurrency 1: error: failed to get model")
    digits = json.loads((tmp_path / "digits.json").read_text())["data"]
    assert len(digits) == pa.DIGITS
    assert digits[0]["pixels"]["shape"] == [28, 28]
    assert len(digits[0]["pixels"]["content"]) == 28 * 28
    assert max(max(d["pixels"]["content"]) for d in digits) <= 255


def test_without_its_image_nothing_is_measured(fake_docker, tmp_path):
    fake_docker.setenv("FAKE_DOCKER", "no-image")
    work = tmp_path / "work"
    work.mkdir()
    result = pa.measure("img:1", {"http": "u"}, Path("no-such-folder"), 1.0, work)
    assert result == {"missing": pa.unavailable("img:1")}
    assert not list(work.iterdir())


def _measured(grpc_error: str | None = None) -> dict:
    runs = {str(c): {"infer_per_s": 100.0 * c, "p50_ms": 1.25, "p99_ms": 150.4,
                     "avg_ms": 2.0} for c in pa.CONCURRENCY}
    return {"image": "img:1", "window_s": 5.0, "windows": 3, "digits": 100,
            "http": {"runs": runs, "error": None},
            "grpc": {"runs": {} if grpc_error else runs, "error": grpc_error}}


def test_the_section_has_a_row_per_protocol_and_concurrency():
    text = "\n".join(pa.section(_measured()))
    assert text.startswith("## perf_analyzer (NVIDIA's OIP client)")
    assert "| HTTP | 1 | 100 | 1.2 | 150 | 2.0 |" in text
    assert "| gRPC | 32 | 3200 | 1.2 | 150 | 2.0 |" in text
    assert "failed" not in text


def test_the_section_says_why_a_protocol_or_the_tool_is_missing():
    text = "\n".join(pa.section(_measured(grpc_error="concurrency 1: refused")))
    assert "| HTTP | 32 |" in text and "| gRPC |" not in text
    assert "Over gRPC, perf_analyzer failed at concurrency 1: refused" in text
    assert "Not measured in this run: no Docker." in pa.section({"missing": "no Docker"})
    assert any(line.startswith("Not measured in this run: this run's results hold no")
               for line in pa.section(None))


def test_its_goal_is_met_only_with_every_protocol_measured():
    assert [g.met for g in perf_analyzer_goals(_measured())] == [True]
    goal, measured, met = perf_analyzer_goals(_measured(grpc_error="refused"))[0]
    assert goal == "perf_analyzer over HTTP and gRPC, concurrency 1 to 32: no error"
    assert (measured, met) == ("3 runs, failed over gRPC", False)
    assert perf_analyzer_goals({"missing": "no Docker"}) == perf_analyzer_goals(None) == []
