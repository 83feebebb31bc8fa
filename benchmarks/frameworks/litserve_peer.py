"""LitServe's peer: a `LitAPI` whose `decode_request` reads the form's `image` upload,
served by `LitServer(api, accelerator="cpu", workers_per_device=...)` as LitServe's docs show.

    .venv-bench-litserve/bin/python -m benchmarks.frameworks.litserve_peer \
        --model_path artifacts/model.onnx --port 8000 --workers 2
    curl -F image=@digit.png http://127.0.0.1:8000/predict

/health answers 200 once every inference worker has run `setup`. No client.py is written
(generate_client_file=False): the peer runs from the repository root.
"""

from __future__ import annotations

import litserve as ls

from benchmarks.frameworks.answer import DigitModel
from benchmarks.frameworks.cli import peer_args


class MNISTAPI(ls.LitAPI):
    def __init__(self, onnx_path: str) -> None:
        super().__init__()
        self.onnx_path = onnx_path

    def setup(self, device: str) -> None:
        self.model = DigitModel(self.onnx_path)

    def decode_request(self, request) -> bytes:
        return request["image"].file.read()

    def predict(self, x: bytes) -> dict:
        return self.model(x)

    def encode_response(self, output: dict) -> dict:
        return output


def main() -> None:
    args = peer_args(__doc__, "workers_per_device")
    server = ls.LitServer(MNISTAPI(args.model_path), accelerator="cpu",
                          workers_per_device=args.workers)
    server.run(host=args.host, port=args.port, generate_client_file=False)


if __name__ == "__main__":
    main()
