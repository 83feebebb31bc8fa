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
