"""The Swarm proxy's image, run with a test's version of its configuration: HAProxy from
deploy/swarm/proxy in front of stand-in replicas on loopback (imported by tests).

    pytest tests/deploy/test_proxy_grpc.py tests/security/test_proxy_resend.py
"""

from __future__ import annotations

import shutil
import subprocess
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest

from tests.helpers import ROOT

PROXY = ROOT / "deploy/swarm/proxy"


def skip_without_docker() -> None:
    """Skip the calling test where the proxy image cannot be built and run."""
    if shutil.which("docker") is None or subprocess.run(
            ["docker", "info"], capture_output=True).returncode:
        pytest.skip("Docker is not available: HAProxy runs from the proxy image")
    if subprocess.run(["docker", "image", "inspect", "python:3.11-slim"],
                      capture_output=True).returncode:
        pytest.skip("no python:3.11-slim image to build the proxy image from")


@contextmanager
def running_proxy(config: str, image: str, folder: Path) -> Iterator[str]:
    """HAProxy from the proxy image (this checkout's, built as `image`) with `config` as
    its configuration, on the host network, until the block ends: its container's name."""
    skip_without_docker()
    build = subprocess.run(["docker", "build", "-q", "-t", image, str(PROXY)],
                           capture_output=True, text=True)
    assert build.returncode == 0, build.stderr  # the image refuses a config HAProxy would
    cfg = folder / "haproxy.cfg"
    cfg.write_text(config)
    cfg.chmod(0o644)
    name = f"{image.replace(':', '-')}-{uuid.uuid4().hex[:8]}"
    subprocess.run(["docker", "run", "-d", "--rm", "--name", name, "--network", "host",
                    "-v", f"{cfg}:/etc/haproxy/haproxy.cfg:ro", image],
                   check=True, capture_output=True)
    try:
        yield name
    finally:
        subprocess.run(["docker", "rm", "-f", name], capture_output=True)
