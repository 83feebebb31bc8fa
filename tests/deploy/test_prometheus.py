"""deploy/prometheus: the generated files are current, promtool accepts the configurations
and passes the rules' unit tests (every alert firing and not firing), and the recording
rules compute the distances core/profile.py defines, on the metrics the service exposes.

    pytest tests/deploy/test_prometheus.py

promtool is Debian's `prometheus` package (.ci/run installs it): without it these tests
fail, unless MNIST_ALLOW_NO_PROMTOOL=1 says to skip them.
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
from pathlib import Path

import numpy as np
import pytest
import yaml
from prometheus_client.utils import floatToGoString

from core.profile import (
    CONFIDENCE_EDGES,
    DRIFT_THRESHOLDS,
    ENTROPY_EDGES,
    INPUT_EDGES,
    SIGNALS,
    ks,
    psi,
)
from deploy.prometheus import config, generated
from deploy.prometheus.alerts import FOR
from deploy.prometheus.rules import (
    FEEDBACK_ACCURACY,
    HISTOGRAMS,
    LOOP_METRICS,
    SERVICE_METRICS,
    SHADOW_AGREEMENT,
    SHADOW_LATENCY,
)
from deploy.promotion import EVIDENCE_WINDOW
from service.metrics import NAMESPACE
from tests.helpers import ROOT

HERE = ROOT / "deploy/prometheus"
UNIT_TESTS = sorted(HERE.glob("tests/*.yml"))
EDGES = {"confidence": CONFIDENCE_EDGES, "entropy": ENTROPY_EDGES, **INPUT_EDGES}


@pytest.fixture(scope="module")
def promtool() -> str:
    found = shutil.which("promtool")
    if found:
        return found
    if os.environ.get("MNIST_ALLOW_NO_PROMTOOL") == "1":
        pytest.skip("promtool is missing (MNIST_ALLOW_NO_PROMTOOL=1)")
    pytest.fail("promtool is missing: apt-get install prometheus (Debian's package), or "
                "set MNIST_ALLOW_NO_PROMTOOL=1 to skip the Prometheus checks")


def _run(*args: str | Path) -> str:
    done = subprocess.run([str(a) for a in args], capture_output=True, text=True, cwd=HERE)
    assert done.returncode == 0, done.stdout + done.stderr
    return done.stdout


def _rules() -> list[dict]:
    return yaml.safe_load((HERE / config.RULE_FILE).read_text())["groups"][0]["rules"]


def _alerts() -> dict[str, dict]:
    return {rule["alert"]: rule for rule in _rules() if "alert" in rule}


def test_the_generated_files_are_those_the_code_writes():
    # Else: python -m deploy.prometheus --write (make prometheus-rules), and commit.
    assert [str(p.relative_to(ROOT)) for p in generated.stale()] == []


@pytest.mark.parametrize("name", config.CONFIGS)
def test_promtool_accepts_each_configuration_and_its_rules(promtool, name):
    out = _run(promtool, "check", "config", f"{name}.yml")
    assert f"SUCCESS: {len(_rules())} rules found" in out


def test_promtool_finds_the_rules_valid_and_free_of_duplicates(promtool):
    out = _run(promtool, "check", "rules", "--lint=duplicate-rules", "--lint-fatal",
               config.RULE_FILE)
    assert f"SUCCESS: {len(_rules())} rules found" in out


def test_promtool_passes_the_rules_unit_tests(promtool):
    out = _run(promtool, "test", "rules", *UNIT_TESTS)
    assert out.count("SUCCESS") == len(UNIT_TESTS)


def test_every_alert_is_unit_tested_firing_and_not_firing():
    cases: dict[str, set[bool]] = {}
    for path in UNIT_TESTS:
        for test in yaml.safe_load(path.read_text())["tests"]:
            for case in test.get("alert_rule_test", []):
                cases.setdefault(case["alertname"], set()).add(bool(case.get("exp_alerts")))
    assert {name: cases.get(name) for name in _alerts()} == {
        name: {True, False} for name in _alerts()}


def test_every_alert_says_what_happened_and_links_its_runbook_heading():
    headings = re.findall(r"^### (\w+)$", (ROOT / "docs/monitoring.md").read_text(), re.M)
    assert set(_alerts()) == set(FOR) and set(headings) >= set(FOR)
    for name, alert in _alerts().items():
        notes = alert["annotations"]
        assert notes["summary"] and notes["description"], name
        assert notes["runbook_url"] == f"docs/monitoring.md#{name.lower()}"


def test_the_rules_read_only_metrics_the_service_exposes():
    """The design's names (rules.SERVICE_METRICS, and the loop's, which a service exposes
    once feedback arrives or a challenger runs) and BentoML's request series, which
    service/metrics.py records under BentoML's own namespace."""
    exprs = "\n".join(rule["expr"] for rule in _rules())
    read = set(re.findall(r"(?<![\w:])((?:mnist|bentoml)_\w+)(?![\w:])", exprs))
    assert read <= set(SERVICE_METRICS) | set(LOOP_METRICS)
    assert set(LOOP_METRICS) <= read
    assert {m for m in read if m.startswith("bentoml_")} == {
        f"{NAMESPACE}_request_total", f"{NAMESPACE}_request_duration_seconds_bucket"}
    # Every signal of core.profile is scored, each histogram from its own live metric.
    assert set(HISTOGRAMS) == set(SIGNALS) - {"digit_mix"}
    assert sorted(r["labels"]["signal"] for r in _rules()
                  if r.get("record") == "mnist:drift_score") == sorted(SIGNALS)


