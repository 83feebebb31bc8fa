"""The test figures of a model, computed only (training/plots.py draws them): the
confusion matrix, calibration, and robustness to other hands.

    python -m training --data-dir ../shared/data/mnist    # they land in metrics.json,
                                                          # the model card and the plots
- Calibration: users see `confidence` as a probability, so a 0.9 should be right 9 times
  in 10. Expected calibration error (ECE) over 15 equal-width confidence bins, and the
  reliability bins (accuracy against confidence, bin by bin) that the diagram draws.
- Robustness: test accuracy when the test digits are changed the way real inputs differ
  from MNIST's writers: thicker or thinner strokes, small rotations and shears, elastic
  warps, slight blur, a thin hard mouse stroke. Each class is drawn once per digit from a
  fixed seed, so the table is deterministic.

On uint8 [N, 28, 28] images; the model comes in as `predict`, a function from images to
probabilities. The elastic warp and the mouse stroke are the augmentation's own
(training/perturbations.py, run on the CPU), so the table measures what training
simulates; the other classes are numpy/scipy.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import numpy as np
import torch
from scipy import ndimage

from training import imageops, perturbations

Predict = Callable[[np.ndarray], np.ndarray]  # uint8 [N, 28, 28] -> probabilities [N, 10]
BINS = 15


def confusion_matrix(labels: np.ndarray, preds: np.ndarray, k: int = 10) -> np.ndarray:
    cm = np.zeros((k, k), dtype=np.int64)
    np.add.at(cm, (labels, preds), 1)
    return cm


def per_class_accuracy(cm: np.ndarray) -> list[float]:
    return [float(cm[i, i] / max(cm[i].sum(), 1)) for i in range(len(cm))]


def calibration(probs: np.ndarray, labels: np.ndarray, bins: int = BINS) -> dict[str, Any]:
    """ECE (the count-weighted mean |accuracy - confidence| over the bins) and the bins."""
    confidence, correct = probs.max(1), probs.argmax(1) == labels
    edges = np.linspace(0.0, 1.0, bins + 1)
    which = np.clip(np.digitize(confidence, edges[1:-1], right=True), 0, bins - 1)
    rows, ece = [], 0.0
    for b in range(bins):
        mask = which == b
        if not mask.any():
            continue
        acc, conf = float(correct[mask].mean()), float(confidence[mask].mean())
        ece += mask.mean() * abs(acc - conf)
        rows.append({"from": round(float(edges[b]), 4), "to": round(float(edges[b + 1]), 4),
                     "count": int(mask.sum()), "confidence": round(conf, 4),
                     "accuracy": round(acc, 4)})
    return {"ece": round(float(ece), 5), "bins": bins, "reliability": rows}


# Each class changes a batch of images [N, 28, 28] (float32, 0-255) as if digit by digit:
# one draw per digit, in digit order, so the numbers are those of a per-digit loop with the
# same generator (tests check it to the bit), in about half its time: scipy's filters run
# over the whole batch, and never mix two digits (the batch axis has size 1 or sigma 0).
Perturb = Callable[[np.ndarray, np.random.Generator], np.ndarray]


def _affine(images: np.ndarray, matrices: np.ndarray) -> np.ndarray:
    """Apply one 2x2 matrix [N, 2, 2] per image about the image centre, as scipy's
    affine_transform (row, column order; order 1, zeros outside) on each square image
    does, in one bilinear resample of the batch: 40 times faster than image by image."""
    m = torch.from_numpy(matrices.astype(np.float32))
    zero = torch.zeros(len(m))
    # grid_sample's coordinates are (x, y) = (column, row), centred: swap the axes.
    theta = torch.stack([torch.stack([m[:, 1, 1], m[:, 1, 0], zero], 1),
                         torch.stack([m[:, 0, 1], m[:, 0, 0], zero], 1)], 1)
    n = images.shape[1]
    gx, gy = imageops.affine_grid(theta, n, n)
    return imageops.resample(torch.from_numpy(images), gx, gy).numpy()


def _rotate(images: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    a = np.deg2rad(rng.uniform(-15, 15, len(images)))
    cos, sin = np.cos(a), np.sin(a)
    return _affine(images, np.stack([np.stack([cos, -sin], 1), np.stack([sin, cos], 1)], 1))


def _shear(images: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    k = rng.uniform(-0.3, 0.3, len(images))
    one, zero = np.ones_like(k), np.zeros_like(k)
    return _affine(images, np.stack([np.stack([one, zero], 1), np.stack([k, one], 1)], 1))


def _elastic(images: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """Simard's elastic warp, the augmentation's (training/perturbations.py), its noise drawn
    from `rng` digit by digit."""
    n = images.shape[1]
    size = perturbations.noise_size(n, perturbations.ELASTIC_SIGMA)
    noise = rng.standard_normal((len(images) * 2, size), dtype=np.float32)
    return perturbations.elastic_warp(torch.from_numpy(images), torch.from_numpy(noise)).numpy()


def _mouse(images: np.ndarray, _: np.random.Generator) -> np.ndarray:
    """A thin, hard-edged stroke, as a mouse draws: the augmentation's mouse stroke."""
    return perturbations.mouse_stroke(torch.from_numpy(images)).numpy()


PERTURBATIONS: dict[str, Perturb] = {
    "thicker strokes (grey dilation 2x2)": lambda x, _: ndimage.grey_dilation(x, (1, 2, 2)),
    "thinner strokes (grey erosion 2x2)": lambda x, _: ndimage.grey_erosion(x, (1, 2, 2)),
    "rotation (uniform +-15 deg)": _rotate,
    "shear (uniform +-0.3)": _shear,
    f"elastic warp (alpha {perturbations.ELASTIC_ALPHA:g}, "
    f"sigma {perturbations.ELASTIC_SIGMA:g})": _elastic,
    "slight blur (Gaussian sigma 0.7)": lambda x, _: ndimage.gaussian_filter(x, (0, 0.7, 0.7)),
    "thin mouse stroke (binarised, eroded)": _mouse,
}


def robustness(predict: Predict, images: np.ndarray, labels: np.ndarray, seed: int = 0,
               clean: np.ndarray | None = None) -> dict[str, float]:
    """Accuracy on the clean test digits and under each perturbation class; `clean`: the
    clean digits' probabilities, when the caller has them already."""
    clean = predict(images) if clean is None else clean
    table = {"clean": float((clean.argmax(1) == labels).mean())}
    pixels = images.astype(np.float32)  # once: each class returns a new array
    for name, one in PERTURBATIONS.items():
        changed = np.clip(one(pixels, np.random.default_rng(seed)), 0, 255)
        table[name] = float((predict(changed).argmax(1) == labels).mean())
    return {k: round(v, 4) for k, v in table.items()}
