"""Accuracy of the running service on official test digits, per upload style.

    python -m clients.accuracy --url http://127.0.0.1:3000 --limit 2000

Each test digit is rendered the way real users send digits (clients/uploads.py)
and POSTed to /predict; the answer is compared with the true label. The PNG
style is the MNIST digit itself, so its accuracy must equal the model's offline
accuracy on the same digits.
"""

from __future__ import annotations

import argparse
import json
import time
from concurrent.futures import ThreadPoolExecutor

import httpx
import numpy as np

from clients.uploads import UPLOAD_STYLES
from core.data import resolve_or_exit


def style_accuracy(client: httpx.Client, render, images: np.ndarray, labels: np.ndarray,
                   threads: int) -> dict[str, float]:
    def one(i: int) -> int:
        resp = client.post("/predict", files={"image": ("digit", render(images[i]))})
        resp.raise_for_status()
        return int(resp.json()["digit"])

    t0 = time.perf_counter()
    with ThreadPoolExecutor(threads) as pool:
        preds = np.fromiter(pool.map(one, range(len(labels))), dtype=np.int64)
    return {"n": len(labels), "accuracy": float((preds == labels).mean()),
            "seconds": time.perf_counter() - t0}


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0],
                                formatter_class=argparse.ArgumentDefaultsHelpFormatter)
    p.add_argument("--url", default="http://127.0.0.1:3000", help="service base URL")
    p.add_argument("--data-dir", default=None, help="MNIST IDX folder (else $MNIST_DIR, ...)")
    p.add_argument("--limit", type=int, default=2000, help="test digits per style")
    p.add_argument("--styles", nargs="+", default=sorted(UPLOAD_STYLES),
                   choices=sorted(UPLOAD_STYLES), help="upload styles to evaluate")
    p.add_argument("--threads", type=int, default=4, help="concurrent requests")
    p.add_argument("--json", default=None, help="also write the results to this file")
    args = p.parse_args(argv)
    ds = resolve_or_exit(args.data_dir, allow_download=False)
    images, labels = ds.test_images[:args.limit], ds.test_labels[:args.limit]
    results = {}
    with httpx.Client(base_url=args.url, timeout=30) as client:
        model = client.get("/model").json()
        print(f"model {model['tag']} (offline test accuracy {model['test_accuracy']:.4f} on "
              f"{model['dataset']['test_size']} digits), provider {model['provider']}")
        print(f"{'style':<26}{'n':>7}{'accuracy':>10}{'req/s':>8}")
        for style in args.styles:
            r = style_accuracy(client, UPLOAD_STYLES[style], images, labels, args.threads)
            results[style] = r
            print(f"{style:<26}{r['n']:>7}{r['accuracy']:>10.4f}"
                  f"{r['n'] / r['seconds']:>8.0f}", flush=True)
    if args.json:
        with open(args.json, "w") as f:
            json.dump({"model": model, "data": ds.to_dict(), "results": results}, f, indent=2)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
