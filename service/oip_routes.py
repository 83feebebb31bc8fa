"""The Open Inference Protocol v2 over REST: the routes, each handling HTTP and delegating
to service/oip.py (the protocol) and to the service (the model).

    curl -s http://127.0.0.1:3000/v2                                  # server metadata
    curl -s http://127.0.0.1:3000/v2/models/mnist_mlp/versions/VERSION/ready

Every model route also answers under `/versions/{version}`, as Triton's and KServe's
clients ask when given a version; an unknown model or version is a 404 that names what is
served. Inference bodies are JSON, or JSON followed by binary tensor data (the
Inference-Header-Content-Length header), under the limits of every other body.
"""

from __future__ import annotations

import functools
import importlib.metadata
from collections.abc import Awaitable, Callable

from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from service import oip
from service.errors import renders_route_errors
from service.http_input import read_body
from service.served import served

OIP_PREFIX = "/v2/models/"  # every model route's path starts so
MODELS = OIP_PREFIX + "{model}"
VERSIONED = MODELS + "/versions/{version}"
INFER_TYPES = ("application/json", "application/octet-stream", "")
Handler = Callable[[Request], Awaitable[Response]]


@functools.cache
def package_version() -> str:
    try:
        return importlib.metadata.version("mnist-serve")
    except importlib.metadata.PackageNotFoundError:  # in a bento: the code, not the package
        return "unknown"


def is_infer_path(path: str) -> bool:
    """An inference route's path, versioned or not: its answers are about a user's data."""
    return path.startswith(OIP_PREFIX) and path.endswith("/infer")


def _for_served_model(route: Callable[[Request, str], Awaitable[Response]]) -> Handler:
    """A model route: 404 unless the path names the served model (and its version)."""

    @renders_route_errors
    @functools.wraps(route)
    async def checked(request: Request) -> Response:
        version = served().model_version
        oip.check_model(request.path_params["model"], request.path_params.get("version"),
                        version)
        return await route(request, version)

    return checked


async def server_metadata(_: Request) -> JSONResponse:
    return JSONResponse(oip.server_metadata(package_version()))


async def live(_: Request) -> JSONResponse:
    return JSONResponse({"live": True})  # it answers: the process is alive


async def ready(_: Request) -> JSONResponse:
    # A worker answers only once its engine is loaded and verified (BentoML's /readyz).
    return JSONResponse({"ready": True})


@_for_served_model
async def model_metadata(_: Request, version: str) -> JSONResponse:
    return JSONResponse(oip.model_metadata(version))


@_for_served_model
async def model_ready(_: Request, version: str) -> JSONResponse:
    return JSONResponse({"name": oip.MODEL_NAME, "ready": True})


@_for_served_model
async def model_config(_: Request, version: str) -> JSONResponse:
    limits = served().settings
    return JSONResponse(oip.model_config(version, limits.max_batch,
                                         limits.batch_max_latency_ms))


@_for_served_model
async def infer(request: Request, version: str) -> Response:
    service = served()
    limits = service.settings
    body = await read_body(request, limits, kind="inference request", media_types=INFER_TYPES,
                           largest_valid=oip.body_limit(limits.max_batch))
    header, binary = oip.split_body(body, request.headers.get(oip.HEADER_LENGTH))
    req = oip.parse_infer(header, limits.max_batch, limits.oip_max_id_chars, binary)
    answer, binary_out = oip.infer_response(req, await service.logits(req.pixels), version)
    response = JSONResponse(answer)
    if not binary_out:
        return response
    return Response(bytes(response.body) + binary_out, media_type="application/octet-stream",
                    headers={oip.HEADER_LENGTH: str(len(response.body))})


def routes() -> list[Route]:
    get, post = ["GET"], ["POST"]
    model_routes = [("", model_metadata, get), ("/ready", model_ready, get),
                    ("/config", model_config, get), ("/infer", infer, post)]
    return [
        Route("/v2", server_metadata, methods=get),
        Route("/v2/health/live", live, methods=get),
        Route("/v2/health/ready", ready, methods=get),
        *(Route(base + suffix, handler, methods=methods)
          for base in (MODELS, VERSIONED) for suffix, handler, methods in model_routes),
    ]
