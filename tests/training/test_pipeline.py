"""The training CLI end to end (--dry-run on real digits), as users start it."""

from __future__ import annotations

import json
import subprocess
import sys

import numpy as np
import onnx
import pytest
import torch

from core.contract import CONTRACT, MODEL_NAME, check_session
from core.digests import file_digest
from tests.helpers import run_training
from training import export, pipeline
from training.feedback import FeedbackSet


def _metrics(out):
    return json.loads((out / "metrics.json").read_text())


def test_dry_run_is_small_fast_and_its_loss_decreases(tmp_path, mnist_folder):
    out = tmp_path / "out"
    proc = run_training(["--dry-run", "--data-dir", str(mnist_folder), "--output-dir", str(out),
                         "--no-register"], tmp_path / "bentoml")
    assert proc.returncode == 0, proc.stdout + proc.stderr
    m = _metrics(out)
    hist = m["history"]
    assert len(hist["train_loss"]) == 3 and m["config"]["model"]["hidden_sizes"] == [128]
    assert hist["train_loss"][-1] < hist["train_loss"][0]
    assert min(hist["val_loss"]) < hist["val_loss"][0]
    assert m["split"]["test"] == 500 and "registered: no" in proc.stdout
    (listed,) = [line for line in proc.stdout.splitlines() if line.startswith("artifacts: ")]
    for name in ("model.onnx", "model_card.md", "reference.json", "reference.png"):
        assert name in listed and (out / name).stat().st_size > 0, name


def test_training_writes_every_artifact_and_no_sidecar(trained):
    out = trained[1]
    for name in ("model.onnx", "metrics.json", "training_curves.png", "confusion_matrix.png",
                 "model_card.md", "reference.json", "reference.png"):
        assert (out / name).stat().st_size > 0, name
    assert sorted(p.name for p in out.iterdir() if p.name.startswith("model.onnx")) == [
        "model.onnx"]
    m = _metrics(out)
    assert m["dataset"]["source"] == "idx" and m["dataset"]["is_fallback"] is False
    assert len(m["per_class_accuracy"]) == 10
    assert np.array(m["confusion_matrix"]).sum() == m["split"]["test"] == 1000
    assert m["test_accuracy"] >= 0.9 and m["gates"] == {"parity": True, "accuracy": True}
    assert m["onnx_sha256"] == file_digest(out / "model.onnx")


def test_export_parity_meets_the_gate(trained):
    parity = _metrics(trained[1])["parity"]
    assert parity["argmax_agreement"] == 1.0
    assert parity["max_abs_logit_diff"] <= 1e-4


def test_exported_file_loads_alone_and_takes_batches_of_1_and_257(trained, tmp_path):
    alone = tmp_path / "model.onnx"
    alone.write_bytes((trained[1] / "model.onnx").read_bytes())  # no sidecar next to it
    session = export.onnx_session(alone)
    check_session(session)
    for batch in (1, 257):
        x = np.random.default_rng(batch).integers(0, 256, (batch, 28, 28)).astype(np.float32)
        (logits,) = session.run([CONTRACT.output_name], {CONTRACT.input_name: x})
        assert logits.shape == (batch, 10) and logits.dtype == np.float32
    meta = {p.key: p.value for p in onnx.load(str(alone)).metadata_props}
    assert json.loads(meta["labels"]) == list(CONTRACT.labels)
    assert json.loads(meta["dataset"])["source"] == "idx"


def test_registered_model_carries_accuracy_dataset_and_checksum(trained):
    _, out, home = trained
    code = ("import bentoml, json; m = bentoml.models.get('mnist_mlp:latest'); "
            "print(json.dumps({'labels': m.info.labels, 'meta': m.info.metadata, "
            "'files': sorted(__import__('os').listdir(m.path))}))")
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                          env={"BENTOML_HOME": str(home), "PATH": "/usr/bin:/bin"}, check=True)
    info = json.loads(proc.stdout.strip().splitlines()[-1])
    m = _metrics(out)
    assert info["meta"]["onnx_sha256"] == m["onnx_sha256"]
    assert info["meta"]["test_accuracy"] == pytest.approx(m["test_accuracy"])
    assert info["labels"]["dataset"] == "idx" and info["labels"]["fallback"] == "false"
    assert "model.onnx" in info["files"] and "metrics.json" in info["files"]


