"""The Open Inference Protocol clients users already run, against a real `bentoml serve`:
the KServe SDK over REST and gRPC, and every snippet of docs/oip.md.

    make kserve-venv      # the KServe SDK's own venv (make test builds it first)
    pytest tests/service/test_oip_clients.py

The KServe SDK cannot share the project's venv (it pins an older protobuf), so
tests/service/kserve_client.py runs it from .venv-kserve and answers in JSON. Each
client must classify real test digits exactly as the model does offline. docs/oip.md's
python and shell blocks are run as written, with the server's ports for the default
ones, so a snippet there is a call that works, not a claim; a block preceded by
`<!-- not run here: why -->` is not.
"""

from __future__ import annotations

import json
import re
import subprocess
import sys
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from core.contract import CONTRACT, MODEL_NAME
from core.png import encode_png
from service.engine import Engine
from tests.helpers import ROOT

KSERVE_PYTHON = ROOT / ".venv-kserve" / "bin" / "python"
KSERVE_CLIENT = Path(__file__).with_name("kserve_client.py")
NO_KSERVE = "no KServe venv (make kserve-venv; make test builds it first)"
needs_kserve = pytest.mark.skipif(not KSERVE_PYTHON.exists(), reason=NO_KSERVE)
DIGITS = 200  # the first test digits, one request
OIP_DOC = ROOT / "docs" / "oip.md"
# The addresses the snippets use: the defaults of `make serve` and of MNIST_GRPC_PORT.
DOC_HTTP, DOC_GRPC = "127.0.0.1:3000", "127.0.0.1:8001"
BLOCK = re.compile(r"(?:^<!-- not run here: (?P<why>[^>]+) -->\n)?^```(?P<lang>\w*)\n"
                   r"(?P<code>.*?)^```", re.S | re.M)
RUN_LANGS = {"python", "sh"}


