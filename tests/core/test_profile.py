"""The reference profile's statistics on inputs whose answers are known by construction."""

from __future__ import annotations

import numpy as np
import pytest

import core.profile as p


def bar(width: int, length: int = 20, top: int = 4, left: int = 13) -> np.ndarray:
    x = np.zeros((28, 28), np.float32)
    x[top:top + length, left:left + width] = 255.0
    return x


@pytest.mark.parametrize("width", [1, 2, 3, 5])
def test_stroke_width_of_a_bar_is_close_to_its_width(width: int) -> None:
    measured = p.stroke_width(bar(width)[None])[0]
    assert measured == pytest.approx(width, rel=0.25)


def test_placement_of_a_centred_20_pixel_digit_is_scale_1_shift_0() -> None:
    scale, shift = p.placement(bar(2, left=13)[None])
    assert scale[0] == 1.0 and shift[0] == pytest.approx(0.0, abs=1e-6)


def test_placement_of_a_small_off_centre_digit() -> None:
    x = np.zeros((1, 28, 28), np.float32)
    x[0, 0:5, 0:4] = 255.0  # a 5-pixel-high blob in the top-left corner
    scale, shift = p.placement(x)
    assert scale[0] == pytest.approx(4.0)
    assert shift[0] == pytest.approx(np.hypot(14 - 2.5, 14 - 2.0))


def test_a_blank_input_has_neutral_placement_and_no_stroke() -> None:
    x = np.zeros((1, 28, 28), np.float32)
    assert p.placement(x)[0][0] == 1.0 and p.stroke_width(x)[0] == 0.0


def test_buckets_include_their_upper_bound_like_prometheus() -> None:
    counts = p.bucket_counts(np.array([0.5, 0.50001, 2.0]), (0.5, 1.0))
    assert counts.tolist() == [1, 1, 1]


def test_confidence_and_entropy_of_sure_and_unsure_answers() -> None:
    probs = np.array([[1.0] + [0.0] * 9, [0.1] * 10])
    conf, ent = p.confidence_entropy(probs)
    assert conf.tolist() == pytest.approx([1.0, 0.1])
    assert ent.tolist() == pytest.approx([0.0, np.log2(10)], abs=1e-6)


def test_low_confidence_is_a_bucket_edge() -> None:
    assert p.LOW_CONFIDENCE in p.CONFIDENCE_EDGES


def test_psi_is_zero_for_the_same_mix_and_grows_with_the_shift() -> None:
    uniform = np.full(10, 0.1)
    skewed = np.array([0.5, 0.5] + [0.0] * 8)
    assert p.psi(uniform, uniform) == 0.0
    assert p.psi(skewed, uniform) > p.psi(0.5 * skewed + 0.5 * uniform, uniform) > 0.1


def test_a_profile_survives_its_file(tmp_path) -> None:
    rng = np.random.default_rng(0)
    batch = np.stack([bar(w) for w in rng.integers(1, 4, 50)])
    probs = rng.dirichlet(np.ones(10), 50)
    profile = p.build("test", batch, probs, labels=probs.argmax(axis=1))
    p.save(profile, tmp_path / p.REFERENCE_FILE)
    back = p.load(tmp_path / p.REFERENCE_FILE)
    assert back == profile and back.accuracy == 1.0
    assert sum(back.digit_share) == pytest.approx(1.0)
    assert sum(back.inputs["stroke_width"].shares) == pytest.approx(1.0)


def test_a_profile_of_another_format_is_refused() -> None:
    with pytest.raises(ValueError, match="format"):
        p.from_dict({"format": 0})


def test_ks_is_the_largest_gap_between_cumulative_shares() -> None:
    assert p.ks((0.5, 0.5, 0.0), (0.0, 0.5, 0.5)) == pytest.approx(0.5)
    assert p.ks((0.2, 0.8), (0.2, 0.8)) == 0.0


def test_every_signal_has_a_threshold() -> None:
    assert set(p.DRIFT_THRESHOLDS) == set(p.SIGNALS)


def test_in_distribution_noise_stays_under_the_thresholds_at_min_answers() -> None:
    rng = np.random.default_rng(1)
    reference = np.full(10, 0.1)
    draws = [np.bincount(rng.integers(0, 10, p.MIN_ANSWERS), minlength=10) / p.MIN_ANSWERS
             for _ in range(200)]
    worst = max(p.psi(d, reference) for d in draws)
    assert worst < p.DRIFT_THRESHOLDS["digit_mix"]
