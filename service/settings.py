"""Service settings, read from the environment in this one place.

    MNIST_MAX_BODY_BYTES=2000000 bentoml serve service.service:MNISTService

| variable | default | meaning |
|---|---|---|
| MNIST_MODEL_TAG | mnist_mlp:latest | model-store tag to serve |
| MNIST_PROVIDERS | (auto) | comma list of onnxruntime providers, e.g. CPUExecutionProvider |
| MNIST_REQUIRE_GPU | 0 | 1: refuse to start unless CUDA is really active |
| MNIST_MAX_BODY_BYTES | 10485760 | request body limit (413 above) |
| MNIST_MAX_PIXELS | 25000000 | image pixel limit, checked before decoding (413 above) |
| MNIST_MAX_SIDE | 10000 | longest image side limit (413 above) |
| MNIST_MAX_BATCH | 256 | most images in one /predict_batch request |
| MNIST_WORKERS | 1 | BentoML worker processes |
| MNIST_ORT_THREADS | 1 | onnxruntime intra-op threads per worker |
| MNIST_TIMEOUT_S | 30 | request timeout, seconds |
| MNIST_ACCESS_LOG | 0 | 1: BentoML's per-request access log line |
| MNIST_TRACING | 0 | 1: OpenTelemetry spans for the API (configure an exporter in BentoML) |
"""

from __future__ import annotations

import os
from dataclasses import dataclass


def _int(name: str, default: int) -> int:
    raw = os.environ.get(name, "").strip()
    if not raw:
        return default
    try:
        value = int(raw)
    except ValueError:
        raise ValueError(f"{name} must be an integer, got {raw!r}") from None
    if value < 0:
        raise ValueError(f"{name} must be >= 0, got {value}")
    return value


@dataclass(frozen=True)
class Settings:
    model_tag: str = "mnist_mlp:latest"
    providers: tuple[str, ...] = ()  # empty: choose automatically
    require_gpu: bool = False
    max_body_bytes: int = 10 * 1024 * 1024
    max_pixels: int = 25_000_000
    max_side: int = 10_000
    max_batch: int = 256
    workers: int = 1
    ort_threads: int = 1
    timeout_s: int = 30
    # Per-request work that costs throughput (see docs/benchmarks.md); /metrics stays.
    access_log: bool = False
    tracing: bool = False


def _flag(name: str, default: bool) -> bool:
    raw = os.environ.get(name, "").strip().lower()
    if not raw:
        return default
    if raw not in ("0", "1", "true", "false", "yes", "no"):
        raise ValueError(f"{name} must be 0 or 1, got {raw!r}")
    return raw in ("1", "true", "yes")


def load_settings() -> Settings:
    providers = tuple(
        p.strip() for p in os.environ.get("MNIST_PROVIDERS", "").split(",") if p.strip()
    )
    return Settings(
        model_tag=os.environ.get("MNIST_MODEL_TAG", "").strip() or Settings.model_tag,
        providers=providers,
        require_gpu=_flag("MNIST_REQUIRE_GPU", False),
        max_body_bytes=_int("MNIST_MAX_BODY_BYTES", Settings.max_body_bytes),
        max_pixels=_int("MNIST_MAX_PIXELS", Settings.max_pixels),
        max_side=_int("MNIST_MAX_SIDE", Settings.max_side),
        max_batch=_int("MNIST_MAX_BATCH", Settings.max_batch),
        workers=max(1, _int("MNIST_WORKERS", Settings.workers)),
        ort_threads=_int("MNIST_ORT_THREADS", Settings.ort_threads),
        timeout_s=max(1, _int("MNIST_TIMEOUT_S", Settings.timeout_s)),
        access_log=_flag("MNIST_ACCESS_LOG", Settings.access_log),
        tracing=_flag("MNIST_TRACING", Settings.tracing),
    )
