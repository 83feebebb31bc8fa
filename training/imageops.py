"""Image operations on [B, H, W] batches of raw 0-255 pixels: torch only, no I/O.

    python -c "from training.imageops import stroke_width; help(stroke_width)"

The model normalises the hand with them inside its graph (thicken, deskew), so each
exports to ONNX. The sampling grids (pixel_centres, affine_grid, resample) move pixels
for the augmentation and the perturbations (training/perturbations.py).
"""

from __future__ import annotations

import functools

import torch
import torch.nn.functional as F


def max3x3(x: torch.Tensor, pooled: bool = False) -> torch.Tensor:
    """The 3x3 maximum filter of [B, H, W] (a grey dilation), as a 3x3 max-pool with
    stride 1 computes it. pooled=False takes the maximum of three shifted rows, then of
    three shifted columns (a maximum is exact in any order, so the same numbers), many
    times faster than max_pool2d for 28x28 images on a CPU; pooled=True is one ONNX
    MaxPool node instead of about ten small ones, each a fixed cost per request in
    onnxruntime (timings in docs/journal/training.md)."""
    if pooled:
        return F.max_pool2d(x.unsqueeze(1), 3, stride=1, padding=1).squeeze(1)
    h, w = x.shape[1:]
    p = F.pad(x, (0, 0, 1, 1), value=float("-inf"))
    rows = torch.maximum(torch.maximum(p[:, :h], p[:, 1:h + 1]), p[:, 2:])
    p = F.pad(rows, (1, 1), value=float("-inf"))
    return torch.maximum(torch.maximum(p[:, :, :w], p[:, :, 1:w + 1]), p[:, :, 2:])


def stroke_width(x: torch.Tensor) -> torch.Tensor:
    """Mean stroke width in pixels of each [B, H, W] image: a stroke of length L and width
    w has ink L*w and an outline of about 2L, so w = 2 * ink / outline (the outline as
    the image's total variation). MNIST's test digits are about 2 px wide; a 2x2 grey
    erosion or a thin mouse stroke makes them markedly thinner (the distribution is in
    docs/journal/training.md)."""
    ink = x.sum(dim=(1, 2))
    outline = (x[:, 1:] - x[:, :-1]).abs().sum(dim=(1, 2)) \
        + (x[:, :, 1:] - x[:, :, :-1]).abs().sum(dim=(1, 2))
    return 2 * ink / outline.clamp(min=1e-3)


def thicken(x: torch.Tensor, target: float, pooled: bool = False,
            passes: int = 2) -> torch.Tensor:
    """Grow strokes thinner than `target` pixels towards it: each pass blends each image
    towards its 3x3 dilation (which adds ~2 px of width) by the share it lacks. Thick
    strokes are left alone: thinning would break the thin parts of a digit. Two passes
    bring eroded test digits to the target width (docs/journal/training.md)."""
    for _ in range(passes):
        lack = ((target - stroke_width(x)) / 2).clamp(0.0, 1.0)[:, None, None]
        x = x + lack * (max3x3(x, pooled) - x)
    return x


def deskew(x: torch.Tensor, moments_of: torch.Tensor | None = None) -> torch.Tensor:
    """Shear each [B, H, W] image so that its ink has no slant, and move its centre of
    mass to the centre: the classic MNIST deskewing (image moments: the shear is
    mu11 / mu02), as tensor operations that export to ONNX (a matmul grid, GridSample).
    The moments are those of `moments_of` (default: x itself)."""
    b, h, w = x.shape
    m = x if moments_of is None else moments_of
    rows = torch.arange(h, dtype=x.dtype, device=x.device)
    cols = torch.arange(w, dtype=x.dtype, device=x.device)
    row_mass = m.sum(2)  # [B, H]
    mass = row_mass.sum(1).clamp(min=1e-3)
    cy = (row_mass @ rows) / mass
    cx = (m.sum(1) @ cols) / mass
    dy = rows[None, :] - cy[:, None]  # [B, H]
    dx = cols[None, :] - cx[:, None]  # [B, W]
    # dy.T m dx and sum_i row_mass_i dy_i^2: several times faster than einsum on a CPU.
    mu11 = (dy[:, None, :] @ m @ dx[:, :, None]).view(b) / mass
    mu02 = (row_mass * dy * dy).sum(1) / mass
    alpha = (mu11 / mu02.clamp(min=1e-3)).clamp(-1.0, 1.0)
    # grid_sample coordinates (align_corners=False): u = (col - (w-1)/2) / (w/2).
    # Output (u, v) samples input u + alpha * v' + tx, v + ty, where v' is v in the
    # width's units, and (tx, ty) is the centre of mass in the same coordinates.
    ys = (rows - (h - 1) / 2) / (h / 2)
    xs = (cols - (w - 1) / 2) / (w / 2)
    tx = ((cx - (w - 1) / 2) / (w / 2))[:, None, None]
    ty = ((cy - (h - 1) / 2) / (h / 2))[:, None, None]
    gy = ys[None, :, None] + ty + torch.zeros(1, 1, w, dtype=x.dtype, device=x.device)
    gx = xs[None, None, :] + alpha[:, None, None] * ys[None, :, None] * (h / w) + tx
    grid = torch.stack([gx, gy], dim=-1)  # [B, H, W, 2]
    return F.grid_sample(x.unsqueeze(1), grid, align_corners=False).squeeze(1)


@functools.lru_cache(maxsize=4)
def pixel_centres(h: int, w: int, device: torch.device) -> tuple[torch.Tensor, torch.Tensor]:
    """The pixel centres x and y of an h x w image, each [1, h*w], in grid_sample's [-1, 1]
    coordinates (align_corners=False), as F.affine_grid lays them out."""
    ys = (torch.arange(h, device=device) * 2 + 1) / h - 1
    xs = (torch.arange(w, device=device) * 2 + 1) / w - 1
    yy, xx = torch.meshgrid(ys, xs, indexing="ij")
    return xx.reshape(1, -1), yy.reshape(1, -1)


def affine_grid(theta: torch.Tensor, h: int, w: int) -> tuple[torch.Tensor, torch.Tensor]:
    """F.affine_grid(theta, (B, 1, h, w), align_corners=False) as its x and y planes, each
    [B, h*w]. Why: affine_grid's batched matmul (an inner dimension of 3), or any
    arithmetic on a trailing axis of 2, is several times slower on a CPU than two
    multiply-adds per plane (timings in docs/journal/training.md)."""
    cx, cy = pixel_centres(h, w, theta.device)
    gx = theta[:, 0, 0, None] * cx + theta[:, 0, 1, None] * cy + theta[:, 0, 2, None]
    gy = theta[:, 1, 0, None] * cx + theta[:, 1, 1, None] * cy + theta[:, 1, 2, None]
    return gx, gy


def resample(x: torch.Tensor, gx: torch.Tensor, gy: torch.Tensor) -> torch.Tensor:
    """[B, H, W] images sampled bilinearly at the grid (gx, gy), each [B, H*W] in [-1, 1]
    coordinates; outside the image is 0 (no ink)."""
    b, h, w = x.shape
    grid = torch.stack([gx, gy], dim=-1).view(b, h, w, 2)
    return F.grid_sample(x.unsqueeze(1), grid, align_corners=False)[:, 0]