def test_registration_renames_a_whole_version_in_and_latest_names_it(trained):
    """training/registry.py stages the version beside the store: none of it stays there."""
    proc, _, home = trained
    (tag,) = [line.split()[-1] for line in proc.stdout.splitlines()
              if line.startswith("registered: ")]
    name, version = tag.split(":")
    assert (home / "models" / name / "latest").read_text() == version
    assert {"model.onnx", "model.yaml", "metrics.json"} <= {
        p.name for p in (home / "models" / name / version).iterdir()}
    assert [p.name for p in (home / "staging" / name).iterdir()] == [".lock"]


def test_a_registration_that_fails_leaves_the_store_as_it_was(tmp_path):
    from training.registry import register_in

    (tmp_path / "model.onnx").write_bytes(b"graph")
    files = [tmp_path / "model.onnx", tmp_path / "absent.json"]  # the copy fails midway
    with pytest.raises(FileNotFoundError):
        register_in(tmp_path / "home" / "models", MODEL_NAME, files, {}, {})
    assert list((tmp_path / "home" / "models" / MODEL_NAME).iterdir()) == []
    assert [p.name for p in (tmp_path / "home" / "staging" / MODEL_NAME).iterdir()] == [
        ".lock"]


def test_accuracy_gate_refuses_to_register(tmp_path, mnist_folder):
    home = tmp_path / "bentoml"
    proc = run_training(["--dry-run", "--data-dir", str(mnist_folder), "--output-dir",
                         str(tmp_path / "out"), "--min-accuracy", "0.999"], home)
    assert proc.returncode == 1
    assert "gate(s) failed: accuracy; nothing registered" in proc.stdout
    assert not (home / "models" / MODEL_NAME).exists()
    assert _metrics(tmp_path / "out")["gates"] == {"parity": True, "accuracy": False}


def test_missing_data_dir_exits_2_with_one_line_reason(tmp_path):
    proc = run_training(["--dry-run", "--data-dir", str(tmp_path / "nope"), "--output-dir",
                         str(tmp_path / "out")], tmp_path / "bentoml", timeout=120)
    assert proc.returncode == 2
    assert proc.stdout.strip().splitlines()[-1].startswith("error: ")
    assert "missing train-images-idx3-ubyte" in proc.stdout


def test_help_states_every_default():
    proc = subprocess.run([sys.executable, "-m", "training", "--help"], capture_output=True,
                          text=True, check=True)
    for opt in ("--epochs", "--lr", "--optimizer", "--dropout", "--patience", "--seed",
                "--dry-run", "--min-accuracy", "--batch-size"):
        assert opt in proc.stdout
    from training.config import TrainConfig

    defaults = TrainConfig()
    assert f"(default: {defaults.epochs})" in proc.stdout
    assert f"(default: {defaults.optimizer})" in proc.stdout


def test_feedback_joins_the_training_digits_repeated_and_never_the_validation_ones():
    official = pipeline.Splits(
        (torch.zeros((5, 28, 28)), torch.zeros(5, dtype=torch.int64)),
        (torch.zeros((2, 28, 28)), torch.zeros(2, dtype=torch.int64)),
        np.zeros((3, 28, 28), np.uint8), np.zeros(3, np.int64))
    images = np.full((4, 28, 28), 255, np.uint8)
    digits = FeedbackSet("sqlite:///fb.db", images[:3], np.array([7, 8, 9]), images[3:],
                         np.array([1]))
    splits = pipeline.add_feedback(official, digits, 2, torch.device("cpu"))
    assert splits.train[0].shape == (5 + 3 * 2, 28, 28)
    assert splits.train[1].tolist() == [0] * 5 + [7, 8, 9, 7, 8, 9]
    assert splits.val is official.val and splits.test_labels is official.test_labels
