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


def test_the_network_reads_the_graphs_normalised_digit(onnx_path, test_digits):
    engine = Engine(onnx_path)
    x = test_digits[0][:5].astype(np.float32)
    seen, tensor = engine.seen(x)
    assert engine.has_normalised and tensor == "normalised"
    assert seen.shape == (5, 28, 28) and seen.dtype == np.float32
    assert not np.allclose(seen, x)  # thickened and deskewed: not the input


def test_a_model_exported_before_the_normalised_digit_answers_the_same(
        onnx_path, logits_only_onnx, test_digits):
    old, new = Engine(logits_only_onnx), Engine(onnx_path)
    x = test_digits[0][:9].astype(np.float32)
    assert not old.has_normalised
    np.testing.assert_array_equal(old.logits(x), new.logits(x))
    seen, tensor = old.seen(x)  # what it reads is shown as its input
    assert tensor == "pixels" and np.array_equal(seen, x)


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


def test_engine_refuses_a_wrong_second_output(tmp_path):
    """Logits as the contract wants them (the first 10 pixels), then another tensor."""
    tensor = helper.make_tensor_value_info
    graph = helper.make_graph([
        helper.make_node("Flatten", ["pixels"], ["flat"]),
        helper.make_node("Slice", ["flat", "start", "end", "axis"], ["logits"]),
        helper.make_node("Identity", ["pixels"], ["probabilities"]),
    ], "g", [tensor("pixels", TensorProto.FLOAT, ["batch", 28, 28])],
        [tensor("logits", TensorProto.FLOAT, ["batch", 10]),
         tensor("probabilities", TensorProto.FLOAT, ["batch", 28, 28])],
        initializer=[helper.make_tensor(name, TensorProto.INT64, [1], [value])
                     for name, value in (("start", 0), ("end", 10), ("axis", 1))])
    path = tmp_path / "m.onnx"
    onnx.save(helper.make_model(graph, opset_imports=[helper.make_opsetid("", 18)],
                                ir_version=10), path)
    with pytest.raises(ModelLoadError, match="breaks the contract: second output is named "
                       "'probabilities', expected 'normalised'"):
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
