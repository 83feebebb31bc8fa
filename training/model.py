"""The MLP: module and config only, no I/O.

    python -c "from training.model import MLP, MLPConfig; print(MLP(MLPConfig()))"

The MNIST normalisation is part of the module, so the exported ONNX graph takes
raw 0-255 pixels and no client ever has to know the training statistics; so is the
calibration temperature, so every client gets calibrated probabilities; and so are
the two normalisations of the hand (thin strokes thickened, the slant removed), so
every client's digits are normalised the same way.
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
    # 0.1: the augmentation already regularises (0.3 cost 0.15-0.18 points; 0.05 and 0
    # swung by 0.2-0.3 points between two seeds; docs/journal/training.md).
    dropout: float = 0.1
    # Thicken strokes thinner than this many pixels inside the model (see thicken(); 0:
    # off): a mouse or a thin pen draws 1-px lines that MNIST's writers never made.
    stroke_width: float = 2.0
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
        if self.stroke_width < 0:
            raise ValueError("stroke_width must be >= 0 (0: off)")

    def to_dict(self) -> dict[str, object]:
        d = asdict(self)
        d["hidden_sizes"] = list(self.hidden_sizes)
        return d


class Dropout(nn.Module):
    """nn.Dropout's semantics with a mask drawn by torch.rand: 2.5x cheaper on CPU than
    its bernoulli sampling, which cost an eighth of each training step here. The mask is
    made in place as floats already scaled, so forward and backward are one multiply
    each (x * bool * scale converts a boolean mask twice): with the ReLU, forward and
    backward of 128 x 1024 take 0.9 ms instead of 2.2 in isolation, 0.2-0.6 ms less in
    a whole training step. The same draws, so the same numbers. Identity in eval mode,
    so the exported graph has no trace of it."""

    def __init__(self, p: float) -> None:
        super().__init__()
        self.p = p

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if not self.training or self.p == 0:
            return x
        keep = torch.rand(x.shape, dtype=x.dtype, device=x.device)
        return x * keep.ge_(self.p).mul_(1.0 / (1.0 - self.p))


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
        x = pixels
        if self.config.stroke_width > 0:
            # The exported graph pools with one MaxPool node per pass; PyTorch, training
            # or not, takes the equal but faster shifted maxima (max3x3).
            x = thicken(x, self.config.stroke_width, pooled=torch.onnx.is_in_onnx_export())
        if self.config.deskew:
            # The slant and centre are measured on the pixels as sent: whole numbers for
            # digits, whose sums are exact in float32 in any order, so PyTorch and
            # onnxruntime agree to 1e-5 (measured on the thickened pixels: 6e-5).
            x = deskew(x, moments_of=pixels)
        return self.net(x * self.scale - self.shift) / self.temperature


def max3x3(x: torch.Tensor, pooled: bool = False) -> torch.Tensor:
    """The 3x3 maximum filter of [B, H, W] (a grey dilation), as a 3x3 max-pool with
    stride 1 computes it. pooled=False takes the maximum of three shifted rows, then of
    three shifted columns (a maximum is exact in any order, so the same numbers): ~10x
    faster than max_pool2d for 28x28 images on a CPU; pooled=True is one ONNX MaxPool node
    instead of ~10 (each a few microseconds at batch 1 in onnxruntime)."""
    if pooled:
        return F.max_pool2d(x.unsqueeze(1), 3, stride=1, padding=1).squeeze(1)
    h, w = x.shape[1:]
    p = F.pad(x, (0, 0, 1, 1), value=float("-inf"))
    rows = torch.maximum(torch.maximum(p[:, :h], p[:, 1:h + 1]), p[:, 2:])
    p = F.pad(rows, (1, 1), value=float("-inf"))
    return torch.maximum(torch.maximum(p[:, :, :w], p[:, :, 1:w + 1]), p[:, :, 2:])


def stroke_width(x: torch.Tensor) -> torch.Tensor:
    """Mean stroke width in pixels of each [B, H, W] image: a stroke of length L and width
    w has ink L*w and an outline of about 2L, so w = 2 * ink / outline (the outline as
    the image's total variation). MNIST's test digits: 1.9 px (1.4-2.6 for 80 % of them);
    a 2x2 grey erosion makes them 1.25, a thin mouse stroke 1.5."""
    ink = x.sum(dim=(1, 2))
    outline = (x[:, 1:] - x[:, :-1]).abs().sum(dim=(1, 2)) \
        + (x[:, :, 1:] - x[:, :, :-1]).abs().sum(dim=(1, 2))
    return 2 * ink / outline.clamp(min=1e-3)


def thicken(x: torch.Tensor, target: float, pooled: bool = False,
            passes: int = 2) -> torch.Tensor:
    """Grow strokes thinner than `target` pixels towards it: each pass blends each image
    towards its 3x3 dilation (which adds ~2 px of width) by the share it lacks. Thick
    strokes are left alone: thinning would break the thin parts of a digit. Eroded test
    digits go from 1.25 px to 1.92-2.04 (10th-90th percentile) in one pass, 2.00-2.04 in
    two."""
    for _ in range(passes):
        lack = ((target - stroke_width(x)) / 2).clamp(0.0, 1.0)[:, None, None]
        x = x + lack * (max3x3(x, pooled) - x)
    return x


def deskew(x: torch.Tensor, moments_of: torch.Tensor | None = None) -> torch.Tensor:
    """Shear each [B, H, W] image so that its ink has no slant, and move its centre of
    mass to the centre: the classic MNIST deskewing (image moments: the shear is
    mu11 / mu02), as tensor operations that export to ONNX (a matmul grid, GridSample).
    The moments are those of `moments_of` (default: x itself)."""
    b, h, w = x.shape
    m = x if moments_of is None else moments_of
    rows = torch.arange(h, dtype=x.dtype, device=x.device)
    cols = torch.arange(w, dtype=x.dtype, device=x.device)
    row_mass = m.sum(2)  # [B, H]
    mass = row_mass.sum(1).clamp(min=1e-3)
    cy = (row_mass @ rows) / mass
    cx = (m.sum(1) @ cols) / mass
    dy = rows[None, :] - cy[:, None]  # [B, H]
    dx = cols[None, :] - cx[:, None]  # [B, W]
    # dy.T m dx and sum_i row_mass_i dy_i^2: 5x faster than einsum on a CPU.
    mu11 = (dy[:, None, :] @ m @ dx[:, :, None]).view(b) / mass
    mu02 = (row_mass * dy * dy).sum(1) / mass
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
