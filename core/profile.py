"""What a model's answers and inputs look like: the reference profile and its statistics.

    python -c "import core.profile as p; print(p.load('artifacts/reference.json').digit_share)"

Label-free quality monitoring compares what the service sees with what the training job
saw on the official test digits. Both sides measure with the functions here, on the
model's input (float32 [N, 28, 28], raw 0-255, white on black) and its probabilities, and
bucket with the edges here: the training job writes the profile beside the model in the
store, the service exports the same histograms as Prometheus metrics, and the recording
rules compare the two. Pure numpy: the service image imports it without torch.
"""

from __future__ import annotations

import json
import math
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from core.contract import CONTRACT

REFERENCE_FILE = "reference.json"  # the profile's file inside the model's store entry
META_REFERENCE = "reference_profile"  # the store metadata key naming that file
PROFILE_FORMAT = 1  # bumped when the file's layout changes
# A profile is a few KiB (its length is fixed by the bucket edges): a file larger than
# this is not one, and is not read whole (a damaged store's /dev/zero would never end).
MAX_FILE_BYTES = 1 << 20

# Top-1 probability under this is a low-confidence answer (one of CONFIDENCE_EDGES).
LOW_CONFIDENCE = 0.5
# Bucket upper bounds (Prometheus `le`); values above the last one fall in +Inf.
CONFIDENCE_EDGES = (0.3, 0.4, 0.5, 0.6, 0.7, 0.8, 0.9, 0.95, 0.99, 0.999)
ENTROPY_EDGES = (0.01, 0.05, 0.1, 0.25, 0.5, 0.75, 1.0, 1.5, 2.0, 2.5, 3.0)  # bits
# Input statistics, measured on the model input.
INPUT_EDGES: dict[str, tuple[float, ...]] = {
    # Mean intensity on 0..1: how much ink (MNIST's test digits: about 0.13).
    "ink": (0.04, 0.06, 0.08, 0.1, 0.12, 0.14, 0.16, 0.18, 0.2, 0.25, 0.3, 0.4, 0.6),
    # Pixels: twice the ink area over its perimeter (MNIST: about 2 to 3).
    "stroke_width": (1.0, 1.5, 2.0, 2.5, 3.0, 3.5, 4.0, 5.0, 6.0, 8.0),
    # The factor that fits the digit's ink box into MNIST's 20-pixel box.
    "scale": (0.1, 0.25, 0.5, 0.75, 0.9, 0.98, 1.02, 1.1, 1.5, 2.0, 4.0),
    # Pixels (of the 28x28 input): how far the ink's centre of mass sat from the centre.
    "shift": (0.25, 0.5, 0.75, 1.0, 1.5, 2.0, 3.0, 5.0, 8.0),
}
STATS = tuple(INPUT_EDGES)
BOX = 20  # MNIST: digits size-normalised to fit a 20x20 box inside 28x28
INK_LEVEL = 128  # stroke width: a pixel is ink at half intensity or more


