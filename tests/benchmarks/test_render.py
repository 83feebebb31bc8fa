"""docs/benchmarks.md and README's summary are rendered from one run's results: every
table, every goal; the committed pages from the committed results."""

from __future__ import annotations

import json

from benchmarks.breakdown import CATEGORIES
from benchmarks.render import (
    PAGE,
    README,
    RESULTS,
    SEEDS_BLOCK,
    SUMMARY_BLOCK,
    TRAINING,
    publish,
    render,
    seeds,
    summary,
)
from core.docblocks import read_block
from tests.benchmarks.test_perf_analyzer import _measured
from tests.helpers import ROOT


def _run(rps: float, failures: int = 0, p99: float = 20.0) -> dict:
    return {"rps": rps, "right_rps": rps * (1000 - failures) / 1000, "p50": 10.0, "p99": p99,
            "failures": failures, "requests": 1000}


# Each server's right answers/s and p99 at 32 users (the same at 128 users, p99 doubled).
PEERS = {"fastapi": (1500.0, 30.0), "fastapi_minimal": (1400.0, 25.0), "kserve": (1450.0, 40.0)}
TRANSPORT_RPS = 2400.0


def _breakdown(label: str, rps: float) -> dict:
    """500 µs of a worker per request: 50 in each category, idle twice that."""
    us = {c: 100.0 if c == "idle" else 50.0 for c in CATEGORIES}
    total = sum(us.values())
    rows = us | {"busy": total - us["idle"], "total": total}
    return {"label": label, "users": 32, "seconds": 14, "rps": rps, "failures": 0,
            "us": {name: {"us": v, "share": v / total} for name, v in rows.items()}}


def _side_by_side(service_rps: float, failures: int = 0, p99: float = 20.0) -> dict:
    """Two rounds of each server, 1 % either side of `rps` (their median)."""
    def server(label: str, rps: float, p99: float, failures: int = 0) -> dict:
        return {"label": label, "runs": {
            str(u): [_run(rps * 1.01, failures, p99 * u / 32), _run(rps * 0.99, 0, p99 * u / 32)]
            for u in (32, 128)}}

    return {"users": [32, 128], "rounds": 2, "seconds": 20, "servers": {
        "service": server("this service", service_rps, p99, failures),
        **{key: server(f"peer {key}", rps, peer_p99) for key, (rps, peer_p99) in PEERS.items()},
        "transport": server("transport ceiling", TRANSPORT_RPS, 5.0)}}


def _results(service_rps: float, failures: int = 0) -> dict:
    # Batching off: a p99 (30 ms) worse than the baseline's (25 ms); on: better (20 ms).
    sweep = {f"{ms}:{u}": _run(service_rps * (1.1 if ms else 1.0), p99=20.0 if ms else 30.0)
             for ms in (0, 100) for u in (1, 8, 32, 128)}
    return {
        "meta": {"date": "2026-11-25 12:00 UTC", "machine": "2 cores", "users": 32,
                 "seconds": 20, "workers": 2, "batch_ms": 100, "soak_seconds": 60,
                 "baseline_rps": 1000.0, "baseline_p99": 25.0,
                 "wall_s": 400.0},
        "training": {"seconds": 80.0, "floor_s": 60.0, "steps": 7450, "accuracy": 0.99,
                     "seed_accuracy": {"1": 0.99, "2": 0.989, "3": 0.991}, "epochs": 50,
                     "ece": 0.004, "robustness": {"thinner strokes": 0.975,
                                                  "elastic warp (alpha 34, sigma 4)": 0.96}},
        "cold_start_s": 1.7,
        "ceiling": {"provider": "CPUExecutionProvider", "pipeline_images_per_s": 3000.0,
                    "pipeline_batch64_images_per_s": 5000.0, "infer_batch1_latency_us": 60.0,
                    "infer_batch1_images_per_s": 16000.0, "infer_batch256_images_per_s": 6e4,
                    "preprocess_28_us": 40.0, "pillow_decode_28_us": 30.0},
        "service": {"predict_batch": _run(70.0), "predict_pixels": _run(1500.0)},
        "side_by_side": _side_by_side(service_rps, failures),
        "breakdown": {"service": _breakdown("this service", service_rps)},
        "sweep": sweep,
        "workers": {"1": {"predict": _run(1200.0), "rss_mb": [160.0]},
                    "2": {"predict": _run(1600.0), "rss_mb": [158.0, 161.0]}},
        "monitoring": {"off": [_run(1000.0), _run(1000.0)], "on": [_run(990.0), _run(980.0)],
                       "ratio": 0.985, "users": 32, "seconds": 20,
                       "cost_us": {"in_passes": 9.0, "one_at_a_time": 150.0}},
        "shadow": {"off": [_run(1000.0), _run(1000.0)], "on": [_run(960.0), _run(970.0)],
                   "ratio": 0.965, "users": 32, "seconds": 20, "share": 0.25,
                   "offer_us": 1.5},
        "gpu": None,
    }


