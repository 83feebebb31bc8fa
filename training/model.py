"""The MLP: module and config only, no I/O.

    python -c "from training.model import MLP, MLPConfig; print(MLP(MLPConfig()))"

The MNIST normalisation is part of the module, so the exported ONNX graph takes
raw 0-255 pixels and no client ever has to know the training statistics.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass

import torch
from torch import nn

from core.contract import CONTRACT

ACTIVATIONS: dict[str, type[nn.Module]] = {
    "relu": nn.ReLU,
    "gelu": nn.GELU,
    "tanh": nn.Tanh,
    "sigmoid": nn.Sigmoid,
}


@dataclass(frozen=True)
class MLPConfig:
    # One hidden layer of ~1k units: Simard et al. 2003 used 800; wider trains as
    # fast on CPU here and tolerates augmentation better.
    hidden_sizes: tuple[int, ...] = (1024,)
    activation: str = "relu"
    dropout: float = 0.3

    def __post_init__(self) -> None:
        if self.activation not in ACTIVATIONS:
            raise ValueError(f"activation must be one of {sorted(ACTIVATIONS)}")
        if not 0.0 <= self.dropout < 1.0:
            raise ValueError("dropout must be in [0, 1)")
        if not self.hidden_sizes or min(self.hidden_sizes) < 1:
            raise ValueError("hidden_sizes needs at least one positive size")

    def to_dict(self) -> dict[str, object]:
        d = asdict(self)
        d["hidden_sizes"] = list(self.hidden_sizes)
        return d


class MLP(nn.Module):
    """[batch, 28, 28] raw pixels -> [batch, 10] logits."""

    scale: torch.Tensor
    shift: torch.Tensor

    def __init__(self, config: MLPConfig = MLPConfig()) -> None:
        super().__init__()
        self.config = config
        c = CONTRACT
        # scale/shift fold (x/255 - mean)/std into one multiply-add; buffers, not
        # parameters, so they are exported as constants and never trained.
        self.register_buffer("scale", torch.tensor(1.0 / (c.pixel_max * c.std)))
        self.register_buffer("shift", torch.tensor(c.mean / c.std))
        layers: list[nn.Module] = [nn.Flatten()]
        width = c.height * c.width
        for size in config.hidden_sizes:
            layers += [nn.Linear(width, size), ACTIVATIONS[config.activation]()]
            if config.dropout > 0:
                layers.append(nn.Dropout(config.dropout))
            width = size
        layers.append(nn.Linear(width, c.num_classes))
        self.net = nn.Sequential(*layers)
        self._init_weights()

    def _init_weights(self) -> None:
        # Gaussian-family init matched to the activation: He for rectifiers,
        # Glorot for the saturating ones.
        rectifier = self.config.activation in ("relu", "gelu")
        for m in self.modules():
            if isinstance(m, nn.Linear):
                if rectifier:
                    nn.init.kaiming_normal_(m.weight, nonlinearity="relu")
                else:
                    nn.init.xavier_normal_(m.weight)
                nn.init.zeros_(m.bias)

    def forward(self, pixels: torch.Tensor) -> torch.Tensor:
        return self.net(pixels * self.scale - self.shift)