def confidence_entropy(probs: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Per row of probabilities [N, C]: the top-1 probability and the entropy in bits."""
    p = np.clip(probs, 1e-12, 1.0)
    return probs.max(axis=1), -(p * np.log2(p)).sum(axis=1)


def ink(batch: np.ndarray) -> np.ndarray:
    """Mean intensity of each input on the 0..1 scale."""
    return batch.mean(axis=(1, 2)) / CONTRACT.pixel_max


def stroke_width(batch: np.ndarray) -> np.ndarray:
    """Twice the ink area over the ink's perimeter (4-neighbour edges, the border
    included): a stroke w pixels wide and L long has area wL and perimeter about 2L."""
    b = batch >= INK_LEVEL
    area = b.sum(axis=(1, 2))
    inner = (b[:, 1:, :] != b[:, :-1, :]).sum(axis=(1, 2)) \
        + (b[:, :, 1:] != b[:, :, :-1]).sum(axis=(1, 2))
    border = b[:, 0, :].sum(axis=1) + b[:, -1, :].sum(axis=1) \
        + b[:, :, 0].sum(axis=1) + b[:, :, -1].sum(axis=1)
    perimeter = inner + border
    return np.where(perimeter > 0, 2.0 * area / np.maximum(perimeter, 1), 0.0)


def placement(batch: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(scale, shift) of inputs as they are: the factor that fits each one's ink box
    (pixels above 0) into BOX pixels, and the distance in pixels of its ink's centre of
    mass from the image centre. 1 and 0 for an input with no ink."""
    n, h, w = batch.shape
    # Two passes over the pixels, not six (the service measures every answer): intensities
    # are never negative, so a row or column has ink exactly when its sum is above 0.
    row_sums, col_sums = batch.sum(axis=2), batch.sum(axis=1)
    rows, cols = row_sums > 0, col_sums > 0
    any_ink = rows.any(axis=1)
    height = h - rows.argmax(axis=1) - rows[:, ::-1].argmax(axis=1)
    width = w - cols.argmax(axis=1) - cols[:, ::-1].argmax(axis=1)
    scale = np.where(any_ink, BOX / np.maximum(np.maximum(height, width), 1), 1.0)
    total = row_sums.sum(axis=1)
    safe = np.where(total > 0, total, 1.0)
    cy = (row_sums @ (np.arange(h) + 0.5)) / safe
    cx = (col_sums @ (np.arange(w) + 0.5)) / safe
    shift = np.where(total > 0, np.hypot(cy - h / 2, cx - w / 2), 0.0)
    return scale, shift


def input_stats(batch: np.ndarray) -> dict[str, np.ndarray]:
    """Every input statistic of a batch of model inputs [N, 28, 28], by name (STATS)."""
    scale, shift = placement(batch)
    return {"ink": ink(batch), "stroke_width": stroke_width(batch), "scale": scale,
            "shift": shift}


def bucket_counts(values: np.ndarray, edges: tuple[float, ...]) -> np.ndarray:
    """Non-cumulative counts per bucket, Prometheus's way (upper bound included): one
    per edge, then the +Inf bucket."""
    return np.bincount(np.searchsorted(np.asarray(edges), values, side="left"),
                       minlength=len(edges) + 1)


@dataclass(frozen=True)
class Histogram:
    """Shares per bucket (they sum to 1), with the mean and standard deviation."""

    edges: tuple[float, ...]
    shares: tuple[float, ...]
    mean: float
    std: float

    @classmethod
    def of(cls, values: np.ndarray, edges: tuple[float, ...]) -> Histogram:
        counts = bucket_counts(values, edges)
        return cls(tuple(edges), tuple(float(c) for c in counts / max(len(values), 1)),
                   float(np.mean(values)), float(np.std(values)))


@dataclass(frozen=True)
class Profile:
    """The reference: what the model answered and saw on `source` (n inputs)."""

    source: str
    n: int
    accuracy: float
    digit_share: tuple[float, ...]  # share of each predicted digit, 0..9
    low_confidence_share: float  # share of answers under LOW_CONFIDENCE
    confidence: Histogram
    entropy: Histogram
    inputs: dict[str, Histogram] = field(default_factory=dict)  # by STATS name
    format: int = PROFILE_FORMAT

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def build(source: str, batch: np.ndarray, probs: np.ndarray,
          labels: np.ndarray | None = None) -> Profile:
    """The profile of model inputs [N, 28, 28] and their probabilities [N, 10]."""
    conf, ent = confidence_entropy(probs)
    predicted = probs.argmax(axis=1)
    share = np.bincount(predicted, minlength=CONTRACT.num_classes) / len(predicted)
    accuracy = float((predicted == labels).mean()) if labels is not None else math.nan
    stats = input_stats(batch)
    return Profile(
        source=source, n=len(predicted), accuracy=accuracy,
        digit_share=tuple(float(s) for s in share),
        low_confidence_share=float((conf < LOW_CONFIDENCE).mean()),
        confidence=Histogram.of(conf, CONFIDENCE_EDGES),
        entropy=Histogram.of(ent, ENTROPY_EDGES),
        inputs={name: Histogram.of(stats[name], INPUT_EDGES[name]) for name in STATS})


