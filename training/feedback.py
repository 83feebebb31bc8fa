"""Retraining on feedback: the digits users labelled join the training digits, a share
of them is held out, and the candidate is compared with the serving model on both sets.

    python -m training --data-dir ../shared/data/mnist --feedback sqlite:///feedback.db

The feedback comes from a database URL or an exported IDX folder (core/feedback.py's
`load`). Which rows are held out is core/feedback.py's `held_out`, by content: the same
image and digit are held out in every later retrain too, so a hold-out row never trains
a model that is then judged on it. The serving model is the version the job finds in the
store when it starts (before it registers its own), unless --serving-tag names one; its
ONNX file runs through onnxruntime on the same digits as the candidate's. Two gates:
the candidate may lose at most --max-test-drop of official test accuracy against it,
and must beat it on the hold-out. With no serving model there is nothing to beat, and
the job says so.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from core import feedback as store
from core.contract import META_ONNX_FILE, ONNX_FILE
from core.data import NO_DATA_EXIT_CODE, DataError
from core.modelstore import StoreError
from training import registry
from training.export import onnx_logits, onnx_session

GATES = ("test_vs_serving", "feedback_vs_serving")


@dataclass(frozen=True)
class FeedbackSet:
    """The feedback digits, split: the training share and the hold-out."""

    source: str  # the URL without its password, or the folder
    train_images: np.ndarray  # uint8 [N, 28, 28]
    train_labels: np.ndarray  # int64 [N]
    holdout_images: np.ndarray
    holdout_labels: np.ndarray

    @property
    def rows(self) -> int:
        return len(self.train_labels) + len(self.holdout_labels)


@dataclass(frozen=True)
class Serving:
    """The model the candidate must beat: its store tag and its ONNX file."""

    tag: str
    onnx: Path


def split(source: str, images: np.ndarray, labels: np.ndarray,
          fraction: float) -> FeedbackSet:
    """The feedback digits as training share and hold-out (`held_out`, by content)."""
    held = np.array([store.held_out(image, int(label), fraction)
                     for image, label in zip(images, labels, strict=True)], dtype=bool)
    return FeedbackSet(store.redact(source), images[~held], labels[~held], images[held],
                       labels[held])


def load_feedback(source: str, fraction: float) -> FeedbackSet:
    """The feedback of a database URL or an exported folder, split; a source that cannot
    be read prints `error: ...` and exits 2, as missing training data does."""
    try:
        images, labels = store.load(source)
    except (store.StoreUnavailable, DataError, ValueError) as exc:
        print(f"error: feedback: {exc}", flush=True)
        raise SystemExit(NO_DATA_EXIT_CODE) from None
    return split(source, images, labels, fraction)


def find_serving(model_name: str, serving_tag: str | None) -> Serving | None:
    """The serving model: the version serving_tag names, else the latest of model_name;
    None when the store holds no version of it. A tag that names no usable version prints
    `error: ...` and exits 2."""
    try:
        tag, version = registry.find_version(registry.store_folder(),
                                             serving_tag or model_name)
        if version is None and serving_tag:
            raise StoreError(f"the model store holds no version of {tag}")
    except StoreError as exc:
        print(f"error: --serving-tag: {exc}", flush=True)
        raise SystemExit(NO_DATA_EXIT_CODE) from None
    if version is None:
        return None
    metadata, _ = registry.read_info(version.folder)
    return Serving(tag, version.folder / str(metadata.get(META_ONNX_FILE, ONNX_FILE)))


def accuracy(onnx: Path, images: np.ndarray, labels: np.ndarray) -> float | None:
    """The ONNX model's accuracy on images (onnxruntime, as the service runs it); None on
    no images."""
    if len(labels) == 0:
        return None
    logits = onnx_logits(onnx_session(onnx), images)
    return round(float((logits.argmax(1) == labels).mean()), 6)


def scores(onnx: Path, test_images: np.ndarray, test_labels: np.ndarray,
           fb: FeedbackSet) -> dict[str, float | None]:
    return {"test_accuracy": accuracy(onnx, test_images, test_labels),
            "holdout_accuracy": accuracy(onnx, fb.holdout_images, fb.holdout_labels)}


def compare(candidate: Path, serving: Serving | None, test_images: np.ndarray,
            test_labels: np.ndarray, fb: FeedbackSet) -> dict[str, Any]:
    """metrics.json's `feedback` object: the feedback's counts, and each model's accuracy
    on the official test digits and on the hold-out (serving: None when there is none)."""
    return {
        "source": fb.source, "rows": fb.rows, "train": len(fb.train_labels),
        "holdout": len(fb.holdout_labels),
        "serving_tag": serving.tag if serving else None,
        "candidate": scores(candidate, test_images, test_labels, fb),
        "serving": scores(serving.onnx, test_images, test_labels, fb) if serving else None,
    }


def gates(comparison: dict[str, Any], max_test_drop: float) -> dict[str, bool]:
    """test_vs_serving: the candidate's test accuracy is at least the serving model's less
    max_test_drop; feedback_vs_serving: its hold-out accuracy is above the serving model's
    (an empty hold-out shows nothing: it fails). Both pass with no serving model."""
    candidate, serving = comparison["candidate"], comparison["serving"]
    if serving is None:
        return dict.fromkeys(GATES, True)
    beats = (candidate["holdout_accuracy"] is not None
             and candidate["holdout_accuracy"] > serving["holdout_accuracy"])
    return {"test_vs_serving": candidate["test_accuracy"]
            >= serving["test_accuracy"] - max_test_drop,
            "feedback_vs_serving": beats}


def _shown(value: float | None) -> str:
    return "-" if value is None else f"{value:.4f}"


def table(comparison: dict[str, Any]) -> str:
    """The two models side by side, as a markdown table (the model card's)."""
    rows = [("candidate", comparison["candidate"])]
    if comparison["serving"] is not None:
        rows.append((f"serving `{comparison['serving_tag']}`", comparison["serving"]))
    body = "\n".join(f"| {name} | {_shown(s['test_accuracy'])} | "
                     f"{_shown(s['holdout_accuracy'])} |" for name, s in rows)
    return ("| model | official test accuracy | feedback hold-out accuracy |\n"
            "|---|---|---|\n" + body)


def summary(comparison: dict[str, Any], max_test_drop: float) -> str:
    """One line for the job's output: the feedback, and both models on both sets."""
    candidate, serving = comparison["candidate"], comparison["serving"]
    head = (f"feedback: {comparison['rows']} rows from {comparison['source']} "
            f"({comparison['train']} trained on, {comparison['holdout']} held out); ")
    if serving is None:
        return head + (f"candidate test {_shown(candidate['test_accuracy'])}, hold-out "
                       f"{_shown(candidate['holdout_accuracy'])}; no serving model in the "
                       "store: nothing to compare against, the feedback gates pass")
    return head + (f"test {_shown(candidate['test_accuracy'])} vs serving "
                   f"{comparison['serving_tag']}'s {_shown(serving['test_accuracy'])} "
                   f"(may lose {max_test_drop:g}), hold-out "
                   f"{_shown(candidate['holdout_accuracy'])} vs "
                   f"{_shown(serving['holdout_accuracy'])} (must beat)")
