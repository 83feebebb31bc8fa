"""The perturbations shared by the augmentation and the robustness table
(training/perturbations.py): Simard's elastic field and the thin mouse stroke."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from scipy import ndimage

from training.perturbations import (
    ELASTIC_ALPHA,
    ELASTIC_SIGMA,
    elastic_field,
    elastic_noise,
    elastic_warp,
    mouse_stroke,
    noise_size,
)


def test_the_elastic_field_is_simards_smoothed_noise():
    """The low-rank draw gives Simard's field (uniform noise through scipy's Gaussian
    filter): the same RMS in the middle and at the reflecting border, the same correlation
    4 px apart, the same tails (kurtosis)."""
    n = 3000
    rng = np.random.default_rng(0)
    scipy_fields = np.stack([ndimage.gaussian_filter(rng.uniform(-1, 1, (28, 28)), 4.0)
                             for _ in range(n)])
    noise = elastic_noise(n, 28, 4.0, torch.Generator().manual_seed(0), torch.device("cpu"))
    ours = elastic_field(noise, 28, 4.0).view(n, 28, 28).double()

    def stats(f: np.ndarray) -> list[float]:
        rms = np.sqrt((f ** 2).mean(0))
        corr = (f[:, :, :-4] * f[:, :, 4:]).mean() / (f ** 2).mean()
        kurtosis = ((f / f.std()) ** 4).mean()
        return [rms[10:18, 10:18].mean(), rms[0, 0], corr, kurtosis]

    assert stats(ours.numpy()) == pytest.approx(stats(scipy_fields), rel=0.04)
    # and it is random per digit, not one field for all
    assert ours[0].sub(ours[1]).abs().max() > 1e-3


def test_the_elastic_warp_moves_ink_and_no_noise_leaves_it_in_place(test_digits):
    x = torch.as_tensor(test_digits[0][:32], dtype=torch.float32)
    size = noise_size(28, ELASTIC_SIGMA)
    assert torch.allclose(elastic_warp(x, torch.zeros(64, size)), x, atol=1e-3)
    noise = torch.randn(64, size, generator=torch.Generator().manual_seed(0))
    warped = elastic_warp(x, noise, ELASTIC_ALPHA, ELASTIC_SIGMA)
    assert (warped - x).abs().mean() > 1.0
    assert warped.sum().item() == pytest.approx(x.sum().item(), rel=0.15)  # ink moved


def _scipy_mouse(images: np.ndarray) -> np.ndarray:
    """The mouse recipe in scipy's morphology: ink above mid-grey, a binary erosion by
    the 3x3 cross, unless it keeps under 30 % of the ink."""
    ink = images > 127.5
    thin = ndimage.binary_erosion(ink, ndimage.generate_binary_structure(2, 1)[None])
    kept = thin.sum((1, 2)) >= 0.3 * ink.sum((1, 2))
    return np.where(kept[:, None, None], thin, ink).astype(np.float32) * 255


def test_mouse_stroke_is_the_binary_erosion_recipe(test_digits):
    x = test_digits[0][:300].astype(np.float32)
    assert np.array_equal(mouse_stroke(torch.as_tensor(x)).numpy(), _scipy_mouse(x))
    # and on grey values between the whole numbers, as the augmentation feeds it
    rng = np.random.default_rng(0)
    warped = np.clip(x + rng.uniform(-0.5, 0.5, x.shape).astype(np.float32), 0, 255)
    assert np.array_equal(mouse_stroke(torch.as_tensor(warped)).numpy(), _scipy_mouse(warped))
