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
