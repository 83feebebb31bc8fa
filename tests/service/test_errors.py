"""service.errors: one error type, rendered in one place."""

from __future__ import annotations

import asyncio
import inspect
import json
from types import SimpleNamespace

import pytest

from service.errors import InputError, about_image, renders_input_errors


class _Endpoint:
    @renders_input_errors
    async def predict(self, ctx, value: int) -> int:
        if value < 0:
            raise InputError(422, "negative")
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
        raise InputError(400, "bad")
    assert info.value.status == 400
