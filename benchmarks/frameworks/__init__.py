"""The serving frameworks a user would pick instead of this service, as `make bench` peers.

    make bench-frameworks    # their virtual environments, one each, pinned
    python -c "from benchmarks.frameworks import FRAMEWORKS as F; print([f.missing() for f in F])"

Each peer serves the same model.onnx (answer.py) from its own venv, `.venv-bench-<name>`,
installed from `<name>/requirements.txt`; its app file (`<name>_peer.py`) imports nothing
of the project but this package's own modules. A Framework starts its peer on port (on
127.0.0.1; KServe, which has no host option, on every address) in a session of its own;
`stop` ends that session and every process it spawned, by PID, including those that left
it (Ray's raylet and workers may).
"""

from __future__ import annotations

import contextlib
import os
import re
import signal
import subprocess
import time
from dataclasses import dataclass
from pathlib import Path
from typing import IO

HERE = Path(__file__).resolve().parent
ROOT = HERE.parents[1]
KSERVE_MODEL = "mnist"


def venv_of(name: str) -> Path:
    return ROOT / f".venv-bench-{name}"


def requirements_of(name: str) -> Path:
    return HERE / name / "requirements.txt"


def pins(path: Path) -> dict[str, str]:
    """package -> version of every `name==version` line of a requirements file."""
    found = {}
    for line in path.read_text().splitlines():
        match = re.fullmatch(r"([A-Za-z0-9_.-]+)(?:\[[^\]]*\])?==(\S+)", line.strip())
        if match:
            found[match.group(1).lower().replace("_", "-")] = match.group(2)
    return found


@dataclass(frozen=True)
class Framework:
    name: str  # the key in docs/benchmarks.json, and the venv's and folder's suffix
    package: str  # the pinned distribution whose version the label shows
    title: str  # the label, "{version}" standing for the pin
    predict_path: str  # where Locust POSTs the multipart upload
    ready_path: str  # 200 once the peer's workers or replicas can answer
    args: tuple[str, ...]  # after `python -m`; {port}, {onnx}, {workers} filled in
    env: tuple[tuple[str, str], ...] = ()

    @property
    def venv(self) -> Path:
        return venv_of(self.name)

    @property
    def requirements(self) -> Path:
        return requirements_of(self.name)

    @property
    def version(self) -> str:
        return pins(self.requirements)[self.package]

    @property
    def label(self) -> str:
        """The table's words; "2.60.0" reads "2.60"."""
        return self.title.format(version=self.version.removesuffix(".0"))

    def missing(self) -> str | None:
        """Why the peer cannot run here, or None."""
        if not (self.venv / ".installed").exists():
            return f"{self.venv.name} is not installed (make bench-frameworks)"
        return None

    def start(self, port: int, onnx_path: Path, workers: int,
              log: IO[str] | int | None) -> subprocess.Popen:
        """The peer on port, in its own session, from the repository root."""
        reason = self.missing()
        if reason:
            raise RuntimeError(reason)
        args = [a.format(port=port, onnx=onnx_path, workers=workers) for a in self.args]
        env = {**os.environ, **dict(self.env), "PYTHONPATH": str(ROOT)}
        return subprocess.Popen([str(self.venv / "bin" / "python"), "-m", *args], cwd=ROOT,
                                env=env, stdout=log, stderr=subprocess.STDOUT,
                                start_new_session=True)


FRAMEWORKS: tuple[Framework, ...] = (
    Framework(
        "kserve", "kserve",
        "KServe {version} ModelServer (v1 route, multipart parsed by the model)",
        f"/v1/models/{KSERVE_MODEL}:predict", f"/v1/models/{KSERVE_MODEL}",
        ("benchmarks.frameworks.kserve_peer", "--model_name", KSERVE_MODEL,
         "--model_path", "{onnx}", "--http_port", "{port}", "--workers", "{workers}",
         "--enable_grpc", "false")),
    Framework(
        "litserve", "litserve", "LitServe {version} (`workers_per_device` = workers)",
        "/predict", "/health",
        ("benchmarks.frameworks.litserve_peer", "--model_path", "{onnx}", "--port", "{port}",
         "--workers", "{workers}")),
    Framework(
        "ray", "ray", "Ray Serve {version} (replicas = workers, FastAPI ingress)",
        "/predict", "/readyz",
        ("benchmarks.frameworks.ray_peer", "--model_path", "{onnx}", "--port", "{port}",
         "--workers", "{workers}"),
        # Ray merges log lines that differ in numbers only: each replica's first answer
        # must reach the log.
        env=(("RAY_USAGE_STATS_ENABLED", "0"), ("RAY_DEDUP_LOGS", "0"))),
)



def spawned(proc: subprocess.Popen) -> list:
    """The living processes a peer started: its descendants while it runs, and every
    process still in its session (one whose parent died leaves the tree, not the session)."""
    import psutil

    found = {}
    if proc.poll() is None:
        try:
            root = psutil.Process(proc.pid)
            found = {p.pid: p for p in [root, *root.children(recursive=True)]}
        except psutil.NoSuchProcess:
            pass
    for other in psutil.process_iter():
        try:
            if other.pid not in found and os.getsid(other.pid) == proc.pid:
                found[other.pid] = other
        except (ProcessLookupError, PermissionError, psutil.NoSuchProcess):
            continue
    return [p for p in found.values() if alive(p)]


def alive(process) -> bool:
    """A psutil.Process that still runs (a zombie has ended)."""
    import psutil

    try:
        return bool(process.is_running() and process.status() != psutil.STATUS_ZOMBIE)
    except psutil.NoSuchProcess:
        return False


def _signal_all(proc: subprocess.Popen, processes: list, sig: signal.Signals) -> None:
    import psutil

    with contextlib.suppress(ProcessLookupError):  # none left in the group
        os.killpg(proc.pid, sig)
    for process in processes:
        try:
            process.send_signal(sig)
        except psutil.NoSuchProcess:
            continue


def stop(proc: subprocess.Popen, grace: float = 20) -> None:
    """SIGTERM the peer's group and every process it spawned (collected by PID first:
    Ray's raylet, GCS and workers may leave the group), SIGKILL what is left after
    `grace` seconds; returns once none of them runs."""
    import psutil

    processes = spawned(proc)
    _signal_all(proc, processes, signal.SIGTERM)
    deadline = time.monotonic() + grace
    while processes and time.monotonic() < deadline:
        time.sleep(0.1)
        proc.poll()  # reaps the peer itself: its orphans go to init, which reaps them
        # Shutting down may start a process (a supervisor replacing a worker): add it.
        processes = [p for p in {p.pid: p for p in processes + spawned(proc)}.values()
                     if alive(p)]
    _signal_all(proc, processes, signal.SIGKILL)
    proc.wait()
    for process in processes:
        try:
            process.wait(5)
        except (psutil.TimeoutExpired, psutil.NoSuchProcess):
            continue
