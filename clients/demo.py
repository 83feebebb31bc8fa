"""Demo: start the service, send it digits the way users do, print its answers, stop it.

    python -m clients.demo                 # after `python -m training`
    python -m clients.demo --loadtest 20   # then a 20 s Locust run against it
    python -m clients.demo --has-model     # exit 0 when the store holds a model to serve

Uses the model store in $BENTOML_HOME and the test digits found like training's data.
Prints the registered model's figures first, from the metrics.json stored with it.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import tempfile
from pathlib import Path
from typing import Any

import httpx

from clients import server_process as process
from clients.uploads import UPLOAD_STYLES
from core import modelstore
from core.contract import MODEL_NAME
from core.data import resolve_or_exit
from core.modelstore import read_latest
from load_tests.command import locust_command

SHOWN = ("already_mnist", "jpeg_on_paper", "rgba_transparent", "large_canvas_off_centre")
LOADTEST_USERS = 8


def store_home() -> Path:
    """The BentoML home `bentoml serve` reads."""
    return Path(modelstore.home()).expanduser()


def registered_version(home: Path) -> Path | None:
    """The folder of the version `latest` names in the store under `home`; None when
    there is none (then `make demo` trains first)."""
    model_dir = home / "models" / MODEL_NAME
    version = read_latest(model_dir)
    return model_dir / version if version else None


def model_summary(metrics: dict[str, Any]) -> str:
    """One line of a model's metrics.json: test accuracy, data, ONNX parity."""
    data = metrics["dataset"]
    return (f"  test accuracy {metrics['test_accuracy']:.4f} on {data['test_size']} digits "
            f"({data['source']}{', FALLBACK DATA' if data['is_fallback'] else ''}); "
            f"ONNX parity max |dlogit| {metrics['parity']['max_abs_logit_diff']:.1e}")


def print_model(home: Path, version: Path) -> None:
    print(f"\n== model: {MODEL_NAME}:{version.name}, registered in {home}; its reports in "
          f"{version}/")
    metrics = version / "metrics.json"
    if metrics.is_file():
        print(model_summary(json.loads(metrics.read_text())))


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
    cmd = locust_command(base_url, users=LOADTEST_USERS, seconds=seconds,
                         csv_prefix=report_dir / "demo", html=report_dir / "demo.html",
                         extra=["--loglevel", "WARNING"])
    print(f"\n== load test: {seconds}s, {LOADTEST_USERS} users against {base_url}", flush=True)
    code = subprocess.run(cmd, cwd=process.ROOT).returncode
    print(f"  report: {report_dir / 'demo.html'} (CSV: {report_dir / 'demo_stats.csv'})")
    return code


def serve_and_show(args: argparse.Namespace) -> int:
    """Serve the registered model, show its answers, run the load test if asked, stop."""
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
            shown = len(SHOWN)
            correct = post_samples(base, ds.test_images[:shown], ds.test_labels[:shown])
            print(f"  {correct}/{shown} correct")
            if args.loadtest:
                return run_loadtest(base, args.loadtest, Path(args.reports))
            return 0
        finally:
            process.stop(proc)
            print("== service stopped")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0],
                                     formatter_class=argparse.ArgumentDefaultsHelpFormatter)
    parser.add_argument("--port", type=int, default=0, help="port to serve on (0: a free one)")
    parser.add_argument("--loadtest", type=int, default=0,
                        help="seconds of Locust load (0: none)")
    parser.add_argument("--reports", default="reports", help="where the load-test report goes")
    parser.add_argument("--has-model", action="store_true",
                        help="only say whether the store holds a model: exit 0 if so, else 1")
    args = parser.parse_args(argv)
    home = store_home()
    version = registered_version(home)
    if args.has_model:
        return 0 if version else 1
    if version is not None:  # without one, the service's refusal names the fix
        print_model(home, version)
    return serve_and_show(args)


if __name__ == "__main__":
    raise SystemExit(main())
