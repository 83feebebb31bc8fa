"""What the service's plain routes use of it, and how they find this worker's instance.

    python -c "from service.served import Served; print(Served.__doc__)"

The routes (service/routes.py, service/oip_routes.py) are built before the service class
that mounts them, so they look the instance up per request; `Served` types what they may
use of it (service/service.py's MNISTService provides it).
"""

from __future__ import annotations

from typing import Any, Protocol, cast

import numpy as np
from bentoml import get_current_service
from starlette.requests import Request

from service.engine import Engine
from service.monitoring import Monitor
from service.schemas import ModelInfo, Prediction
from service.settings import Settings
from service.shadow import Shadow


class Served(Protocol):
    """The service as its routes see it."""

    settings: Settings
    engine: Engine
    monitor: Monitor
    shadow: Shadow | None

    @property
    def model_version(self) -> str: ...

    def model_info(self) -> ModelInfo: ...

    def openapi(self) -> dict[str, Any]: ...

    async def logits(self, pixels: np.ndarray,
                     measured: np.ndarray | None = None) -> np.ndarray: ...

    async def answer_upload(self, request: Request) -> Prediction: ...

    async def answer_pixels(self, request: Request) -> Prediction: ...


def served() -> Served:
    """This worker's service instance: BentoML makes it before the first request."""
    # Imported once: `bentoml.get_current_service` costs ~5 µs a time through bentoml's
    # lazy module __getattr__, and this runs on every request.
    return cast(Served, get_current_service())
