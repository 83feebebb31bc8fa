"""Fixtures of the service's tests: the browser of the page tests (tests/service/browser.py
holds their helpers), and a model exported before the normalised output."""

from __future__ import annotations

from pathlib import Path

import pytest

from core.contract import CONTRACT
from tests.service.browser import chromium


@pytest.fixture(scope="module")
def browser():
    """Debian's chromium, one per test module."""
    with chromium() as b:
        yield b


@pytest.fixture(scope="session")
def logits_only_onnx(trained, tmp_path_factory) -> Path:
    """The trained model as a model exported before the graph returned the normalised
    digit: the same graph with one output, `logits`."""
    import onnx

    model = onnx.load(str(trained[1] / "model.onnx"))
    kept = [out for out in model.graph.output if out.name == CONTRACT.output_name]
    del model.graph.output[:]
    model.graph.output.extend(kept)
    path = tmp_path_factory.mktemp("logits-only") / "model.onnx"
    onnx.save(model, str(path))
    return path
