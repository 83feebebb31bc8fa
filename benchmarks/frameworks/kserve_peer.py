"""KServe's peer: a `kserve.Model` served by `kserve.ModelServer` (v1 route), the way
KServe's custom-model docs show, parsing the multipart upload itself.

    .venv-bench-kserve/bin/python -m benchmarks.frameworks.kserve_peer --model_name mnist \
        --model_path artifacts/model.onnx --http_port 8080 --workers 2 --enable_grpc false
    curl -F image=@digit.png http://127.0.0.1:8080/v1/models/mnist:predict

ModelServer's own arguments (--http_port, --workers, ...) come from its parser; KServe
binds 0.0.0.0 (it has no host option). For a body that is not JSON, KServe 0.21 hands
`preprocess` the raw bytes and the request's headers (DataPlane.decode), so the model
parses the one `image` part. With workers > 1 KServe spawns uvicorn processes and pickles
the registered model into each: the onnxruntime session cannot be pickled, so each
process opens its own.
"""

from __future__ import annotations

import argparse

from kserve import Model, ModelServer, model_server

from benchmarks.frameworks.answer import DigitModel
from benchmarks.frameworks.multipart import file_part


class MNIST(Model):
    def __init__(self, name: str, onnx_path: str) -> None:
        super().__init__(name)
        self.onnx_path = onnx_path
        self.model: DigitModel | None = None
        self.load()

    def load(self) -> bool:
        self.model = DigitModel(self.onnx_path)
        self.ready = True
        return self.ready

    def __getstate__(self) -> dict:
        return {**self.__dict__, "model": None}

    def __setstate__(self, state: dict) -> None:
        self.__dict__.update(state)
        self.load()

    def preprocess(self, payload: bytes, headers: dict[str, str] | None = None) -> bytes:
        return file_part(payload, (headers or {}).get("content-type", ""))

    def predict(self, payload: bytes, headers: dict[str, str] | None = None) -> dict:
        assert self.model is not None
        return {"predictions": [self.model(payload)]}


def main() -> None:
    parser = argparse.ArgumentParser(parents=[model_server.parser])
    parser.add_argument("--model_path", required=True, help="the model.onnx to serve")
    args, _ = parser.parse_known_args()
    ModelServer().start([MNIST(args.model_name, args.model_path)])


if __name__ == "__main__":
    main()
