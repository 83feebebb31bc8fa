"""The service's own plain routes, beside BentoML's: the page, the API docs, /model,
/metrics and the Open Inference Protocol v2.

    open http://127.0.0.1:3000/                  # draw a digit
    curl -s http://127.0.0.1:3000/v2/models/mnist_mlp/ready

One Starlette app, mounted at "/" in front of BentoML's own routes (a mounted app claims
only the paths it has, and comes first: so "/" and /docs.json are ours). Each route
handles HTTP and delegates: to the worker's service instance, through the `Served`
interface below, and to service/oip.py for the protocol.
"""

from __future__ import annotations

import functools
import importlib.metadata
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any, Protocol, cast

import bentoml
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import FileResponse, JSONResponse, Response
from starlette.routing import Route

from core.contract import MODEL_NAME
from service import oip
from service.engine import Engine
from service.errors import renders_route_errors
from service.http_input import read_json_body
from service.metrics import metrics_route
from service.schemas import ModelInfo
from service.settings import Settings

PAGE = Path(__file__).parent / "page"
OIP_MODEL = f"/v2/models/{MODEL_NAME}"
OIP_INFER = f"{OIP_MODEL}/infer"


class Served(Protocol):
    """What the routes use of the service (service/service.py's MNISTService)."""

    settings: Settings
    engine: Engine

    @property
    def model_version(self) -> str: ...

    def model_info(self) -> ModelInfo: ...

    def openapi(self) -> dict[str, Any]: ...


def _served() -> Served:
    """This worker's service instance: BentoML makes it before the first request. The
    routes are built before the service class (which mounts them), so they look it up."""
    return cast(Served, bentoml.get_current_service())


@functools.cache
def _package_version() -> str:
    try:
        return importlib.metadata.version("mnist-serve")
    except importlib.metadata.PackageNotFoundError:  # in a bento: the code, not the package
        return "unknown"


def _file(name: str, media_type: str) -> Callable[[Request], Awaitable[Response]]:
    async def route(_: Request) -> Response:
        return FileResponse(PAGE / name, media_type=media_type)

    return route


async def model_route(_: Request) -> JSONResponse:
    return JSONResponse(_served().model_info().model_dump())


async def openapi_route(_: Request) -> JSONResponse:
    return JSONResponse(_served().openapi())


async def oip_server(_: Request) -> JSONResponse:
    return JSONResponse(oip.server_metadata(_package_version()))


async def oip_live(_: Request) -> JSONResponse:
    return JSONResponse({"live": True})  # it answers: the process is alive


async def oip_ready(_: Request) -> JSONResponse:
    # A worker answers only once its engine is loaded and verified (BentoML's /readyz).
    return JSONResponse({"ready": True})


async def oip_model(_: Request) -> JSONResponse:
    return JSONResponse(oip.model_metadata(_served().model_version))


async def oip_model_ready(_: Request) -> JSONResponse:
    return JSONResponse({"name": MODEL_NAME, "ready": True})


@renders_route_errors
async def oip_infer(request: Request) -> JSONResponse:
    served = _served()
    limits = served.settings
    body = await read_json_body(request, limits, kind="inference request",
                                largest_valid=oip.body_limit(limits.max_batch))
    req = oip.parse_infer(body, limits.max_batch, limits.oip_max_id_chars)
    logits = served.engine.logits(req.pixels)
    return JSONResponse(oip.infer_response(req, logits, served.model_version))


def web_app() -> Starlette:
    get = ["GET"]
    return Starlette(routes=[
        Route("/", _file("index.html", "text/html"), methods=get),
        Route("/page/app.js", _file("app.js", "text/javascript"), methods=get),
        Route("/page/style.css", _file("style.css", "text/css"), methods=get),
        # BentoML's Swagger UI page embeds Google Tag Manager: ours loads its assets only.
        Route("/docs", _file("docs.html", "text/html"), methods=get),
        Route("/docs.json", openapi_route, methods=get),
        Route("/model", model_route, methods=get),
        Route("/metrics", metrics_route, methods=get),
        Route("/v2", oip_server, methods=get),
        Route("/v2/health/live", oip_live, methods=get),
        Route("/v2/health/ready", oip_ready, methods=get),
        Route(OIP_MODEL, oip_model, methods=get),
        Route(f"{OIP_MODEL}/ready", oip_model_ready, methods=get),
        Route(OIP_INFER, oip_infer, methods=["POST"]),
    ])
