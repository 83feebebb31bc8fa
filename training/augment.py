"""Data augmentation of raw-pixel digit batches, on the device that trains.

    python -c "from training.augment import Augment; print(Augment())"

One random draw per digit, from the training generator, so a run is deterministic for
its seed. Every lever is a field of `Augment`; a field at 0 switches its lever off.
Each lever stands for a way real inputs differ from MNIST's writers (training/
evaluation.py measures the same classes on the test digits):

- affine: rotation, shear, scaling and shift, the classic small jitter;
- elastic: Simard, Steinkraus & Platt (2003): a random displacement field, white noise
  smoothed by a Gaussian of sigma pixels and scaled by alpha pixels: their alpha 34,
  sigma 4 by default, the very field of the elastic robustness class. The smoothing is
  two small matmuls with scipy's Gaussian filter as a matrix;
- stroke: thicker or thinner strokes, a blend towards a 3x3 grey dilation or erosion;
- binarize: hard-edged ink with no anti-aliasing, as a pen tablet draws;
- mouse: a thin, hard-edged stroke, as a mouse draws on a small canvas: the ink binarised,
  then eroded by a 3x3 cross (unless that leaves under 30 % of it), which also breaks
  the thinnest strokes apart. The same recipe as the mouse robustness class.
"""

from __future__ import annotations

import functools
import math
from dataclasses import asdict, dataclass

import numpy as np
import torch
import torch.nn.functional as F
from scipy import ndimage

from training.model import max3x3


@dataclass(frozen=True)
class Augment:
    degrees: float = 10.0  # rotation, uniform in +-degrees
    shear: float = 0.0  # horizontal shear, uniform in +-shear
    scale: float = 0.1  # zoom, uniform in 1 +- scale
    shift: float = 2.0  # translation, uniform in +-shift pixels on each axis
    elastic: float = 34.0  # elastic warp: Simard's alpha, pixels per unit of smoothed noise
    elastic_sigma: float = 4.0  # elastic warp: the smoothing Gaussian's sigma in pixels
    stroke: float = 0.0  # stroke-width jitter: uniform in +-stroke of a 3x3 dilation/erosion
    binarize: float = 0.0  # probability that a digit's ink is made hard-edged
    mouse: float = 0.1  # probability that a digit becomes a thin, hard mouse stroke

    def __post_init__(self) -> None:
        if min(asdict(self).values()) < 0:
            raise ValueError("augmentation levers must be >= 0")
        if max(self.stroke, self.binarize, self.mouse) > 1:
            raise ValueError("stroke, binarize and mouse must be in [0, 1]")
        if self.elastic > 0 and self.elastic_sigma <= 0:
            raise ValueError("elastic_sigma must be > 0 when elastic is on")

    def to_dict(self) -> dict[str, float]:
        return asdict(self)


@functools.lru_cache(maxsize=4)
def _centres(h: int, w: int, device: torch.device) -> torch.Tensor:
    """The sampling grid's homogeneous pixel centres [h*w, 3], affine_grid's, in [-1, 1]."""
    ys = (torch.arange(h, device=device) * 2 + 1) / h - 1
    xs = (torch.arange(w, device=device) * 2 + 1) / w - 1
    yy, xx = torch.meshgrid(ys, xs, indexing="ij")
    return torch.stack([xx.flatten(), yy.flatten(), torch.ones(h * w, device=device)], 1)


@functools.lru_cache(maxsize=4)
def _smoothing(n: int, sigma: float, device: torch.device) -> torch.Tensor:
    """scipy's 1-D Gaussian filter (reflecting borders) as an [n, n] matrix G: G @ U @ G.T
    is gaussian_filter(U, sigma) for an [n, n] U: two small matmuls per field."""
    return torch.as_tensor(ndimage.gaussian_filter1d(np.eye(n), sigma, axis=0),
                           dtype=torch.float32, device=device)


def augment(x: torch.Tensor, generator: torch.Generator, aug: Augment) -> torch.Tensor:
    """A randomly changed copy of a [B, 28, 28] batch of 0-255 pixels."""
    b, h, w = x.shape
    centres = _centres(h, w, x.device)
    r = torch.rand(b, 8, generator=generator, device=x.device) * 2 - 1
    angle, zoom = r[:, 0] * math.radians(aug.degrees), 1.0 + r[:, 1] * aug.scale
    cos, sin, k = torch.cos(angle) / zoom, torch.sin(angle) / zoom, r[:, 4] * aug.shear
    # grid_sample maps output to input coordinates in [-1, 1] (one pixel is 2/size):
    # rotation times shear [[1, k], [0, 1]], over the zoom, plus the shift.
    tx, ty = r[:, 2] * aug.shift * 2 / w, r[:, 3] * aug.shift * 2 / h
    theta = torch.stack([torch.stack([cos, cos * k - sin, tx], 1),
                         torch.stack([sin, sin * k + cos, ty], 1)], 1)
    grid = centres @ theta.transpose(1, 2)  # [B, h*w, 2]
    if aug.elastic > 0:
        g = _smoothing(h, aug.elastic_sigma, x.device)  # square digits: one matrix
        noise = torch.rand(b * 2, h, w, generator=generator, device=x.device) * 2 - 1
        field = (g @ noise @ g.T).view(b, 2, h * w).transpose(1, 2)  # pixels / alpha
        grid = grid + field * (aug.elastic * 2 / w)
    out = F.grid_sample(x.unsqueeze(1), grid.view(b, h, w, 2), align_corners=False)[:, 0]
    if aug.stroke > 0:
        t = (r[:, 5] * aug.stroke).view(b, 1, 1)
        thick, thin = max3x3(out), -max3x3(-out)
        out = out + t.clamp(min=0) * (thick - out) - t.clamp(max=0) * (thin - out)
    if aug.binarize > 0:
        hard = ((r[:, 6] + 1) / 2 < aug.binarize).view(b, 1, 1)
        out = torch.where(hard, (out > 127.5).to(out.dtype) * 255.0, out)
    if aug.mouse > 0:
        chosen = ((r[:, 7] + 1) / 2 < aug.mouse).nonzero().squeeze(1)
        out[chosen] = mouse_stroke(out[chosen])  # only those: a tenth of the work at 10 %
    return out


def mouse_stroke(x: torch.Tensor) -> torch.Tensor:
    """[B, H, W] digits as a thin mouse line: binarised at mid-grey, then eroded by a 3x3
    cross (a pixel stays ink if its four neighbours are ink), unless the erosion leaves
    under 30 % of the ink (then the binarised digit)."""
    h, w = x.shape[1:]
    ink = (x > 127.5).to(x.dtype) * 255.0
    p = F.pad(ink, (1, 1, 1, 1), value=0.0)
    eroded = torch.minimum(torch.minimum(ink, p[:, :h, 1:w + 1]), torch.minimum(
        torch.minimum(p[:, 2:, 1:w + 1], p[:, 1:h + 1, :w]), p[:, 1:h + 1, 2:]))
    counts = (eroded > 0).sum(dim=(1, 2)).double(), (ink > 0).sum(dim=(1, 2)).double()
    kept = counts[0] >= 0.3 * counts[1]
    return torch.where(kept[:, None, None], eroded, ink)
