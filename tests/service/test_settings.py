from __future__ import annotations

import pytest

from service.settings import Settings, load_settings


def test_defaults_when_environment_is_empty(monkeypatch):
    for name in ("MNIST_MODEL_TAG", "MNIST_PROVIDERS", "MNIST_REQUIRE_GPU", "MNIST_ACCESS_LOG",
                 "MNIST_TRACING", "MNIST_MAX_PIXELS", "MNIST_WORKERS"):
        monkeypatch.delenv(name, raising=False)
    s = load_settings()
    assert s == Settings()
    assert s.access_log is False and s.tracing is False and s.model_tag == "mnist_mlp:latest"


def test_environment_overrides(monkeypatch):
    monkeypatch.setenv("MNIST_PROVIDERS", "CUDAExecutionProvider, CPUExecutionProvider")
    monkeypatch.setenv("MNIST_REQUIRE_GPU", "1")
    monkeypatch.setenv("MNIST_ACCESS_LOG", "true")
    monkeypatch.setenv("MNIST_MAX_PIXELS", "1000")
    s = load_settings()
    assert s.providers == ("CUDAExecutionProvider", "CPUExecutionProvider")
    assert s.require_gpu and s.access_log and s.max_pixels == 1000


@pytest.mark.parametrize("name, value, text", [
    ("MNIST_MAX_PIXELS", "lots", "must be an integer"),
    ("MNIST_MAX_BATCH", "-3", ">= 0"),
    ("MNIST_TRACING", "maybe", "must be 0 or 1"),
])
def test_bad_values_are_refused_with_the_variable_named(monkeypatch, name, value, text):
    monkeypatch.setenv(name, value)
    with pytest.raises(ValueError, match=f"{name} {text}" if ">=" not in text else name):
        load_settings()


def test_service_skips_tracing_and_access_log_by_default_and_keeps_its_own_metrics():
    from service.metrics import RequestMetrics
    from service.service import API_PATHS, MNISTService

    cfg = MNISTService.config
    assert cfg["tracing"]["excluded_urls"] == API_PATHS
    assert cfg["logging"]["access"]["enabled"] is False
    # BentoML's metrics middleware is replaced by ours (bounded labels), not dropped.
    assert cfg["metrics"]["enabled"] is False
    assert RequestMetrics in [cls for cls, _ in MNISTService.middlewares]


def test_the_readme_table_is_generated_from_the_settings():
    from service.settings import markdown_table
    from tests.helpers import ROOT

    assert markdown_table() in (ROOT / "README.md").read_text()


def test_workers_default_to_the_usable_cpus_and_env_overrides(monkeypatch):
    monkeypatch.setattr("service.settings.usable_cpus", lambda: 3)
    monkeypatch.delenv("MNIST_WORKERS", raising=False)
    assert load_settings().workers == 3
    monkeypatch.setenv("MNIST_WORKERS", "2")
    assert load_settings().workers == 2


def test_settings_are_frozen():
    with pytest.raises(ValueError):
        Settings().workers = 4  # type: ignore[misc]