def from_dict(d: dict[str, Any]) -> Profile:
    """A profile read back; ValueError when its format is not this code's."""
    if d.get("format") != PROFILE_FORMAT:
        raise ValueError(f"reference profile format {d.get('format')!r}, "
                         f"expected {PROFILE_FORMAT}")

    def hist(h: dict[str, Any]) -> Histogram:
        return Histogram(tuple(h["edges"]), tuple(h["shares"]), h["mean"], h["std"])

    return Profile(source=d["source"], n=d["n"], accuracy=d["accuracy"],
                   digit_share=tuple(d["digit_share"]),
                   low_confidence_share=d["low_confidence_share"],
                   confidence=hist(d["confidence"]), entropy=hist(d["entropy"]),
                   inputs={k: hist(v) for k, v in d["inputs"].items()})


def save(profile: Profile, path: Path) -> None:
    path.write_text(json.dumps(profile.to_dict(), indent=1) + "\n")


def load(path: Path) -> Profile:
    """The profile in a file; OSError or ValueError (KeyError, TypeError: fields missing
    or of another type) when it is not one."""
    if not path.is_file():
        raise ValueError(f"{path.name} is not a regular file")
    with path.open("rb") as file:
        text = file.read(MAX_FILE_BYTES + 1)
    if len(text) > MAX_FILE_BYTES:
        raise ValueError(f"{path.name} is larger than any profile ({MAX_FILE_BYTES} bytes)")
    try:
        return from_dict(json.loads(text))
    except RecursionError:  # nested deeper than the parser goes: no profile is
        raise ValueError(f"{path.name} is nested too deep to be a profile") from None


# Drift: the population stability index, with shares floored so that an empty bucket on
# one side is a large finite term, not an infinity (the recording rules floor the same).
PSI_FLOOR = 1e-4


def psi(live: np.ndarray | tuple[float, ...], reference: np.ndarray | tuple[float, ...]) -> float:
    """Sum of (p - q) ln(p / q) over buckets of two share vectors (each sums to 1)."""
    p = np.maximum(np.asarray(live, float), PSI_FLOOR)
    q = np.maximum(np.asarray(reference, float), PSI_FLOOR)
    return float(((p - q) * np.log(p / q)).sum())


def ks(live: np.ndarray | tuple[float, ...], reference: np.ndarray | tuple[float, ...]) -> float:
    """The largest gap between two cumulative distributions over the same buckets
    (a Kolmogorov-Smirnov distance on bucketed data), from their per-bucket shares."""
    return float(np.abs(np.cumsum(live) - np.cumsum(reference)).max())


# What drifts, each with the distance it is measured by and the distance that is drift:
# the predicted-digit mix by PSI (0.2: the usual "significant shift"), every histogram by
# KS on its buckets. A distance is a score of 1 at its threshold.
SIGNALS = ("digit_mix", "confidence", "entropy", *STATS)
DRIFT_THRESHOLDS: dict[str, float] = {"digit_mix": 0.2, **{s: 0.25 for s in SIGNALS[1:]}}
# Fewer answers than this in a window say nothing: sampling noise alone makes the PSI of
# n answers from the reference mix about 9 / n.
MIN_ANSWERS = 200
# The `challenger_version` label of the loop's series from a replica without a challenger
# (the service writes it; the promotion command reads it).
NO_CHALLENGER = "none"
# More low-confidence answers than this many times the reference's share is a rise.
LOW_CONFIDENCE_RISE = 3.0
