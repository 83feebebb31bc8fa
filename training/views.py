"""The training digits as the network reads them: augmented, then normalised, in chunks.

    python -m training --refresh 0.25     # a quarter of the digits get a new view each epoch

The augmentation (training/augmentation.py) and the model's normalisation (thickening,
deskewing: MLP.normalise) depend only on the input, not on the weights, so they need not
run per step on 128 digits: `Views` runs them on whole chunks, without gradients, and
keeps the result, the *views*, ready for the steps to slice. Each epoch a share of the
digits (AugmentationConfig.refresh) gets a new view and the rest keep the one they had:
the rotation visits every digit, in an order drawn once, so each gets a fresh view every
1 / refresh epochs. Why: on a 2-core CPU the views of every digit cost about as much as
the optimiser's own steps (docs/journal/training.md). No I/O.
"""

from __future__ import annotations

import math
from collections.abc import Callable

import torch

from training.augmentation import AugmentationConfig, augment_batch

# Digits augmented and normalised at once: large enough that per-operation overheads
# vanish, small enough that the temporaries stay a few tens of MB.
CHUNK = 4096


class Views:
    """The ready inputs of one epoch: `epoch(generator)` returns [N, 28, 28] normalised
    digits, in the order of `images` (and so of the labels)."""

    def __init__(self, images: torch.Tensor, augmentation: AugmentationConfig | None,
                 normalise: Callable[[torch.Tensor], torch.Tensor]) -> None:
        self.images, self.augmentation, self.normalise = images, augmentation, normalise
        self.ready: torch.Tensor | None = None
        self.rotation: torch.Tensor | None = None  # the digits in the order they refresh
        self.epochs = 0

    @torch.no_grad()
    def view(self, index: torch.Tensor, generator: torch.Generator) -> torch.Tensor:
        """New views of the digits at `index`, chunk by chunk."""
        parts = []
        for start in range(0, len(index), CHUNK):
            x = self.images[index[start:start + CHUNK]]
            if self.augmentation is not None:
                x = augment_batch(x, generator, self.augmentation)
            parts.append(self.normalise(x))
        return torch.cat(parts) if parts else self.images[:0]

    def due(self, generator: torch.Generator) -> torch.Tensor:
        """The digits that get a new view this epoch: every one the first time, then the
        next `refresh` share of the rotation."""
        n = len(self.images)
        if self.ready is None:
            return torch.arange(n, device=self.images.device)
        if self.augmentation is None or self.augmentation.refresh == 0:
            return self.images.new_zeros(0, dtype=torch.int64)
        if self.rotation is None:
            self.rotation = torch.randperm(n, generator=generator, device=self.images.device)
        share = math.ceil(n * self.augmentation.refresh)
        start = (self.epochs - 1) * share
        return self.rotation[torch.arange(start, start + share, device=self.rotation.device) % n]

    def epoch(self, generator: torch.Generator) -> torch.Tensor:
        index = self.due(generator)
        fresh = self.view(index, generator)
        if self.ready is None:
            self.ready = fresh
        else:
            self.ready[index] = fresh
        self.epochs += 1
        return self.ready
