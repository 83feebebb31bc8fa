"""The views: every digit augmented and normalised once, then a share refreshed per epoch."""

from __future__ import annotations

import math

import pytest
import torch

from training.augmentation import AugmentationConfig
from training.views import CHUNK, Views


def _images(n: int) -> torch.Tensor:
    return torch.rand(n, 28, 28, generator=torch.Generator().manual_seed(0)) * 255


def test_without_augmentation_the_views_are_the_normalised_digits_in_their_order():
    images = _images(CHUNK + 10)  # two chunks
    views = Views(images, None, lambda x: x * 2)
    g = torch.Generator().manual_seed(1)
    assert torch.equal(views.epoch(g), images * 2)
    assert torch.equal(views.epoch(g), images * 2)  # nothing to refresh


@pytest.mark.parametrize("refresh", [0.25, 0.3, 1.0])
def test_each_epoch_refreshes_its_share_and_the_rotation_visits_every_digit(refresh):
    n = 200
    views = Views(_images(n), AugmentationConfig(refresh=refresh), lambda x: x)
    g = torch.Generator().manual_seed(1)
    first = views.epoch(g).clone()
    changed = torch.zeros(n, dtype=torch.int64)
    previous = first
    share, rounds = math.ceil(n * refresh), math.ceil(1 / refresh)
    for _ in range(rounds):
        now = views.epoch(g).clone()
        fresh = (now != previous).flatten(1).any(1)
        assert fresh.sum() == share  # exactly the share, no digit twice in one epoch
        changed += fresh
        previous = now
    assert changed.min() >= 1  # every digit got a new view within 1 / refresh epochs
    assert changed.max() <= 2  # and the rotation wraps around in order


def test_refresh_zero_keeps_one_view_for_the_whole_run():
    views = Views(_images(50), AugmentationConfig(refresh=0.0), lambda x: x)
    g = torch.Generator().manual_seed(1)
    first = views.epoch(g).clone()
    assert not torch.equal(first, _images(50))  # augmented once
    assert torch.equal(views.epoch(g), first) and torch.equal(views.epoch(g), first)


def test_the_same_seed_gives_the_same_views():
    def run() -> list[torch.Tensor]:
        views = Views(_images(300), AugmentationConfig(refresh=0.5), lambda x: x + 1)
        g = torch.Generator().manual_seed(4)
        return [views.epoch(g).clone() for _ in range(3)]

    assert all(torch.equal(a, b) for a, b in zip(run(), run(), strict=True))


def test_refresh_outside_zero_to_one_is_refused():
    with pytest.raises(ValueError, match="refresh"):
        AugmentationConfig(refresh=1.5)
