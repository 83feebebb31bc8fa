"""The MLP: module and config only, no I/O.

    python -c "from training.model import MLP, MLPConfig; print(MLP(MLPConfig()))"

The MNIST normalisation is part of the module, so the exported ONNX graph takes
raw 0-255 pixels and no client ever has to know the training statistics; so is the
calibration temperature, so every client gets calibrated probabilities; and so are
the two normalisations of the hand (thin strokes thickened, the slant removed:
training/imageops.py), so every client's digits are normalised the same way.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field

import torch
from torch import nn

from core.contract import CONTRACT
from training.flags import option
from training.imageops import deskew, thicken

ACTIVATIONS: dict[str, type[nn.Module]] = {
    "relu": nn.ReLU,
    "gelu": nn.GELU,
    "tanh": nn.Tanh,
    "sigmoid": nn.Sigmoid,
}


@dataclass(frozen=True)
class MLPConfig:
    """The network's shape; every field is a flag of `python -m training` (group "model")."""

    # One wide hidden layer, as Simard et al.'s MLP; wider trained as fast here and took
    # the augmentation better (docs/journal/training.md).
    hidden_sizes: tuple[int, ...] = field(default=(1024,), metadata=option(
        "hidden layer sizes", flag="--hidden"))
    activation: str = field(default="relu", metadata=option(
        "hidden-layer activation", choices=sorted(ACTIVATIONS)))
    # Light: the augmentation already regularises; more dropout cost accuracy, and less
    # made the result swing between seeds (docs/journal/training.md).
    dropout: float = field(default=0.1, metadata=option("dropout after each hidden layer"))
    # A mouse or a thin pen draws 1-px lines that MNIST's writers never made: thickened
    # inside the model (imageops.thicken), every client's digits get the same treatment.
    stroke_width: float = field(default=2.0, metadata=option(
        "thicken strokes thinner than this many pixels inside the model (0: off)"))
    # The slant of a hand is the biggest variation an MLP has to learn pixel by pixel:
    # removed inside the model (imageops.deskew).
    deskew: bool = field(default=True, metadata=option(
        "deskew and centre each digit inside the model (image moments); default: on",
        both_ways=True))

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


# Masks in Dropout's bank: enough that a batch's masks are all but never alike.
DROPOUT_BANK = 8192


class Dropout(nn.Module):
    """nn.Dropout's semantics with masks drawn from a bank: each row of a batch takes a
    random one of DROPOUT_BANK masks, made once (torch.rand, already scaled floats) from
    torch's seeded generator. Why: a fresh mask of a 128 x 1024 activation cost a large
    share of a training step on a 2-core CPU, picking rows a tenth of that or less
    (docs/journal/training.md). Each unit is still dropped with probability p, independently
    of the digit and the step. Identity in eval mode, so the exported graph has no trace
    of it."""

    def __init__(self, p: float) -> None:
        super().__init__()
        self.p = p
        self.bank: torch.Tensor | None = None  # not a buffer: never saved nor exported

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if not self.training or self.p == 0:
            return x
        if self.bank is None or self.bank.shape[1:] != x.shape[1:] \
                or self.bank.device != x.device:
            bank = torch.rand((DROPOUT_BANK, *x.shape[1:]), dtype=x.dtype, device=x.device)
            self.bank = bank.ge_(self.p).mul_(1.0 / (1.0 - self.p))
        rows = torch.randint(0, DROPOUT_BANK, (len(x),), device=x.device)
        return x * self.bank[rows]


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

    def normalise(self, pixels: torch.Tensor) -> torch.Tensor:
        """[batch, 28, 28] raw pixels -> the digit the network reads, still 0-255: thin
        strokes thickened, the slant removed and the ink centred. No parameters: the
        training loop may run it on whole chunks, without gradients, ahead of the steps."""
        x = pixels
        if self.config.stroke_width > 0:
            # The exported graph pools with one MaxPool node per pass; PyTorch, training
            # or not, takes the equal but faster shifted maxima (max3x3).
            x = thicken(x, self.config.stroke_width, pooled=torch.onnx.is_in_onnx_export())
        if self.config.deskew:
            # The slant and centre are measured on the pixels as sent: whole numbers for
            # digits, whose sums are exact in float32 in any order, so PyTorch and
            # onnxruntime agree closely (the thickened pixels' sums are not exact).
            x = deskew(x, moments_of=pixels)
        return x

    def classify(self, digits: torch.Tensor) -> torch.Tensor:
        """Normalised digits (normalise's output) -> [batch, 10] logits."""
        return self.net(digits * self.scale - self.shift) / self.temperature

    def forward(self, pixels: torch.Tensor) -> torch.Tensor:
        return self.classify(self.normalise(pixels))


class WithNormalised(nn.Module):
    """The exported graph: the MLP's logits and the normalised digit it read, so a client
    can show what the network really got (core/contract.py names both outputs)."""

    def __init__(self, model: MLP) -> None:
        super().__init__()
        self.model = model

    def forward(self, pixels: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        digits = self.model.normalise(pixels)
        return self.model.classify(digits), digits