def test_every_section_and_goal_is_rendered():
    text = render(_results(1600.0))
    for heading in ("## Against the frameworks", "## The service's other endpoints",
                    "## Concurrency, and adaptive batching",
                    "## Workers and memory", "## Goals", "## GPU"):
        assert heading in text
    assert "| peer fastapi_minimal | 1,400 | 25 | 0 | service 1.14× |" in text
    assert "| peer kserve | 1,450 | 160 | 0 | service 1.10× |" in text  # at 128 users
    assert "| transport ceiling | 2,400 | 5 | 0 | service 0.67× |" in text
    assert "| 128 | 1600 | 10 / 30 | 1760 | 10 / 20 | 0 / 0 | 1.10× |" in text
    assert "| 2 | 1600 | 10 | 20 | 0 | 158 MB, 161 MB |" in text
    assert "1.33×" in text  # 40 µs of preprocessing over a 30 µs decode
    # 128 users against the tree before: the defaults (batching on), and batching off
    # (met on the defaults' p99, which the batching-off p99 alone would fail)
    assert "| 1.76×, p99 20 ms (batching off: 1.60×, p99 30 ms) | yes |" in text
    assert "**no**" not in text  # 1.07× the closest peer, 0.67× the transport: all met
    assert "No GPU was lent" in text


def test_the_breakdown_has_a_row_per_category_with_what_it_holds():
    text = render(_results(1600.0))
    assert "| this service (1,600 req/s) |" in text
    assert "| inference | onnxruntime, and the engine around it | 50 µs (9%) |" in text
    assert "| idle | the event loop waiting" in text and "| 100 µs (18%) |" in text
    assert "| busy |  | 450 µs (82%) |" in text and "| total |  | 550 µs (100%) |" in text
    for name in CATEGORIES:
        assert f"\n| {name} | " in text
    results = _results(1600.0)
    del results["breakdown"]
    assert "## Where a request's time goes\n\nNot measured in this run." in render(results)


def test_perf_analyzers_table_is_beside_locusts_with_its_goal():
    results = _results(1600.0)
    results["perf_analyzer"] = _measured()
    text = render(results)
    sweep, table = text.index("## Concurrency"), text.index("## perf_analyzer (NVIDIA's OIP")
    assert sweep < table < text.index("## Workers and memory")
    assert "| gRPC | 8 | 800 | 1.2 | 150 | 2.0 |" in text
    assert "| perf_analyzer over HTTP and gRPC, concurrency 1 to 32: no error | 6 runs | yes |" \
        in text
    assert "**no**" not in text


def test_without_docker_the_page_says_why_perf_analyzer_is_missing():
    results = _results(1600.0)
    results["perf_analyzer"] = {"missing": "Docker does not answer here (`docker info`: x)"}
    text = render(results)
    assert "## perf_analyzer (NVIDIA's OIP client)\n\nNot measured in this run: Docker " \
           "does not answer here (`docker info`: x).\n" in text
    assert "| perf_analyzer over" not in text and "**no**" not in text


def test_a_missed_goal_is_marked():
    text = render(_results(1100.0, failures=3))
    # below the peers and the transport ceiling, failures, and the speed-up over before
    assert text.count("**no**") == 4


def test_the_training_goals_are_rendered_met_or_missed():
    results = _results(1600.0)
    text = render(results)
    assert "| default training command ≤ 90 s wall | 80 s | yes |" in text
    assert "| default training command ≤ 1.5× its training floor | 1.33× (80 s against 60.0 s " \
        "for 7450 bare steps) | yes |" in text
    assert "| test accuracy, mean of seeds 1, 2, 3 ≥ 99.0 % | 99.00 % (99.00, 98.90, 99.10) " \
        "| yes |" in text
    assert "| calibration: ECE ≤ 1 % | 0.40 % | yes |" in text
    assert "its training floor (`python -m training.floor`: the same 7450 optimizer steps" in text
    results["training"].update(seconds=91.0, floor_s=60.0)
    results["training"]["seed_accuracy"]["3"] = 0.9899
    results["training"]["robustness"]["elastic warp (alpha 34, sigma 4)"] = 0.9549
    text = render(results)
    assert "| 91 s | **no** |" in text and "| 1.52× (91 s against 60.0 s" in text
    assert "| 98.96 % (99.00, 98.90, 98.99) | **no** |" in text
    assert "| elastic 95.49 %, others ≥ 97.50 % (closest: elastic warp (alpha 34, sigma 4)) " \
        "| **no** |" in text


