"""How far the model's numbers can be trusted: calibration, and robustness to other hands.

    python -m training --data-dir ../shared/data/mnist    # both land in metrics.json,
                                                          # the model card and two plots
- Calibration: users see `confidence` as a probability, so a 0.9 should be right 9 times
  in 10. Expected calibration error (ECE) over 15 equal-width confidence bins, and the
  reliability diagram (accuracy against confidence, bin by bin).
- Robustness: test accuracy when the test digits are changed the way real inputs differ
  from MNIST's writers: thicker or thinner strokes, small rotations and shears, elastic
  warps, slight blur, a thin hard mouse stroke. Each class is drawn once per digit from a
  fixed seed, so the table is deterministic.

Pure numpy/scipy on uint8 [N, 28, 28] images; the model comes in as `predict`, a function
from images to probabilities, so nothing here knows torch.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
from scipy import ndimage

Predict = Callable[[np.ndarray], np.ndarray]  # uint8 [N, 28, 28] -> probabilities [N, 10]
BINS = 15


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


def _each(images: np.ndarray, rng: np.random.Generator,
          one: Callable[[np.ndarray, np.random.Generator], np.ndarray]) -> np.ndarray:
    out = np.empty_like(images, dtype=np.float32)
    for i, img in enumerate(images.astype(np.float32)):
        out[i] = one(img, rng)
    return out


def _affine(img: np.ndarray, matrix: np.ndarray) -> np.ndarray:
    """Apply a 2x2 matrix about the image centre."""
    centre = (np.array(img.shape) - 1) / 2
    return ndimage.affine_transform(img, matrix, offset=centre - matrix @ centre, order=1)


def _rotate(img: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    a = np.deg2rad(rng.uniform(-15, 15))
    return _affine(img, np.array([[np.cos(a), -np.sin(a)], [np.sin(a), np.cos(a)]]))


def _shear(img: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    return _affine(img, np.array([[1.0, 0.0], [rng.uniform(-0.3, 0.3), 1.0]]))


def _elastic(img: np.ndarray, rng: np.random.Generator, alpha: float = 34.0,
             sigma: float = 4.0) -> np.ndarray:
    """Simard et al. (2003): a random displacement field, smoothed, scaled."""
    dy, dx = (ndimage.gaussian_filter(rng.uniform(-1, 1, img.shape), sigma) * alpha
              for _ in range(2))
    yy, xx = np.meshgrid(np.arange(28), np.arange(28), indexing="ij")
    return ndimage.map_coordinates(img, [yy + dy, xx + dx], order=1)


def _mouse(img: np.ndarray, _: np.random.Generator) -> np.ndarray:
    """A thin, hard-edged stroke with no anti-aliasing, as a mouse draws on a small canvas."""
    ink = img > 127
    thin = ndimage.binary_erosion(ink)
    return (thin if thin.sum() >= 0.3 * ink.sum() else ink).astype(np.float32) * 255


PERTURBATIONS: dict[str, Callable[[np.ndarray, np.random.Generator], np.ndarray]] = {
    "thicker strokes (grey dilation 2x2)": lambda x, _: ndimage.grey_dilation(x, size=(2, 2)),
    "thinner strokes (grey erosion 2x2)": lambda x, _: ndimage.grey_erosion(x, size=(2, 2)),
    "rotation (uniform +-15 deg)": _rotate,
    "shear (uniform +-0.3)": _shear,
    "elastic warp (alpha 34, sigma 4)": _elastic,
    "slight blur (Gaussian sigma 0.7)": lambda x, _: ndimage.gaussian_filter(x, 0.7),
    "thin mouse stroke (binarised, eroded)": _mouse,
}


def robustness(predict: Predict, images: np.ndarray, labels: np.ndarray,
               seed: int = 0) -> dict[str, float]:
    """Accuracy on the clean test digits and under each perturbation class."""
    table = {"clean": float((predict(images).argmax(1) == labels).mean())}
    for name, one in PERTURBATIONS.items():
        changed = np.clip(_each(images, np.random.default_rng(seed), one), 0, 255)
        table[name] = float((predict(changed).argmax(1) == labels).mean())
    return {k: round(v, 4) for k, v in table.items()}


def plot_reliability(cal: dict[str, Any], path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    rows = cal["reliability"]
    fig, ax = plt.subplots(figsize=(5, 5))
    ax.plot([0, 1], [0, 1], "--", color="grey", lw=1, label="perfectly calibrated")
    ax.bar([r["from"] for r in rows], [r["accuracy"] for r in rows], width=1 / cal["bins"],
           align="edge", alpha=0.7, edgecolor="black", label="accuracy in the bin")
    ax.plot([r["confidence"] for r in rows], [r["accuracy"] for r in rows], "o", color="C3",
            label="(mean confidence, accuracy)")
    ax.set(xlabel="confidence", ylabel="accuracy", xlim=(0, 1), ylim=(0, 1),
           title=f"Reliability, ECE {cal['ece'] * 100:.2f} % ({cal['bins']} bins)")
    ax.legend(loc="upper left", fontsize=8)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)
