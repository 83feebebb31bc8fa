"""The BentoML service: the verified ONNX model behind a validated REST API.

    bentoml serve service.service:MNISTService          # http://127.0.0.1:3000
    curl -F image=@digit.png http://127.0.0.1:3000/predict

Endpoints: POST /predict (multipart `image`), POST /predict_batch (multipart
`images`, up to MNIST_MAX_BATCH), POST /predict_pixels (JSON 28x28), POST /preprocess
(the digit the network reads, as a PNG); service/routes.py adds the page at /, /docs, GET
/model, /metrics and the Open Inference Protocol v2; BentoML adds /livez and /readyz.
Endpoints handle HTTP and delegate: service/http_input.py reads the request (see there
why we parse it ourselves), service/preprocess.py makes the model input, service/engine.py
runs it. Every error is a named ServiceError, rendered as {"error": "..."} with its status by
service/errors.py.
"""

import asyncio
import logging
from typing import Any, ClassVar

import bentoml
import grpc
import numpy as np
from PIL import Image
from pydantic import BaseModel
from starlette.requests import Request

from core.contract import CONTRACT, META_ONNX_FILE, META_SHA256, ONNX_FILE
from service import oip_grpc
from service.backpressure import HeavyWork
from service.batching import batched
from service.drain import DrainingReadiness
from service.engine import Engine, ModelLoadError, softmax
from service.errors import (
    BadRequest,
    BodyTimeout,
    Busy,
    FeedbackUnavailable,
    Overloaded,
    ServiceError,
    TooLarge,
    Unprocessable,
    UnsupportedMedia,
    renders_errors,
)
from service.feedback import FeedbackAnswer, FeedbackEndpoint, FeedbackForm
from service.hot_path import HotPath
from service.http_input import read_files, read_pixels
from service.lifecycle import die_with_parent, refuse_to_start
from service.metrics import RequestMetrics
from service.monitoring import Monitor, check_reference
from service.oip_routes import OIP_PREFIX, is_infer_path
from service.openapi import complete
from service.preprocess import declared_pixels, measured_model_batch, over_background, prepare
from service.routes import web_app
from service.safe_responses import SafeResponses
from service.schemas import (
    SEEN_HEADER,
    SEEN_TENSORS,
    BatchPrediction,
    ImageForm,
    ImagesForm,
    ModelInfo,
    PixelsRequest,
    Prediction,
    predictions_from,
)
from service.settings import Settings, load_settings
from service.shadow import export_model_info, open_shadow
from service.store import CompleteVersionRef, complete_version, reference_profile

log = logging.getLogger("mnist_service")


def _settings_or_refuse() -> Settings:
    try:
        return load_settings()
    except ValueError as exc:  # names the variable and what it must be
        refuse_to_start(exc)


# BentoML needs the model tag and worker count when the class is defined.
SETTINGS = _settings_or_refuse()


class _NoFields:
    """What an endpoint's input parses to: nothing (the endpoint reads ctx.request).
    BentoML builds the endpoint's keyword arguments from `input.model_fields`; on a
    pydantic instance that attribute is deprecated (2.11) and builds a warning object
    per request, a measurable share of a worker's time under load
    (docs/journal/performance.md)."""

    model_fields: ClassVar[dict[str, Any]] = {}


_NO_FIELDS = _NoFields()


class _SelfParsed(bentoml.IODescriptor):
    """An input the endpoint reads from ctx.request itself; documents `doc_model`."""

    doc_model: ClassVar[type[BaseModel]]

    @classmethod
    async def from_http_request(cls, request: Any, serde: Any) -> Any:
        return _NO_FIELDS

    @classmethod
    def model_json_schema(cls, *args: Any, **kwargs: Any) -> dict[str, Any]:
        return cls.doc_model.model_json_schema(*args, **kwargs)


class ImageInput(_SelfParsed):
    media_type = "multipart/form-data"
    doc_model = ImageForm


class ImagesInput(_SelfParsed):
    media_type = "multipart/form-data"
    doc_model = ImagesForm


class FeedbackInput(_SelfParsed):
    media_type = "multipart/form-data"
    doc_model = FeedbackForm


class PixelsInput(_SelfParsed):
    media_type = "application/json"
    doc_model = PixelsRequest


def load_engine(model: bentoml.Model, settings: Settings) -> Engine:
    meta = model.info.metadata
    sha = meta.get(META_SHA256)
    return Engine(model.path_of(str(meta.get(META_ONNX_FILE, ONNX_FILE))),
                  expected_sha256=str(sha) if sha else None, providers=settings.providers,
                  require_gpu=settings.require_gpu, threads=settings.ort_threads)


