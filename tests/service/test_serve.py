"""`bentoml serve` for real: a subprocess on a loopback port, as users and containers start it."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from clients import server_process as process
from clients.uploads import png
from service.engine import Engine
from tests.helpers import assert_error, serve_expecting_refusal

pytestmark = pytest.mark.slow


def test_served_png_digits_match_the_model_offline(server, trained, test_digits):
    import httpx

    x, y = test_digits
    x, y = x[:300], y[:300]
    engine = Engine(trained[1] / "model.onnx")
    offline = engine.probabilities(x.astype(np.float32)).argmax(1)
    with httpx.Client(base_url=server, timeout=10) as client:
        served = [client.post("/predict", files={"image": ("d.png", png(d), "image/png")}
                              ).json()["digit"] for d in x]
    assert np.array_equal(np.array(served), offline)
    assert np.mean(offline == y) > 0.9


def test_prometheus_metrics_count_predictions(server):
    status, body = process.http_get(server + "/metrics")
    assert status == 200
    assert b'endpoint="/predict"' in body


def _register_logits_only(trained, logits_only_onnx, home: Path) -> str:
    """The trained model registered again as exported before the normalised output."""
    import yaml

    from core.contract import MODEL_NAME
    from core.digests import file_digest
    from training.registry import register_in

    shutil.copytree(trained[2] / "models", home / "models")
    (yaml_file,) = (home / "models" / MODEL_NAME).glob("*/model.yaml")
    meta = yaml.safe_load(yaml_file.read_text())
    files = [logits_only_onnx, trained[1] / "metrics.json", trained[1] / "model_card.md"]
    return register_in(home / "models", MODEL_NAME, files, meta["labels"],
                       {**meta["metadata"], "onnx_sha256": file_digest(logits_only_onnx)})


def test_a_model_exported_before_the_normalised_digit_keeps_serving(
        trained, logits_only_onnx, tmp_path, test_digits):
    import io
    import json

    import httpx
    from PIL import Image

    from service.schemas import SEEN_HEADER

    tag = _register_logits_only(trained, logits_only_onnx, tmp_path / "home")
    x = test_digits[0][:40]
    offline = Engine(trained[1] / "model.onnx").probabilities(x.astype(np.float32)).argmax(1)
    with open(tmp_path / "server.log", "w") as log, \
            process.serving(log, env={"BENTOML_HOME": str(tmp_path / "home")}) as (_, base), \
            httpx.Client(base_url=base, timeout=10) as client:
        model = json.loads(process.http_get(base + "/model")[1])
        served = [client.post("/predict", files={"image": ("d.png", png(d), "image/png")}
                              ).json()["digit"] for d in x]
        seen = client.post("/preprocess", files={"image": ("d.png", png(x[0]), "image/png")})
        refused = client.post("/preprocess?tensor=normalised",
                              files={"image": ("d.png", png(x[0]), "image/png")})
    assert_error(refused, 400, "ask for tensor=pixels")
    assert model["tag"] == tag and model["contract"]["outputs"] == ["logits"]
    assert np.array_equal(np.array(served), offline)
    # Its input, as before: a digit already in MNIST layout, unchanged.
    assert seen.status_code == 200 and seen.headers[SEEN_HEADER] == "pixels"
    assert np.array_equal(np.asarray(Image.open(io.BytesIO(seen.content))), x[0])


def _store_copy(trained, tmp_path) -> tuple[Path, Path]:
    home = tmp_path / "bentoml"
    shutil.copytree(trained[2], home)
    onnx_file = next((home / "models" / "mnist_mlp").glob("*/model.onnx"))
    return home, onnx_file


def test_refuses_to_start_on_corrupt_model(trained, tmp_path):
    home, onnx_file = _store_copy(trained, tmp_path)
    data = bytearray(onnx_file.read_bytes())
    data[-64] ^= 0xFF
    onnx_file.write_bytes(bytes(data))
    code, out = serve_expecting_refusal({"BENTOML_HOME": str(home)})
    assert code != 0
    assert out.strip().splitlines()[-1].startswith("mnist service cannot start: model file")
    assert "is corrupt: SHA-256" in out


def test_refuses_to_start_on_contract_mismatch(trained, tmp_path):
    """A model registered with a correct checksum but the wrong graph signature."""
    home = tmp_path / "bentoml"
    script = (
        "import onnx, shutil, sys\n"
        "from onnx import helper, TensorProto\n"
        "from core.digests import file_digest\n"
        "i = helper.make_tensor_value_info('image', TensorProto.FLOAT, ['b', 28, 28])\n"
        "o = helper.make_tensor_value_info('logits', TensorProto.FLOAT, ['b', 28, 28])\n"
        "g = helper.make_graph([helper.make_node('Identity', ['image'], ['logits'])], 'g',"
        " [i], [o])\n"
        "ops = [helper.make_opsetid('', 18)]\n"
        "onnx.save(helper.make_model(g, ir_version=10, opset_imports=ops), sys.argv[1])\n"
        "import bentoml\n"
        "with bentoml.models.create('mnist_mlp', metadata={'onnx_sha256':"
        " file_digest(sys.argv[1])}) as m:\n"
        "    shutil.copy(sys.argv[1], m.path_of('model.onnx'))\n")
    env = {**os.environ, "BENTOML_HOME": str(home)}
    subprocess.run([sys.executable, "-c", script, str(tmp_path / "bad.onnx")], env=env,
                   check=True, capture_output=True)
    code, out = serve_expecting_refusal({"BENTOML_HOME": str(home)})
    assert code != 0
    assert "breaks the contract: input is named 'image', expected 'pixels'" in \
        out.strip().splitlines()[-1]


def test_refuses_to_start_without_model(tmp_path):
    code, out = serve_expecting_refusal({"BENTOML_HOME": str(tmp_path / "empty")})
    assert code != 0
    assert "mnist_mlp:latest" in out.strip().splitlines()[-1]
