"""Drain on SIGTERM: readiness fails first, the proxy stops routing, then the server stops.

    python -m service.drain -- bentoml serve service.service:MNISTService --port 3000
    (the image's CMD and `make serve` run this; MNIST_DRAIN_S sets the drain)

`bentoml serve` closes its listening socket within ~100 ms of SIGTERM, long before a
proxy checking /readyz every second (HAProxy here, a kubelet's readiness probe) stops
sending it requests: a connection made, or a request sent on a kept-alive connection,
in between is reset. So the container's main process is this supervisor. On SIGTERM
it creates a marker file whose path every worker knows (MNIST_DRAIN_MARKER in their
environment); from then on DrainingReadiness answers /readyz with 503 and closes each
connection after its response, while serving goes on. MNIST_DRAIN_S later (longer than
the proxy's check interval x fall), it forwards SIGTERM to `bentoml serve`, which
finishes what is in flight, and exits with its code. Ctrl-C, or a second SIGTERM,
stops at once.
"""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from starlette.types import ASGIApp, Message, Receive, Scope, Send

from service.lifecycle import die_with_parent

MARKER_ENV = "MNIST_DRAIN_MARKER"  # set by the supervisor for its child: not a setting


class DrainMarker:
    """Whether the supervisor has started draining: its marker file exists (the path in
    MNIST_DRAIN_MARKER, or `marker`). Without a supervisor, never."""

    def __init__(self, marker: str | None = None) -> None:
        path = marker if marker is not None else os.environ.get(MARKER_ENV)
        self._marker = Path(path) if path else None
        self._draining = False

    def draining(self) -> bool:
        # One stat per call (~2 us) until the drain starts; it is never undone.
        if not self._draining and self._marker is not None:
            self._draining = self._marker.exists()
        return self._draining


# The readiness checks a drain fails, with the body each answers then: BentoML's, and the
# Open Inference Protocol's (whose clients read the status; gRPC's ServerReady follows the
# same marker in service/oip_grpc.py).
NOT_READY = {"/readyz": (b"text/plain; charset=utf-8", b"draining\n"),
             "/v2/health/ready": (b"application/json", b'{"ready": false}')}


class DrainingReadiness:
    """ASGI middleware: once the marker exists, the readiness checks (NOT_READY) are 503
    and every response carries `Connection: close`, so that kept-alive clients (a proxy's
    pool, a client pinned to this pod by conntrack) reconnect, to a replica that is not
    going away."""

    def __init__(self, app: ASGIApp, marker: str | None = None) -> None:
        self.app = app
        self.draining = DrainMarker(marker).draining

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or not self.draining():
            await self.app(scope, receive, send)
            return
        if scope["path"] in NOT_READY:
            content_type, body = NOT_READY[scope["path"]]
            await send({"type": "http.response.start", "status": 503,
                        "headers": [(b"content-type", content_type),
                                    (b"connection", b"close")]})
            await send({"type": "http.response.body", "body": body})
            return

        async def closing(message: Message) -> None:
            if message["type"] == "http.response.start":
                headers = [(k, v) for k, v in message.get("headers", [])
                           if k.lower() != b"connection"]
                message = {**message, "headers": [*headers, (b"connection", b"close")]}
            await send(message)

        await self.app(scope, receive, closing)


class _Supervisor:
    """The signal handlers around one child: drain on the first SIGTERM, stop at once on
    a second one or on SIGINT. Event-driven (a timer, no polling): idle, it costs nothing."""

    def __init__(self, child: subprocess.Popen, marker: Path) -> None:
        self.child, self.marker = child, marker
        self.draining = self.stopping = False

    def on_term(self, _sig: int, _frame: object) -> None:
        if self.draining:  # the second one: no more waiting
            self.forward(signal.SIGTERM)
            return
        t0 = time.monotonic()
        self.draining = True
        self.marker.touch()  # first, so that readiness fails as soon as it can
        drain_s = _drain_seconds()
        print(f"drain: SIGTERM: /readyz answers 503 for {drain_s:g} s, then the server "
              "stops", file=sys.stderr, flush=True)
        left = drain_s - (time.monotonic() - t0)
        if self.stopping:  # a second signal came while the settings were read
            return
        if left > 0:
            signal.signal(signal.SIGALRM, lambda *_: self.forward(signal.SIGTERM))
            signal.setitimer(signal.ITIMER_REAL, left)
        else:
            self.forward(signal.SIGTERM)

    def forward(self, sig: int) -> None:
        signal.setitimer(signal.ITIMER_REAL, 0)
        self.stopping = True
        self.child.send_signal(sig)  # a no-op once it has been reaped


def _drain_seconds() -> float:
    """MNIST_DRAIN_S, read when it is needed: the settings module pulls in pydantic,
    which this process, alive as long as the container, need not carry until then. The
    server validated the same environment when it started."""
    from service.settings import load_settings

    try:
        return load_settings().drain_s
    except ValueError as exc:  # the server could not have started: nothing to drain
        print(f"drain: {exc}; stopping now", file=sys.stderr, flush=True)
        return 0.0


def supervise(cmd: list[str]) -> int:
    """Run cmd until it exits, draining on SIGTERM as the module says; its exit code."""
    folder = Path(tempfile.mkdtemp(prefix="mnist-drain-"))
    try:
        # Its own process group: a signal to ours (a terminal's Ctrl-C, `kill -- -PGID`)
        # reaches the server only through here. PR_SET_PDEATHSIG: if this process is
        # SIGKILLed, the server gets SIGTERM rather than running on unsupervised.
        child = subprocess.Popen(cmd, env={**os.environ, MARKER_ENV: str(folder / "draining")},
                                 process_group=0, preexec_fn=die_with_parent)
        sup = _Supervisor(child, folder / "draining")
        signal.signal(signal.SIGTERM, sup.on_term)
        signal.signal(signal.SIGINT, lambda *_: sup.forward(signal.SIGINT))
        code = child.wait()  # handlers run in between; waitpid resumes after them
        signal.setitimer(signal.ITIMER_REAL, 0)
    finally:
        shutil.rmtree(folder, ignore_errors=True)
    return code if code >= 0 else 128 - code  # killed by a signal: the shell's convention


def main(argv: list[str]) -> int:
    cmd = argv[argv.index("--") + 1:] if "--" in argv else argv
    if not cmd:
        print(__doc__.strip().splitlines()[2].strip(), file=sys.stderr)
        return 2
    return supervise(cmd)


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
