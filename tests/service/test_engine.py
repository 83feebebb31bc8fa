from __future__ import annotations

import numpy as np
import onnx
import pytest
from onnx import TensorProto, helper

from core.digests import file_digest
from service.engine import CPU, Engine, ModelLoadError, choose_providers


@pytest.fixture(scope="module")
def onnx_path(trained):
    return trained[1] / "model.onnx"


def test_engine_serves_probabilities(onnx_path, test_digits):
    engine = Engine(onnx_path, expected_sha256=file_digest(onnx_path))
    probs = engine.probabilities(test_digits[0][:17].astype(np.float32))
    assert probs.shape == (17, 10)
    assert np.allclose(probs.sum(1), 1.0, atol=1e-5)
    assert engine.provider == CPU and not engine.fell_back


def test_engine_refuses_missing_file(tmp_path):
    with pytest.raises(ModelLoadError, match="missing"):
        Engine(tmp_path / "nope.onnx")


def test_engine_refuses_checksum_mismatch(onnx_path):
    with pytest.raises(ModelLoadError, match="corrupt: SHA-256"):
        Engine(onnx_path, expected_sha256="0" * 64)


def test_engine_refuses_garbage_file(tmp_path):
    bad = tmp_path / "bad.onnx"
    bad.write_bytes(b"not a model")
    with pytest.raises(ModelLoadError, match="cannot be loaded"):
        Engine(bad)


def _identity_model(path, input_name="pixels", shape=("batch", 28, 28)):
    inp = helper.make_tensor_value_info(input_name, TensorProto.FLOAT, list(shape))
    out = helper.make_tensor_value_info("logits", TensorProto.FLOAT, list(shape))
    graph = helper.make_graph([helper.make_node("Identity", [input_name], ["logits"])], "g",
                              [inp], [out])
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 18)], ir_version=10)
    onnx.save(model, path)
    return path


@pytest.mark.parametrize("kwargs, text", [
    ({"input_name": "image"}, "input is named 'image'"),
    ({"shape": (1, 28, 28)}, "shape"),
])
def test_engine_refuses_contract_mismatch(tmp_path, kwargs, text):
    path = _identity_model(tmp_path / "m.onnx", **kwargs)
    with pytest.raises(ModelLoadError, match=f"breaks the contract.*{text}"):
        Engine(path)


def test_require_gpu_refuses_cpu_only(onnx_path):
    with pytest.raises(ModelLoadError, match="MNIST_REQUIRE_GPU=1"):
        Engine(onnx_path, require_gpu=True)


def test_unknown_provider_is_refused():
    with pytest.raises(ModelLoadError, match="not available"):
        choose_providers(["NoSuchExecutionProvider"])


def test_cpu_only_host_chooses_cpu(monkeypatch):
    monkeypatch.setattr("service.engine.gpu_visible", lambda: False)
    assert choose_providers() == [CPU]
