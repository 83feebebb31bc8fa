"""The training loop's pieces: augmentation, optimizers, fit on a tiny problem."""

from __future__ import annotations

import pytest
import torch

from training.config import TrainConfig
from training.loop import evaluate, fit, make_optimizer, random_affine
from training.model import MLP, MLPConfig


def test_random_affine_keeps_shape_range_and_moves_pixels():
    x = torch.zeros(4, 28, 28)
    x[:, 10:18, 12:16] = 255.0
    g = torch.Generator().manual_seed(0)
    y = random_affine(x, g)
    assert y.shape == x.shape and y.min() >= 0 and y.max() <= 255.0 + 1e-3
    assert not torch.allclose(x, y)
    assert y.sum().item() == pytest.approx(x.sum().item(), rel=0.3)  # ink roughly preserved


def test_unknown_optimizer_is_refused():
    with pytest.raises(ValueError, match="optimizer"):
        make_optimizer("lbfgs", [torch.nn.Parameter(torch.zeros(1))], 0.1, 0.0)


def test_fit_reads_its_recipe_from_a_train_config_and_learns():
    """Two linearly separable blobs: a few epochs must fit them and keep the best epoch."""
    g = torch.Generator().manual_seed(0)
    x = torch.rand(256, 28, 28, generator=g) * 50
    y = torch.arange(256) % 2
    x[y == 1, :14] += 150  # class 1: a bright top half
    torch.manual_seed(0)
    model = MLP(MLPConfig(hidden_sizes=(16,), dropout=0.0))
    cfg = TrainConfig(epochs=4, batch_size=32, lr=1e-2, augment=False, patience=10)
    hist = fit(model, (x, y), (x, y), cfg, torch.device("cpu"))
    assert len(hist.train_loss) == 4 and 1 <= hist.best_epoch <= 4
    assert evaluate(model, x, y)[1] > 0.95


def test_elastic_and_stroke_jitter_change_the_digits_but_keep_them_digits(test_digits):
    import torch

    from training.loop import random_affine

    x = torch.as_tensor(test_digits[0][:64], dtype=torch.float32)

    def gen():
        return torch.Generator().manual_seed(0)

    plain = random_affine(x, gen())
    warped = random_affine(x, gen(), elastic=2.0, stroke=0.5)
    assert warped.shape == x.shape and not torch.allclose(plain, warped)
    assert torch.equal(warped, random_affine(x, gen(), elastic=2.0, stroke=0.5))  # seeded
    # Ink is moved and thickened or thinned, not created from nothing or wiped out.
    ratio = warped.sum(dim=(1, 2)) / plain.sum(dim=(1, 2))
    assert ratio.min() > 0.5 and ratio.max() < 2.0
