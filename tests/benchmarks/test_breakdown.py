"""The per-request breakdown: real py-spy stacks classified, raw output parsed, the
arithmetic, the workers found, and (slow) a live server profiled under load."""

from __future__ import annotations

import os
import subprocess
import sys
import threading
from collections import Counter
from pathlib import Path

import pytest

from benchmarks.breakdown import (
    CATEGORIES,
    PY_SPY,
    SPAWNED_MARK,
    Samples,
    classify,
    decide,
    module_path,
    parse_raw,
    per_request,
    py_spy_command,
    record,
    thread_of,
    worker_pids,
)

# Real stacks of `bentoml serve` and of the FastAPI peer (benchmarks/peer.py) under Locust,
# one "category<TAB>stack count" a line: the frames above the event loop cut off, the
# checkout, virtual environment and Python installation renamed.
STACKS = Path(__file__).with_name("breakdown_stacks.txt")
LOOP = "thread (1): MainThread;Runner.run (/usr/lib/python3.11/asyncio/runners.py:118)"
SITE = "/venv/lib/python3.11/site-packages"


def _fixture() -> list[tuple[str, str, int]]:
    rows = []
    for line in STACKS.read_text().splitlines():
        category, raw = line.split("\t")
        stack, count = raw.rsplit(" ", 1)
        rows.append((category, stack, int(count)))
    return rows


def test_every_real_stack_gets_its_category():
    wrong = [(c, classify(s), s[-200:]) for c, s, _ in _fixture() if classify(s) != c]
    assert not wrong


def test_the_real_stacks_reach_every_category():
    assert {c for c, _, _ in _fixture()} == set(CATEGORIES)


def test_generic_frames_are_passed_over_until_a_meaningful_one():
    timeout = "Timeout.reschedule (/usr/lib/python3.11/asyncio/timeouts.py:52)"
    exit_ = "_GeneratorContextManager.__exit__ (/usr/lib/python3.11/contextlib.py:144)"
    ours = "RequestMetrics.__call__ (/checkout/service/metrics.py:145)"
    body = "_body_deadline (/checkout/service/http_input.py:66)"
    assert classify(f"{LOOP};{ours};{body};{exit_};{timeout}") == "multipart"
    assert classify(f"{LOOP};{ours};{exit_}") == "ours"
    # Nothing but generic frames below the loop: the loop's own bookkeeping.
    assert classify(f"{LOOP};Handle._run (/usr/lib/python3.11/asyncio/events.py:84)") == "asyncio"
    # Frames no rule names (numpy, pydantic) go to their caller too.
    numpy = f"_sum ({SITE}/numpy/_core/_methods.py:49)"
    assert decide(f"{LOOP};softmax (/checkout/service/engine.py:40);{numpy}") == (
        "inference", "softmax (/checkout/service/engine.py)")


def test_the_loop_alone_or_a_wait_is_idle_and_only_the_loop_thread_idles():
    assert classify(LOOP) == "idle"
    assert classify(f"{LOOP};uv_run (core.c:464);epoll_pwait (/usr/lib/libc.so.6)") == "idle"
    assert classify(f"{LOOP};uv_run (core.c:464);uv__run_timers (timer.c:182)") == "asyncio"
    parked = ("thread (2): Thread-1 (always_pong);Thread.run (/usr/lib/python3.11/threading.py:"
              "975);Connection._recv (/usr/lib/python3.11/multiprocessing/connection.py:395)")
    samples = Samples(stacks=Counter({LOOP: 7, parked: 100}), seconds=1, workers=1)
    assert samples.tally()["idle"] == 7


def test_paths_match_by_module_not_by_a_folder_of_the_same_name():
    # BentoML has a package named service; ours is the checkout's service/.
    loader = f"import_service ({SITE}/bentoml/_internal/service/loader.py:120)"
    assert module_path(f"{SITE}/bentoml/_internal/service/loader.py") == \
        "bentoml/_internal/service/loader.py"
    assert classify(f"{LOOP};{loader}") == "framework"
    assert classify(f"{LOOP};measured (/checkout/service/metrics.py:60)") == "ours"
    # A line number is not part of a frame's path; an unknown frame alone is other.
    assert classify("thread (1): MainThread;f (/elsewhere/mod.py:1)") == "other"


