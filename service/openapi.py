"""The OpenAPI document at /docs.json: BentoML's, completed until it describes the API.

    curl -s http://127.0.0.1:3000/docs.json | python -m json.tool | less
    schemathesis run http://127.0.0.1:3000/docs.json --checks all   # see test_openapi.py

BentoML documents each endpoint from its input and output models, but not what lies
outside them: the errors our endpoints answer (all {"error": ...}; each route declares
its error types in service/service.py, and each type owns its status and description),
that the bodies are required, which media types a file part may have, how many files a
batch takes, and GET /model. A fuzzer reads the document to generate requests and to
judge the answers, so everything it says must be true and everything we do must be in it.
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from typing import Any

from service.errors import ServiceError
from service.schemas import SEEN_HEADER, SEEN_TENSORS, ErrorBody, ModelInfo

IMAGE_TYPES = "image/png, image/jpeg"

def _error(description: str, retry: bool = False) -> dict[str, Any]:
    response: dict[str, Any] = {"description": description, "content": {"application/json": {
        "schema": {"$ref": "#/components/schemas/ErrorBody"}}}}
    if retry:
        response["headers"] = {"Retry-After": {"schema": {"type": "integer"},
                                               "description": "seconds"}}
    return response


def _error_responses(errors: Sequence[type[ServiceError]]) -> dict[str, Any]:
    """One response per status the route's error types answer, their descriptions joined."""
    by_status: dict[int, list[type[ServiceError]]] = {}
    for error in errors:
        by_status.setdefault(error.status, []).append(error)
    return {str(status): _error("; ".join(e.description() for e in group),
                                retry=any(e.retry_after_s is not None for e in group))
            for status, group in sorted(by_status.items())}


def _complete_operation(op: dict[str, Any], errors: Sequence[type[ServiceError]], *,
                        max_batch: int) -> None:
    body = op["requestBody"]
    body["required"] = True
    decodes = "multipart/form-data" in body["content"]
    ok = op["responses"]["200"]
    if "image/*" in ok.get("content", {}):  # /preprocess: always a PNG (service.py)
        ok["content"] = {"image/png": ok["content"].pop("image/*")}
        ok["headers"] = {SEEN_HEADER: {"schema": {"type": "string", "enum": list(SEEN_TENSORS)},
                                       "description": "the graph's tensor the PNG shows: "
                                       "the normalised digit the network reads, or (a model "
                                       "exported without it) the input"}}
    op["responses"] = {"200": ok, **_error_responses(errors), "500": op["responses"]["500"]}
    if decodes:
        form = body["content"]["multipart/form-data"]
        field = next(iter(form["schema"]["properties"]))
        prop = form["schema"]["properties"][field]
        if prop.get("type") == "array":  # a batch: 1..max_batch files
            prop.update(minItems=1, maxItems=max_batch)
        form["encoding"] = {field: {"contentType": IMAGE_TYPES}}


def _model_path() -> dict[str, Any]:
    return {"get": {
        "tags": ["Service APIs"],
        "summary": "The served model: tag, accuracy, provider, input contract and limits",
        "operationId": "mnist__model",
        "responses": {"200": {"description": "Successful Response", "content": {
            "application/json": {"schema": {"$ref": "#/components/schemas/ModelInfo"}}}}},
    }}


def _schemas() -> dict[str, Any]:
    """Our components; pydantic's nested definitions are lifted to the top level."""
    out: dict[str, Any] = {}
    for model in (ErrorBody, ModelInfo):
        schema = model.model_json_schema(ref_template="#/components/schemas/{model}")
        out.update(schema.pop("$defs", {}))
        out[model.__name__] = schema
    return out


def complete(spec: dict[str, Any], *, errors: Mapping[str, Sequence[type[ServiceError]]],
             max_batch: int, title: str, version: str) -> dict[str, Any]:
    """A completed copy of BentoML's `spec` (a dict, as BentoML serves it); `errors`: the
    error types each POST endpoint can answer, by path."""
    doc = json.loads(json.dumps(spec))  # a deep copy, with the status codes as strings
    doc["info"] = {"title": title, "version": version, "description": (
        "Classify handwritten digits (MNIST). Every error is a JSON `{\"error\": ...}` "
        "with a 4xx status that says whose fault it was; limits are in `GET /model`.")}
    for path, route_errors in errors.items():
        _complete_operation(doc["paths"][path]["post"], route_errors, max_batch=max_batch)
    doc["paths"]["/model"] = _model_path()
    doc.setdefault("components", {}).setdefault("schemas", {}).update(_schemas())
    return doc
