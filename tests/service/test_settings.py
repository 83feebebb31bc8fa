from __future__ import annotations

import pytest

from service.settings import Settings, load_settings


def test_every_default_is_a_valid_value():
    """pydantic does not validate defaults: a default outside its own bounds would only
    show when someone sets the variable to it."""
    defaults = {name: field.default for name, field in Settings.model_fields.items()}
    validated = Settings.model_validate(defaults).model_dump()
    assert validated.pop("workers") >= 1  # 0 means one per usable CPU
    assert validated == {name: value for name, value in defaults.items() if name != "workers"}


def test_an_empty_variable_means_the_default(monkeypatch):
    """`MNIST_MAX_PIXELS=` (compose's `${VAR:-}`) is not a value: the default stands."""
    monkeypatch.setenv("MNIST_MAX_PIXELS", "")
    monkeypatch.setenv("MNIST_TRACING", "")
    s = load_settings()
    assert s.max_pixels == Settings.model_fields["max_pixels"].default
    assert s.tracing is False


def test_every_setting_says_what_it_does():
    for name, field in Settings.model_fields.items():
        assert field.description and len(field.description) > 10, name


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
    ("MNIST_MIN_INK", "300", "must be <= 255"),
])
def test_bad_values_are_refused_with_the_variable_named(monkeypatch, name, value, text):
    monkeypatch.setenv(name, value)
    with pytest.raises(ValueError, match=f"{name} {text}" if "=" not in text else name):
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
    from core.docblocks import read_block
    from service.settings_table import BLOCK, README, markdown_table

    assert read_block(README.read_text(), BLOCK) == markdown_table(), \
        "README's settings table is stale: run python -m service.settings_table --write"


def test_workers_default_to_the_usable_cpus_and_env_overrides(monkeypatch):
    monkeypatch.setattr("service.settings.usable_cpus", lambda: 3)
    monkeypatch.delenv("MNIST_WORKERS", raising=False)
    assert load_settings().workers == 3
    monkeypatch.setenv("MNIST_WORKERS", "2")
    assert load_settings().workers == 2


def test_settings_are_frozen():
    with pytest.raises(ValueError):
        Settings().workers = 4  # type: ignore[misc]
