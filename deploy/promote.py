"""Promote the challenger on live evidence, and undo it if live accuracy drops.

    python -m deploy.promote                       # judge, promote, watch (Swarm stack mnist)
    python -m deploy.promote --dry-run             # judge only: print the evidence table

Reads the evidence Prometheus recorded while the challenger ran in shadow
(deploy/prometheus/rules.py, over EVIDENCE_WINDOW): its agreement with the champion on
real requests, both models' accuracy on the same feedback rows, and its inference time
over the champion's. Every check of deploy/promotion.py's THRESHOLDS must pass; then the
challenger becomes the champion through the stack's zero-downtime rolling update
(deploy/swarm/swarm.sh: start-first, one replica at a time, rolled back by Swarm if a
replica fails), and its live feedback accuracy is watched for THRESHOLDS.watch_s: if it
falls more than THRESHOLDS.max_accuracy_drop below what the challenger scored in shadow,
the previous image is rolled out again.

Exit codes: 0 promoted and kept, 1 the evidence does not clear the thresholds (nothing
changed), 2 no evidence to judge (no challenger, Prometheus unreachable), 3 promoted then
rolled back on live accuracy, 4 the rolling update failed (Swarm rolled it back).
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import time
import urllib.parse
import urllib.request
from collections.abc import Callable
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Protocol

from core.profile import NO_CHALLENGER
from deploy.prometheus.rules import (
    FEEDBACK_ACCURACY,
    FEEDBACK_ANSWERS,
    SHADOW_AGREEMENT,
    SHADOW_ANSWERS,
    SHADOW_LATENCY,
)
from deploy.promotion import THRESHOLDS, Thresholds

ROOT = Path(__file__).resolve().parents[1]
SWARM = ["bash", str(ROOT / "deploy/swarm/swarm.sh")]
POLL_S = 15.0  # Prometheus's evaluation interval: nothing new appears faster
# A replica's model info counts only if scraped this recently: after a restart, Prometheus
# keeps answering the last samples of targets gone before it (no staleness marker) for
# five minutes, and an earlier stack's pair would look present.
FRESH_S = 60
PAIR_QUERY = ("max by (role, version) (mnist_model_info and "
              f"(time() - timestamp(mnist_model_info) < {FRESH_S}))")
PROMOTED, NOT_CLEARED, NO_EVIDENCE, ROLLED_BACK, UPDATE_FAILED = 0, 1, 2, 3, 4

Query = Callable[[str], list[dict]]


class NoEvidence(Exception):
    """Nothing to judge: no challenger in shadow, or Prometheus unreachable."""


def prometheus(url: str, timeout_s: float = 10.0) -> Query:
    """An instant query against Prometheus's HTTP API: the result vector."""
    def query(expr: str) -> list[dict]:
        address = f"{url.rstrip('/')}/api/v1/query?query={urllib.parse.quote(expr)}"
        try:
            with urllib.request.urlopen(address, timeout=timeout_s) as response:
                body = json.load(response)
        except (OSError, ValueError) as exc:
            raise NoEvidence(f"Prometheus at {url}: {exc}") from exc
        return list(body["data"]["result"])
    return query


def _value(query: Query, expr: str) -> float | None:
    result = query(expr)
    return float(result[0]["value"][1]) if result else None


def pair(query: Query) -> tuple[str, str]:
    """(the champion's version, the challenger's) that the replicas serve now."""
    versions: dict[str, set[str]] = {"champion": set(), "challenger": set()}
    for series in query(PAIR_QUERY):
        versions.setdefault(series["metric"]["role"], set()).add(series["metric"]["version"])
    if len(versions["champion"]) != 1 or len(versions["challenger"]) != 1:
        raise NoEvidence(f"expected one champion and one challenger in shadow, Prometheus "
                         f"sees champions {sorted(versions['champion'])} and challengers "
                         f"{sorted(versions['challenger'])}")
    return versions["champion"].pop(), versions["challenger"].pop()


