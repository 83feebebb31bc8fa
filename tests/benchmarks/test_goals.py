"""The goals of `make bench` and `make attack`: each met at its bound, missed past it, and
each threshold read from its one place."""

from __future__ import annotations

import pytest

from benchmarks import goals
from benchmarks.goals import attack_goals, bench_goals, model_goals
from tests.benchmarks.test_render import _results
from tests.benchmarks.test_render_attack import _run


def test_each_goal_at_its_bound():
    at = [ok for _, _, ok in attack_goals(_run(readyz_max=1000.0, p50=100.0, peak=600.0))]
    over = [ok for _, _, ok in attack_goals(_run(readyz_max=1001.0, p50=100.5, peak=601.0))]
    assert at == [True, True, True, True] and over == [False, True, False, False]


def test_a_failure_that_is_not_a_503_or_no_answer_at_all_misses():
    assert not attack_goals(_run(failed=1))[0][2]  # a probe that timed out, however fast
    assert not attack_goals(_run(codes={"200": 100, "0": 1}))[1][2]  # a request unanswered
    assert not attack_goals(_run(codes={}, p50=None))[1][2]
    assert not attack_goals(_run(codes={}, p50=None))[2][2]
    assert "0 × 200, 0 × 503" in attack_goals(_run(codes={}, p50=None))[1][1]


def test_the_bench_goals_at_their_bounds():
    results = _results(1500.0)  # the closest peer's 1500 right answers/s: 1.00×, met
    results["cold_start_s"] = goals.COLD_START_S
    results["training"].update(
        seconds=goals.TRAIN_SECONDS, floor_s=goals.TRAIN_SECONDS / goals.FLOOR_RATIO,
        seed_accuracy={"1": goals.TRAIN_ACCURACY}, ece=goals.MAX_ECE,
        robustness={"thinner": goals.MIN_PERTURBED_ACCURACY,
                    "elastic warp (alpha 34, sigma 4)": goals.MIN_ELASTIC_ACCURACY})
    assert all(g.met for g in bench_goals(results)), bench_goals(results)
    results["cold_start_s"] += 0.1
    results["training"]["ece"] += 0.001
    missed = [g.goal for g in bench_goals(results) if not g.met]
    assert missed == ["cold start ≤ 5 s", "calibration: ECE ≤ 1 %"]


def test_a_threshold_changed_in_its_one_place_changes_the_goal(monkeypatch):
    results = _results(1600.0)  # 1.07× the closest peer, 0.67× the transport ceiling
    assert bench_goals(results)[0].met and bench_goals(results)[2].met
    monkeypatch.setattr(goals, "PEER_RATIO", 1.1)
    monkeypatch.setattr(goals, "TRANSPORT_RATIO", 0.7)
    first, _, third = bench_goals(results)[:3]
    assert first.goal.startswith("/predict right answers/s ≥ 1.1× every peer") and not first.met
    assert third.goal.startswith("/predict ≥ 0.7× the transport") and not third.met
    monkeypatch.setattr(goals, "MAX_ECE", 0.003)  # the results' ECE is 0.4 %
    assert [g.met for g in model_goals(results["training"])] == [True, True, True, False, True]
    monkeypatch.setattr(goals, "MIN_ELASTIC_ACCURACY", 0.961)  # the results' elastic: 96 %
    assert not model_goals(results["training"])[-1].met
    monkeypatch.setattr(goals, "WORKER_PEAK_MB", 200)
    assert attack_goals(_run(peak=300.0))[3] == ("worker peak RSS ≤ 200 MB", "300 MB", False)


@pytest.mark.parametrize(("key", "judge", "bound"), [
    ("monitoring", "monitoring_goal", "MONITORING_RATIO"),
    ("shadow", "shadow_goal", "SHADOW_RATIO")])
def test_the_paired_overhead_goals_at_their_bound(key, judge, bound):
    results, goal = _results(1600.0), getattr(goals, judge)
    results[key]["ratio"] = getattr(goals, bound)
    assert goal(results[key]).met
    results[key]["ratio"] -= 0.001
    assert not goal(results[key]).met
    assert tuple(goal(None))[1:] == ("not measured in this run", False)
