"""The image operations (training/imageops.py): the 3x3 maximum, stroke width,
thickening and deskewing."""

from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F

from training.imageops import affine_grid, deskew, max3x3, resample, stroke_width, thicken


def _shear(x: torch.Tensor, k: float) -> torch.Tensor:
    """x sheared horizontally by k (column += k * (row - centre)), bilinear."""
    h, w = x.shape[1:]
    theta = torch.tensor([[[1.0, k * h / w, 0.0], [0.0, 1.0, 0.0]]]).expand(len(x), 2, 3)
    grid = F.affine_grid(theta, [len(x), 1, h, w], align_corners=False)
    return F.grid_sample(x.unsqueeze(1), grid, align_corners=False).squeeze(1)


def test_deskew_removes_slant_and_centres_the_ink(test_digits):
    x = torch.as_tensor(test_digits[0][:32], dtype=torch.float32)

    def slant(images):
        rows = torch.arange(28.0)
        mass = images.sum((1, 2))
        cy = (images.sum(2) @ rows) / mass
        cx = (images.sum(1) @ rows) / mass
        dy, dx = rows[None] - cy[:, None], rows[None] - cx[:, None]
        mu11 = torch.einsum("bij,bi,bj->b", images, dy, dx) / mass
        return mu11 / (torch.einsum("bij,bi->b", images, dy * dy) / mass), cy, cx

    for images in (x, _shear(x, 0.4), _shear(x, -0.4)):
        before = slant(images)[0].abs().mean()
        after, cy, cx = slant(deskew(images))
        assert after.abs().mean() < 0.25 * before + 0.02  # the slant is (nearly) gone
        assert (cy - 13.5).abs().max() < 0.6 and (cx - 13.5).abs().max() < 0.6
    # Shearing the input changes little once deskewed: same digit, same place.
    a, b = deskew(x), deskew(_shear(x, 0.4))
    assert (a - b).abs().mean() < 0.35 * (x - _shear(x, 0.4)).abs().mean()


def test_deskew_of_a_blank_image_is_finite():
    assert torch.isfinite(deskew(torch.zeros(2, 28, 28))).all()


def test_max3x3_is_a_3x3_max_pool_both_ways_and_gives_the_min_twin():
    x = torch.rand(3, 28, 28) * 255
    pool = F.max_pool2d(x.unsqueeze(1), 3, stride=1, padding=1).squeeze(1)
    assert torch.equal(max3x3(x), pool) and torch.equal(max3x3(x, pooled=True), pool)
    assert torch.equal(-max3x3(-x), -F.max_pool2d(-x.unsqueeze(1), 3, 1, 1).squeeze(1))


def _bars(width: int, n: int = 2) -> torch.Tensor:
    x = torch.zeros(n, 28, 28)
    x[:, 12:12 + width, 4:24] = 255.0  # a 20-px stroke `width` pixels wide
    return x


@pytest.mark.parametrize("width", [1, 2, 3, 4])
def test_stroke_width_measures_the_width_of_a_stroke(width):
    # 2 * ink / outline of a 20 x w bar is 20w / (20 + w): within 17 % of w up to 4 px.
    assert stroke_width(_bars(width)) == pytest.approx(torch.full((2,), float(width)), rel=0.17)


def test_thicken_grows_thin_strokes_and_leaves_thick_ones_exactly(test_digits):
    thick = _bars(4)
    assert torch.equal(thicken(thick, 2.0), thick)
    thin = torch.as_tensor(test_digits[0][:64], dtype=torch.float32)
    thin = -torch.nn.functional.max_pool2d(-thin.unsqueeze(1), 2, 1).squeeze(1)  # eroded
    thin = torch.nn.functional.pad(thin, (0, 1, 0, 1))
    before, after = stroke_width(thin), stroke_width(thicken(thin, 2.0))
    assert before.mean() < 1.5 and after.mean() > 1.85
    assert torch.equal(thicken(thin, 2.0), thicken(thin, 2.0, pooled=True))
    assert torch.isfinite(thicken(torch.zeros(2, 28, 28), 2.0)).all()


def test_deskew_moments_of_another_image_move_the_ink_by_its_centre():
    x = torch.zeros(1, 28, 28)
    x[0, 10:18, 12:16] = 255.0
    shifted = torch.roll(x, shifts=3, dims=2)  # its centre of mass 3 px to the right
    assert torch.equal(deskew(x, moments_of=x), deskew(x))
    moved = deskew(x, moments_of=shifted)
    cols = torch.arange(28.0)
    assert (moved.sum(1) @ cols / moved.sum()).item() == pytest.approx(
        (deskew(x).sum(1) @ cols / deskew(x).sum()).item() - 3, abs=0.2)


def test_affine_grid_is_torchs():
    theta = torch.randn(5, 2, 3, generator=torch.Generator().manual_seed(0))
    gx, gy = affine_grid(theta, 28, 28)
    ref = F.affine_grid(theta, [5, 1, 28, 28], align_corners=False).view(5, 784, 2)
    assert torch.allclose(torch.stack([gx, gy], -1), ref, atol=1e-5)


def test_resampling_at_the_identity_grid_gives_the_image_back(test_digits):
    x = torch.as_tensor(test_digits[0][:8], dtype=torch.float32)
    gx, gy = affine_grid(torch.tensor([[[1.0, 0, 0], [0, 1.0, 0]]]).expand(8, 2, 3), 28, 28)
    assert torch.allclose(resample(x, gx, gy), x, atol=1e-3)
    moved = resample(x, gx + 2 / 28, gy)  # one pixel to the right in the input: left here
    assert torch.allclose(moved[:, :, :-1], x[:, :, 1:], atol=1e-3)
