"""Request and response models of the API (pydantic v2).

    python -c "from service.schemas import PixelsRequest; print(PixelsRequest.model_json_schema())"
"""

from __future__ import annotations

from typing import Annotated, Any

import numpy as np
from pydantic import BaseModel, ConfigDict, Field

from core.contract import CONTRACT

# POST /preprocess's PNG says in this header which tensor of the graph it shows: the
# normalised digit the network reads, or (a model exported without that output) its input.
SEEN_HEADER = "X-Model-Tensor"
SEEN_TENSORS = (CONTRACT.normalised_name, CONTRACT.input_name)

# Strict: a bool, a float (3.0, NaN, Infinity) or a string is not a pixel.
Pixel = Annotated[int, Field(strict=True, ge=CONTRACT.pixel_min, le=CONTRACT.pixel_max)]
Row = Annotated[list[Pixel], Field(min_length=CONTRACT.width, max_length=CONTRACT.width)]


class PixelsRequest(BaseModel):
    model_config = ConfigDict(extra="forbid", strict=True)

    pixels: Annotated[list[Row], Field(
        min_length=CONTRACT.height, max_length=CONTRACT.height,
        description="28 rows of 28 integers 0-255: white digit on black, MNIST layout")]


class ImageForm(BaseModel):
    """multipart/form-data with one file field `image` (PNG or JPEG)."""

    image: bytes = Field(description="PNG or JPEG file; photos, scans and canvas exports "
                                     "are normalised to the MNIST layout")


class ImagesForm(BaseModel):
    """multipart/form-data with 1 to MNIST_MAX_BATCH file fields named `images` (PNG or
    JPEG)."""

    images: list[bytes] = Field(description="PNG or JPEG files, answered in order")


class Prediction(BaseModel):
    digit: int = Field(ge=0, le=9)
    confidence: float
    probabilities: list[float] = Field(min_length=10, max_length=10)


class BatchPrediction(BaseModel):
    predictions: list[Prediction]


class ErrorBody(BaseModel):
    """Every 4xx/5xx body of the service."""

    error: str = Field(description="what was wrong, in one line")


class Limits(BaseModel):
    max_body_bytes: int
    max_pixels: int
    max_batch: int


class ModelInfo(BaseModel):
    """What GET /model answers: the served model, where it runs, and the limits."""

    tag: str
    test_accuracy: float | None
    dataset: dict[str, Any] | None = Field(description="what it was trained on")
    sha256: str | None = Field(description="of the ONNX file, checked at start")
    provider: str = Field(description="the onnxruntime execution provider in use")
    requested_providers: list[str]
    cuda_fell_back_to_cpu: bool
    challenger: str | None = Field(description="the model version scored in shadow beside "
                                   "this one (MNIST_CHALLENGER_TAG), as name:version; null: "
                                   "none")
    contract: dict[str, Any] = Field(description="the model's input and output contract")
    limits: Limits


def predictions_from(probs: np.ndarray) -> list[Prediction]:
    digits = probs.argmax(axis=1)
    return [
        Prediction(digit=int(d), confidence=float(p[d]), probabilities=p.tolist())
        for d, p in zip(digits, probs, strict=True)
    ]
