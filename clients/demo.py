"""Demo: start the service, send it digits the way users do, print its answers, stop it.

    python -m clients.demo                 # after `python -m training`
    python -m clients.demo --loadtest 20   # then a 20 s Locust run against it

Uses the model store in $BENTOML_HOME and the test digits found like training's data.
"""

from __future__ import annotations

import argparse
import subprocess
import sys
import tempfile
from pathlib import Path

import httpx

from clients import server_process as process
from clients.uploads import UPLOAD_STYLES
from core.data import resolve_or_exit

SHOWN = ("already_mnist", "jpeg_on_paper", "rgba_transparent", "large_canvas_off_centre")


def post_samples(base_url: str, images, labels) -> int:
    """POST one digit per upload style; returns how many were answered correctly."""
    correct = 0
    with httpx.Client(base_url=base_url, timeout=30) as client:
        for style, image, label in zip(SHOWN, images, labels, strict=False):
            data = UPLOAD_STYLES[style](image)
            body = client.post("/predict", files={"image": ("digit", data)}).json()
            ok = body["digit"] == label
            correct += ok
            print(f"  POST /predict  {style:<24} {len(data):>7} bytes  true {label}  ->  "
                  f"digit {body['digit']} (confidence {body['confidence']:.3f})"
                  f"{'' if ok else '  WRONG'}")
        bad = client.post("/predict", files={"image": ("x.gif", b"GIF89a" + bytes(16))})
        print(f"  POST /predict  a GIF                    -> {bad.status_code} {bad.json()}")
    return correct


def run_loadtest(base_url: str, seconds: int, report_dir: Path) -> int:
    """A short Locust run (load_tests/) against the running service."""
    report_dir.mkdir(parents=True, exist_ok=True)
    cmd = [str(Path(sys.executable).with_name("locust")), "-f", "load_tests/locustfile.py",
           "--config", "load_tests/locust.conf", "--host", base_url, "--run-time",
           f"{seconds}s", "--users", "8", "--spawn-rate", "8",
           "--csv", str(report_dir / "demo"), "--html", str(report_dir / "demo.html"),
           "--only-summary", "--loglevel", "WARNING"]
    print(f"\n== load test: {seconds}s, 8 users against {base_url}", flush=True)
    code = subprocess.run(cmd, cwd=process.ROOT).returncode
    print(f"  report: {report_dir / 'demo.html'} (CSV: {report_dir / 'demo_stats.csv'})")
    return code


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0],
                                formatter_class=argparse.ArgumentDefaultsHelpFormatter)
    p.add_argument("--port", type=int, default=0, help="port to serve on (0: a free one)")
    p.add_argument("--loadtest", type=int, default=0, help="seconds of Locust load (0: none)")
    p.add_argument("--reports", default="reports", help="where the load-test report goes")
    args = p.parse_args(argv)
    ds = resolve_or_exit(None, allow_download=False)
    port = args.port or process.free_port()
    base = f"http://127.0.0.1:{port}"
    with tempfile.NamedTemporaryFile("w+", prefix="mnist-serve-", suffix=".log",
                                     delete=False) as log:
        print(f"\n== serving: bentoml serve service.service:MNISTService on {base} "
              f"(log {log.name})")
        proc = process.start(port, log)
        try:
            try:
                seconds = process.wait_ready(proc, base)
            except RuntimeError as exc:
                log.seek(0)
                print(f"error: {exc}\n{log.read()[-2000:]}")
                return 1
            model = httpx.get(base + "/model").json()
            print(f"  ready in {seconds:.1f}s: {model['tag']}, provider {model['provider']}, "
                  f"offline test accuracy {model['test_accuracy']:.4f}")
            n = len(SHOWN)
            correct = post_samples(base, ds.test_images[:n], ds.test_labels[:n])
            print(f"  {correct}/{n} correct")
            if args.loadtest:
                return run_loadtest(base, args.loadtest, Path(args.reports))
            return 0
        finally:
            process.stop(proc)
            print("== service stopped")

if __name__ == "__main__":
    raise SystemExit(main())
