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
    cfg = TrainConfig(epochs=4, batch_size=32, lr=1e-2, augmentation=None, patience=10)
    hist = fit(model, (x, y), (x, y), cfg, torch.device("cpu"))
    assert len(hist.train_loss) == 4 and 1 <= hist.best_epoch <= 4
    assert evaluate(model, x, y)[1] > 0.95


def _fit_with_scripted_val_loss(monkeypatch, losses, **cfg):
    """fit() on blobs, with validation losses scripted epoch by epoch; returns the history,
    the model and each epoch's weights."""
    import copy

    import training.loop as loop

    g = torch.Generator().manual_seed(0)
    x, y = torch.rand(64, 28, 28, generator=g) * 255, torch.arange(64) % 2
    states: list[dict] = []

    def scripted(model, *_, **__):
        states.append(copy.deepcopy(model.state_dict()))
        return losses[len(states) - 1], 0.5, None

    monkeypatch.setattr(loop, "evaluate", scripted)
    model = MLP(MLPConfig(hidden_sizes=(8,), dropout=0.0))
    config = TrainConfig(batch_size=16, lr=1e-2, augmentation=None, **cfg)
    return fit(model, (x, y), (x, y), config, torch.device("cpu")), model, states


def _same(model, state) -> bool:
    return all(torch.equal(v, state[k]) for k, v in model.state_dict().items())


@pytest.mark.parametrize("schedule,keeps_final", [("onecycle", True), ("cosine", True),
                                                  ("none", False)])
def test_a_schedule_run_to_its_end_keeps_its_final_weights(monkeypatch, schedule,
                                                           keeps_final):
    """An annealing schedule ends on the weights it was designed to reach; without one,
    the lowest validation loss (epoch 2 here) is restored."""
    hist, model, states = _fit_with_scripted_val_loss(
        monkeypatch, [1.0, 0.5, 0.8, 0.9, 0.95, 0.99], epochs=6, patience=10,
        schedule=schedule)
    assert not hist.stopped_early and hist.best_epoch == 2
    assert hist.kept_epoch == (6 if keeps_final else 2)
    assert _same(model, states[hist.kept_epoch - 1])
    assert not _same(model, states[(2 if keeps_final else 6) - 1])


def test_patience_running_out_on_the_last_epoch_is_not_an_early_stop(monkeypatch):
    hist, model, states = _fit_with_scripted_val_loss(
        monkeypatch, [1.0, 0.5, 0.8, 0.9, 0.95, 0.99], epochs=6, patience=4)
    assert not hist.stopped_early and hist.kept_epoch == 6 and _same(model, states[5])


@pytest.mark.parametrize("last", [float("nan"), float("inf"), 1.2])
def test_a_run_that_ends_gone_wrong_restores_its_best_epoch(monkeypatch, last):
    """The last validation loss not finite, or over twice the best: the safety net."""
    hist, model, states = _fit_with_scripted_val_loss(
        monkeypatch, [1.0, 0.5, 0.6, 0.7, 0.9, last], epochs=6, patience=10)
    assert not hist.stopped_early and hist.kept_epoch == 2 and _same(model, states[1])


def test_early_stopping_restores_the_best_epoch(monkeypatch):
    hist, model, states = _fit_with_scripted_val_loss(
        monkeypatch, [1.0, 0.5, 0.8, 0.9, 0.95, 0.99], epochs=6, patience=3)
    assert hist.stopped_early and len(hist.train_loss) == 5
    assert hist.kept_epoch == hist.best_epoch == 2 and _same(model, states[1])


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
