"""The exported model's reference profile: what it answers and sees on the test digits.

    python -m training --data-dir ../shared/data/mnist --output-dir artifacts
    # -> artifacts/reference.json, registered with the model (core/profile.py reads it)

Label-free monitoring compares the service's live answers with this profile, so it is
measured the way the service measures: on the model input it gets (raw 0-255 float32
[N, 28, 28]) and on the probabilities of the exported ONNX file through onnxruntime
(the softmax of its logits), not on PyTorch's. The statistics and buckets are
core/profile.py's, the one home of both.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
from scipy.special import softmax

from core import profile
from core.contract import check_session
from training.export import onnx_logits, onnx_session

# What the profile was measured on: the official test digits, or the held-out part of
# the fallback data when the job ran on it.
SOURCE = "mnist-test"
FALLBACK_SOURCE = "mnist-fallback-test"


def onnx_probabilities(onnx_path: Path, batch: np.ndarray) -> np.ndarray:
    """The served probabilities [N, 10] of model inputs [N, 28, 28]: the softmax (over the
    row, shifted by its maximum, as the service computes it) of onnxruntime's logits."""
    session = onnx_session(onnx_path)
    check_session(session)
    return softmax(onnx_logits(session, batch), axis=1)


def build_reference(onnx_path: Path, images: np.ndarray, labels: np.ndarray,
                    fallback: bool = False) -> profile.Profile:
    """The profile of the exported model on test images (uint8 or float [N, 28, 28]) and
    their labels (its accuracy: the test accuracy, as parity makes the argmaxes agree)."""
    batch = np.asarray(images, dtype=np.float32)
    return profile.build(FALLBACK_SOURCE if fallback else SOURCE, batch,
                         onnx_probabilities(onnx_path, batch), labels)


def write_reference(reference: profile.Profile, out: Path) -> Path:
    """reference.json in the output folder; its path."""
    path = out / profile.REFERENCE_FILE
    profile.save(reference, path)
    return path
