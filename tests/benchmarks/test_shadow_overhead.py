"""benchmarks/shadow_overhead.py: what sampling costs the request path, in process."""

from __future__ import annotations

from benchmarks.shadow_overhead import offer_cost_us


def test_images_not_sampled_cost_less_than_images_copied_into_the_queue():
    assert 0 < offer_cost_us(4000, share=0.0) < offer_cost_us(4000, share=1.0)
