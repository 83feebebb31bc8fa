"""Ray Serve's peer: a deployment of `--workers` replicas behind a FastAPI ingress
(`@serve.ingress(app)`), started from a script with `serve.run` as Ray Serve's docs show.

    RAY_USAGE_STATS_ENABLED=0 .venv-bench-ray/bin/python -m benchmarks.frameworks.ray_peer \
        --model_path artifacts/model.onnx --port 8000 --workers 2
    curl -F image=@digit.png http://127.0.0.1:8000/predict

Sized for a sandbox: a local Ray cluster of its own, no dashboard, a small object store
(nothing goes through it), the HTTP proxy on 127.0.0.1:port. No `from __future__ import
annotations`: Serve's ingress rebuilds the methods' signatures, and string annotations
leave FastAPI reading the upload as a query parameter (422). `serve.run` returns once every
replica is running; /readyz answers 200 only then too. SIGTERM shuts Serve and Ray down.
"""

import os
import signal
import sys
from typing import Annotated

import ray
from fastapi import FastAPI, File, UploadFile
from fastapi.responses import JSONResponse
from ray import serve
from ray.serve.schema import ApplicationStatus

from benchmarks.frameworks.answer import DigitModel
from benchmarks.frameworks.cli import peer_args

OBJECT_STORE_BYTES = 128 * 2**20  # Ray's floor is 75 MiB; its default, 30 % of the RAM

app = FastAPI()


@serve.deployment
@serve.ingress(app)
class MNISTDeployment:
    def __init__(self, onnx_path: str) -> None:
        self.model = DigitModel(onnx_path)

    @app.post("/predict")
    async def predict(self, image: Annotated[UploadFile, File()]) -> dict:
        return self.model(await image.read())

    @app.get("/readyz")
    def readyz(self) -> JSONResponse:
        """200 once the application runs, every replica with it: the proxy routes here as
        soon as one replica is up."""
        app_name = serve.get_replica_context().app_name
        status = serve.status().applications[app_name].status
        return JSONResponse({"status": status}, 200 if status == ApplicationStatus.RUNNING
                            else 503)


def main() -> None:
    args = peer_args(__doc__, "replicas")
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(0))
    # Each replica reserves one CPU: a 2-core machine must still fit `workers` of them.
    ray.init(num_cpus=max(args.workers, os.cpu_count() or 1), include_dashboard=False,
             object_store_memory=OBJECT_STORE_BYTES)
    try:
        serve.start(http_options={"host": args.host, "port": args.port})
        deployment = MNISTDeployment.options(num_replicas=args.workers)  # type: ignore[attr-defined]
        serve.run(deployment.bind(args.model_path))
        signal.pause()
    finally:
        serve.shutdown()
        ray.shutdown()


if __name__ == "__main__":
    main()