@pytest.fixture(scope="module")
def offline(trained, test_digits) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(digits, labels, the model's logits run offline on them)."""
    x, y = test_digits[0][:DIGITS].astype(np.float32), test_digits[1][:DIGITS]
    return x, y, Engine(trained[1] / "model.onnx").logits(x)


def _kserve(transport: str, url: str, digits: np.ndarray, tmp: Path) -> dict[str, Any]:
    """What tests/service/kserve_client.py answers for `transport` against `url`."""
    np.save(tmp / "digits.npy", digits)
    job = {"transport": transport, "url": url, "model": MODEL_NAME,
           "input": CONTRACT.input_name, "digits": str(tmp / "digits.npy")}
    (tmp / "job.json").write_text(json.dumps(job))
    proc = subprocess.run([str(KSERVE_PYTHON), str(KSERVE_CLIENT), str(tmp / "job.json")],
                          capture_output=True, text=True, timeout=180, cwd=tmp)
    assert proc.returncode == 0, proc.stderr[-4000:]
    return json.loads(proc.stdout)


def _assert_classified_as_offline(answer: dict[str, Any], offline) -> None:
    x, y, logits = offline
    assert answer["model_name"] == MODEL_NAME
    outputs = {name: np.array(out["data"]) for name, out in answer["outputs"].items()}
    assert set(outputs) == {CONTRACT.output_name, "probabilities"}
    np.testing.assert_allclose(outputs[CONTRACT.output_name], logits, rtol=1e-5, atol=1e-5)
    assert np.allclose(outputs["probabilities"].sum(1), 1)
    predicted = outputs["probabilities"].argmax(1)
    assert np.mean(predicted == y) == np.mean(logits.argmax(1) == y)


@pytest.mark.slow
@needs_kserve
def test_kserve_rest_client_sees_a_ready_model_and_classifies_as_offline(server, offline,
                                                                         tmp_path):
    """kserve.InferenceRESTClient, protocol v2, defaults: binary tensor data in."""
    answer = _kserve("rest", server, offline[0], tmp_path)
    assert (answer["live"], answer["ready"], answer["model_ready"]) == (True, True, True)
    _assert_classified_as_offline(answer, offline)


@pytest.mark.slow
@needs_kserve
def test_kserve_grpc_client_sees_a_ready_model_and_classifies_as_offline(server, grpc_port,
                                                                         offline, tmp_path):
    """kserve.InferenceGRPCClient with its defaults, and the metadata through its stub."""
    answer = _kserve("grpc", f"127.0.0.1:{grpc_port}", offline[0], tmp_path)
    assert (answer["live"], answer["ready"], answer["model_ready"]) == (True, True, True)
    assert answer["metadata"]["server"]["name"] == "mnist-serve"
    model = answer["metadata"]["model"]
    assert model["name"] == MODEL_NAME
    assert [(t["name"], t["datatype"], t["shape"]) for t in model["inputs"]] == [
        (CONTRACT.input_name, "FP32", ["-1", str(CONTRACT.height), str(CONTRACT.width)])]
    assert [t["name"] for t in model["outputs"]] == [CONTRACT.output_name, "probabilities"]
    _assert_classified_as_offline(answer, offline)


def doc_blocks() -> list[tuple[str, str, str | None]]:
    """(language, code, why it is not run) of every fenced block of docs/oip.md."""
    return [(m["lang"], m["code"], m["why"]) for m in BLOCK.finditer(OIP_DOC.read_text())]


def _client_of(lang: str, code: str) -> str:
    """What a snippet runs: the OIP client it imports, or the command it starts with."""
    if lang == "python":
        found = re.search(r"\b(tritonclient\.(?:http|grpc)|kserve\.Inference\w+Client)\b", code)
        return found[1] if found else "no client"
    return code.split()[0]


SNIPPETS = [(lang, code) for lang, code, why in doc_blocks() if lang in RUN_LANGS and not why]


def test_the_doc_runs_a_snippet_for_every_client_and_says_why_it_does_not_run_others():
    clients = {_client_of(lang, code) for lang, code in SNIPPETS}
    assert clients == {"tritonclient.http", "tritonclient.grpc", "kserve.InferenceRESTClient",
                       "kserve.InferenceGRPCClient", "curl"}
    not_run = [(lang, why) for lang, _, why in doc_blocks() if why]
    assert not_run and all(lang in RUN_LANGS for lang, _ in not_run)


def _concatenated_json(text: str) -> list[Any]:
    """Every JSON document of `text`, in order (curl prints them one after the other)."""
    decoder, docs, at = json.JSONDecoder(), [], 0
    while at < len(text.rstrip()):
        doc, at = decoder.raw_decode(text, at)
        docs.append(doc)
        at += len(text[at:]) - len(text[at:].lstrip())
    return docs


@pytest.mark.slow
@pytest.mark.parametrize("lang, code", SNIPPETS,
                         ids=[f"{n}-{_client_of(*s)}" for n, s in enumerate(SNIPPETS)])
def test_every_snippet_of_the_doc_runs_and_answers_as_the_model_offline(
        lang, code, server, grpc_port, trained, test_digits, tmp_path):
    """Python snippets classify digit.png (a real test digit); shell ones ask the server
    about itself and classify a blank image. Each must print the offline answer."""
    digit = test_digits[0][:1]
    (tmp_path / "digit.png").write_bytes(encode_png(digit[0]))
    code = code.replace(DOC_HTTP, server.removeprefix("http://"))
    code = code.replace(DOC_GRPC, f"127.0.0.1:{grpc_port}")
    engine = Engine(trained[1] / "model.onnx")
    if lang == "sh":
        command = ["bash", "-euo", "pipefail", "-c", code]
        digit = np.zeros_like(digit)
    else:
        needs_kserve_venv = "import kserve" in code
        if needs_kserve_venv and not KSERVE_PYTHON.exists():
            pytest.skip(NO_KSERVE)
        command = [str(KSERVE_PYTHON if needs_kserve_venv else sys.executable), "-c", code]
    proc = subprocess.run(command, capture_output=True, text=True, timeout=120, cwd=tmp_path)
    assert proc.returncode == 0, proc.stdout[-2000:] + proc.stderr[-4000:]
    expected = engine.logits(digit.astype(np.float32)).argmax(1)
    if lang == "python":
        assert proc.stdout.strip().splitlines()[-1] == str(expected)
        return
    answers = _concatenated_json(proc.stdout)
    assert not any("error" in answer for answer in answers), answers
    probabilities = {o["name"]: o for o in answers[-1]["outputs"]}["probabilities"]
    assert np.argmax(probabilities["data"]) == expected[0]


def test_the_docs_tensor_table_is_the_models_metadata():
    from service.oip import DATATYPES, model_metadata

    rows = {cells[0].strip("` "): cells[1:] for line in OIP_DOC.read_text().splitlines()
            if line.startswith("| `") and len(cells := line.strip("|").split("|")) == 5}
    meta = model_metadata("any")
    for role, tensors in (("input", meta["inputs"]), ("output", meta["outputs"])):
        for tensor in tensors:
            doc_role, datatypes, shape, _ = (cell.strip() for cell in rows[tensor["name"]])
            assert doc_role == role
            dims = ", ".join(["N", *map(str, tensor["shape"][1:])])
            assert shape.startswith(f"`[{dims}]`"), (tensor, shape)
            want = DATATYPES if role == "input" else [tensor["datatype"]]
            assert datatypes == " or ".join(want)
    assert f"{CONTRACT.pixel_min}–{CONTRACT.pixel_max}" in rows[CONTRACT.input_name][3]


def test_the_snippets_use_the_default_grpc_port():
    from service.settings import Settings

    assert DOC_GRPC.endswith(f":{Settings.model_fields['grpc_port'].default}")


@pytest.mark.slow
def test_grpc_takes_compressed_messages_as_the_doc_says(server, grpc_port):
    """tritonclient.grpc with gzip: grpcio's own message compression."""
    import tritonclient.grpc as grpcclient

    client = grpcclient.InferenceServerClient(f"127.0.0.1:{grpc_port}")
    pixels = grpcclient.InferInput(CONTRACT.input_name, [1, CONTRACT.height, CONTRACT.width],
                                  "UINT8")
    pixels.set_data_from_numpy(np.zeros((1, CONTRACT.height, CONTRACT.width), np.uint8))
    result = client.infer(MODEL_NAME, [pixels], compression_algorithm="gzip")
    assert result.as_numpy("probabilities").shape == (1, CONTRACT.num_classes)
