"""The bento image (`bentoml build` + `bentoml containerize`, docker/e2e.sh) exposes the
ports the service serves on: BentoML's HTTP port and the Open Inference Protocol's gRPC
port, which docker/bento.Dockerfile.j2 adds to BentoML's Dockerfile.

    pytest tests/deploy/test_bento_image.py

The Dockerfile is rendered as `bentoml build` renders it, from bentofile.yaml, without
building a bento (no model needed).
"""

from __future__ import annotations

import re
from pathlib import Path

import yaml

from service.settings import PREFIX, Settings
from tests.helpers import ROOT


def rendered_dockerfile(tmp: Path) -> str:
    """bentofile.yaml's Dockerfile, rendered by BentoML (its template included)."""
    from bentoml._internal.bento.build_config import BentoBuildConfig
    from bentoml._internal.container.generate import generate_containerfile

    with open(ROOT / "bentofile.yaml") as f:
        config = BentoBuildConfig.from_yaml(f).with_defaults()
    return generate_containerfile(config.docker, str(ROOT), conda=config.conda, bento_fs=tmp)


def test_the_bento_image_exposes_the_http_and_grpc_ports(tmp_path):
    bentofile = yaml.safe_load((ROOT / "bentofile.yaml").read_text())
    env = {e["name"]: e["value"] for e in bentofile.get("envs", [])}
    grpc = int(env.get(PREFIX + "GRPC_PORT", Settings.model_fields["grpc_port"].default))
    exposed = {int(port) for line in re.findall(r"^EXPOSE (.+)$", rendered_dockerfile(tmp_path),
                                                re.M) for port in line.split()}
    assert {3000, grpc} <= exposed  # 3000: BentoML's port, where the bento serves HTTP
