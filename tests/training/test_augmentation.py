"""The augmentation levers (training/augmentation.py): each changes digits the way it says."""

from __future__ import annotations

from dataclasses import replace

import pytest
import torch

from training.augmentation import AugmentationConfig, augment_batch
from training.perturbations import elastic_noise, elastic_warp

# Every lever off: the identity.
OFF = AugmentationConfig(degrees=0, scale=0, shift=0, elastic=0, mouse=0)


def _digits(test_digits, n=64) -> torch.Tensor:
    return torch.as_tensor(test_digits[0][:n], dtype=torch.float32)


def _gen() -> torch.Generator:
    return torch.Generator().manual_seed(0)


def test_the_affine_jitter_keeps_shape_range_and_moves_pixels():
    x = torch.zeros(4, 28, 28)
    x[:, 10:18, 12:16] = 255.0
    y = augment_batch(x, _gen(), AugmentationConfig(elastic=0))
    assert y.shape == x.shape and y.min() >= 0 and y.max() <= 255.0 + 1e-3
    assert not torch.allclose(x, y)
    assert y.sum().item() == pytest.approx(x.sum().item(), rel=0.3)  # ink roughly preserved


def test_all_levers_off_is_the_identity(test_digits):
    x = _digits(test_digits)
    assert torch.allclose(augment_batch(x, _gen(), OFF), x, atol=1e-3)


def test_a_run_is_deterministic_for_its_seed(test_digits):
    x = _digits(test_digits)
    heavy = AugmentationConfig(elastic=34, stroke=0.5, shear=0.3, binarize=0.5)
    assert torch.equal(augment_batch(x, _gen(), heavy), augment_batch(x, _gen(), heavy))


@pytest.mark.parametrize("lever", [{"elastic": 34.0}, {"shear": 0.3}, {"stroke": 0.5}])
def test_each_lever_changes_the_digits_but_keeps_them_digits(test_digits, lever):
    x = _digits(test_digits)
    plain, changed = augment_batch(x, _gen(), OFF), augment_batch(x, _gen(), replace(OFF, **lever))
    assert (changed - plain).abs().mean() > 1.0
    ratio = changed.sum(dim=(1, 2)) / plain.sum(dim=(1, 2))
    assert ratio.min() > 0.5 and ratio.max() < 2.0  # ink moved, thickened or thinned


def test_stroke_jitter_thickens_some_digits_and_thins_others(test_digits):
    x = _digits(test_digits)
    ratio = augment_batch(x, _gen(), replace(OFF, stroke=1.0)).sum(
        dim=(1, 2)) / x.sum(dim=(1, 2))
    assert ratio.min() < 0.8 and ratio.max() > 1.2


def test_binarize_makes_hard_edged_ink_for_its_share_of_digits(test_digits):
    x = _digits(test_digits, 256)
    out = augment_batch(x, _gen(), replace(OFF, binarize=0.5))
    hard = ((out == 0) | (out == 255)).flatten(1).all(1)
    assert 0.35 < hard.float().mean() < 0.65
    always = augment_batch(x, _gen(), replace(OFF, binarize=1.0))
    assert set(always.unique().tolist()) <= {0.0, 255.0}


def test_the_elastic_warp_moves_ink_by_about_its_alpha(test_digits):
    """Simard's alpha 34, sigma 4 displaces pixels by ~1.4 px (RMS); alpha 17 by half."""
    x = torch.zeros(256, 28, 28)
    x[:, :, 14] = 255.0  # a vertical line: its horizontal displacement is visible
    cols = torch.arange(28.0)

    def rms_shift(alpha: float) -> float:
        y = augment_batch(x, _gen(), replace(OFF, elastic=alpha))
        centre = (y * cols).sum(2) / y.sum(2).clamp(min=1e-6)  # per row
        rows = y.sum(2) > 100  # rows where the line is whole
        return float(((centre - 14)[rows] ** 2).mean().sqrt())

    assert 0.8 < rms_shift(34.0) < 2.2
    assert rms_shift(17.0) == pytest.approx(rms_shift(34.0) / 2, rel=0.25)


def test_the_mouse_lever_thins_its_share_of_digits_to_hard_lines(test_digits):
    x = _digits(test_digits, 256)
    out = augment_batch(x, _gen(), replace(OFF, mouse=0.5))
    hard = ((out == 0) | (out == 255)).flatten(1).all(1)
    assert 0.35 < hard.float().mean() < 0.65
    assert out[hard].sum() < 0.8 * x[hard].sum()  # thinner than the digits they were
    assert torch.allclose(out[~hard], x[~hard], atol=1e-3)  # the others untouched


def test_levers_are_validated():
    with pytest.raises(ValueError):
        AugmentationConfig(elastic=-1)
    with pytest.raises(ValueError):
        AugmentationConfig(binarize=1.5)
    with pytest.raises(ValueError, match="mouse"):
        AugmentationConfig(mouse=2)
    with pytest.raises(ValueError, match="elastic_sigma"):
        AugmentationConfig(elastic=34, elastic_sigma=0)
    assert AugmentationConfig(elastic=0, elastic_sigma=0).elastic == 0  # off needs no sigma


def test_the_elastic_lever_is_the_robustness_class_warp(test_digits):
    """With every other lever off, the augmentation's elastic warp is the one the
    robustness table applies (training/perturbations.py elastic_warp), draw for draw."""
    x = _digits(test_digits)
    generator = _gen()
    torch.rand(len(x), 8, generator=generator)  # the augmentation's per-digit draws
    noise = elastic_noise(len(x) * 2, 28, 4.0, generator, x.device)
    warped = augment_batch(x, _gen(), replace(OFF, elastic=34.0))
    assert torch.equal(warped, elastic_warp(x, noise, 34.0, 4.0))
