"""The reference profile the training job registers (training/reference.py): measured on
the exported ONNX model, the way the service measures its answers."""

from __future__ import annotations

import json

import numpy as np
import pytest

from core import profile
from core.contract import MODEL_NAME
from core.modelstore import read_latest
from service.engine import Engine
from service.engine import softmax as served_softmax
from training.reference import SOURCE, build_reference, onnx_probabilities
from training.registry import read_info


def _registered(home):
    """The folder and store metadata of the registered model's latest version."""
    model_dir = home / "models" / MODEL_NAME
    folder = model_dir / str(read_latest(model_dir))
    return folder, read_info(folder)[0]


def test_the_registered_version_holds_a_loadable_profile_of_the_test_digits(trained):
    _, out, home = trained
    folder, metadata = _registered(home)
    assert metadata[profile.META_REFERENCE] == profile.REFERENCE_FILE
    reference = profile.load(folder / metadata[profile.META_REFERENCE])
    metrics = json.loads((out / "metrics.json").read_text())
    assert reference.source == SOURCE and reference.n == metrics["split"]["test"]
    assert sum(reference.digit_share) == pytest.approx(1.0)
    assert reference.accuracy == pytest.approx(metrics["test_accuracy"], abs=1e-6)
    for hist in (reference.confidence, reference.entropy, *reference.inputs.values()):
        assert sum(hist.shares) == pytest.approx(1.0)
    assert set(reference.inputs) == set(profile.STATS)
    assert (folder / "reference.png").stat().st_size > 0


def test_the_profile_is_the_served_models_not_torchs(trained, test_digits):
    """Equal to the profile of the service's Engine (its softmax of onnxruntime's logits)
    on the same digits: what monitoring compares live answers with."""
    onnx_path = trained[1] / "model.onnx"
    images, labels = test_digits
    batch = images.astype(np.float32)
    served = profile.build(SOURCE, batch, Engine(onnx_path).probabilities(batch), labels)
    assert build_reference(onnx_path, images, labels) == served
    assert np.array_equal(onnx_probabilities(onnx_path, batch),
                          served_softmax(Engine(onnx_path).logits(batch)))
    assert profile.load(trained[1] / profile.REFERENCE_FILE) == served


def test_the_model_card_has_the_reference_profile_section(trained):
    card = (trained[1] / "model_card.md").read_text()
    section = card[card.index("## Reference profile"):]
    reference = profile.load(trained[1] / profile.REFERENCE_FILE)
    assert f"{reference.low_confidence_share * 100:.2f} %" in section
    assert f"Mean confidence** {reference.confidence.mean:.4f}" in section
    for name, hist in reference.inputs.items():
        assert f"| {name} | {hist.mean:.4g} | {hist.std:.4g} |" in section
    assert "Predicted-digit mix**: 0: " in section


def test_a_fallback_profile_says_so(trained, test_digits):
    images, labels = test_digits[0][:50], test_digits[1][:50]
    reference = build_reference(trained[1] / "model.onnx", images, labels, fallback=True)
    assert reference.source != SOURCE and reference.n == 50
