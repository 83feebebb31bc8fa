"""benchmarks/monitoring_overhead.py: on and off interleaved, the ratio of their sums."""

from __future__ import annotations

from benchmarks.monitoring_overhead import abba, cost_us, paired


def test_runs_alternate_in_abba_order():
    assert abba(2) == [False, True, True, False, False, True, True, False]


def test_the_ratio_is_of_the_summed_rates_of_each_side():
    made = []

    def run(on: bool) -> dict:
        made.append(on)
        return {"rps": 90.0 if on else 100.0}

    result = paired(run, 1)
    assert made == [False, True, True, False]
    assert result["ratio"] == 0.9 and len(result["on"]) == len(result["off"]) == 2


def test_observing_in_passes_costs_less_than_one_answer_at_a_time():
    cost = cost_us(256)
    assert 0 < cost["in_passes"] < cost["one_at_a_time"]
