"""Deployments: Docker Swarm (deploy/swarm, scripts), Kubernetes (deploy/k8s, manifests) and
Prometheus (deploy.prometheus: its configuration and rules, generated from Python).

    python -m deploy.prometheus --write
"""
