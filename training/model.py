"""The MLP: module and config only, no I/O.

    python -c "from training.model import MLP, MLPConfig; print(MLP(MLPConfig()))"

The MNIST normalisation is part of the module, so the exported ONNX graph takes
raw 0-255 pixels and no client ever has to know the training statistics; so is the
calibration temperature, so every client gets calibrated probabilities.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass

import torch
import torch.nn.functional as F
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
    # Deskew each digit inside the model (see deskew()): the slant of a hand is the
    # biggest variation an MLP has to learn pixel by pixel.
    deskew: bool = True

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


class Dropout(nn.Module):
    """nn.Dropout's semantics with a mask drawn by torch.rand: 2.5x cheaper on CPU than
    its bernoulli sampling, which cost an eighth of each training step here. Identity in
    eval mode, so the exported graph has no trace of it."""

    def __init__(self, p: float) -> None:
        super().__init__()
        self.p = p

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if not self.training or self.p == 0:
            return x
        return x * (torch.rand_like(x) >= self.p) * (1.0 / (1.0 - self.p))


class MLP(nn.Module):
    """[batch, 28, 28] raw pixels -> [batch, 10] logits."""

    scale: torch.Tensor
    shift: torch.Tensor
    temperature: torch.Tensor

    def __init__(self, config: MLPConfig = MLPConfig()) -> None:
        super().__init__()
        self.config = config
        c = CONTRACT
        # scale/shift fold (x/255 - mean)/std into one multiply-add; buffers, not
        # parameters, so they are exported as constants and never trained.
        self.register_buffer("scale", torch.tensor(1.0 / (c.pixel_max * c.std)))
        self.register_buffer("shift", torch.tensor(c.mean / c.std))
        # Divides the logits: fitted after training (training/loop.py fit_temperature) so
        # that softmax confidences are calibrated; 1 until then. Argmax never changes.
        self.register_buffer("temperature", torch.tensor(1.0))
        layers: list[nn.Module] = [nn.Flatten()]
        width = c.height * c.width
        for size in config.hidden_sizes:
            layers += [nn.Linear(width, size), ACTIVATIONS[config.activation]()]
            if config.dropout > 0:
                layers.append(Dropout(config.dropout))
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
        if self.config.deskew:
            pixels = deskew(pixels)
        return self.net(pixels * self.scale - self.shift) / self.temperature


def deskew(x: torch.Tensor) -> torch.Tensor:
    """Shear each [B, H, W] image so that its ink has no slant, and move its centre of
    mass to the centre: the classic MNIST deskewing (image moments: the shear is
    mu11 / mu02), as tensor operations that export to ONNX (a matmul grid, GridSample)."""
    b, h, w = x.shape
    rows = torch.arange(h, dtype=x.dtype, device=x.device)
    cols = torch.arange(w, dtype=x.dtype, device=x.device)
    mass = x.sum(dim=(1, 2)).clamp(min=1e-3)
    cy = (x.sum(2) @ rows) / mass
    cx = (x.sum(1) @ cols) / mass
    dy = rows[None, :] - cy[:, None]  # [B, H]
    dx = cols[None, :] - cx[:, None]  # [B, W]
    mu11 = torch.einsum("bij,bi,bj->b", x, dy, dx) / mass
    mu02 = torch.einsum("bij,bi->b", x, dy * dy) / mass
    alpha = (mu11 / mu02.clamp(min=1e-3)).clamp(-1.0, 1.0)
    # grid_sample coordinates (align_corners=False): u = (col - (w-1)/2) / (w/2).
    # Output (u, v) samples input u + alpha * v' + tx, v + ty, where v' is v in the
    # width's units, and (tx, ty) is the centre of mass in the same coordinates.
    ys = (rows - (h - 1) / 2) / (h / 2)
    xs = (cols - (w - 1) / 2) / (w / 2)
    tx = ((cx - (w - 1) / 2) / (w / 2))[:, None, None]
    ty = ((cy - (h - 1) / 2) / (h / 2))[:, None, None]
    gy = ys[None, :, None] + ty + torch.zeros(1, 1, w, dtype=x.dtype, device=x.device)
    gx = xs[None, None, :] + alpha[:, None, None] * ys[None, :, None] * (h / w) + tx
    grid = torch.stack([gx, gy], dim=-1)  # [B, H, W, 2]
    return F.grid_sample(x.unsqueeze(1), grid, align_corners=False).squeeze(1)
