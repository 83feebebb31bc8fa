"""The perturbations that both train the model and test it: Simard's elastic warp and the
thin mouse stroke, each defined once, in torch, on [B, H, W] batches of 0-255 pixels.

    python -c "from training import perturbations; help(perturbations)"

The augmentation (training/augmentation.py) applies them to a share of the training digits,
drawing from the training generator; the robustness table (training/evaluation.py)
applies them to every test digit, drawing from its own seeded generator. No I/O.

- elastic: Simard, Steinkraus & Platt (2003): a random displacement field, white noise
  smoothed by a Gaussian of sigma pixels and scaled by alpha pixels. Drawn in the
  smoothing's own low-rank basis (see field_basis): the same covariance as smoothing
  uniform noise pixel by pixel, from a few dozen normal numbers a digit.
- mouse stroke: a thin, hard-edged stroke, as a mouse draws on a small canvas: the ink
  binarised at mid-grey, then eroded by a 3x3 cross unless that leaves too little of it.
"""

from __future__ import annotations

import functools
import math

import numpy as np
import torch
import torch.nn.functional as F
from scipy import ndimage

from training.imageops import pixel_centres, resample

# Simard et al.'s field: alpha pixels per unit of smoothed noise, a Gaussian of sigma pixels.
ELASTIC_ALPHA, ELASTIC_SIGMA = 34.0, 4.0
# A pixel brighter than mid-grey is ink: the threshold of every hard-edged (binarised) digit.
INK_THRESHOLD = 127.5
# The mouse stroke keeps the eroded digit only if it keeps this share of the ink: a thinner
# digit would lose whole strokes, so it stays binarised but not eroded.
MOUSE_MIN_KEPT = 0.3
# The share of the field's variance that the low-rank draw keeps (sigma 4: 7 of 28 axes).
FIELD_VARIANCE_KEPT = 0.9999


@functools.lru_cache(maxsize=4)
def field_basis(n: int, sigma: float, device: torch.device) -> torch.Tensor:
    """[k*k, n*n]: the flat fields B[:, i] B[:, j].T of a basis B [n, k] such that
    B @ Z @ B.T, Z a [k, k] standard normal draw, has the covariance of Simard's field
    gaussian_filter(U, sigma), U uniform in [-1, 1] on [n, n].

    Why: scipy's 1-D filter (reflecting borders) is a matrix G and the field is G U G.T,
    whose covariance is (G G.T kron G G.T) / 3. A Gaussian of sigma 4 keeps few of G G.T's
    eigenvectors (its eigenvalues fall as exp(-(pi k sigma / n)^2)), so the field lives
    in a k x k space: 2 k^2 normal numbers a digit instead of 2 n^2 uniform ones, and one
    matmul, several times faster than filtering (timings in docs/journal/training.md).
    The noise is Gaussian rather than a sum of uniforms; smoothed over hundreds of them,
    both give the same field: RMS, correlation and kurtosis alike (tests)."""
    g = ndimage.gaussian_filter1d(np.eye(n), sigma, axis=0)
    lam, vec = np.linalg.eigh(g @ g.T)
    lam, vec = lam[::-1].clip(min=0), vec[:, ::-1]
    k = int(np.searchsorted(np.cumsum(lam) / lam.sum(), math.sqrt(FIELD_VARIANCE_KEPT))) + 1
    basis = vec[:, :k] * np.sqrt(lam[:k]) / 3 ** 0.25  # uniform(-1, 1) has variance 1/3
    flat = np.einsum("ai,bj->ijab", basis, basis).reshape(k * k, n * n)
    return torch.as_tensor(flat, dtype=torch.float32, device=device)


def noise_size(n: int, sigma: float) -> int:
    """How many standard normal numbers one field of an n x n image takes."""
    return field_basis(n, sigma, torch.device("cpu")).shape[0]


def elastic_field(noise: torch.Tensor, n: int, sigma: float) -> torch.Tensor:
    """Fields, flat [b, n*n], in pixels per unit of alpha, from standard normal noise
    [b, noise_size(n, sigma)]: one row a field (two a digit: x, then y)."""
    return noise @ field_basis(n, sigma, noise.device)


def elastic_noise(b: int, n: int, sigma: float, generator: torch.Generator,
                  device: torch.device) -> torch.Tensor:
    """The standard normal noise of b fields, drawn from a torch generator."""
    return torch.randn(b, noise_size(n, sigma), generator=generator, device=device)


def displace(gx: torch.Tensor, gy: torch.Tensor, fields: torch.Tensor, alpha: float,
             width: int) -> tuple[torch.Tensor, torch.Tensor]:
    """Move the sampling grid planes gx, gy ([B, H*W], grid_sample's [-1, 1] units, square
    images `width` wide) in place by alpha times the fields [2B, H*W] (x, then y, for each
    image)."""
    fields = fields.view(len(gx), 2, gx.shape[1])
    scale = alpha * 2 / width  # pixels -> grid_sample's [-1, 1] units
    return gx.add_(fields[:, 0], alpha=scale), gy.add_(fields[:, 1], alpha=scale)


def elastic_warp(x: torch.Tensor, noise: torch.Tensor, alpha: float = ELASTIC_ALPHA,
                 sigma: float = ELASTIC_SIGMA) -> torch.Tensor:
    """[B, N, N] images warped by the fields of `noise` [2B, noise_size(N, sigma)]."""
    b, h, w = x.shape
    cx, cy = pixel_centres(h, w, x.device)
    gx, gy = displace(cx.expand(b, -1).clone(), cy.expand(b, -1).clone(),
                      elastic_field(noise, h, sigma), alpha, w)
    return resample(x, gx, gy)


def binarize(x: torch.Tensor) -> torch.Tensor:
    """Hard-edged ink: 255 where a pixel is brighter than mid-grey, 0 elsewhere."""
    return (x > INK_THRESHOLD).to(x.dtype) * 255.0


def mouse_stroke(x: torch.Tensor) -> torch.Tensor:
    """[B, H, W] digits as a thin mouse line: binarised at mid-grey, then eroded by a 3x3
    cross (a pixel stays ink if its four neighbours are ink), unless the erosion leaves
    under MOUSE_MIN_KEPT of the ink (then the binarised digit)."""
    h, w = x.shape[1:]
    ink = binarize(x)
    p = F.pad(ink, (1, 1, 1, 1), value=0.0)
    eroded = torch.minimum(torch.minimum(ink, p[:, :h, 1:w + 1]), torch.minimum(
        torch.minimum(p[:, 2:, 1:w + 1], p[:, 1:h + 1, :w]), p[:, 1:h + 1, 2:]))
    counts = (eroded > 0).sum(dim=(1, 2)).double(), (ink > 0).sum(dim=(1, 2)).double()
    kept = counts[0] >= MOUSE_MIN_KEPT * counts[1]
    return torch.where(kept[:, None, None], eroded, ink)
