from __future__ import annotations

import pytest
import torch

from training.model import MLP, MLPConfig


@pytest.mark.parametrize("activation", ["relu", "gelu", "tanh", "sigmoid"])
def test_mlp_maps_raw_pixels_to_ten_logits(activation):
    model = MLP(MLPConfig(hidden_sizes=(32, 16), activation=activation)).eval()
    out = model(torch.randint(0, 256, (5, 28, 28)).float())
    assert out.shape == (5, 10) and torch.isfinite(out).all()


def test_normalisation_lives_in_the_model():
    model = MLP(MLPConfig(hidden_sizes=(8,), dropout=0.0))
    x = torch.full((1, 28, 28), 255.0)
    first = model.net[1]
    seen = {}
    first.register_forward_hook(lambda m, i, o: seen.update(x=i[0]))
    model(x)
    assert torch.allclose(seen["x"], torch.full((1, 784), (1 - 0.1307) / 0.3081), atol=1e-5)


def test_config_rejects_unknown_activation():
    with pytest.raises(ValueError, match="activation"):
        MLPConfig(activation="swish")


def _shear(x: torch.Tensor, k: float) -> torch.Tensor:
    """x sheared horizontally by k (column += k * (row - centre)), bilinear."""
    import torch.nn.functional as F

    h, w = x.shape[1:]
    theta = torch.tensor([[[1.0, k * h / w, 0.0], [0.0, 1.0, 0.0]]]).expand(len(x), 2, 3)
    grid = F.affine_grid(theta, [len(x), 1, h, w], align_corners=False)
    return F.grid_sample(x.unsqueeze(1), grid, align_corners=False).squeeze(1)


def test_deskew_removes_slant_and_centres_the_ink(test_digits):
    from training.model import deskew

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
    from training.model import deskew

    assert torch.isfinite(deskew(torch.zeros(2, 28, 28))).all()


def test_temperature_scales_logits_but_never_the_prediction():
    model = MLP(MLPConfig(hidden_sizes=(16,), dropout=0.0)).eval()
    x = torch.randint(0, 256, (8, 28, 28)).float()
    before = model(x)
    model.temperature.fill_(2.0)
    assert torch.allclose(model(x), before / 2) and torch.equal(model(x).argmax(1),
                                                                before.argmax(1))


def test_max3x3_is_a_3x3_max_pool_both_ways_and_gives_the_min_twin():
    import torch.nn.functional as F

    from training.model import max3x3

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
    from training.model import stroke_width

    # 2 * ink / outline of a 20 x w bar is 20w / (20 + w): within 17 % of w up to 4 px.
    assert stroke_width(_bars(width)) == pytest.approx(torch.full((2,), float(width)), rel=0.17)


def test_thicken_grows_thin_strokes_and_leaves_thick_ones_exactly(test_digits):
    from training.model import stroke_width, thicken

    thick = _bars(4)
    assert torch.equal(thicken(thick, 2.0), thick)
    thin = torch.as_tensor(test_digits[0][:64], dtype=torch.float32)
    thin = -torch.nn.functional.max_pool2d(-thin.unsqueeze(1), 2, 1).squeeze(1)  # eroded
    thin = torch.nn.functional.pad(thin, (0, 1, 0, 1))
    before, after = stroke_width(thin), stroke_width(thicken(thin, 2.0))
    assert before.mean() < 1.5 and after.mean() > 1.85
    assert torch.equal(thicken(thin, 2.0), thicken(thin, 2.0, pooled=True))
    assert torch.isfinite(thicken(torch.zeros(2, 28, 28), 2.0)).all()


def test_training_and_eval_forward_agree_without_dropout(test_digits):
    model = MLP(MLPConfig(hidden_sizes=(32,), dropout=0.0))
    x = torch.as_tensor(test_digits[0][:16], dtype=torch.float32)
    assert torch.allclose(model.train()(x), model.eval()(x), atol=1e-5)


def test_stroke_width_is_validated():
    with pytest.raises(ValueError, match="stroke_width"):
        MLPConfig(stroke_width=-1)


def test_the_slant_is_measured_on_the_pixels_as_sent(monkeypatch):
    """deskew takes its moments from the input, not from the thickened pixels: whole
    numbers, so PyTorch and onnxruntime sum them exactly (tests/training/test_export.py)."""
    import training.model as model_module

    seen = {}
    real = model_module.deskew

    def spy(x, moments_of=None):
        seen.update(x=x, moments_of=moments_of)
        return real(x, moments_of=moments_of)

    monkeypatch.setattr(model_module, "deskew", spy)
    pixels = torch.zeros(1, 28, 28)
    pixels[0, 8:20, 13] = 255.0  # a 1-px stroke: thickened before the deskew
    MLP(MLPConfig(hidden_sizes=(8,))).eval()(pixels)
    assert seen["moments_of"] is pixels and not torch.equal(seen["x"], pixels)


def test_deskew_moments_of_another_image_move_the_ink_by_its_centre():
    from training.model import deskew

    x = torch.zeros(1, 28, 28)
    x[0, 10:18, 12:16] = 255.0
    shifted = torch.roll(x, shifts=3, dims=2)  # its centre of mass 3 px to the right
    assert torch.equal(deskew(x, moments_of=x), deskew(x))
    moved = deskew(x, moments_of=shifted)
    cols = torch.arange(28.0)
    assert (moved.sum(1) @ cols / moved.sum()).item() == pytest.approx(
        (deskew(x).sum(1) @ cols / deskew(x).sum()).item() - 3, abs=0.2)


def test_dropout_drops_its_share_scales_the_rest_and_routes_the_gradient():
    from training.model import Dropout

    drop = Dropout(0.25)
    x = torch.full((64, 1024), 2.0, requires_grad=True)
    torch.manual_seed(0)
    out = drop(x)
    kept = out != 0
    assert 0.73 < kept.float().mean() < 0.77
    assert torch.equal(out[kept], torch.full_like(out[kept], 2.0 / 0.75))
    out.sum().backward()
    assert torch.equal(x.grad, kept.float() / 0.75)  # zero where dropped, 1/(1-p) elsewhere
    torch.manual_seed(0)
    assert torch.equal(drop(x), out)  # the mask is the global generator's: seeded runs repeat
    assert drop.eval()(x) is x