def _challenger(tag: str) -> tuple[str, Engine]:
    """The challenger's complete store tag and engine (verify_model checked it)."""
    model = complete_version(tag)
    return str(model.tag), load_engine(model, SETTINGS)


def _without_location(dataset: Any) -> Any:
    return {k: v for k, v in dataset.items() if k != "location"} \
        if isinstance(dataset, dict) else dataset


# The endpoints that read a client's input, and every error each can answer, declared
# once: the OpenAPI document is made from this (each error type owns its status).
_READS_INPUT = (BadRequest, BodyTimeout, TooLarge, UnsupportedMedia, Unprocessable)
ROUTE_ERRORS: dict[str, tuple[type[ServiceError], ...]] = {
    "/predict": (*_READS_INPUT, Busy, Overloaded),  # decodes, then the batcher
    "/predict_batch": (*_READS_INPUT, Busy),  # decodes; one inference call, not batched
    "/predict_pixels": (*_READS_INPUT, Overloaded),  # no decoding; the batcher
    "/preprocess": (*_READS_INPUT, Busy),  # decodes; one inference call, not batched
    "/feedback": (*_READS_INPUT, Busy, FeedbackUnavailable),  # decodes, then the database
}
PREDICT_PATHS = tuple(ROUTE_ERRORS)
API_PATHS = [*PREDICT_PATHS, "/model", OIP_PREFIX]
WEB = web_app()  # "/", /docs, /model, /metrics, /docs.json, the OIP v2 routes


