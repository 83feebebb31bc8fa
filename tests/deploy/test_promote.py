"""The promotion command: its judgement of the evidence, its rollout and its rollback,
against a stand-in Prometheus (the queries it sends are answered from a table) and a
stand-in deployer (what it rolls out is recorded)."""

from __future__ import annotations

import json
import shutil
import subprocess
import threading
from dataclasses import replace
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import parse_qs, urlparse

import pytest

from deploy import promote as p
from deploy.promotion import THRESHOLDS

CHAMPION, CHALLENGER = "champ1", "chall2"
GOOD = {p.SHADOW_ANSWERS: 2000.0, p.SHADOW_AGREEMENT: 0.93, p.SHADOW_LATENCY: 1.01,
        (p.FEEDBACK_ANSWERS, "champion"): 400.0, (p.FEEDBACK_ANSWERS, "challenger"): 400.0,
        (p.FEEDBACK_ACCURACY, "champion"): 0.61, (p.FEEDBACK_ACCURACY, "challenger"): 0.87}


class FakePrometheus:
    """Answers promote's queries: the model-info pair, the pair's recorded figures, and
    the promoted model's live feedback figures (a list consumed one poll at a time)."""

    def __init__(self, figures: dict, live: list[tuple[float, float]] | None = None,
                 challengers: tuple[str, ...] = (CHALLENGER,)) -> None:
        self.figures, self.live, self.challengers = figures, list(live or []), challengers
        self.queries: list[str] = []
        self.polls = 0

    def __call__(self, expr: str) -> list[dict]:
        self.queries.append(expr)
        if "mnist_model_info" in expr:
            return [{"metric": {"role": "champion", "version": CHAMPION}, "value": [0, "1"]},
                    *({"metric": {"role": "challenger", "version": v}, "value": [0, "1"]}
                      for v in self.challengers)]
        if f'model_version="{CHALLENGER}"' in expr:  # after promotion: one poll each
            answers, acc = self.live[min(self.polls, len(self.live) - 1)]
            if p.FEEDBACK_ACCURACY in expr:
                self.polls += 1
                return [{"metric": {}, "value": [0, str(acc)]}]
            return [{"metric": {}, "value": [0, str(answers)]}]
        for key, value in self.figures.items():
            series, role = key if isinstance(key, tuple) else (key, None)
            if f"{series}{{" in expr and (role is None or f'role="{role}"' in expr):
                assert f'challenger_version="{CHALLENGER}"' in expr
                return [{"metric": {}, "value": [0, str(value)]}]
        return []


class FakeDeployer:
    def __init__(self, update_ok: bool = True) -> None:
        self.updates: list[str] = []
        self.update_ok = update_ok

    def current_image(self) -> str:
        return "img:old"

    def image_for(self, version: str) -> str:
        return f"img:{version}"

    def update(self, image: str) -> bool:
        self.updates.append(image)
        return self.update_ok


FAST = replace(THRESHOLDS, watch_s=0.0)


def test_good_evidence_clears_every_check():
    ev = p.gather(FakePrometheus(GOOD), CHAMPION, CHALLENGER)
    checks = p.decide(ev)
    assert all(c.ok for c in checks), p.table(checks)
    assert ev.feedback_accuracy == {"champion": 0.61, "challenger": 0.87}


@pytest.mark.parametrize("key,value,failing", [
    (p.SHADOW_ANSWERS, THRESHOLDS.min_shadow_answers - 1, "shadow answers"),
    (p.SHADOW_AGREEMENT, THRESHOLDS.min_agreement - 0.01, "agreement with the champion"),
    (p.SHADOW_LATENCY, THRESHOLDS.max_latency_ratio + 0.01, "latency ratio"),
    ((p.FEEDBACK_ANSWERS, "challenger"), THRESHOLDS.min_feedback_answers - 1,
     "feedback answers (challenger)"),
    ((p.FEEDBACK_ACCURACY, "challenger"), 0.61 + THRESHOLDS.min_feedback_gain / 2,
     "feedback accuracy gain"),
])
def test_each_threshold_alone_blocks_promotion(key, value, failing):
    checks = p.decide(p.gather(FakePrometheus({**GOOD, key: value}), CHAMPION, CHALLENGER))
    assert [c.name for c in checks if not c.ok] == [next(
        c.name for c in checks if c.name.startswith(failing))]


def test_missing_series_fail_their_checks_instead_of_passing():
    checks = p.decide(p.gather(FakePrometheus({}), CHAMPION, CHALLENGER))
    assert not any(c.ok for c in checks)


def test_not_cleared_changes_nothing():
    deployer = FakeDeployer()
    prom = FakePrometheus({**GOOD, p.SHADOW_AGREEMENT: 0.5})
    assert p.promote(prom, deployer, FAST, dry_run=False) == p.NOT_CLEARED
    assert deployer.updates == []


