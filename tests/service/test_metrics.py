"""service/metrics.py: a bounded `endpoint` label, and statuses that blame the right side."""

from __future__ import annotations

import asyncio

import prometheus_client as prom
import pytest
from starlette.applications import Starlette
from starlette.responses import PlainTextResponse
from starlette.routing import Mount, Route

from service.metrics import UNMATCHED, RequestMetrics, routes_of


def _ok(_):
    return PlainTextResponse("ok")


APP = Starlette(routes=[Route("/predict", _ok, methods=["POST"]), Route("/items/{id}", _ok),
                        Mount("/static_content", routes=[]), Mount("", routes=[])])
MOUNTED = Starlette(routes=[Route("/model", _ok)])


def test_routes_are_exact_paths_templates_and_mount_prefixes():
    routes = routes_of(APP, MOUNTED)
    assert routes.exact == {"/predict", "/model"}
    assert [route.path for route in routes.templates] == ["/items/{id}"]
    assert routes.prefixes == ("/static_content",)


@pytest.mark.parametrize("path, label", [
    ("/predict", "/predict"),
    ("/model", "/model"),
    ("/static_content/swagger-ui.css", "/static_content"),
    ("/static_contentX", UNMATCHED),
    ("/items/42", "/items/{id}"),  # a route's template: one label whatever the id
    ("/items/42/more", UNMATCHED),
    ("/probe-\x00", UNMATCHED),
])
def test_label(path, label):
    assert RequestMetrics(APP, mounted=(MOUNTED,)).label({"app": APP, "path": path}) == label


def _count(endpoint: str, status: str) -> float:
    return prom.REGISTRY.get_sample_value("bentoml_service_request_total", {
        "endpoint": endpoint, "service_name": "mnist", "service_version": "not available",
        "http_response_code": status, "runner_name": "mnist"}) or 0.0


async def _call(app) -> None:
    scope = {"type": "http", "path": "/predict", "app": APP, "method": "POST"}

    async def receive():
        return {"type": "http.disconnect"}

    async def send(_):
        pass

    await RequestMetrics(app)(scope, receive, send)


@pytest.mark.parametrize("error, status", [(asyncio.CancelledError, "499"),
                                           (RuntimeError, "500")])
def test_an_abandoned_request_is_a_499_and_a_crash_a_500(error, status):
    async def app(scope, receive, send):
        raise error()

    before = {s: _count("/predict", s) for s in ("499", "500")}
    with pytest.raises(error):
        asyncio.run(_call(app))
    after = {s: _count("/predict", s) for s in ("499", "500")}
    assert {s: after[s] - before[s] for s in after} == \
        {s: (1.0 if s == status else 0.0) for s in after}
