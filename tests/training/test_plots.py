"""The figures (training/plots.py): each writes one PNG, without a display."""

from __future__ import annotations

import numpy as np

from core import profile
from training.evaluation import calibration, confusion_matrix
from training.loop import History
from training.plots import plot_confusion, plot_curves, plot_reference, plot_reliability

PNG = b"\x89PNG\r\n\x1a\n"


def test_each_figure_is_a_png(tmp_path):
    history = History(train_loss=[1.0, 0.5], train_acc=[0.6, 0.8], val_loss=[0.9, 0.4],
                      val_acc=[0.7, 0.9], lr=[1e-3, 1e-4], best_epoch=2, kept_epoch=2)
    labels = np.arange(100) % 10
    probs = np.eye(10)[labels] * 0.9 + 0.01
    plot_curves(history, tmp_path / "curves.png")
    plot_confusion(confusion_matrix(labels, labels), tmp_path / "confusion.png", "test")
    plot_reliability(calibration(probs, labels), tmp_path / "reliability.png")
    images = np.random.default_rng(0).integers(0, 256, (100, 28, 28)).astype(np.float32)
    plot_reference(profile.build("test", images, probs, labels), tmp_path / "reference.png")
    for name in ("curves.png", "confusion.png", "reliability.png", "reference.png"):
        assert (tmp_path / name).read_bytes().startswith(PNG), name
