"""The training job's figures: learning curves, confusion matrix, reliability diagram,
reference profile.

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
from core.profile import Histogram, Profile
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


REFERENCE_COLUMNS = 4  # panels per row of the reference figure


def _bucket_labels(edges: tuple[float, ...]) -> list[str]:
    """One label per bucket: its upper bound (Prometheus `le`), then +Inf."""
    return [f"≤{edge:g}" for edge in edges] + ["+Inf"]


def _plot_histogram(ax: Any, name: str, hist: Histogram) -> None:
    """Shares per bucket, buckets evenly spaced (their edges are not)."""
    labels = _bucket_labels(hist.edges)
    ax.bar(range(len(labels)), hist.shares, color="C0", alpha=0.8)
    ax.set_xticks(range(len(labels)), labels, rotation=60, fontsize=7)
    ax.set(ylabel="share", title=f"{name}: mean {hist.mean:.3g}, std {hist.std:.3g}")


def plot_reference(reference: Profile, path: Path) -> None:
    """The reference profile (core/profile.py): the predicted-digit mix, the confidence and
    entropy histograms and the input statistics, in the buckets the service exports."""
    panels = {"confidence (top-1)": reference.confidence,
              "entropy (bits)": reference.entropy, **reference.inputs}
    rows = -(-(len(panels) + 1) // REFERENCE_COLUMNS)  # the digit mix, then one per panel
    fig = Figure(figsize=(3.5 * REFERENCE_COLUMNS, 3.25 * rows))
    axes = fig.subplots(rows, REFERENCE_COLUMNS).ravel()
    axes[0].bar(range(CONTRACT.num_classes), reference.digit_share, color="C2", alpha=0.8)
    axes[0].axhline(1 / CONTRACT.num_classes, color="grey", ls=":", lw=1, label="uniform")
    axes[0].set_xticks(range(CONTRACT.num_classes), CONTRACT.labels)
    axes[0].set(xlabel="predicted digit", ylabel="share", title="Predicted-digit mix")
    axes[0].legend(loc="lower center", fontsize=8)
    for ax, (name, hist) in zip(axes[1:], panels.items(), strict=False):
        _plot_histogram(ax, name, hist)
    for ax in axes[len(panels) + 1:]:
        ax.remove()
    fig.suptitle(f"Reference profile: {reference.n} digits ({reference.source}), "
                 f"low-confidence share {reference.low_confidence_share * 100:.2f} %")
    fig.tight_layout()
    fig.savefig(path, dpi=110)