def test_raw_lines_are_parsed_and_repeated_stacks_add_up():
    text = f"{LOOP} 3\n{LOOP} 2\nthread (9): Pool;f (/x/mod.py:1) 11\nnot a sample line\n\n"
    stacks = parse_raw(text)
    assert stacks == Counter({LOOP: 5, "thread (9): Pool;f (/x/mod.py:1)": 11})
    assert thread_of(LOOP) == "MainThread" and thread_of("f (/x/mod.py:1)") == ""
    assert parse_raw(STACKS.read_text().replace("\t", " ")) and all(
        n > 0 for _, _, n in _fixture())


def test_per_request_turns_samples_into_microseconds_and_shares():
    run = f"{LOOP};Session.run ({SITE}/onnxruntime/capi/onnxruntime_inference_collection.py:220)"
    samples = Samples(stacks=Counter({LOOP: 100, run: 300}), seconds=2, rate=100, workers=2)
    assert samples.effective_rate == 100.0  # 400 loop-thread samples / (2 workers x 2 s)
    result = per_request(samples, rate=100, requests=1000)
    assert result["inference"] == {"us": 3000.0, "share": 0.75}  # 3 s of a worker / 1000
    assert result["idle"]["us"] == 1000.0
    assert result["total"] == {"us": 4000.0, "share": 1.0}
    assert result["busy"]["us"] == 3000.0
    assert list(result)[:len(CATEGORIES)] == list(CATEGORIES)
    assert result["decode"] == {"us": 0.0, "share": 0.0}


def test_py_spy_samples_idle_threads_and_pauses_only_for_native_frames():
    plain = py_spy_command(42, 5, 100, Path("o.txt"))
    assert {"--idle", "--threads", "--nonblocking"} <= set(plain)
    assert plain[plain.index("--pid") + 1] == "42" and "--native" not in plain
    native = py_spy_command(42, 5, 100, Path("o.txt"), native=True)
    assert "--native" in native and "--nonblocking" not in native


SUPERVISOR = """
import os, subprocess, sys, time
sleep = [sys.executable, "-c", "import time; time.sleep(60)"]
worker = subprocess.Popen([*sleep, os.environ["MARK"]])
tracker = subprocess.Popen([*sleep, "multiprocessing.resource_tracker"])
print(worker.pid, tracker.pid, flush=True)
time.sleep(60)
"""


def test_uvicorn_workers_are_the_spawned_children_not_the_resource_tracker():
    proc = subprocess.Popen([sys.executable, "-c", SUPERVISOR], stdout=subprocess.PIPE,
                            text=True, start_new_session=True,
                            env={**os.environ, "MARK": SPAWNED_MARK.decode()})
    try:
        assert proc.stdout is not None
        worker, _tracker = map(int, proc.stdout.readline().split())
        assert worker_pids(proc.pid) == [worker]
    finally:
        os.killpg(proc.pid, 9)
        proc.wait()


@pytest.mark.slow
@pytest.mark.skipif(not Path(PY_SPY).exists(), reason="py-spy (the bench extra) not installed")
def test_a_live_server_spends_time_decoding_and_inferring(trained, test_digits, tmp_path):
    import httpx

    from clients.server_process import serving
    from clients.uploads import png

    files = [png(d) for d in test_digits[0][:32]]
    done = threading.Event()

    def load(base: str) -> None:
        with httpx.Client(base_url=base, timeout=10) as client:
            while not done.is_set():
                for body in files:
                    client.post("/predict", files={"image": ("d.png", body, "image/png")})

    with open(tmp_path / "server.log", "w") as log, \
            serving(log, env={"BENTOML_HOME": str(trained[2])}) as (proc, base):
        users = [threading.Thread(target=load, args=(base,)) for _ in range(4)]
        for user in users:
            user.start()
        try:
            samples = record(worker_pids(proc.pid), seconds=4, out=tmp_path)
        finally:
            done.set()
            for user in users:
                user.join()
    counts = samples.tally()
    assert counts["inference"] > 0 and counts["decode"] > 0
    assert counts["other"] < 0.05 * sum(counts.values())


def test_every_category_says_what_it_holds_and_no_other():
    from benchmarks.breakdown import MEANING

    assert tuple(MEANING) == CATEGORIES and all(MEANING.values())


def test_grpcs_poller_thread_is_parked_not_busy():
    stack = ("thread (16968): Thread-1 (_poll_wrapper);Thread._bootstrap (/usr/lib/python3.11/"
             "threading.py:1002);Thread.run (/usr/lib/python3.11/threading.py:982)")
    samples = Samples(stacks=Counter({stack: 50}), seconds=1.0, workers=1)
    assert classify(stack) == "idle" and sum(samples.tally().values()) == 0
