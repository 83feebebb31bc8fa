"""docs/attack.md is rendered from one `make attack` run: each goal, met or missed, per tree."""

from __future__ import annotations

from benchmarks.render_attack import render


def _run(readyz_max: float = 40.0, failed: int = 0, codes: dict | None = None,
         p50: float | None = 2.0, peak: float = 300.0) -> dict:
    return {
        "readyz_ms": {"max": readyz_max, "p99": 30.0, "median": 3.0, "n": 140,
                      "failed": failed},
        "normal": {"codes": codes if codes is not None else {"200": 5000}, "p50_ms": p50,
                   "p99_ms": 9.0, "n": 5000},
        "attack": {"codes": {"413": 900}, "unanswered": 0},
        "worker_rss_mb": {"idle": 140.0, "peak": peak, "after": 150.0},
        "workers": 2, "worker_restarts": 0,
        "load": {"loadavg_before": 3.5, "other_cores": 1.2},
    }


def _results(baseline: dict | None = None) -> dict:
    trees = {"current": "this checkout (`REV`)"}
    runs = {"current": _run()}
    if baseline is not None:
        trees["baseline"], runs["baseline"] = "`old`", baseline
    return {
        "meta": {"date": "the day", "machine": "2 cores", "seconds": 15,
                 "attackers": 8, "users": 3, "user_interval_s": 0.1, "wall_s": 300.0,
                 "trees": trees,
                 "command": "python -m benchmarks.under_attack --baseline-ref old"},
        "attacks": [{"name": "png-text", "what": "text chunks", "endpoint": "/predict_batch",
                     "request_bytes": [1084780], "runs": runs}],
    }


def test_goals_met_now_and_missed_before_side_by_side():
    old = _run(readyz_max=3000.0, codes={"200": 40, "503": 7}, p50=2500.0, peak=1190.0)
    text = render(_results(old))
    assert "| attack | goal | before | met | now | met |" in text
    assert ("| png-text | `/readyz` never over 1 s, every probe a 200 | max 3,000 ms, 0 of 140 "
            "failed | **no** | max 40 ms, 0 of 140 failed | yes |") in text
    assert ("| png-text | normal `/predict`: no 503 (nor any other failure) | 40 × 200, 7 × "
            "503 | **no** | 5,000 × 200, 0 × 503 | yes |") in text
    assert "| normal `/predict` p50 ≤ 100 ms | 2,500 ms | **no** | 2 ms | yes |" in text
    assert "| worker peak RSS ≤ 600 MB | 1,190 MB | **no** | 300 MB | yes |" in text
    assert "| worker RSS MB: idle / peak (VmHWM) / 2 s after | 140 / 1,190 / 150 | " \
        "140 / 300 / 150 |" in text
    assert "1,084,780 bytes" in text and "1.20–1.20 cores" in text


def test_only_the_current_tree_without_a_baseline():
    text = render(_results())
    assert "| attack | goal | now | met |" in text
    assert "| figure | now |" in text and "| before |" not in text
    assert "**no**" not in text
