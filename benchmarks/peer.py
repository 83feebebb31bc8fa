"""The peers: what a user would write instead of BentoML (benchmarks only, not the product).

    BENCH_ONNX_PATH=artifacts/model.onnx uvicorn benchmarks.peer:app --port 3100 --workers 1
    BENCH_ONNX_PATH=artifacts/model.onnx uvicorn benchmarks.peer:minimal --port 3101

`app`: a bare FastAPI endpoint with the same ONNX model, the same Engine and the same
preprocessing functions as the service, under the service's settings (MNIST_* variables
apply), so the benchmark compares the frameworks.
`minimal`: the least a FastAPI endpoint can do: decode the PNG with Pillow and run
the model, no validation, no layout; what all of the service's own work is measured
against.
"""

from __future__ import annotations

import io
import os
from contextlib import asynccontextmanager
from typing import Annotated

import numpy as np
from fastapi import FastAPI, File, HTTPException, UploadFile
from PIL import Image

from service.engine import Engine
from service.errors import ServiceError
from service.preprocess import to_model_input
from service.schemas import Prediction, predictions_from
from service.settings import Settings, load_settings


class _State:
    engine: Engine
    limits: Settings


state = _State()


@asynccontextmanager
async def lifespan(app: FastAPI):
    state.limits = load_settings()
    state.engine = Engine(os.environ["BENCH_ONNX_PATH"], threads=state.limits.ort_threads)
    yield


app = FastAPI(lifespan=lifespan)


@app.get("/readyz")
async def readyz() -> dict[str, str]:
    return {"status": "ok"}


@app.post("/predict", response_model=Prediction)
async def predict(image: Annotated[UploadFile, File()]) -> Prediction:
    try:
        x = to_model_input(await image.read(), state.limits)
    except ServiceError as exc:
        raise HTTPException(exc.status, exc.message) from None
    return predictions_from(state.engine.probabilities(x[None]))[0]


minimal = FastAPI(lifespan=lifespan)
minimal.get("/readyz")(readyz)


@minimal.post("/predict", response_model=Prediction)
async def predict_minimal(image: Annotated[UploadFile, File()]) -> Prediction:
    pixels = np.asarray(Image.open(io.BytesIO(await image.read())), dtype=np.float32)
    return predictions_from(state.engine.probabilities(pixels[None]))[0]
