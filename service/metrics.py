"""Request metrics whose label set clients cannot grow, and the /metrics route.

    curl -s http://127.0.0.1:3000/metrics | grep request_total

BentoML's own metrics middleware labels each request with its raw path and sits outside
every middleware a service can add: each unique unknown path made new series (~257 MB of
server memory per 10,000 paths) and a `%00` put a NUL byte into the exposition. So the
service turns BentoML's off (`metrics={"enabled": False}`) and records the same series
here, with the same names and labels (dashboards keep working), but with `endpoint` one
of the app's own routes (a path-parameter route by its template, `/v2/models/{model}/infer`)
or "<unmatched>".

The gRPC service (service/oip_grpc.py) records its calls in the same series through
`measured`: `endpoint` is `grpc:` and the method's name, `http_response_code` the gRPC
status's name (`OK`, `INVALID_ARGUMENT`, ...): both from fixed sets.

The workers of `bentoml serve` share one Prometheus multiprocess directory (BentoML sets
PROMETHEUS_MULTIPROC_DIR before it starts them); /metrics sums it, as BentoML's did.
"""

from __future__ import annotations

import asyncio
import os
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from functools import cache
from pathlib import Path
from typing import Any

import prometheus_client as prom
from bentoml import server_context
from prometheus_client import multiprocess
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Mount, Route
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from service.single_flight import SingleFlight

UNMATCHED = "<unmatched>"
NAMESPACE = "bentoml_service"  # BentoML's own, so its dashboards read ours
LABELS = ("endpoint", "service_name", "service_version", "http_response_code", "runner_name")
BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.075, 0.1, 0.25, 0.5, 0.75, 1.0, 2.5, 5.0, 10.0,
           30.0, 60.0, float("inf"))


@cache
def _series() -> tuple[prom.Counter, prom.Histogram, prom.Gauge]:
    """Created on first use, in the worker: once per process (Prometheus refuses twice)."""
    return (
        prom.Counter("request_total", "Total number of HTTP requests", LABELS,
                     namespace=NAMESPACE),
        prom.Histogram("request_duration_seconds", "HTTP request duration in seconds",
                       LABELS, namespace=NAMESPACE, buckets=BUCKETS),
        prom.Gauge("request_in_progress", "HTTP requests in progress now",
                   LABELS[:3] + LABELS[4:], namespace=NAMESPACE,
                   multiprocess_mode="livesum"),
    )


@dataclass
class Outcome:
    """How a measured request ended: the code its series are labelled with."""

    code: str = ""


@contextmanager
def measured(endpoint: str, failed: str) -> Iterator[Outcome]:
    """One request's series: in progress while the block runs, then counted and timed
    under the code the block set on the Outcome (`failed` when it set none: it raised)."""
    total, duration, in_progress = _series()
    # Imported once: `bentoml.server_context` costs ~5 µs a time through bentoml's lazy
    # module __getattr__, and this runs on every request.
    ctx = server_context
    service = ctx.service_name or "mnist"
    bento, version = ctx.bento_name or service, ctx.bento_version or "not available"
    start, outcome = time.perf_counter(), Outcome()
    with in_progress.labels(endpoint, bento, version, service).track_inprogress():
        try:
            yield outcome
        finally:
            labels = (endpoint, bento, version, outcome.code or failed, service)
            total.labels(*labels).inc()
            duration.labels(*labels).observe(time.perf_counter() - start)


@dataclass(frozen=True)
class Routes:
    """The labels an app's routes allow: exact paths, mount prefixes, and path-parameter
    routes (labelled by their template: one label a route, whatever the client sends)."""

    exact: frozenset[str]
    prefixes: tuple[str, ...]
    templates: tuple[Route, ...]

    def label(self, path: str) -> str:
        if path in self.exact:
            return path
        for route in self.templates:
            if route.path_regex.match(path):
                return route.path
        return next((p for p in self.prefixes if path.startswith(p + "/")), UNMATCHED)


def routes_of(*apps: Any) -> Routes:
    """The Routes of Starlette apps together (the root mount of one is another)."""
    exact, prefixes, templates = set(), [], []
    for route in (route for app in apps for route in getattr(app, "routes", ())):
        if isinstance(route, Route):
            (templates.append(route) if "{" in route.path else exact.add(route.path))
        elif isinstance(route, Mount) and route.path:  # not the catch-all root mount
            prefixes.append(route.path)
    return Routes(frozenset(exact), tuple(prefixes), tuple(templates))


class RequestMetrics:
    """ASGI middleware: counts, times and gauges every request but /metrics itself.
    `mounted`: apps mounted at the root of the one it wraps, whose routes label too."""

    def __init__(self, app: ASGIApp, mounted: tuple[Any, ...] = ()) -> None:
        self.app = app
        self.mounted = mounted
        self._routes: Routes | None = None

    def label(self, scope: Scope) -> str:
        if self._routes is None:  # the routes are known once the app exists
            self._routes = routes_of(scope.get("app"), *self.mounted)
        return self._routes.label(scope["path"])

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or scope["path"] == "/metrics":
            await self.app(scope, receive, send)
            return
        # 500 when nothing was sent: the app raised, and the server answers 500 for it.
        with measured(self.label(scope), failed="500") as outcome:

            async def counting_send(message: Message) -> None:
                if message["type"] == "http.response.start":
                    outcome.code = str(message["status"])
                await send(message)

            try:
                await self.app(scope, receive, counting_send)
            except asyncio.CancelledError:
                outcome.code = outcome.code or "499"  # the server gave up on a gone client
                raise


def _forget_dead_workers(folder: Path) -> None:
    """A worker's live gauges leave with it: one killed mid-request (SIGKILL, OOM) never
    decremented its in-progress gauge, and its file would keep the request counted."""
    for file in folder.glob("gauge_live*_*.db"):
        pid = int(file.stem.rsplit("_", 1)[1])
        try:
            os.kill(pid, 0)
        except ProcessLookupError:
            multiprocess.mark_process_dead(pid, str(folder))
        except PermissionError:  # alive, another user's
            pass


def collected() -> prom.CollectorRegistry:
    """Every worker's series, summed (multiprocess), or this process's alone. Reads files:
    call it off the event loop."""
    if folder := os.environ.get("PROMETHEUS_MULTIPROC_DIR"):
        _forget_dead_workers(Path(folder))
        registry = prom.CollectorRegistry()
        multiprocess.MultiProcessCollector(registry)
        return registry
    return prom.REGISTRY


def exposition() -> bytes:
    return prom.generate_latest(collected())


@cache
def _expositions() -> SingleFlight[bytes]:
    """The worker's one reader of every worker's files (blocking I/O: on a thread):
    concurrent scrapes share its next read instead of piling up threads."""
    return SingleFlight(exposition)


async def metrics_route(_: Request) -> Response:
    return Response(await _expositions()(), media_type=prom.CONTENT_TYPE_LATEST)
