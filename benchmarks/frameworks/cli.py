"""The command line of a peer that has none of its framework's own (LitServe, Ray Serve):
the model, where to listen, and how many workers or replicas.

    .venv-bench-litserve/bin/python -m benchmarks.frameworks.litserve_peer --help
"""

from __future__ import annotations

import argparse


def peer_args(doc: str | None, workers: str) -> argparse.Namespace:
    """--model_path, --host, --port and --workers (`workers`: what the framework calls them)."""
    parser = argparse.ArgumentParser(description=doc,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--model_path", required=True, help="the model.onnx to serve")
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=8000)
    parser.add_argument("--workers", type=int, default=2, help=workers)
    return parser.parse_args()
