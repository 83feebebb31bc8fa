"""Running one step of the job beside another: in a forked process on the CPU.

    python -m training --output-dir artifacts    # assessment and figures beside the export

After training, the robustness table and the figures need only the trained model and
the test digits, and the ONNX export is mostly single-threaded Python: on two cores they
take the time of the longer one rather than the sum (docs/journal/training.md). The
child is forked with one thread, as PyTorch's DataLoader workers are: its OpenMP pool is
not inherited. On a GPU (whose context a fork cannot share) the step runs inline.
"""

from __future__ import annotations

import multiprocessing
from collections.abc import Callable, Iterator
from concurrent.futures import Executor, Future, ProcessPoolExecutor
from contextlib import contextmanager
from typing import Any

import torch


class Inline(Executor):
    """An executor that runs what it is given at once, in this process."""

    def submit(self, fn: Callable[..., Any], /, *args: Any, **kwargs: Any) -> Future:
        future: Future = Future()
        try:
            future.set_result(fn(*args, **kwargs))
        except BaseException as exc:  # handed to whoever asks for the result
            future.set_exception(exc)
        return future


@contextmanager
def beside(device: torch.device) -> Iterator[Executor]:
    """An executor for one step beside this process's: a forked one-thread process when
    the job runs on the CPU (and fork exists), else inline."""
    if device.type != "cpu" or "fork" not in multiprocessing.get_all_start_methods():
        yield Inline()
        return
    with ProcessPoolExecutor(1, mp_context=multiprocessing.get_context("fork"),
                             initializer=torch.set_num_threads, initargs=(1,)) as pool:
        yield pool