@dataclass(frozen=True)
class Evidence:
    champion: str
    challenger: str
    shadow_answers: float
    agreement: float | None
    latency_ratio: float | None
    feedback_answers: dict[str, float]  # role -> answers in the window
    feedback_accuracy: dict[str, float | None]  # role -> accuracy in the window


def gather(query: Query, champion: str, challenger: str) -> Evidence:
    """The recorded figures of this champion and challenger pair."""
    pair_labels = f'model_version="{champion}",challenger_version="{challenger}"'

    def one(series: str, role: str | None = None) -> float | None:
        labels = pair_labels + (f',role="{role}"' if role else "")
        return _value(query, f"max({series}{{{labels}}})")  # one series: the rule's

    roles = ("champion", "challenger")
    return Evidence(champion, challenger, shadow_answers=one(SHADOW_ANSWERS) or 0.0,
                    agreement=one(SHADOW_AGREEMENT), latency_ratio=one(SHADOW_LATENCY),
                    feedback_answers={r: one(FEEDBACK_ANSWERS, r) or 0.0 for r in roles},
                    feedback_accuracy={r: one(FEEDBACK_ACCURACY, r) for r in roles})


@dataclass(frozen=True)
class Check:
    name: str
    value: float | None
    limit: str  # what it must be, e.g. ">= 0.8"
    ok: bool


def _at_least(name: str, value: float | None, limit: float) -> Check:
    return Check(name, value, f">= {limit:g}", value is not None and value >= limit)


def decide(ev: Evidence, th: Thresholds = THRESHOLDS) -> list[Check]:
    """Every check of the thresholds, passed or not (all must pass to promote)."""
    champion, challenger = (ev.feedback_accuracy[r] for r in ("champion", "challenger"))
    gain = None if champion is None or challenger is None else challenger - champion
    latency = Check("latency ratio (challenger / champion)", ev.latency_ratio,
                    f"<= {th.max_latency_ratio:g}",
                    ev.latency_ratio is not None and ev.latency_ratio <= th.max_latency_ratio)
    return [
        _at_least("shadow answers", ev.shadow_answers, th.min_shadow_answers),
        _at_least("agreement with the champion", ev.agreement, th.min_agreement),
        latency,
        *(_at_least(f"feedback answers ({role})", ev.feedback_answers[role],
                    th.min_feedback_answers) for role in ("champion", "challenger")),
        _at_least("feedback accuracy gain", gain, th.min_feedback_gain),
    ]


def table(checks: list[Check]) -> str:
    rows = [f"  {'ok  ' if c.ok else 'FAIL'} {c.name:40} "
            f"{'-' if c.value is None else f'{c.value:.4g}':>9}  (must be {c.limit})"
            for c in checks]
    return "\n".join(rows)


class Deployer(Protocol):
    def current_image(self) -> str: ...
    def image_for(self, version: str) -> str: ...
    def update(self, image: str) -> bool: ...


class Swarm:
    """The stack's api service, through deploy/swarm/swarm.sh (STACK, BENTOML_HOME...)."""

    def __init__(self, stack: str) -> None:
        self.env = {**os.environ, "STACK": stack}
        self.service = f"{stack}_api"

    def _run(self, *args: str) -> subprocess.CompletedProcess:
        return subprocess.run([*SWARM, *args], cwd=ROOT, env=self.env, text=True,
                              stdout=subprocess.PIPE)

    def current_image(self) -> str:
        spec = subprocess.run(
            ["docker", "service", "inspect", self.service, "--format",
             "{{.Spec.TaskTemplate.ContainerSpec.Image}}"],
            capture_output=True, text=True, check=True).stdout.strip()
        return spec.split("@")[0]

    def image_for(self, version: str) -> str:
        built = self._run("model-image", version)
        if built.returncode:
            raise RuntimeError(f"could not build the image of {version}")
        return built.stdout.strip().splitlines()[-1]

    def update(self, image: str) -> bool:
        return self._run("update", image).returncode == 0