def test_the_service_really_exposes_every_metric_the_rules_read(client, test_digits):
    """Not the design's list: the running service's own /metrics, after one answer (the
    trained fixture's model has a reference profile, so its gauges exist too)."""
    from clients.uploads import png

    assert client.post("/predict", files={"image": ("d.png", png(test_digits[0][0]))}
                       ).status_code == 200
    client.get("/monitoring")  # flushes this worker's recorded answers
    exposed = set(re.findall(r"^(\w+)(?:\{| )", client.get("/metrics").text, re.M))
    assert set(SERVICE_METRICS) <= exposed, set(SERVICE_METRICS) - exposed


def test_each_rule_reads_recorded_series_recorded_above_it():
    """One group evaluates in order: a rule reading a series recorded below it would read
    the previous evaluation's value."""
    recorded: set[str] = set()
    for rule in _rules():
        used = set(re.findall(r"\b\w+:\w+:\w+\b|\bmnist:\w+\b", rule["expr"]))
        assert used <= recorded, (rule.get("record") or rule.get("alert"), used - recorded)
        if "record" in rule:
            recorded.add(rule["record"])


def test_a_replica_a_rollout_retires_does_not_page():
    """A retired replica stays a target, and fails, until DNS is asked again and one
    scrape later: the alert waits longer than that."""
    assert generated.seconds(FOR["MnistReplicaDown"]) > generated.seconds(
        config.DNS_REFRESH) + generated.seconds(config.SCRAPE_INTERVAL)


def test_the_configurations_scrape_the_api_where_compose_and_the_stack_run_it():
    compose = yaml.safe_load((ROOT / "docker-compose.yml").read_text())["services"]
    stack = yaml.safe_load((ROOT / "deploy/swarm/stack.yml").read_text())["services"]
    dockerfile = (HERE / "Dockerfile").read_text()
    assert config.API_SERVICE in compose and config.API_SERVICE in stack
    assert f"EXPOSE {config.API_PORT}" in (ROOT / "service/Dockerfile").read_text()
    assert compose["prometheus"]["profiles"] == ["monitoring"]
    assert set(stack["prometheus"]["networks"]) == set(stack["api"]["networks"])
    # The stack's command picks the Swarm configuration the image holds.
    assert stack["prometheus"]["command"] == ["--config.file=/etc/prometheus/swarm.yml"]
    assert re.search(r"^COPY compose\.yml swarm\.yml " + re.escape(config.RULE_FILE)
                     + " /etc/prometheus/$", dockerfile, re.M)
    assert 'CMD ["--config.file=/etc/prometheus/compose.yml"]' in dockerfile
    # Both keep the TSDB in a volume, where the image writes it.
    tsdb = re.search(r"^VOLUME (\S+)$", dockerfile, re.M)[1]  # type: ignore[index]
    assert f"--storage.tsdb.path={tsdb}" in dockerfile
    assert compose["prometheus"]["volumes"] == [f"prometheus-data:{tsdb}"]
    assert stack["prometheus"]["volumes"][0]["target"] == tsdb
    port = int(re.search(r"^EXPOSE (\d+)$", dockerfile, re.M)[1])  # type: ignore[index]
    assert compose["prometheus"]["ports"] == [f"127.0.0.1:${{PROMETHEUS_PORT:-{port}}}:{port}"]
    assert stack["prometheus"]["ports"][0]["target"] == port