def test_dry_run_judges_only():
    deployer = FakeDeployer()
    assert p.promote(FakePrometheus(GOOD), deployer, FAST, dry_run=True) == p.PROMOTED
    assert deployer.updates == []


def test_promotion_kept_when_live_accuracy_holds():
    deployer = FakeDeployer()
    prom = FakePrometheus(GOOD, live=[(300.0, 0.86)])
    assert p.promote(prom, deployer, FAST, dry_run=False) == p.PROMOTED
    assert deployer.updates == [f"img:{CHALLENGER}"]


def test_promotion_rolled_back_when_live_accuracy_drops():
    deployer = FakeDeployer()
    floor = 0.87 - THRESHOLDS.max_accuracy_drop
    prom = FakePrometheus(GOOD, live=[(300.0, floor - 0.01)])
    assert p.promote(prom, deployer, FAST, dry_run=False) == p.ROLLED_BACK
    assert deployer.updates == [f"img:{CHALLENGER}", "img:old"]


def test_too_few_live_answers_are_not_judged():
    deployer = FakeDeployer()
    prom = FakePrometheus(GOOD, live=[(THRESHOLDS.min_watch_answers - 1, 0.1)])
    assert p.promote(prom, deployer, FAST, dry_run=False) == p.PROMOTED
    assert deployer.updates == [f"img:{CHALLENGER}"]


def test_failed_rolling_update_is_reported():
    deployer = FakeDeployer(update_ok=False)
    assert p.promote(FakePrometheus(GOOD), deployer, FAST, dry_run=False) == p.UPDATE_FAILED


def test_two_challengers_are_no_evidence():
    prom = FakePrometheus(GOOD, challengers=(CHALLENGER, "other"))
    assert p.promote(prom, FakeDeployer(), FAST, dry_run=False) == p.NO_EVIDENCE


def test_watch_returns_early_on_a_drop_and_polls_until_the_deadline_otherwise():
    polls = []
    prom = FakePrometheus(GOOD, live=[(300.0, 0.5)])
    seen = p.watch(prom, CHALLENGER, 0.87, replace(THRESHOLDS, watch_s=3600),
                   sleep=polls.append)
    assert seen.dropped and polls == []


class _Handler(BaseHTTPRequestHandler):
    def do_GET(self):  # noqa: N802 (http.server's name)
        expr = parse_qs(urlparse(self.path).query)["query"][0]
        body = json.dumps({"status": "success", "data": {"resultType": "vector", "result": [
            {"metric": {"expr": expr}, "value": [0, "1"]}]}}).encode()
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *args):
        pass


def test_queries_go_to_prometheus_http_api_url_encoded():
    server = ThreadingHTTPServer(("127.0.0.1", 0), _Handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        expr = 'max(x{role="champion"})'
        result = p.prometheus(f"http://127.0.0.1:{server.server_port}")(expr)
        assert result[0]["metric"]["expr"] == expr
    finally:
        server.shutdown()


def test_unreachable_prometheus_is_no_evidence():
    query = p.prometheus("http://127.0.0.1:9", timeout_s=1)
    assert p.promote(query, FakeDeployer(), FAST, dry_run=False) == p.NO_EVIDENCE


PAIR_TEST = """rule_files: []
evaluation_interval: 15s
tests:
  - interval: 15s
    input_series:
      - series: 'mnist_model_info{role="champion",version="gone",instance="a"}'
        values: '1 1 1 _ _ _ _ _ _ _ _ _'
      - series: 'mnist_model_info{role="champion",version="now",instance="b"}'
        values: '1 1 1 1 1 1 1 1 1 1 1 1'
      - series: 'mnist_model_info{role="challenger",version="next",instance="b"}'
        values: '1 1 1 1 1 1 1 1 1 1 1 1'
    promql_expr_test:
      - expr: %s
        eval_time: 150s
        exp_samples:
          - labels: '{role="champion",version="now"}'
            value: 1
          - labels: '{role="challenger",version="next"}'
            value: 1
"""


@pytest.mark.skipif(shutil.which("promtool") is None, reason="promtool not installed")
def test_pair_query_ignores_a_gone_replicas_last_samples(tmp_path):
    """On a real Prometheus engine (promtool): a replica last scraped two minutes ago is
    still inside PromQL's five-minute lookback, and must not count as serving."""
    (tmp_path / "pair.yml").write_text(PAIR_TEST % json.dumps(p.PAIR_QUERY))
    done = subprocess.run(["promtool", "test", "rules", "pair.yml"], cwd=tmp_path,
                          capture_output=True, text=True)
    assert done.returncode == 0, done.stdout + done.stderr
