"""Prometheus's scrape configurations: one for docker compose, one for the Swarm stack.

    python -m deploy.prometheus --write     # writes compose.yml and swarm.yml beside this

Prometheus has no include directive, so both files are generated from here and differ only
in how they find the api: compose names its one container, Swarm lists every replica in
DNS (`tasks.api`, one A record per task: one target per replica). Both load the same rule
file (deploy/prometheus/rules.py writes it).
"""

from __future__ import annotations

from typing import Any

# Prometheus's own default scrape interval, which most deployments keep; rules evaluate
# as often, so that an alert never waits for a rule more than for a sample.
SCRAPE_INTERVAL = "15s"
EVALUATION_INTERVAL = "15s"
JOB = "mnist-api"
API_SERVICE = "api"  # the api's service name in docker-compose.yml and deploy/swarm/stack.yml
API_PORT = 3000  # the service's HTTP port in its image (service/Dockerfile's EXPOSE)
METRICS_PATH = "/metrics"
# How often Swarm's DNS is asked for the replicas (Prometheus's default): a replica that
# a rollout retires is scraped, and fails, until the next refresh.
DNS_REFRESH = "30s"
RULE_FILE = "mnist-rules.yml"  # beside the configuration, in the repository and the image
CONFIGS = ("compose", "swarm")  # each written as <name>.yml


def _common() -> dict[str, Any]:
    return {"global": {"scrape_interval": SCRAPE_INTERVAL,
                       "evaluation_interval": EVALUATION_INTERVAL},
            "rule_files": [RULE_FILE]}


def _job(**discovery: Any) -> dict[str, Any]:
    return {"job_name": JOB, "metrics_path": METRICS_PATH, **discovery}


def compose() -> dict[str, Any]:
    """docker compose's `monitoring` profile: the one api container, by its service name."""
    return {**_common(), "scrape_configs": [
        _job(static_configs=[{"targets": [f"{API_SERVICE}:{API_PORT}"]}])]}


def swarm() -> dict[str, Any]:
    """The Swarm stack: every api replica, found in DNS."""
    return {**_common(), "scrape_configs": [
        _job(dns_sd_configs=[{"names": [f"tasks.{API_SERVICE}"], "type": "A",
                              "port": API_PORT, "refresh_interval": DNS_REFRESH}])]}


def config(name: str) -> dict[str, Any]:
    return {"compose": compose, "swarm": swarm}[name]()
