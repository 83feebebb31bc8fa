"""A step beside another: a forked one-thread process on the CPU, inline elsewhere."""

from __future__ import annotations

import os

import pytest
import torch

from training.beside import Inline, beside


def _where() -> tuple[int, int]:
    return os.getpid(), torch.get_num_threads()


def _fails() -> None:
    raise RuntimeError("the step failed")


def test_on_the_cpu_the_step_runs_in_a_forked_one_thread_process():
    with beside(torch.device("cpu")) as executor:
        pid, threads = executor.submit(_where).result(timeout=60)
    assert pid != os.getpid() and threads == 1


def test_a_failure_beside_reaches_whoever_asks_for_the_result():
    with beside(torch.device("cpu")) as executor, pytest.raises(RuntimeError, match="failed"):
        executor.submit(_fails).result(timeout=60)
    with pytest.raises(RuntimeError, match="failed"):
        Inline().submit(_fails).result()


def test_off_the_cpu_the_step_runs_inline_in_this_process():
    with beside(torch.device("meta")) as executor:
        assert isinstance(executor, Inline)
        assert executor.submit(_where).result() == _where()
