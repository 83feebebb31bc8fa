"""The service's own plain routes, beside BentoML's: the pages, the API docs, /model,
/metrics, /monitoring, and the Open Inference Protocol v2 (service/oip_routes.py).

    open http://127.0.0.1:3000/                  # draw a digit
    open http://127.0.0.1:3000/monitoring/view   # answer quality, live against reference
    curl -s http://127.0.0.1:3000/model

One Starlette app, mounted at "/" in front of BentoML's own routes (a mounted app claims
only the paths it has, and comes first: so "/" and /docs.json are ours). Each route
handles HTTP and delegates to the worker's service instance (service/served.py).
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from functools import cache
from pathlib import Path
from typing import Any

from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import FileResponse, JSONResponse, Response
from starlette.routing import Route

from service import oip_routes
from service.metrics import collected, metrics_route
from service.monitoring_report import report
from service.served import served
from service.single_flight import SingleFlight

PAGE = Path(__file__).parent / "page"


def _file(name: str, media_type: str) -> Callable[[Request], Awaitable[Response]]:
    async def route(_: Request) -> Response:
        return FileResponse(PAGE / name, media_type=media_type)

    return route


async def model_route(_: Request) -> JSONResponse:
    return JSONResponse(served().model_info().model_dump())


async def openapi_route(_: Request) -> JSONResponse:
    return JSONResponse(served().openapi())


def _monitoring_report() -> dict[str, Any]:
    service = served()
    return report(service.monitor, collected(), service.shadow)


@cache
def _monitoring_reads() -> SingleFlight[dict[str, Any]]:
    """The worker's one reader of every worker's series (blocking I/O: on a thread):
    concurrent callers share its next read instead of piling up threads."""
    return SingleFlight(_monitoring_report)


async def monitoring_route(_: Request) -> JSONResponse:
    served().monitor.flush()  # this worker's latest answers; the others' within FLUSH_S
    return JSONResponse(await _monitoring_reads()())


def web_app() -> Starlette:
    get = ["GET"]
    return Starlette(routes=[
        Route("/", _file("index.html", "text/html"), methods=get),
        Route("/page/app.js", _file("app.js", "text/javascript"), methods=get),
        Route("/monitoring/view", _file("monitoring.html", "text/html"), methods=get),
        Route("/page/monitoring.js", _file("monitoring.js", "text/javascript"), methods=get),
        Route("/page/style.css", _file("style.css", "text/css"), methods=get),
        # BentoML's Swagger UI page embeds Google Tag Manager: ours loads its assets only.
        Route("/docs", _file("docs.html", "text/html"), methods=get),
        Route("/docs.json", openapi_route, methods=get),
        Route("/model", model_route, methods=get),
        Route("/metrics", metrics_route, methods=get),
        Route("/monitoring", monitoring_route, methods=get),
        *oip_routes.routes(),
    ])