@dataclass(frozen=True)
class Watch:
    answers: float
    accuracy: float | None
    floor: float  # the accuracy under which the promotion is undone

    @property
    def dropped(self) -> bool:
        return self.accuracy is not None and self.accuracy < self.floor


def watch(query: Query, version: str, shadow_accuracy: float, th: Thresholds,
          sleep: Callable[[float], None] = time.sleep) -> Watch:
    """The promoted model's live feedback accuracy, polled for th.watch_s: returns early
    when it falls under the floor with answers enough to judge."""
    labels = f'model_version="{version}",challenger_version="{NO_CHALLENGER}",role="champion"'
    floor = shadow_accuracy - th.max_accuracy_drop
    seen = Watch(0.0, None, floor)
    deadline = time.monotonic() + th.watch_s
    while True:
        answers = _value(query, f"max({FEEDBACK_ANSWERS}{{{labels}}})") or 0.0
        accuracy = _value(query, f"max({FEEDBACK_ACCURACY}{{{labels}}})")
        seen = Watch(answers, accuracy if answers >= th.min_watch_answers else None, floor)
        print(f"  watching {version}: {answers:.0f} feedback answers, accuracy "
              f"{'-' if accuracy is None else f'{accuracy:.4f}'} (floor {floor:.4f})",
              flush=True)
        if seen.dropped or time.monotonic() >= deadline:
            return seen
        sleep(POLL_S)


def promote(query: Query, deployer: Deployer, th: Thresholds, dry_run: bool) -> int:
    """Judge, then promote and watch: the exit code of the module's docstring."""
    try:
        champion, challenger = pair(query)
        evidence = gather(query, champion, challenger)
    except NoEvidence as exc:
        print(f"promote: {exc}", file=sys.stderr)
        return NO_EVIDENCE
    checks = decide(evidence, th)
    print(f"champion {champion}, challenger {challenger} in shadow:\n{table(checks)}",
          flush=True)
    if not all(c.ok for c in checks):
        print("promote: the evidence does not clear the thresholds: nothing changed")
        return NOT_CLEARED
    if dry_run:
        print("promote: the evidence clears the thresholds (--dry-run: nothing changed)")
        return PROMOTED
    previous, image = deployer.current_image(), deployer.image_for(challenger)
    print(f"promote: rolling out {image} (previous: {previous})", flush=True)
    if not deployer.update(image):
        print("promote: the rolling update failed; Swarm rolled it back", file=sys.stderr)
        return UPDATE_FAILED
    seen = watch(query, challenger, evidence.feedback_accuracy["challenger"] or 0.0, th)
    if seen.dropped:
        print(f"promote: live feedback accuracy {seen.accuracy:.4f} fell under "
              f"{seen.floor:.4f}: rolling back to {previous}", flush=True)
        deployer.update(previous)
        return ROLLED_BACK
    verdict = "not judged (too few feedback answers)" if seen.accuracy is None else \
        f"{seen.accuracy:.4f} on {seen.answers:.0f} feedback answers"
    print(f"promote: {challenger} is the champion; live accuracy {verdict}")
    return PROMOTED


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="python -m deploy.promote", description=(
        __doc__ or "").splitlines()[0], formatter_class=argparse.ArgumentDefaultsHelpFormatter)
    port = os.environ.get("SWARM_PROMETHEUS_PORT", "9090")
    parser.add_argument("--prometheus", default=f"http://127.0.0.1:{port}",
                        help="Prometheus that scrapes the stack")
    parser.add_argument("--stack", default=os.environ.get("STACK", "mnist"),
                        help="the Swarm stack")
    parser.add_argument("--watch-s", type=float, default=THRESHOLDS.watch_s,
                        help="seconds live feedback accuracy is watched after promotion")
    parser.add_argument("--dry-run", action="store_true",
                        help="judge the evidence only; change nothing")
    return parser.parse_args(argv)


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    th = replace(THRESHOLDS, watch_s=args.watch_s)
    return promote(prometheus(args.prometheus), Swarm(args.stack), th, args.dry_run)


if __name__ == "__main__":
    sys.exit(main())
