"""The MLP (training/model.py): normalisation, temperature and dropout inside the module."""

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


def test_temperature_scales_logits_but_never_the_prediction():
    model = MLP(MLPConfig(hidden_sizes=(16,), dropout=0.0)).eval()
    x = torch.randint(0, 256, (8, 28, 28)).float()
    before = model(x)
    model.temperature.fill_(2.0)
    assert torch.allclose(model(x), before / 2) and torch.equal(model(x).argmax(1),
                                                                before.argmax(1))


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
    assert torch.equal(Dropout(0.25)(x), out)  # the global generator's: seeded runs repeat
    assert not torch.equal(drop(x), out)  # each step picks other masks from the bank
    assert drop.eval()(x) is x


def test_dropouts_bank_drops_each_unit_alike_whatever_the_row():
    from training.model import DROPOUT_BANK, Dropout

    torch.manual_seed(1)
    drop, x = Dropout(0.1), torch.ones(512, 256)
    kept = torch.stack([drop(x) != 0 for _ in range(40)]).float()  # 20,480 rows
    assert drop.bank is not None and drop.bank.shape == (DROPOUT_BANK, 256)
    per_unit = kept.mean(dim=(0, 1))
    assert per_unit.min() > 0.87 and per_unit.max() < 0.93  # p = 0.1 for every unit
    same_row = (kept[0, 0] == kept[0, 1]).float().mean()
    assert 0.78 < same_row < 0.86  # two rows agree as independent masks do: 0.9² + 0.1²
