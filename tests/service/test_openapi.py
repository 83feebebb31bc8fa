"""service/openapi.py: /docs.json describes the API completely and truly (finding 8).

    pytest tests/service/test_openapi.py     # SCHEMATHESIS_MAX_TIME: seconds, by default
                                             # SECONDS_PER_POST for each POST endpoint

The last test is a bounded `schemathesis run --checks all` against a real server: its
generated bodies are real PNG/JPEG images (tests/service/schemathesis_hooks.py), and the
service's own metrics show they reached the decoder and the model.
"""

from __future__ import annotations

import os
import re
import subprocess
import sys

import pytest

from clients import server_process as process
from service.schemas import ModelInfo
from tests.helpers import ROOT

PREDICT_PATHS = ("/predict", "/predict_batch", "/predict_pixels", "/preprocess", "/feedback")
# Schemathesis's time budget is shared by the endpoints: each POST gets its own share, so
# that each still reaches the model often enough (the last test).
SECONDS_PER_POST = 8


@pytest.fixture(scope="module")
def doc(client) -> dict:
    response = client.get("/docs.json")
    assert response.status_code == 200
    return response.json()


@pytest.mark.parametrize("path", PREDICT_PATHS)
def test_every_error_we_answer_is_documented_with_its_body(doc, path):
    from service.service import ROUTE_ERRORS

    op = doc["paths"][path]["post"]
    assert op["requestBody"]["required"] is True
    # 503 everywhere: a decode slot (images) or the adaptive batcher (/predict_pixels too).
    expected = {"200", "400", "408", "413", "415", "422", "503", "500"}
    assert set(op["responses"]) == expected
    assert set(op["responses"]) - {"200", "500"} == {str(e.status) for e in ROUTE_ERRORS[path]}
    assert "Retry-After" in op["responses"]["503"]["headers"]
    error = op["responses"]["413"]["content"]["application/json"]["schema"]
    assert error == {"$ref": "#/components/schemas/ErrorBody"}
    assert doc["components"]["schemas"]["ErrorBody"]["required"] == ["error"]


def test_file_parts_name_their_media_types_and_the_batch_its_bounds(doc, client):
    limits = client.get("/model").json()["limits"]
    for path, field in (("/predict", "image"), ("/predict_batch", "images"),
                        ("/preprocess", "image"), ("/feedback", "image")):
        form = doc["paths"][path]["post"]["requestBody"]["content"]["multipart/form-data"]
        assert form["encoding"][field]["contentType"] == "image/png, image/jpeg"
    images = doc["paths"]["/predict_batch"]["post"]["requestBody"]["content"][
        "multipart/form-data"]["schema"]["properties"]["images"]
    assert (images["minItems"], images["maxItems"]) == (1, limits["max_batch"])


def test_the_preprocess_header_is_documented_with_what_it_answers(doc, client, test_digits):
    from clients.uploads import png
    from service.schemas import SEEN_HEADER

    ok = doc["paths"]["/preprocess"]["post"]["responses"]["200"]
    assert list(ok["content"]) == ["image/png"]
    documented = ok["headers"][SEEN_HEADER]["schema"]["enum"]
    assert sorted(documented) == ["normalised", "pixels"]
    resp = client.post("/preprocess", files={"image": ("d.png", png(test_digits[0][0]))})
    assert resp.status_code == 200 and resp.headers[SEEN_HEADER] in documented


def test_get_model_is_documented_and_answers_what_it_documents(doc, client):
    ref = doc["paths"]["/model"]["get"]["responses"]["200"]["content"]["application/json"]
    assert ref["schema"] == {"$ref": "#/components/schemas/ModelInfo"}
    assert set(doc["components"]["schemas"]["ModelInfo"]["required"]) == \
        set(ModelInfo.model_fields)
    ModelInfo.model_validate(client.get("/model").json())


def test_nothing_in_the_document_points_outside_the_service(doc, client):
    # BentoML's default description links badges and chat rooms on other sites.
    assert "http" not in doc["info"]["description"]
    assert doc["info"]["version"] == client.get("/model").json()["tag"].split(":")[1]


def _ok_count(metrics: bytes, endpoint: str) -> float:
    m = re.search(rb'request_total\{endpoint="' + endpoint.encode() +
                  rb'",http_response_code="200"[^}]*\} ([0-9.e+]+)', metrics)
    return float(m.group(1)) if m else 0.0


@pytest.mark.slow
def test_schemathesis_finds_no_failure_and_its_images_reach_the_model(metrics_server):
    server = metrics_server
    before = process.http_get(server + "/metrics")[1]
    env = {**os.environ, "SCHEMATHESIS_HOOKS": "tests.service.schemathesis_hooks",
           "PYTHONPATH": str(ROOT)}
    budget = os.environ.get("SCHEMATHESIS_MAX_TIME", str(SECONDS_PER_POST * len(PREDICT_PATHS)))
    run = subprocess.run(
        [sys.executable, "-m", "schemathesis.cli", "--config-file",
         str(ROOT / "tests/service/schemathesis.toml"), "run", server + "/docs.json",
         "--checks", "all", "--max-time", budget, "--seed", "1", "--no-color"],
        env=env, cwd=ROOT, capture_output=True, text=True, timeout=int(budget) + 120)
    assert run.returncode == 0, run.stdout[-6000:] + run.stderr[-2000:]
    assert " passed" in run.stdout
    after = process.http_get(server + "/metrics")[1]
    for path in PREDICT_PATHS:  # a 200: decoded (or parsed), checked, predicted (or drawn)
        assert _ok_count(after, path) - _ok_count(before, path) >= 10, \
            [line for line in after.decode().splitlines() if "request_total{" in line]
