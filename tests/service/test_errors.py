"""service.errors: named error types, each owning its status, rendered by one function."""

from __future__ import annotations

import asyncio
import inspect
import json
from types import SimpleNamespace

import pytest

from service.errors import (
    BadRequest,
    Busy,
    ClientGone,
    InputError,
    Overloaded,
    ServiceError,
    TooLarge,
    Unprocessable,
    about_image,
    error_response,
    renders_errors,
)


class _Endpoint:
    @renders_errors
    async def predict(self, ctx, value: int) -> int:
        if value < 0:
            raise Unprocessable("negative")
        if value == 0:
            raise RuntimeError("a bug, not a client error")
        return value


def _ctx():  # BentoML passes ctx (and the inputs) by keyword
    return SimpleNamespace(response=SimpleNamespace(status_code=200, headers={}))


def test_an_input_error_becomes_its_status_and_json_body():
    ctx = _ctx()
    resp = asyncio.run(_Endpoint().predict(ctx=ctx, value=-1))
    assert resp.status_code == 422 and ctx.response.status_code == 422
    assert json.loads(resp.body) == {"error": "negative"}


def test_results_and_other_exceptions_pass_through():
    assert asyncio.run(_Endpoint().predict(ctx=_ctx(), value=3)) == 3
    with pytest.raises(RuntimeError):
        asyncio.run(_Endpoint().predict(ctx=_ctx(), value=0))


def test_the_decorated_endpoint_keeps_the_signature_bentoml_reads():
    params = list(inspect.signature(_Endpoint.predict).parameters)
    assert params == ["self", "ctx", "value"]
    assert inspect.iscoroutinefunction(_Endpoint.predict)


def test_about_image_names_the_image_of_a_batch():
    with pytest.raises(InputError, match=r"^images\[3\]: bad$") as info, about_image(3):
        raise BadRequest("bad")
    assert info.value.status == 400


def test_each_error_type_owns_its_status_and_what_the_document_says_of_it():
    assert [e.status for e in (BadRequest, TooLarge, Unprocessable, ClientGone, Busy,
                               Overloaded)] == [400, 413, 422, 499, 503, 503]
    assert all(issubclass(e, InputError) for e in (BadRequest, TooLarge, Unprocessable))
    # A busy server and a client that left are not the client's mistake.
    assert not any(issubclass(e, InputError) for e in (ClientGone, Busy, Overloaded))
    assert TooLarge.description().startswith("Body, image")


def test_a_busy_answer_says_when_to_retry():
    for error in (Busy("busy"), Overloaded("overloaded")):
        resp = error_response(error)
        assert resp.status_code == 503 and resp.headers["retry-after"] == "1"
    assert "retry-after" not in error_response(TooLarge("big")).headers


def test_every_service_error_is_rendered_not_only_input_errors():
    class _Busy:
        @renders_errors
        async def predict(self, ctx):
            raise Busy("busy")

    ctx = _ctx()
    resp = asyncio.run(_Busy().predict(ctx=ctx))
    assert resp.status_code == 503 and ctx.response.headers["Retry-After"] == "1"
    assert isinstance(Busy("x"), ServiceError)
