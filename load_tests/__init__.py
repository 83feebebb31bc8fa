"""Locust load tests: locust --config load_tests/locust.conf --host http://127.0.0.1:3000"""
