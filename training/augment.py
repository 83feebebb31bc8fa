"""Data augmentation of raw-pixel digit batches, on the device that trains.

    python -c "from training.augment import Augment; print(Augment())"

One random draw per digit, from the training generator, so a run is deterministic for
its seed. Every lever is a field of `Augment`; a field at 0 switches its lever off.
Each lever stands for a way real inputs differ from MNIST's writers (training/
evaluation.py measures the same classes on the test digits):

- affine: rotation, shear, scaling and shift, the classic small jitter;
- elastic: Simard, Steinkraus & Platt (2003): a random displacement field, white noise
  smoothed by a Gaussian of sigma pixels and scaled by alpha pixels: their alpha 34,
  sigma 4 by default, the field of the elastic robustness class. Drawn in the smoothing's
  own low-rank basis (see _field_basis): 98 normal numbers a digit instead of 1,568
  uniform ones, the same covariance;
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

from training.imageops import max3x3


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
def _centres(h: int, w: int, device: torch.device) -> tuple[torch.Tensor, torch.Tensor]:
    """The sampling grid's pixel centres x and y, each [1, h*w], affine_grid's, in [-1, 1]."""
    ys = (torch.arange(h, device=device) * 2 + 1) / h - 1
    xs = (torch.arange(w, device=device) * 2 + 1) / w - 1
    yy, xx = torch.meshgrid(ys, xs, indexing="ij")
    return xx.reshape(1, -1), yy.reshape(1, -1)


def affine_grid(theta: torch.Tensor, h: int, w: int) -> tuple[torch.Tensor, torch.Tensor]:
    """F.affine_grid(theta, (B, 1, h, w), align_corners=False) as its x and y planes, each
    [B, h*w]. Why: affine_grid's batched matmul (an inner dimension of 3), or any
    arithmetic on a trailing axis of 2, cost 1.2-1.6 ms a batch of 128 on a 2-core CPU;
    two multiply-adds per plane cost 0.15-0.19 ms."""
    cx, cy = _centres(h, w, theta.device)
    gx = theta[:, 0, 0, None] * cx + theta[:, 0, 1, None] * cy + theta[:, 0, 2, None]
    gy = theta[:, 1, 0, None] * cx + theta[:, 1, 1, None] * cy + theta[:, 1, 2, None]
    return gx, gy


# The share of the field's variance that the low-rank draw keeps (sigma 4: 7 of 28 axes).
FIELD_VARIANCE_KEPT = 0.9999


@functools.lru_cache(maxsize=4)
def _field_basis(n: int, sigma: float, device: torch.device) -> torch.Tensor:
    """[k*k, n*n]: the flat fields B[:, i] B[:, j].T of a basis B [n, k] such that
    B @ Z @ B.T, Z a [k, k] standard normal draw, has the covariance of Simard's field
    gaussian_filter(U, sigma), U uniform in [-1, 1] on [n, n].

    Why: scipy's 1-D filter (reflecting borders) is a matrix G and the field is G U G.T,
    whose covariance is (G G.T kron G G.T) / 3. A Gaussian of sigma 4 keeps few of G G.T's
    eigenvectors (its eigenvalues fall as exp(-(pi k sigma / n)^2)), so the field lives
    in a k x k space: drawing 2 k^2 = 98 normals a digit instead of 2 n^2 = 1,568
    uniforms, and one matmul, took the warp from ~5 ms to 0.6-0.7 ms a batch on a 2-core
    CPU. The noise is Gaussian rather than a sum of uniforms; smoothed over hundreds of
    them, both give the same field: RMS, 4-px correlation and kurtosis within 1 % (tests)."""
    g = ndimage.gaussian_filter1d(np.eye(n), sigma, axis=0)
    lam, vec = np.linalg.eigh(g @ g.T)
    lam, vec = lam[::-1].clip(min=0), vec[:, ::-1]
    k = int(np.searchsorted(np.cumsum(lam) / lam.sum(), math.sqrt(FIELD_VARIANCE_KEPT))) + 1
    basis = vec[:, :k] * np.sqrt(lam[:k]) / 3 ** 0.25  # uniform(-1, 1) has variance 1/3
    flat = np.einsum("ai,bj->ijab", basis, basis).reshape(k * k, n * n)
    return torch.as_tensor(flat, dtype=torch.float32, device=device)


def elastic_field(b: int, n: int, sigma: float, generator: torch.Generator,
                  device: torch.device) -> torch.Tensor:
    """b random fields, flat [b, n*n], in pixels per unit of alpha (see _field_basis)."""
    basis = _field_basis(n, sigma, device)
    z = torch.randn(b, basis.shape[0], generator=generator, device=device)
    return z @ basis


def augment(x: torch.Tensor, generator: torch.Generator, aug: Augment) -> torch.Tensor:
    """A randomly changed copy of a [B, 28, 28] batch of 0-255 pixels."""
    b, h, w = x.shape
    r = torch.rand(b, 8, generator=generator, device=x.device) * 2 - 1
    angle, zoom = r[:, 0] * math.radians(aug.degrees), 1.0 + r[:, 1] * aug.scale
    cos, sin, k = torch.cos(angle) / zoom, torch.sin(angle) / zoom, r[:, 4] * aug.shear
    # grid_sample maps output to input coordinates in [-1, 1] (one pixel is 2/size):
    # rotation times shear [[1, k], [0, 1]], over the zoom, plus the shift.
    tx, ty = r[:, 2] * aug.shift * 2 / w, r[:, 3] * aug.shift * 2 / h
    theta = torch.stack([torch.stack([cos, cos * k - sin, tx], 1),
                         torch.stack([sin, sin * k + cos, ty], 1)], 1)
    gx, gy = affine_grid(theta, h, w)
    if aug.elastic > 0:
        field = elastic_field(b * 2, h, aug.elastic_sigma, generator, x.device)  # square
        field = field.view(b, 2, h * w)
        scale = aug.elastic * 2 / w  # pixels -> grid_sample's [-1, 1] units
        gx, gy = gx.add_(field[:, 0], alpha=scale), gy.add_(field[:, 1], alpha=scale)
    grid = torch.stack([gx, gy], dim=-1).view(b, h, w, 2)
    out = F.grid_sample(x.unsqueeze(1), grid, align_corners=False)[:, 0]
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