def _counter(name: str, labels: str, per_minute: int) -> dict[str, str]:
    return {"series": f"{name}{{{labels}}}", "values": f"0+{per_minute}x10"}


def _gauge(name: str, labels: str, value: float) -> dict[str, str]:
    return {"series": f"{name}{{{labels}}}", "values": f"{value!r}x10"}


def _live_histogram(signal: str, counts: np.ndarray) -> list[dict[str, str]]:
    """A histogram's per-minute counts, split over two replicas. One is written as
    Prometheus 3 reads a histogram (`le="1"`, not "1.0"): the rules match either."""
    live, _ = HISTOGRAMS[signal]
    as_read = (lambda e: f"{e:g}") if signal == "stroke_width" else floatToGoString
    bounds = [as_read(e) for e in EDGES[signal]] + ["+Inf"]
    out = []
    for instance, part in (("a", counts // 2), ("b", counts - counts // 2)):
        labels = f'model_version="v1",instance="{instance}"'
        out += [_counter(f"{live}_bucket", f'{labels},le="{le}"', int(c))
                for le, c in zip(bounds, np.cumsum(part), strict=True)]
        out.append(_counter(f"{live}_count", labels, int(part.sum())))
    return out


def _reference_histogram(signal: str, shares: np.ndarray) -> list[dict[str, str]]:
    stat = HISTOGRAMS[signal][1]
    bounds = [floatToGoString(e) for e in EDGES[signal]] + ["+Inf"]
    return [_gauge("mnist_reference_bucket_share",
                   f'model_version="v1",stat="{stat}",le="{le}"', float(s))
            for le, s in zip(bounds, np.cumsum(shares), strict=True)]


def _cross_check(seed: int) -> tuple[list[dict[str, str]], dict[str, float]]:
    """Random reference and live traffic as the service would export them, and each
    signal's distance as core/profile.py computes it."""
    rng = np.random.default_rng(seed)
    series = [_gauge("mnist_reference_available", 'model_version="v1"', 1)]
    ref_digits, live_digits = rng.dirichlet(np.ones(10)), rng.integers(1, 60, 10)
    live_digits[3] = 0  # never predicted: the service has no series for it
    series += [_gauge("mnist_reference_digit_share", f'model_version="v1",digit="{d}"',
                      float(s)) for d, s in enumerate(ref_digits)]
    series += [_counter("mnist_predictions_total", f'model_version="v1",digit="{d}"', int(c))
               for d, c in enumerate(live_digits) if c]
    expected = {"digit_mix": psi(live_digits / live_digits.sum(), ref_digits)}
    for signal in HISTOGRAMS:
        ref = rng.dirichlet(np.ones(len(EDGES[signal]) + 1))
        live = rng.integers(0, 40, len(EDGES[signal]) + 1)
        series += _reference_histogram(signal, ref) + _live_histogram(signal, live)
        expected[signal] = ks(live / live.sum(), ref)
    return series, expected


@pytest.mark.parametrize("seed", [1, 2])
def test_the_recording_rules_compute_the_distances_of_core_profile(promtool, tmp_path, seed):
    series, expected = _cross_check(seed)
    for signal, distance in expected.items():
        series.append(_gauge("expected_distance", f'model_version="v1",signal="{signal}"',
                             distance))
        series.append(_gauge("expected_score", f'model_version="v1",signal="{signal}"',
                             distance / DRIFT_THRESHOLDS[signal]))
    agree = [{"labels": f'{{model_version="v1",signal="{s}"}}', "value": 1} for s in SIGNALS]
    checks = [{"expr": f"abs(mnist:drift_{what} - on(model_version, signal) "
                       f"expected_{what}) < bool 1e-9", "eval_time": "10m",
               "exp_samples": agree} for what in ("distance", "score")]
    test = {"rule_files": [str(HERE / config.RULE_FILE)], "evaluation_interval": "1m",
            "tests": [{"interval": "1m", "input_series": series, "promql_expr_test": checks}]}
    (tmp_path / "cross_check.yml").write_text(yaml.safe_dump(test))
    _run(promtool, "test", "rules", tmp_path / "cross_check.yml")


def _loop_series(seed: int) -> tuple[list[dict[str, str]], dict[str, dict[str, float]]]:
    """Random feedback and shadow counters for one champion beside two challengers, each
    over two replicas, and the evidence each recorded series must hold."""
    rng = np.random.default_rng(seed)
    series, expected = [], {}
    for challenger in ("v2", "v3"):
        pair = f'model_version="v1",challenger_version="{challenger}"'
        for role in ("champion", "challenger"):
            answered, truth = rng.integers(0, 10, (2, 12))
            counts = rng.integers(1, 20, 12)
            for instance, (a, t, c) in enumerate(zip(answered, truth, counts, strict=True)):
                series.append(_counter("mnist_feedback_total",
                                       f'{pair},role="{role}",answered="{a}",truth="{t}",'
                                       f'correct="{str(a == t).lower()}",instance="{instance % 2}"',
                                       int(c)))
            right = counts[answered == truth].sum() / counts.sum()
            expected[f'{pair},role="{role}"'] = {FEEDBACK_ACCURACY: right}
        agree, disagree, champion_s, challenger_s = rng.integers(1, 50, 4)
        series += [_counter("mnist_shadow_answers_total",
                            f'{pair},champion="4",challenger="{d}",agree="{str(d == 4).lower()}"',
                            int(n)) for d, n in ((4, agree), (9, disagree))]
        series += [_counter("mnist_shadow_seconds_total", f'{pair},role="{role}"', int(n))
                   for role, n in (("champion", champion_s), ("challenger", challenger_s))]
        expected[pair] = {SHADOW_AGREEMENT: agree / (agree + disagree),
                          SHADOW_LATENCY: challenger_s / champion_s}
    return series, expected


@pytest.mark.parametrize("seed", [1, 2])
def test_the_loops_evidence_is_each_roles_accuracy_agreement_and_latency(promtool, tmp_path,
                                                                          seed):
    """Over EVIDENCE_WINDOW, counters as the service exports them: each challenger's
    series apart from the other's, each role's accuracy on its own answers."""
    series, expected = _loop_series(seed)
    minutes = generated.seconds(EVIDENCE_WINDOW) // 60
    agree: dict[str, list[dict]] = {}
    for labels, records in expected.items():
        for record, value in records.items():
            series.append(_gauge(f"expected_{record.split(':')[1]}", labels, float(value)))
            agree.setdefault(record, []).append({"labels": f"{{{labels}}}", "value": 1})
    checks = [{"expr": f"abs({record} - expected_{record.split(':')[1]}) < bool 1e-9",
               "eval_time": f"{minutes + 10}m", "exp_samples": samples}
              for record, samples in agree.items()]
    for entry in series:  # a window's worth and more, so that it holds exactly the window
        entry["values"] = entry["values"].replace("x10", f"x{minutes + 10}")
    test = {"rule_files": [str(HERE / config.RULE_FILE)], "evaluation_interval": "1m",
            "tests": [{"interval": "1m", "input_series": series, "promql_expr_test": checks}]}
    (tmp_path / "loop_cross_check.yml").write_text(yaml.safe_dump(test))
    _run(promtool, "test", "rules", tmp_path / "loop_cross_check.yml")
