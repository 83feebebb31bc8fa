"""training.feedback: the hold-out, the comparison with the serving model, the gates, and
the training job retraining on feedback from a SQLite database and an exported folder.

    pytest tests/training/test_feedback.py
"""

from __future__ import annotations

import json
import shutil

import numpy as np
import pytest

from core import feedback as store
from core.modelstore import read_latest
from tests.helpers import run_training
from training import feedback
from training.__main__ import build_parser, config_from_args
from training.config import FEEDBACK_HOLDOUT, MAX_TEST_DROP


def _digits(n: int, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    return (rng.integers(0, 256, (n, 28, 28), dtype=np.uint8),
            rng.integers(0, 10, n).astype(np.int64))


def _comparison(candidate: tuple[float, float | None],
                serving: tuple[float, float | None] | None) -> dict:
    def scores(pair):
        return {"test_accuracy": pair[0], "holdout_accuracy": pair[1]}

    return {"source": "sqlite:///fb.db", "rows": 10, "train": 7, "holdout": 3,
            "serving_tag": "mnist_mlp:v1" if serving else None,
            "candidate": scores(candidate), "serving": scores(serving) if serving else None}


def _pairs(images: np.ndarray, labels: np.ndarray) -> set[tuple[bytes, int]]:
    return {(img.tobytes(), int(y)) for img, y in zip(images, labels, strict=True)}


def test_the_feedback_flags_land_in_the_config_with_their_defaults():
    defaults = config_from_args(build_parser().parse_args([]))
    assert (defaults.feedback, defaults.feedback_holdout, defaults.serving_tag,
            defaults.max_test_drop, defaults.feedback_repeat) == (
        None, FEEDBACK_HOLDOUT, None, MAX_TEST_DROP, 1)
    cfg = config_from_args(build_parser().parse_args(
        ["--feedback", "sqlite:///fb.db", "--feedback-holdout", "0.5", "--serving-tag",
         "mnist_mlp:abc", "--max-test-drop", "0.01", "--feedback-repeat", "3"]))
    assert (cfg.feedback, cfg.feedback_holdout, cfg.serving_tag, cfg.max_test_drop,
            cfg.feedback_repeat) == ("sqlite:///fb.db", 0.5, "mnist_mlp:abc", 0.01, 3)
    with pytest.raises(ValueError, match="feedback_holdout"):
        config_from_args(build_parser().parse_args(["--feedback-holdout", "1"]))
    with pytest.raises(ValueError, match="max_test_drop"):
        config_from_args(build_parser().parse_args(["--max-test-drop", "-0.1"]))
    with pytest.raises(ValueError, match="feedback_repeat"):
        config_from_args(build_parser().parse_args(["--feedback-repeat", "0"]))


def test_the_hold_out_is_disjoint_from_training_stable_and_about_its_share():
    images, labels = _digits(2000)
    first = feedback.split("sqlite:///a.db", images, labels, 0.3)
    assert first.rows == 2000 and 500 < len(first.holdout_labels) < 700
    trained = _pairs(first.train_images, first.train_labels)
    held = _pairs(first.holdout_images, first.holdout_labels)
    assert not trained & held
    # Later, with more rows and in another order: every row keeps its side.
    more_images, more_labels = _digits(500, seed=1)
    order = np.random.default_rng(2).permutation(2500)
    later = feedback.split("sqlite:///b.db", np.concatenate([images, more_images])[order],
                           np.concatenate([labels, more_labels])[order], 0.3)
    later_held = _pairs(later.holdout_images, later.holdout_labels)
    assert held <= later_held and not trained & later_held


def test_the_source_is_redacted():
    images, labels = _digits(3)
    split = feedback.split("postgresql://mnist:secret@db:5432/mnist", images, labels, 0.3)
    assert "secret" not in split.source and split.source.startswith("postgresql://mnist:")


@pytest.mark.parametrize(("candidate", "serving", "expected"), [
    ((0.980, 0.70), (0.982, 0.60), {"test_vs_serving": True, "feedback_vs_serving": True}),
    ((0.976, 0.70), (0.982, 0.60), {"test_vs_serving": False, "feedback_vs_serving": True}),
    ((0.990, 0.60), (0.982, 0.60), {"test_vs_serving": True, "feedback_vs_serving": False}),
    ((0.990, 0.55), (0.982, 0.60), {"test_vs_serving": True, "feedback_vs_serving": False}),
    ((0.990, None), (0.982, None), {"test_vs_serving": True, "feedback_vs_serving": False}),
    ((0.500, 0.10), None, {"test_vs_serving": True, "feedback_vs_serving": True}),
])
def test_the_gates_on_constructed_cases(candidate, serving, expected):
    assert feedback.gates(_comparison(candidate, serving), 0.005) == expected


def test_the_summary_and_table_show_both_models_or_say_there_is_none():
    both = _comparison((0.98, 0.7), (0.982, 0.6))
    line = feedback.summary(both, 0.005)
    assert "10 rows" in line and "mnist_mlp:v1" in line and "0.7000 vs 0.6000" in line
    assert "| serving `mnist_mlp:v1` | 0.9820 | 0.6000 |" in feedback.table(both)
    alone = _comparison((0.98, 0.7), None)
    assert "no serving model" in feedback.summary(alone, 0.005)
    assert "serving" not in feedback.table(alone).split("\n", 2)[2]


def _rotated_feedback(test_digits, n: int = 600) -> tuple[np.ndarray, np.ndarray]:
    """A population the upright-trained model gets mostly wrong: digits turned 90 degrees."""
    images, labels = test_digits
    return np.ascontiguousarray(np.rot90(images[:n], axes=(1, 2))), labels[:n]


def _sqlite_feedback(tmp_path, images, labels) -> str:
    url = f"sqlite:///{tmp_path / 'feedback.db'}"
    db = store.open_store(url)
    for pixels, truth in zip(images, labels, strict=True):
        db.add(store.Feedback(pixels=pixels, truth=int(truth), model_version="v"))
    db.close()
    return url


def _train(tmp_path, home, mnist_folder, *flags: str):
    out = tmp_path / "out"
    proc = run_training(["--dry-run", "--data-dir", str(mnist_folder), "--output-dir", str(out),
                         *flags], home)
    metrics = json.loads((out / "metrics.json").read_text())
    return proc, metrics, out


def test_retraining_on_a_sqlite_database_beats_the_serving_model_and_registers(
        tmp_path, mnist_folder, test_digits):
    home = tmp_path / "bentoml"
    proc, alone, _ = _train(tmp_path / "champion", home, mnist_folder)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    champion = read_latest(home / "models" / "mnist_mlp")
    url = _sqlite_feedback(tmp_path, *_rotated_feedback(test_digits))
    proc, m, out = _train(tmp_path / "candidate", home, mnist_folder, "--feedback", url,
                          "--max-test-drop", "0.05")
    assert proc.returncode == 0, proc.stdout + proc.stderr
    fb = m["feedback"]
    assert (fb["rows"], fb["train"] + fb["holdout"], fb["source"]) == (600, 600, url)
    assert fb["serving_tag"] == f"mnist_mlp:{champion}"
    assert fb["candidate"]["holdout_accuracy"] > fb["serving"]["holdout_accuracy"]
    assert fb["candidate"]["test_accuracy"] == pytest.approx(m["test_accuracy"], abs=0.002)
    assert m["gates"]["test_vs_serving"] and m["gates"]["feedback_vs_serving"]
    # The feedback joins the training digits only: the validation digits are the same.
    assert m["split"]["train"] == alone["split"]["train"] + fb["train"]
    assert m["split"]["val"] == alone["split"]["val"]
    card = (out / "model_card.md").read_text()
    assert f"| serving `mnist_mlp:{champion}` | {fb['serving']['test_accuracy']:.4f} |" in card
    assert f"{fb['holdout']} were held out" in card and f"mnist_mlp:{champion}" in proc.stdout
    latest = read_latest(home / "models" / "mnist_mlp")
    assert latest != champion
    from training.registry import read_info

    metadata, _ = read_info(home / "models" / "mnist_mlp" / latest)
    assert metadata["feedback_rows"] == 600
    assert metadata["feedback_holdout_accuracy"] == fb["candidate"]["holdout_accuracy"]


def test_retraining_on_an_exported_folder_with_no_serving_model_says_so(
        tmp_path, mnist_folder, test_digits):
    images, labels = _rotated_feedback(test_digits, 300)
    folder = store.export_idx([store.Feedback(pixels=p, truth=int(t))
                               for p, t in zip(images, labels, strict=True)], tmp_path / "fb")
    proc, m, out = _train(tmp_path, tmp_path / "empty-store", mnist_folder, "--feedback",
                          str(folder), "--no-register")
    assert proc.returncode == 0, proc.stdout + proc.stderr
    fb = m["feedback"]
    expected_held = sum(store.held_out(p, int(t), FEEDBACK_HOLDOUT)
                        for p, t in zip(images, labels, strict=True))
    assert (fb["rows"], fb["holdout"], fb["serving"], fb["serving_tag"]) == (
        300, expected_held, None, None)
    assert "no serving model in the store" in proc.stdout
    assert "no serving model" in (out / "model_card.md").read_text()


def test_a_candidate_that_loses_on_the_test_digits_fails_and_registers_nothing(
        tmp_path, mnist_folder, test_digits, trained):
    """The serving model is the session's trained one (bigger, longer): a dry-run
    candidate loses more than a zero margin on the official digits."""
    home = tmp_path / "bentoml"
    shutil.copytree(trained[2] / "models", home / "models")
    before = sorted(p.name for p in (home / "models" / "mnist_mlp").iterdir())
    url = _sqlite_feedback(tmp_path, *_rotated_feedback(test_digits, 300))
    proc, m, _ = _train(tmp_path, home, mnist_folder, "--feedback", url, "--max-test-drop", "0")
    assert proc.returncode == 1, proc.stdout + proc.stderr
    assert m["gates"]["test_vs_serving"] is False and "test_vs_serving" in proc.stdout
    assert "nothing registered" in proc.stdout
    assert sorted(p.name for p in (home / "models" / "mnist_mlp").iterdir()) == before


def test_an_unreadable_source_or_unknown_serving_tag_exits_2(tmp_path, mnist_folder):
    proc = run_training(["--dry-run", "--data-dir", str(mnist_folder), "--feedback",
                         str(tmp_path / "absent"), "--output-dir", str(tmp_path / "o")],
                        tmp_path / "bentoml")
    assert proc.returncode == 2 and "error: feedback:" in proc.stdout, proc.stdout
    folder = store.export_idx([], tmp_path / "fb")
    proc = run_training(["--dry-run", "--data-dir", str(mnist_folder), "--feedback",
                         str(folder), "--serving-tag", "mnist_mlp:nope", "--output-dir",
                         str(tmp_path / "o")], tmp_path / "bentoml")
    assert proc.returncode == 2 and "error: --serving-tag:" in proc.stdout, proc.stdout
