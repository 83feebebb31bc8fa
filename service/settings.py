"""Service settings, declared once: each field is the environment variable MNIST_<NAME>.

    MNIST_MAX_BODY_BYTES=2000000 bentoml serve service.service:MNISTService
    python -m service.settings_table  # the README's table of variables, generated from here
"""

from __future__ import annotations

from typing import Annotated, Any

from pydantic import Field, ValidationError, field_validator
from pydantic_settings import BaseSettings, NoDecode, SettingsConfigDict

from core.contract import MODEL_NAME
from core.feedback import DEFAULT_URL as DEFAULT_FEEDBACK_URL
from service.cpus import usable_cpus

PREFIX = "MNIST_"


class Settings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix=PREFIX, env_ignore_empty=True, frozen=True,
                                      extra="ignore", protected_namespaces=())

    model_tag: str = Field(default=f"{MODEL_NAME}:latest",
                           description="model-store tag to serve")
    providers: Annotated[tuple[str, ...], NoDecode] = Field(
        default=(), description="comma list of onnxruntime providers, e.g. "
                                "`CPUExecutionProvider`; empty: CUDA when really usable, else CPU")
    require_gpu: bool = Field(default=False,
                              description="1: refuse to start unless CUDA is really active")
    max_body_bytes: int = Field(default=10 * 1024 * 1024, ge=0,
                                description="request body limit (413 above)")
    max_form_fields: int = Field(default=64, ge=0, description="text fields of one "
                                 "multipart body (400 above)")
    max_form_part_bytes: int = Field(default=64 * 1024, ge=0, description="size of one "
                                     "multipart text field (400 above); files are bounded "
                                     "by the body limit")
    max_pixels: int = Field(default=25_000_000, ge=0, description="pixels of one image, and "
                            "of all the images of one request, read from the headers before "
                            "decoding (413 above); memory is bounded by the decode slots")
    max_side: int = Field(default=10_000, ge=0,
                          description="longest image side limit (413 above)")
    max_image_chunks: int = Field(
        default=8192, ge=1, description="PNG chunks and JPEG segments of all the images of "
        "one request, walked before decoding (413 above; a digit has a handful); PNG text, "
        "ICC and animation chunks are dropped unread")
    max_jpeg_scans: int = Field(default=100, ge=1, description="progressive JPEG scans of "
                                "one image, counted before decoding (413 above; each is a "
                                "pass over the image, and libjpeg's standard progression "
                                "has 10)")
    work_side: int = Field(default=1024, ge=28, description="decoding reduces an image to at "
                           "most this many pixels a side before any other work (the digit "
                           "ends up 20 pixels tall)")
    min_ink: int = Field(default=32, ge=1, le=255, description="the brightest ink must stand "
                         "this far (of 255) above the background, or the image is blank "
                         "(422)")
    max_batch: int = Field(default=256, ge=0,
                           description="most images in one /predict_batch request")
    oip_max_id_chars: int = Field(default=256, ge=0, description="longest `id` of an Open "
                                  "Inference Protocol request, which the answer echoes "
                                  "(400 above; clients send 36-character UUIDs)")
    inline_decode_pixels: int = Field(default=512 * 512, ge=0, description="pixels the "
                                      "images of a request may declare and still be decoded "
                                      "on the event loop; larger ones are decoded on "
                                      "threads, through the decode slots")
    decode_slots: int = Field(default=2, ge=1, description="large images decoded at once "
                              "per worker, on threads")
    decode_queue: int = Field(default=16, ge=0, description="large images waiting for a "
                              "slot per worker; 503 with Retry-After beyond")
    workers: int = Field(default=0, ge=0, description="BentoML worker processes; 0: one per "
                         "CPU the process may use (affinity, cgroup quota)")
    grpc_port: int = Field(default=8001, ge=0, le=65535, description="port of the Open "
                           "Inference Protocol over gRPC, which every worker serves on the "
                           "host `bentoml serve --host` binds (port shared through "
                           "SO_REUSEPORT); 0: no gRPC")
    batch_max_latency_ms: int = Field(
        default=1000, ge=0, description="adaptive batching of single-image inferences "
        "across requests (BentoML's dispatcher): the latency budget, 503 beyond; 0: off "
        "(measured by user count: docs/benchmarks.md)")
    ort_threads: int = Field(default=1, ge=0,
                             description="onnxruntime intra-op threads per worker")
    timeout_s: int = Field(default=30, ge=0, description="request timeout, seconds")
    body_timeout_s: float = Field(default=10, gt=0, description="the whole request body "
                                  "must arrive within this many seconds (408 after)")
    drain_s: float = Field(default=5, ge=0, description="on SIGTERM, seconds `/readyz` "
                           "answers 503 while serving goes on, before the server stops "
                           "(`python -m service.drain`, the image's CMD): longer than the "
                           "proxy's or the orchestrator's readiness checks take to notice "
                           "(interval x failures, in deploy/), plus a margin; stop grace "
                           "periods cover it plus the request timeout; 0: stop at once")
    # Per-request work that costs throughput; /metrics stays.
    access_log: bool = Field(default=False,
                             description="1: BentoML's per-request access log line")
    tracing: bool = Field(default=False, description="1: OpenTelemetry spans for the API "
                                                     "(configure an exporter in BentoML), "
                                                     "and every answer through BentoML's "
                                                     "API (no hot path)")
    monitoring: bool = Field(default=True, description="label-free quality metrics of every "
                             "answer (predicted digit, confidence, input statistics) beside "
                             "the model's reference profile, on /metrics and `GET "
                             "/monitoring`; 0: nothing observed (`/monitoring` says so)")

    feedback_url: str = Field(default=DEFAULT_FEEDBACK_URL, description="the database "
                              "`POST /feedback` writes to: `sqlite:///<path>` (WAL, every "
                              "commit synced) or `postgresql://user:password@host/db`")
    feedback_timeout_s: float = Field(default=2, gt=0, description="seconds to connect to "
                                      "the feedback database and to commit a row; beyond, "
                                      "`/feedback` answers 503")
    feedback_retry_after_s: int = Field(default=5, ge=1, description="the `Retry-After` of "
                                        "`/feedback`'s 503 while its database is down")
    challenger_tag: str = Field(default="", description="model-store tag of a second "
                                "model version scored in shadow on a share of the answered "
                                "requests, off the response path; empty: none")
    shadow_share: float = Field(default=0.25, ge=0, le=1, description="share of the "
                                "answered images the challenger also scores (measured by "
                                "`make bench`: docs/benchmarks.md)")
    shadow_queue: int = Field(default=1024, ge=1, description="sampled images waiting for "
                              "the challenger per worker; beyond, dropped and counted")

    @field_validator("providers", mode="before")
    @classmethod
    def _comma_list(cls, value: Any) -> Any:
        if isinstance(value, str):
            return tuple(p.strip() for p in value.split(",") if p.strip())
        return value

    @field_validator("workers")
    @classmethod
    def _per_cpu(cls, value: int) -> int:
        return value or usable_cpus()

    @field_validator("timeout_s")
    @classmethod
    def _at_least_one(cls, value: int) -> int:
        return max(1, value)


# What a refused value must look like, by pydantic error type.
_EXPECTED = {"int_parsing": "must be an integer", "bool_parsing": "must be 0 or 1",
             "greater_than_equal": "must be >= {ge}", "greater_than": "must be > {gt}",
             "less_than_equal": "must be <= {le}",
             "float_parsing": "must be a number"}


def load_settings() -> Settings:
    """The settings from the environment; a bad value is a ValueError naming its variable."""
    try:
        return Settings()
    except ValidationError as exc:
        err = exc.errors()[0]
        name = PREFIX + str(err["loc"][0]).upper()
        expected = _EXPECTED.get(err["type"], err["msg"]).format(**err.get("ctx", {}))
        raise ValueError(f"{name} {expected}, got {err['input']!r}") from None