def _committed_results() -> dict:
    return json.loads((ROOT / RESULTS).read_text())


def test_the_committed_page_is_rendered_from_the_committed_results():
    assert (ROOT / PAGE).read_text() == render(_committed_results()), \
        "docs/benchmarks.md differs from its results: python -m benchmarks.render"


def test_readmes_summary_is_rendered_from_the_committed_results():
    block = read_block((ROOT / README).read_text(), SUMMARY_BLOCK)
    assert block == summary(_committed_results()), \
        "README.md's bench-summary differs from docs/benchmarks.json: python -m benchmarks.render"


def test_the_summary_names_the_machine_the_date_and_the_headline_ratios():
    text = summary(_results(1600.0))
    assert text.startswith("On 2 cores, 2026-11-25 12:00 UTC (one run): `/predict` right "
                           "answers/s at 32 users **1.07×** the closest of 3 peers (fastapi), "
                           "p99 20 vs 30 ms; at 128 users **1.07×**")
    assert "at 128 users 1.76× the throughput of the tree before (1760 vs 1000 req/s" in text
    assert "on ÷ off at 1, 8, 32, 128 users: 1.10×, 1.10×, 1.10×, 1.10×" in text
    assert "1 worker: 1200 req/s, 2 workers: 1600 req/s; 158–161 MB per worker." in text


def test_training_docs_seeds_are_rendered_from_the_committed_results():
    block = read_block((ROOT / TRAINING).read_text(), SEEDS_BLOCK)
    assert block == seeds(_committed_results()), \
        "docs/training.md's training-seeds differs from docs/benchmarks.json: " \
        "python -m benchmarks.render"


def test_the_seeds_block_gives_each_seed_the_mean_and_the_floor_ratio():
    text = seeds(_results(1600.0))
    assert "| 2 | 98.90 % |" in text and "| **mean** | **99.00 %** |" in text
    assert "Seed 1 (the default) took 80 s wall, 1.33× its training floor (60.0 s)" in text
    assert "elastic warp (alpha 34, sigma 4) 96.00 %" in text


def test_publish_writes_the_results_the_page_and_the_readme_block(tmp_path):
    (tmp_path / "docs").mkdir()
    (tmp_path / README).write_text("# x\n<!-- generated: bench-summary (make bench) -->\n"
                                   "stale\n<!-- end generated: bench-summary -->\n")
    (tmp_path / TRAINING).write_text("<!-- generated: training-seeds (make bench) -->\n"
                                     "stale\n<!-- end generated: training-seeds -->\n")
    results = _results(1600.0)
    page = publish(results, tmp_path)
    assert json.loads((tmp_path / RESULTS).read_text()) == results
    assert (tmp_path / PAGE).read_text() == page == render(results)
    assert read_block((tmp_path / README).read_text(), SUMMARY_BLOCK) == summary(results)
    assert read_block((tmp_path / TRAINING).read_text(), SEEDS_BLOCK) == seeds(results)


def test_the_monitoring_pairs_are_rendered_in_their_order_with_their_ratio():
    text = render(_results(1600.0))
    assert "monitoring off (`MNIST_MONITORING=0`) and on in ABBA order: off 1000, 1000 " \
           "req/s, on 990, 980 req/s; on ÷ off **0.985×**." in text
    assert "9.0 µs as served (observed in passes), 150.0 µs observed one at a time" in text
    assert "| /predict req/s with monitoring on ≥ 0.97× off (interleaved) | 0.985× | yes |" \
        in text
    del (results := _results(1600.0))["monitoring"]
    text = render(results)
    assert "## Monitoring overhead\n\nNot measured in this run." in text
    assert "| not measured in this run | **no** |" in text


def test_the_shadow_pairs_are_rendered_in_their_order_with_their_ratio():
    text = render(_results(1600.0))
    for said in ("`MNIST_SHADOW_SHARE=0.25`, the default) in ABBA order: without 1000, 1000 "
                 "req/s, with 960, 970 req/s; with ÷ without **0.965×**.",
                 "sampling adds 1.50 µs to an answer of one image",
                 "| /predict req/s with a challenger in shadow ≥ 0.95× without (default "
                 "share, interleaved) | 0.965× at share 0.25 | yes |"):
        assert said in text
    unmeasured = {key: value for key, value in _results(1600.0).items() if key != "shadow"}
    assert "## Shadow scoring overhead\n\nNot measured in this run." in render(unmeasured)
