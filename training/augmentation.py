"""Data augmentation of raw-pixel digit batches, on the device that trains.

    python -c "from training.augmentation import AugmentationConfig; print(AugmentationConfig())"

One random draw per digit, from the training generator, so a run is deterministic for
its seed. Every lever is a field of `AugmentationConfig`; a field at 0 switches its lever off.
Each lever stands for a way real inputs differ from MNIST's writers (training/
evaluation.py measures the same classes on the test digits):

- affine: rotation, shear, scaling and shift, the classic small jitter;
- elastic: Simard's elastic warp (training/perturbations.py), the field of the elastic
  robustness class, drawn into the same sampling grid as the affine jitter;
- stroke: thicker or thinner strokes, a blend towards a 3x3 grey dilation or erosion;
- binarize: hard-edged ink with no anti-aliasing, as a pen tablet draws;
- mouse: the thin mouse stroke of the mouse robustness class (training/perturbations.py),
  whose erosion also breaks the thinnest strokes apart.
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass, field

import torch

from training.flags import option
from training.imageops import affine_grid, max3x3, resample
from training.perturbations import (
    ELASTIC_ALPHA,
    ELASTIC_SIGMA,
    binarize,
    displace,
    elastic_field,
    elastic_noise,
    mouse_stroke,
)


@dataclass(frozen=True)
class AugmentationConfig:
    """The levers; every field is a flag of `python -m training`. The affine ones draw
    uniformly per digit within +-their value, stroke within +-its share; binarize and
    mouse are the probability that a digit gets them."""

    degrees: float = field(default=10.0, metadata=option("rotation, ±degrees"))
    shear: float = field(default=0.0, metadata=option("horizontal shear, ±"))
    scale: float = field(default=0.1, metadata=option("zoom, 1 ± scale"))
    shift: float = field(default=2.0, metadata=option("translation, ±pixels"))
    elastic: float = field(default=ELASTIC_ALPHA, metadata=option(
        "elastic warp (Simard et al. 2003): alpha, pixels"))
    elastic_sigma: float = field(default=ELASTIC_SIGMA, metadata=option(
        "elastic warp: the smoothing Gaussian's sigma, pixels"))
    stroke: float = field(default=0.0, metadata=option(
        "stroke-width jitter, ± share of a 3x3 dilation or erosion (0-1)"))
    binarize: float = field(default=0.0, metadata=option("probability of hard-edged ink (0-1)"))
    mouse: float = field(default=0.1, metadata=option(
        "probability of a thin, hard mouse stroke: binarised, eroded (0-1)"))
    # A new view of every digit every epoch costs about half as much as the optimiser's
    # steps on a 2-core CPU, but keeping views for 2 or 4 epochs (training/views.py) cost
    # test accuracy and most of all the elastic class (docs/journal/training.md).
    refresh: float = field(default=1.0, metadata=option(
        "share of the training digits given a new augmented view each epoch; the others "
        "keep theirs (0-1; 0: one view for the whole run)"))

    def __post_init__(self) -> None:
        if min(asdict(self).values()) < 0:
            raise ValueError("augmentation levers must be >= 0")
        if max(self.stroke, self.binarize, self.mouse, self.refresh) > 1:
            raise ValueError("stroke, binarize, mouse and refresh must be in [0, 1]")
        if self.elastic > 0 and self.elastic_sigma <= 0:
            raise ValueError("elastic_sigma must be > 0 when elastic is on")

    def to_dict(self) -> dict[str, float]:
        return asdict(self)


def augment_batch(x: torch.Tensor, generator: torch.Generator,
                  config: AugmentationConfig) -> torch.Tensor:
    """A randomly changed copy of a [B, 28, 28] batch of 0-255 pixels."""
    b, h, w = x.shape
    r = torch.rand(b, 8, generator=generator, device=x.device) * 2 - 1
    angle, zoom = r[:, 0] * math.radians(config.degrees), 1.0 + r[:, 1] * config.scale
    cos, sin, k = torch.cos(angle) / zoom, torch.sin(angle) / zoom, r[:, 4] * config.shear
    # grid_sample maps output to input coordinates in [-1, 1] (one pixel is 2/size):
    # rotation times shear [[1, k], [0, 1]], over the zoom, plus the shift.
    tx, ty = r[:, 2] * config.shift * 2 / w, r[:, 3] * config.shift * 2 / h
    theta = torch.stack([torch.stack([cos, cos * k - sin, tx], 1),
                         torch.stack([sin, sin * k + cos, ty], 1)], 1)
    gx, gy = affine_grid(theta, h, w)
    if config.elastic > 0:  # the digits are square: one field size for both axes
        noise = elastic_noise(b * 2, h, config.elastic_sigma, generator, x.device)
        gx, gy = displace(gx, gy, elastic_field(noise, h, config.elastic_sigma), config.elastic, w)
    out = resample(x, gx, gy)
    if config.stroke > 0:
        t = (r[:, 5] * config.stroke).view(b, 1, 1)
        thick, thin = max3x3(out), -max3x3(-out)
        out = out + t.clamp(min=0) * (thick - out) - t.clamp(max=0) * (thin - out)
    if config.binarize > 0:
        hard = ((r[:, 6] + 1) / 2 < config.binarize).view(b, 1, 1)
        out = torch.where(hard, binarize(out), out)
    if config.mouse > 0:
        chosen = ((r[:, 7] + 1) / 2 < config.mouse).nonzero().squeeze(1)
        out[chosen] = mouse_stroke(out[chosen])  # only those: a share of the work
    return out

