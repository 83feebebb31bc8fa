"""The training job's figures: learning curves, confusion matrix, reliability diagram.

    python -m training --output-dir artifacts     # writes them beside metrics.json

Each takes what training/evaluation.py and training/loop.py computed and writes one PNG;
nothing here computes a figure of merit. matplotlib's Figure draws without pyplot, so
no display, backend or global figure state is involved.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
from matplotlib.figure import Figure

from core.contract import CONTRACT
from training.loop import History


def plot_curves(history: History, path: Path) -> None:
    epochs = np.arange(1, len(history.train_loss) + 1)
    fig = Figure(figsize=(11, 4))
    ax1, ax2 = fig.subplots(1, 2)
    ax1.plot(epochs, history.train_loss, "o-", label="train (augmented, dropout)")
    ax1.plot(epochs, history.val_loss, "o-", label="validation")
    ax1.set(xlabel="epoch", ylabel="cross-entropy", title="Loss", yscale="log")
    ax2.plot(epochs, history.train_acc, "o-", label="train (augmented, dropout)")
    ax2.plot(epochs, history.val_acc, "o-", label="validation")
    ax2.set(xlabel="epoch", ylabel="accuracy", title="Accuracy")
    for ax in (ax1, ax2):
        if history.best_epoch:
            ax.axvline(history.best_epoch, color="grey", ls=":", lw=1,
                       label="lowest validation loss")
        if history.kept_epoch:
            ax.axvline(history.kept_epoch, color="black", ls="--", lw=1, label="kept")
        ax.grid(alpha=0.3)
        ax.legend()
    fig.tight_layout()
    fig.savefig(path, dpi=110)


def plot_confusion(cm: np.ndarray, path: Path, title: str) -> None:
    fig = Figure(figsize=(6.5, 5.5))
    ax = fig.subplots()
    # Log colour scale: the off-diagonal errors are what people look for.
    im = ax.imshow(np.log1p(cm), cmap="Blues")
    for i in range(cm.shape[0]):
        for j in range(cm.shape[1]):
            if cm[i, j]:
                ax.text(j, i, str(cm[i, j]), ha="center", va="center", fontsize=7,
                        color="white" if i == j else "black")
    ax.set(xticks=range(10), yticks=range(10), xticklabels=CONTRACT.labels,
           yticklabels=CONTRACT.labels, xlabel="predicted", ylabel="true", title=title)
    fig.colorbar(im, ax=ax, label="log(1 + count)")
    fig.tight_layout()
    fig.savefig(path, dpi=110)


def plot_reliability(cal: dict[str, Any], path: Path) -> None:
    """Accuracy against confidence, bin by bin (evaluation.calibration's bins)."""
    rows = cal["reliability"]
    fig = Figure(figsize=(5, 5))
    ax = fig.subplots()
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
