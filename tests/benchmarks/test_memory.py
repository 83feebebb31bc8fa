"""The workers' memory, read from /proc: a real process tree, one of them marked a worker."""

from __future__ import annotations

import os
import subprocess
import sys
import threading
import time

import pytest

from benchmarks.memory import WORKER_MARK, Workers, descendants, is_worker, rss_mb

# A supervisor that starts a "worker" (its command line carries BentoML's worker module
# name) and a helper, all sleeping.
TREE = """
import os, subprocess, sys, time
sleep = [sys.executable, "-c", "import time; time.sleep(60)"]
worker = subprocess.Popen([*sleep, os.environ["MARK"]])
helper = subprocess.Popen(sleep)
print(worker.pid, helper.pid, flush=True)
time.sleep(60)
"""


@pytest.fixture
def tree():
    proc = subprocess.Popen([sys.executable, "-c", TREE], stdout=subprocess.PIPE, text=True,
                            start_new_session=True,
                            env={**os.environ, "MARK": WORKER_MARK.decode()})
    try:
        assert proc.stdout is not None
        worker, helper = map(int, proc.stdout.readline().split())
        yield proc.pid, worker, helper
    finally:
        os.killpg(proc.pid, 9)
        proc.wait()


def test_descendants_and_which_of_them_is_a_worker(tree):
    supervisor, worker, helper = tree
    assert sorted(descendants(supervisor)) == sorted([worker, helper])
    assert is_worker(worker) and not is_worker(helper) and not is_worker(supervisor)


def test_resident_memory_of_a_live_and_of_a_gone_process():
    assert 1 < rss_mb(os.getpid(), "VmRSS") <= rss_mb(os.getpid())  # current <= peak
    assert rss_mb(2**22 + 1) == 0.0 and not is_worker(2**22 + 1)


def test_workers_samples_only_the_workers(tree):
    supervisor, worker, _ = tree
    workers = Workers(supervisor)
    assert workers.sample() == [worker]
    assert workers.seen == {worker} and 0 < workers.peak <= rss_mb(worker)  # a peak only grows
    (current,) = workers.current_mb()
    assert 0 < current <= rss_mb(worker) + 0.1
    ((seconds, largest),) = workers.samples
    assert seconds == 0 and largest > 0


def test_workers_watch_samples_until_done(tree):
    workers, done = Workers(tree[0]), threading.Event()
    thread = threading.Thread(target=workers.watch, args=(done, 0.05))
    thread.start()
    time.sleep(0.3)
    done.set()
    thread.join()
    assert len(workers.samples) >= 2 and workers.seen == {tree[1]}
