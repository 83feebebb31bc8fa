"""Prometheus for the service: scrape configurations, recording and alerting rules, all
generated from the project's one home of each threshold, and the image that runs them.

    python -m deploy.prometheus --write     # regenerate every generated file
    docker build -t mnist-prometheus:latest deploy/prometheus
"""
