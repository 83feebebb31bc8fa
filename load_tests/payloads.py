"""Request bodies for the load test, built once before the first user starts.

    python -c "from load_tests.payloads import build; print(build(10).summary())"

Real digits (the IDX folder in $MNIST_DIR, resolved like the training data),
each with its true label so that every answer under load is checked.
"""

from __future__ import annotations

import json
import uuid
from dataclasses import dataclass

import numpy as np

from core.data import resolve
from core.png import encode_png


def multipart(field: str, files: list[bytes], filename: str = "digit.png",
              content_type: str = "image/png",
              text: dict[str, str] | None = None) -> tuple[bytes, str]:
    """(body, content type) of a multipart/form-data request with `files` under `field`,
    each part of `content_type`, then the `text` fields (name -> value)."""
    boundary = uuid.uuid4().hex
    parts = []
    for data in files:
        parts.append(
            f'--{boundary}\r\nContent-Disposition: form-data; name="{field}"; '
            f'filename="{filename}"\r\nContent-Type: {content_type}\r\n\r\n'.encode()
            + data + b"\r\n")
    for name, value in (text or {}).items():
        parts.append(f'--{boundary}\r\nContent-Disposition: form-data; name="{name}"'
                     f'\r\n\r\n{value}\r\n'.encode())
    body = b"".join(parts) + f"--{boundary}--\r\n".encode()
    return body, f"multipart/form-data; boundary={boundary}"


@dataclass
class Payloads:
    images: np.ndarray  # uint8 [n, 28, 28], in the order of labels, predict and pixels
    labels: np.ndarray
    predict: list[tuple[bytes, str]]  # one PNG each, multipart-encoded
    pixels: list[bytes]  # JSON bodies for /predict_pixels
    batches: list[tuple[bytes, str, np.ndarray]]  # multipart body, type, labels
    source: str

    def summary(self) -> str:
        return (f"{len(self.labels)} real test digits from {self.source}; "
                f"{len(self.batches)} batches of {len(self.batches[0][2])}")


def build(n: int = 1000, batch_size: int = 16, seed: int = 0) -> Payloads:
    ds = resolve(None, seed=seed)
    rng = np.random.default_rng(seed)
    idx = rng.choice(len(ds.test_labels), size=min(n, len(ds.test_labels)), replace=False)
    images, labels = ds.test_images[idx], ds.test_labels[idx]
    pngs = [encode_png(d) for d in images]
    batches = []
    for start in range(0, len(pngs) - batch_size + 1, batch_size):
        body, ctype = multipart("images", pngs[start:start + batch_size])
        batches.append((body, ctype, labels[start:start + batch_size]))
    return Payloads(
        images=images,
        labels=labels,
        predict=[multipart("image", [p]) for p in pngs],
        pixels=[json.dumps({"pixels": d.tolist()}).encode() for d in images],
        batches=batches,
        source=f"{ds.source} ({ds.location})",
    )