@bentoml.service(
    name="mnist",
    workers=SETTINGS.workers,
    traffic={"timeout": SETTINGS.timeout_s},
    http={"cors": {"enabled": False}},
    logging={"access": {"enabled": SETTINGS.access_log}},
    # BentoML's metrics label requests by raw path (a new series per unknown URL):
    # service/metrics.py records the same series with a bounded label set instead.
    metrics={"enabled": False},
    # BentoML wraps every request in OpenTelemetry spans even when none is sampled
    # (its default sample rate is 0): ~15 % of a /predict. Excluded unless asked for.
    tracing={} if SETTINGS.tracing else {"excluded_urls": API_PATHS},
)
# PassiveMount: this app claims only its own routes, and before BentoML's ("/" included).
@bentoml.asgi_app(WEB, path="/")
class MNISTService:
    model = CompleteVersionRef(SETTINGS.model_tag)

    @bentoml.on_deployment
    def verify_model() -> None:
        """Runs once in the serving process before any worker: a bad model stops it here,
        with one line and exit 1, instead of crash-looping workers behind a closed port."""
        try:
            load_engine(complete_version(SETTINGS.model_tag), SETTINGS)
        except ModelLoadError as exc:
            refuse_to_start(exc)
        if SETTINGS.challenger_tag:  # the challenger in shadow, the same way
            try:
                load_engine(complete_version(SETTINGS.challenger_tag), SETTINGS)
            except ModelLoadError as exc:
                refuse_to_start(f"the challenger (MNIST_CHALLENGER_TAG): {exc}")

    @bentoml.on_deployment
    def verify_grpc_port() -> None:
        """The gRPC port, checked once before any worker binds it (with SO_REUSEPORT,
        which would share it with a server already there)."""
        if SETTINGS.grpc_port:
            try:
                oip_grpc.check_port(SETTINGS.grpc_port)
            except OSError as exc:
                refuse_to_start(f"MNIST_GRPC_PORT {SETTINGS.grpc_port} is not free ({exc})")

    def __init__(self) -> None:
        self.grpc: grpc.aio.Server | None = None
        if bentoml.server_context.worker_index is not None:  # a worker of `bentoml serve`
            die_with_parent()  # the worker's parent is the main process (circus arbiter)
        self.settings = SETTINGS
        self.served_model: bentoml.Model = self.model  # resolved by BentoML before __init__
        self.engine = load_engine(self.served_model, self.settings)
        self.monitor = Monitor(self.model_version,
                               reference_profile(self.served_model, check_reference),
                               enabled=self.settings.monitoring)
        export_model_info("champion", self.model_version)
        self.shadow = open_shadow(self.engine, self.model_version, self.settings,
                                  _challenger)  # None without a challenger
        self.heavy = HeavyWork(self.settings.decode_slots, self.settings.decode_queue)
        self.feedback_endpoint = FeedbackEndpoint(self)  # opens its database on first use
        budget = self.settings.batch_max_latency_ms
        # One adaptive batcher per worker for every transport's single requests.
        self._batched_logits = batched(self.engine.logits, budget,
                                       self.settings.max_batch) if budget else None
        log.info("serving %s with %s", self.served_model.tag, self.engine.provider)

    @bentoml.on_startup
    async def start_grpc(self) -> None:
        """Each worker of `bentoml serve` serves the Open Inference Protocol over gRPC
        too, on its own event loop (service/oip_grpc.py), on the host its HTTP server
        binds. A failure is logged, not raised: a worker whose start-up hook raises exits,
        and is started again, and again."""
        if bentoml.server_context.worker_index is None or not self.settings.grpc_port:
            return  # in process (tests, to_asgi), or gRPC off
        try:
            self.grpc = await oip_grpc.start(self, oip_grpc.http_host(),
                                             self.settings.grpc_port)
        except (OSError, RuntimeError, ValueError):
            log.exception("this worker serves no gRPC")

    @bentoml.on_startup
    def start_shadow(self) -> None:
        """The worker's shadow scoring thread, when it has a challenger (service/shadow.py)."""
        if self.shadow is not None:
            self.shadow.start()

    @bentoml.on_shutdown
    def stop_shadow(self) -> None:
        """The batch being scored finishes; what is still queued is dropped."""
        if self.shadow is not None:
            self.shadow.stop()

    @bentoml.on_shutdown
    async def stop_grpc(self) -> None:
        """New calls are refused, those in flight get the request timeout to finish: the
        drain (MNIST_DRAIN_S) is over by now, and stop grace periods cover both. Then the
        answers monitoring has not observed yet are."""
        if self.grpc is not None:
            await self.grpc.stop(self.settings.timeout_s)
        self.monitor.flush()

    @property
    def model_version(self) -> str:
        return str(self.served_model.tag.version)

    def model_info(self) -> ModelInfo:
        """What GET /model answers: the served model, its provider and the limits."""
        meta = self.served_model.info.metadata
        return ModelInfo.model_validate({
            "tag": str(self.served_model.tag),
            "test_accuracy": meta.get("test_accuracy"),
            # Not where the data lay on the machine that trained the model.
            "dataset": _without_location(meta.get("dataset")),
            "sha256": meta.get(META_SHA256),
            "provider": self.engine.provider,
            "requested_providers": self.engine.requested,
            "cuda_fell_back_to_cpu": self.engine.fell_back,
            "challenger": self.shadow.tag if self.shadow is not None else None,
            "contract": CONTRACT.to_dict(normalised=self.engine.has_normalised),
            "limits": {"max_body_bytes": self.settings.max_body_bytes,
                       "max_pixels": self.settings.max_pixels,
                       "max_batch": self.settings.max_batch},
        })

    def openapi(self) -> dict[str, Any]:
        """What /docs.json answers: BentoML's document, completed (service/openapi.py)."""
        return complete(MNISTService.openapi_spec.asdict(),  # type: ignore[attr-defined]
                        errors=ROUTE_ERRORS, max_batch=self.settings.max_batch,
                        title="MNIST digit classifier", version=self.model_version)

    async def _decode(self, files: list[bytes]) -> tuple[np.ndarray, np.ndarray | None]:
        """The model inputs of uploaded files, and the placement preprocessing measured of
        those it resampled (service/preprocess.py's measured_model_batch)."""
        prepared = prepare(files, self.settings)  # bounded work; 413s here
        if isinstance(prepared, np.ndarray):
            return prepared, None
        # Decoding costs by the pixels a header declares, not by the file's size (a 630-byte
        # JPEG can declare 24 Mpx): small images on the event loop, larger ones on a
        # thread, through the worker's bounded HeavyWork slots.
        if declared_pixels(prepared) <= self.settings.inline_decode_pixels:
            return measured_model_batch(prepared, self.settings)
        async with self.heavy.slot():
            return await asyncio.to_thread(measured_model_batch, prepared, self.settings)

    def _predictions(self, batch: np.ndarray,
                     measured: np.ndarray | None = None) -> list[Prediction]:
        """A batch in one inference call (not batched), observed by monitoring."""
        logits = self.engine.logits(batch)
        self.monitor.record(batch, logits, measured)
        if self.shadow is not None:
            self.shadow.offer(batch, logits)
        return predictions_from(softmax(logits))

    async def logits(self, pixels: np.ndarray,
                     measured: np.ndarray | None = None) -> np.ndarray:
        """float32 [N, 28, 28] -> logits [N, 10], through the adaptive batcher when it is
        on (shared by /predict, /predict_pixels and the Open Inference Protocol), observed
        by monitoring (`measured`: as in _decode)."""
        if self._batched_logits is None:
            out = self.engine.logits(pixels)
        else:
            out = await self._batched_logits(pixels)
        self.monitor.record(pixels, out, measured)
        if self.shadow is not None:
            self.shadow.offer(pixels, out)
        return out

    async def _prediction(self, one: np.ndarray, measured: np.ndarray | None = None,
                          ) -> Prediction:
        """One image [1, 28, 28]."""
        return predictions_from(softmax(await self.logits(one, measured)))[0]

    async def answer_upload(self, request: Request) -> Prediction:
        """/predict's answer (served by service/hot_path.py before BentoML's router)."""
        files = await read_files(request, "image", 1, self.settings)
        return await self._prediction(*await self._decode(files))

    async def answer_pixels(self, request: Request) -> Prediction:
        """/predict_pixels's answer (served as /predict's is)."""
        pixels = await read_pixels(request, self.settings)
        # A blank image is a 422 here too, as on /predict.
        over_background(pixels[0], self.settings.min_ink)
        return await self._prediction(pixels)

    @bentoml.api(input_spec=ImageInput)
    @renders_errors
    async def predict(self, ctx: bentoml.Context) -> Prediction:
        """Classify one PNG/JPEG image sent as multipart field `image`."""
        return await self.answer_upload(ctx.request)

    @bentoml.api(input_spec=ImagesInput)
    @renders_errors
    async def predict_batch(self, ctx: bentoml.Context) -> BatchPrediction:
        """Classify 1 to MNIST_MAX_BATCH images (multipart fields `images`) in one
        inference call."""
        files = await read_files(ctx.request, "images", self.settings.max_batch, self.settings)
        return BatchPrediction(predictions=self._predictions(*await self._decode(files)))

    @bentoml.api(input_spec=ImageInput)
    @renders_errors
    async def preprocess(self, ctx: bentoml.Context) -> Image.Image:
        """What the model sees, as a PNG: the digit the network reads (thickened, deskewed
        and centred inside the model) of the 28x28 input made from multipart field
        `image`; from a model exported without that output, the input itself. A response
        header names which. `?tensor=pixels` asks for the input (what an OIP client
        sends), `?tensor=normalised` for the digit the network reads."""
        wanted = ctx.request.query_params.get("tensor")
        if wanted is not None and wanted not in SEEN_TENSORS:
            raise BadRequest(f"tensor must be one of {', '.join(SEEN_TENSORS)}")
        if wanted == CONTRACT.normalised_name and not self.engine.has_normalised:
            raise BadRequest("this model's graph does not return the normalised digit: "
                             f"ask for tensor={CONTRACT.input_name}")
        files = await read_files(ctx.request, "image", 1, self.settings)
        batch, _ = await self._decode(files)
        # One inference call, not batched, not observed: no answer is given here.
        seen, tensor = (batch, CONTRACT.input_name) if wanted == CONTRACT.input_name \
            else self.engine.seen(batch)
        ctx.response.headers[SEEN_HEADER] = tensor
        return Image.fromarray(np.clip(seen[0], 0, 255).round().astype(np.uint8), mode="L")

    @bentoml.api(input_spec=FeedbackInput)
    @renders_errors
    async def feedback(self, ctx: bentoml.Context) -> FeedbackAnswer:
        """Store the digit an image (multipart field `image`) really is (text field
        `digit`; `answered`: the digit this service answered), for retraining."""
        return await self.feedback_endpoint.answer(ctx.request)

    @bentoml.api(input_spec=PixelsInput)
    @renders_errors
    async def predict_pixels(self, ctx: bentoml.Context) -> Prediction:
        """Classify a 28x28 MNIST-layout digit sent as JSON {"pixels": [[0-255, ...], ...]}."""
        return await self.answer_pixels(ctx.request)


# Added first, so outermost: metrics see the final status of every route.
MNISTService.add_asgi_middleware(RequestMetrics,  # type: ignore[attr-defined]
                                 mounted=(WEB,))
# Security headers and JSON 404/405 bodies on every route, BentoML's own included.
MNISTService.add_asgi_middleware(SafeResponses,  # type: ignore[attr-defined]
                                 no_store=lambda path: path in PREDICT_PATHS
                                 or is_infer_path(path))
# While the supervisor drains (service/drain.py), /readyz is a 503 that the metrics and
# security headers above still see.
MNISTService.add_asgi_middleware(DrainingReadiness)  # type: ignore[attr-defined]
# Added last, so innermost: the single-image answers, before BentoML's router; not when
# tracing, whose request and trace ids BentoML's API adds.
if not SETTINGS.tracing:
    _bento: Any = MNISTService  # a bentoml Service: its attributes are not typed
    _bento.add_asgi_middleware(
        HotPath, headers={"Server": f"BentoML Service/{_bento.name}"}, answers={
            "/predict": _bento.inner.answer_upload,
            "/predict_pixels": _bento.inner.answer_pixels})
