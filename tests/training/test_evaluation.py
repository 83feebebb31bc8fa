"""training/evaluation.py: calibration error and the robustness table."""

from __future__ import annotations

import numpy as np
import pytest

from training.evaluation import (
    PERTURBATIONS,
    calibration,
    confusion_matrix,
    per_class_accuracy,
    robustness,
)


def _probs(confidence: np.ndarray, predicted: np.ndarray) -> np.ndarray:
    p = np.full((len(confidence), 10), 0.0)
    p[np.arange(len(p)), predicted] = confidence
    rest = (1 - confidence) / 9
    return p + (p == 0) * rest[:, None]


def test_a_calibrated_model_has_no_error_and_an_overconfident_one_does():
    rng = np.random.default_rng(0)
    n = 20_000
    conf = rng.uniform(0.5, 1.0, n)
    labels = rng.integers(0, 10, n)
    right = rng.random(n) < conf  # right exactly as often as it says
    predicted = np.where(right, labels, (labels + 1) % 10)
    assert calibration(_probs(conf, predicted), labels)["ece"] < 0.01
    # Says 0.99 but is right 75 % of the time: ECE about 0.24.
    predicted = np.where(rng.random(n) < 0.75, labels, (labels + 1) % 10)
    cal = calibration(_probs(np.full(n, 0.99), predicted), labels)
    assert cal["ece"] == pytest.approx(0.24, abs=0.02)
    assert sum(r["count"] for r in cal["reliability"]) == n


def test_every_perturbation_changes_the_digits_but_not_their_shape(test_digits):
    x = test_digits[0][:20].astype(np.float32)
    for name, one in PERTURBATIONS.items():
        changed = one(x, np.random.default_rng(0))
        assert changed.shape == x.shape, name
        assert all(not np.allclose(c, d) for c, d in zip(changed, x, strict=True)), name


@pytest.mark.parametrize("name", list(PERTURBATIONS))
def test_a_batch_is_changed_as_digit_by_digit_with_the_same_generator(test_digits, name):
    """Each class changes a whole batch at once: the same numbers, to the bit, as changing
    one digit at a time from the same generator (no filter mixes two digits, and each
    digit gets its own draws, in order)."""
    x = test_digits[0][:40].astype(np.float32)
    one = PERTURBATIONS[name]
    rng = np.random.default_rng(7)
    by_digit = np.concatenate([one(d[None], rng) for d in x])
    assert np.array_equal(one(x, np.random.default_rng(7)), by_digit)


def test_the_table_is_deterministic_and_has_every_class(test_digits):
    x, y = test_digits[0][:50], test_digits[1][:50]
    oracle_calls = []

    def predict(images):  # "predicts" the label of the image it was given
        oracle_calls.append(images.copy())
        return np.eye(10)[y[: len(images)]]

    table = robustness(predict, x, y, seed=3)
    assert set(table) == {"clean", *PERTURBATIONS} and all(v == 1.0 for v in table.values())
    again = []
    robustness(lambda im: again.append(im.copy()) or np.eye(10)[y], x, y, seed=3)
    assert all(np.array_equal(a, b) for a, b in zip(oracle_calls, again, strict=True))


def test_the_confusion_matrix_counts_label_prediction_pairs_and_gives_per_class_accuracy():
    labels = np.array([0, 0, 1, 1, 1, 2])
    preds = np.array([0, 1, 1, 1, 2, 2])
    cm = confusion_matrix(labels, preds, k=3)
    assert cm.tolist() == [[1, 1, 0], [0, 2, 1], [0, 0, 1]]
    assert per_class_accuracy(cm) == [0.5, 2 / 3, 1.0]
    assert per_class_accuracy(confusion_matrix(labels, preds))[5] == 0.0  # no digit: not NaN


def test_the_batched_affine_is_scipys_affine_transform_about_the_centre():
    """Rotation and shear resample the whole batch at once; away from the border (where
    scipy leaves a pixel whose source is outside at 0, grid_sample blends it with the zero
    outside) each image is scipy's affine_transform about its centre."""
    from scipy import ndimage

    from training.evaluation import _affine

    rng = np.random.default_rng(0)
    images = np.zeros((6, 28, 28), dtype=np.float32)
    images[:, 7:21, 9:19] = rng.uniform(0, 255, (6, 14, 10))  # asymmetric: axes matter
    a = np.deg2rad([0.0, 15.0, -15.0, 90.0, 0.0, 0.0])
    matrices = np.stack([np.stack([np.cos(a), -np.sin(a)], 1),
                         np.stack([np.sin(a), np.cos(a)], 1)], 1)
    matrices[4:, 1, 0] = [0.3, -0.3]  # two shears
    centre = np.array([13.5, 13.5])
    expected = np.stack([ndimage.affine_transform(img, m, offset=centre - m @ centre, order=1)
                         for img, m in zip(images, matrices, strict=True)])
    np.testing.assert_allclose(_affine(images, matrices), expected, atol=1e-3)
