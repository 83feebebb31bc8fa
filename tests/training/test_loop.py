"""The training loop's pieces: augmentation, optimizers, fit on a tiny problem."""

from __future__ import annotations

import pytest
import torch

from training.config import TrainConfig
from training.loop import evaluate, fit, fit_temperature, make_optimizer
from training.model import MLP, MLPConfig


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


def test_fit_temperature_undoes_an_over_confident_scale():
    """Logits multiplied by 4 are over-confident: the fitted temperature brings the
    validation NLL down (T near 4 for a model that was calibrated before)."""
    import torch.nn.functional as F

    torch.manual_seed(0)
    model = MLP(MLPConfig(hidden_sizes=(8,), dropout=0.0)).eval()
    x = torch.randint(0, 256, (512, 28, 28)).float()
    with torch.no_grad():
        y = torch.distributions.Categorical(logits=model(x)).sample()  # calibrated labels
        model.net[-1].weight.mul_(4)
        model.net[-1].bias.mul_(4)
        before = F.cross_entropy(model(x), y).item()
    t = fit_temperature(model, x, y)
    with torch.no_grad():
        after = F.cross_entropy(model(x), y).item()
    assert 2.5 < t < 6 and model.temperature.item() == pytest.approx(t)
    assert after < before
