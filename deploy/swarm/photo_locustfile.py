"""Photo-sized uploads for the Swarm proof: phone-photo JPEGs of real digits, every answer checked.

    locust -f deploy/swarm/photo_locustfile.py --host http://127.0.0.1:8080 -u 8 -t 30s --headless

The load test's users (load_tests/locustfile.py) send 28x28 PNGs of a few hundred
bytes, which the proxy can always resend. These users send what a phone sends: a digit
on textured paper, 1024x1024 RGB JPEG, 262-266 KB, to /predict; deploy/swarm/e2e.py
rolls out and kills replicas under them. Same checks as the load test (status, schema,
accuracy) through its MNISTUser; its options and SLO gate come with the import.
"""

from __future__ import annotations

import io
import random
import uuid

import numpy as np
from locust import events, task
from locust.env import Environment
from PIL import Image

from core.data import resolve
from load_tests.locustfile import MNISTUser

PHOTOS = 32  # distinct bodies; rendering one takes ~75 ms
SIDE, QUALITY = 1024, 92  # 262-266 KB: the size of the upload the proxy used to drop


def photo(digit: np.ndarray, seed: int) -> bytes:
    """Dark ink on light paper with colour grain, as a phone camera's JPEG."""
    rng = np.random.default_rng(seed)
    big = Image.fromarray(digit).resize((SIDE, SIDE), Image.Resampling.BICUBIC)
    paper = 235 - 0.85 * np.asarray(big, np.float32)
    pixels = np.clip(paper[..., None] + rng.normal(0, 6, (SIDE, SIDE, 3)), 0, 255)
    buf = io.BytesIO()
    Image.fromarray(pixels.astype(np.uint8), "RGB").save(buf, "JPEG", quality=QUALITY)
    return buf.getvalue()


def multipart_jpeg(data: bytes) -> tuple[bytes, str]:
    boundary = uuid.uuid4().hex
    body = (f'--{boundary}\r\nContent-Disposition: form-data; name="image"; '
            f'filename="photo.jpg"\r\nContent-Type: image/jpeg\r\n\r\n'.encode() + data
            + f"\r\n--{boundary}--\r\n".encode())
    return body, f"multipart/form-data; boundary={boundary}"


@events.init.add_listener
def _photos(environment: Environment, **_) -> None:
    ds = resolve(None, seed=1)
    rng = np.random.default_rng(1)
    idx = rng.choice(len(ds.test_labels), size=PHOTOS, replace=False)
    jpegs = [photo(ds.test_images[i], int(i)) for i in idx]
    environment.mnist_photos = [  # type: ignore[attr-defined]
        (*multipart_jpeg(j), int(ds.test_labels[i])) for j, i in zip(jpegs, idx, strict=True)]
    sizes = sorted(map(len, jpegs))
    # deploy/swarm/e2e.py reads this line for its report.
    print(f"photo payloads: {PHOTOS} JPEGs {SIDE}x{SIDE} of {sizes[0]}-{sizes[-1]} bytes",
          flush=True)


class PhotoUser(MNISTUser):
    """A phone app posting one photo of a digit at a time."""

    @task
    def predict_photo(self) -> None:
        body, ctype, label = random.choice(self.environment.mnist_photos)  # type: ignore[attr-defined]
        self._post("/predict", body, ctype, [label])
