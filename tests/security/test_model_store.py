"""The model store cannot be wedged, or serve a half-written version, and a damaged one
stops the service with one line.

The second security round: docs/journal/security.md.

    pytest tests/security/test_model_store.py

An invalid model.yaml in the store printed a 116-line traceback from BentoML's model
resolution (which runs before any hook of ours). It must end like the other refusals:
exit 1 and one line that says what is wrong.

A registration killed at any write (SIGKILL, a full disk) must leave a store that
`bentoml serve` serves from, or refuses with the exact fix, and that the next registration
mends: an empty `latest` stopped the service and made every later registration crash; a
version killed mid-copy stayed in the store, where BentoML adopted or promoted it. The
kill tests stop a real registration process at each of its writes into the store in turn.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from clients.server_process import http_get, serving
from core.contract import MODEL_NAME
from core.digests import file_digest
from tests.helpers import ROOT, serve_expecting_refusal

pytestmark = pytest.mark.slow

# Registrations as the training job runs them, each in a process of its own, killed with
# SIGKILL at one of its writes under its store: the k-th (after a file is opened for writing
# or a folder made, before a rename, replace, unlink or rmtree), for k = 1, 2, ... until one
# runs past its last write. One driver imports BentoML once and forks the registrations.
SWEEP = r"""
import builtins, io, json, os, shutil, signal, sys, tempfile, time, traceback
from pathlib import Path
from bentoml._internal.configuration.containers import BentoMLContainer
from bentoml._internal.models.model import ModelStore
from training.registry import register

spec = json.loads(sys.argv[1])
root, base = Path(spec["root"]), Path(spec["base"])

def hook(home, kill_at, pipe):
    home = os.path.realpath(home) + os.sep
    steps = [0]

    def step(what, path):
        if isinstance(path, int) or not os.path.realpath(os.fsdecode(path)).startswith(home):
            return
        steps[0] += 1
        if steps[0] == kill_at:
            os.write(pipe, f"waiting at write {kill_at}: {what} {os.fsdecode(path)}\n".encode())
            time.sleep(300)

    def after(fn, what, writes):
        def hooked(path, *args, **kwargs):
            result = fn(path, *args, **kwargs)
            if writes(*args, **kwargs) and kwargs.get("dir_fd") is None:
                step(what, path)
            return result
        return hooked

    def before(fn, what):
        def hooked(path, *args, **kwargs):
            if kwargs.get("dir_fd") is None and kwargs.get("src_dir_fd") is None:
                step(what, args[0] if what in ("rename", "replace") else path)
            return fn(path, *args, **kwargs)
        return hooked

    builtins.open = io.open = after(io.open, "open", lambda mode="r", *a, **k: any(
        c in mode for c in "wax+"))
    os.open = after(os.open, "os.open", lambda flags, *a, **k: bool(
        flags & (os.O_WRONLY | os.O_RDWR | os.O_CREAT)))
    os.mkdir = after(os.mkdir, "mkdir", lambda *a, **k: True)
    for name in ("rename", "replace", "unlink", "remove"):
        setattr(os, name, before(getattr(os, name), name))
    shutil.rmtree = before(shutil.rmtree, "rmtree")

def child(home, kill_at, pipe):
    # This process's store and TMPDIR, as BENTOML_HOME and TMPDIR would set them.
    BentoMLContainer.model_store.set(ModelStore(home / "models"))
    tempfile.tempdir = str(home.parent / f"{home.name}-tmp")
    hook(home, kill_at, pipe)
    tag = register(spec["name"], [Path(f) for f in spec["files"]], spec["labels"],
                   spec["metadata"])
    os.write(pipe, f"registered {tag}\n".encode())

runs = []
for kill_at in range(1, 100):
    home = root / f"kill-{kill_at}"
    if base.exists():
        shutil.copytree(base, home)
    (root / f"kill-{kill_at}-tmp").mkdir()
    r, w = os.pipe()
    pid = os.fork()
    if pid == 0:
        os.close(r)
        try:
            child(home, kill_at, w)
        except BaseException:
            traceback.print_exc()
            os._exit(1)
        os._exit(0)
    os.close(w)
    with os.fdopen(r) as f:
        line = f.readline()
    if line.startswith("waiting at"):
        os.kill(pid, signal.SIGKILL)  # no handler, no finally, no weakref finaliser runs
    status = os.waitpid(pid, 0)[1]
    runs.append({"home": str(home), "line": line.strip(), "status": status})
    if not line.startswith("waiting at"):
        break
print(json.dumps(runs))
"""


def _sweep(tmp_path: Path, art: dict, base: Path) -> list[dict]:
    """Registers art into a copy of base's store once per write, killed at that write;
    returns each run's store, what it was doing when killed and its wait status."""
    spec = {**art, "name": MODEL_NAME, "root": str(tmp_path), "base": str(base)}
    proc = subprocess.run([sys.executable, "-c", SWEEP, json.dumps(spec)], cwd=ROOT,
                          capture_output=True, text=True, timeout=300,
                          env={**os.environ, "BENTOML_DO_NOT_TRACK": "true"})
    assert proc.returncode == 0, proc.stdout + proc.stderr
    return json.loads(proc.stdout.strip().splitlines()[-1])


def _register(home: Path, art: dict) -> str:
    """A registration into home's store, in this process; returns the new version."""
    from training.registry import register_in

    tag = register_in(home / "models", MODEL_NAME, [Path(f) for f in art["files"]],
                      art["labels"], art["metadata"])
    return tag.split(":")[-1]


@pytest.mark.parametrize("damage", ["{{{ not: [yaml", "name: mnist_mlp\n"])
def test_an_unreadable_model_yaml_is_one_line_and_exit_1(trained, tmp_path, damage):
    home = tmp_path / "bentoml"
    shutil.copytree(trained[2], home, ignore=shutil.ignore_patterns("bentos"))
    for yaml_file in (home / "models" / "mnist_mlp").glob("*/model.yaml"):
        yaml_file.write_text(damage)
    code, out = serve_expecting_refusal({"BENTOML_HOME": str(home)})
    lines = [line for line in out.splitlines() if line.strip()]
    assert code == 1, out
    assert len(lines) == 1, out
    assert lines[-1].startswith("mnist service cannot start: model mnist_mlp:"), out
    assert "cannot be read from the model store" in lines[-1]
    assert "Traceback" not in out


def test_a_bad_setting_is_one_line_and_exit_1(trained):
    code, out = serve_expecting_refusal({"BENTOML_HOME": str(trained[2]),
                                         "MNIST_MAX_PIXELS": "lots"})
    lines = [line for line in out.splitlines() if line.strip()]
    assert code == 1, out
    assert lines == ["mnist service cannot start: MNIST_MAX_PIXELS must be an integer, "
                     "got 'lots'"], out


def _fake_artifacts(folder: Path) -> dict:
    """Registration input the store treats like a model's: a 1 MB model.onnx and reports."""
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "model.onnx").write_bytes(os.urandom(1 << 20))
    (folder / "metrics.json").write_text(json.dumps({"test_accuracy": 0.9}))
    (folder / "model_card.md").write_text("# a model\n" * 100)
    return {"files": [str(folder / n) for n in ("model.onnx", "metrics.json", "model_card.md")],
            "labels": {"framework": "onnx"},
            "metadata": {"onnx_sha256": file_digest(folder / "model.onnx"),
                         "onnx_file": "model.onnx", "test_accuracy": 0.9}}


def _trained_artifacts(trained) -> dict:
    """The session's trained model, to register again: its files and its store metadata."""
    _, out, home = trained
    (yaml_file,) = (home / "models" / MODEL_NAME).glob("*/model.yaml")
    meta = yaml.safe_load(yaml_file.read_text())
    return {"files": [str(out / n) for n in ("model.onnx", "metrics.json", "model_card.md")],
            "labels": meta["labels"], "metadata": meta["metadata"]}


def _model_dir(home: Path) -> Path:
    return home / "models" / MODEL_NAME


def _versions(home: Path) -> dict[str, str | None]:
    """Every version folder in the store: None when complete, else what is wrong. Checked
    here, independently of the code under test."""
    found: dict[str, str | None] = {}
    folders = sorted(p for p in _model_dir(home).iterdir() if p.is_dir()) \
        if _model_dir(home).is_dir() else []
    for folder in folders:
        try:
            meta = yaml.safe_load((folder / "model.yaml").read_text())["metadata"]
        except Exception as exc:
            found[folder.name] = f"model.yaml: {type(exc).__name__}"
            continue
        onnx = folder / meta.get("onnx_file", "model.onnx")
        found[folder.name] = None if onnx.is_file() and \
            file_digest(onnx) == meta["onnx_sha256"] else "model.onnx missing or partial"
    return found


def _latest(home: Path) -> str | None:
    path = _model_dir(home) / "latest"
    return path.read_text() if path.exists() else None


def _bentoml_latest(home: Path) -> str | None:
    """What BentoML resolves mnist_mlp:latest to (None: not found), on a copy of the store:
    its resolution may rewrite `latest`."""
    from bentoml._internal.models.model import ModelStore
    from bentoml.exceptions import NotFound

    copy = home.parent / f"{home.name}-resolved"
    shutil.rmtree(copy, ignore_errors=True)
    shutil.copytree(home, copy)
    try:
        return ModelStore(copy / "models").get(f"{MODEL_NAME}:latest").tag.version
    except NotFound:
        return None
    finally:
        shutil.rmtree(copy)


def _service_resolution(home: Path) -> tuple[str, str]:
    """The service's own check of the store: ("serves", version) or ("refuses", reason)."""
    from bentoml._internal.configuration.containers import BentoMLContainer
    from bentoml._internal.models.model import ModelStore

    from service.engine import ModelLoadError
    from service.store import complete_version

    before = BentoMLContainer.model_store.get()
    BentoMLContainer.model_store.set(ModelStore(home / "models"))
    try:
        return "serves", str(complete_version(f"{MODEL_NAME}:latest").tag.version)
    except ModelLoadError as exc:
        return "refuses", str(exc)
    finally:
        BentoMLContainer.model_store.set(before)


def _stray_files(home: Path) -> list[str]:
    """Non-empty files under home that belong to no complete version and are not `latest`:
    what killed registrations left behind."""
    complete = [_model_dir(home) / v for v, problem in _versions(home).items() if not problem]
    return sorted(str(p.relative_to(home)) for p in home.rglob("*")
                  if p.is_file() and p.stat().st_size and p != _model_dir(home) / "latest"
                  and not any(p.is_relative_to(c) for c in complete))


def _assert_mended(home: Path, kept: set[str]) -> str:
    """The next registration succeeds and leaves only complete versions, `latest` naming the
    new one, nothing stray; returns the new version."""
    new = _register(home, _fake_artifacts(home.parent / "next"))
    versions = _versions(home)
    assert all(problem is None for problem in versions.values()), versions
    assert kept | {new} <= set(versions), (versions, kept)
    assert _latest(home) == new and _bentoml_latest(home) == new
    assert _service_resolution(home) == ("serves", new)
    assert _stray_files(home) == []
    return new


def _assert_servable_after_kill(home: Path, kept: set[str], where: str) -> None:
    """Only complete versions, the ones there before kept, nothing outside the store, and
    both BentoML and the service resolve `latest` to a complete version (or, with no
    version at all, the service names `make train`)."""
    versions = _versions(home)
    assert all(p is None for p in versions.values()), (where, versions)
    assert kept <= set(versions), where
    assert not list((home.parent / f"{home.name}-tmp").iterdir()), where
    latest, (verdict, detail) = _bentoml_latest(home), _service_resolution(home)
    if versions:
        assert latest in versions and verdict == "serves" and detail in versions, \
            (where, latest, verdict, detail)
    else:
        assert latest is None and verdict == "refuses" and "make train" in detail, where


@pytest.mark.parametrize("first", [True, False], ids=["first registration", "second"])
def test_a_sigkill_at_any_write_of_registration_leaves_a_servable_store(tmp_path, first):
    art, base = _fake_artifacts(tmp_path / "art"), tmp_path / "base"
    kept = set() if first else {_register(base, art)}
    runs = _sweep(tmp_path, art, base)
    *killed, finished = runs
    assert finished["status"] == 0 and finished["line"].startswith("registered"), finished
    for run in killed:
        home = Path(run["home"])
        _assert_servable_after_kill(home, kept, f"killed {run['line']}")
        _assert_mended(home, kept)
    assert len(killed) >= 5, runs  # the sweep reached the registration's writes


def test_a_sigkill_while_a_registration_mends_the_store_loses_nothing(tmp_path):
    """A store an older registration damaged (a partial version that `latest` names, an
    empty staged `latest`, a staging folder), registered into and killed at each write of
    the mending too: the next registration still mends it, and the good version stays."""
    art, base = _fake_artifacts(tmp_path / "art"), tmp_path / "base"
    good, partial = _register(base, art), _register(base, art)
    DAMAGES["model.onnx missing"](_model_dir(base) / partial)
    (_model_dir(base) / ".latest.1.tmp").write_text("")
    shutil.copytree(_model_dir(base) / good, base / "staging" / MODEL_NAME / "leftover")
    runs = _sweep(tmp_path, art, base)
    *killed, finished = runs
    assert finished["status"] == 0 and finished["line"].startswith("registered"), finished
    assert any("rmtree" in run["line"] for run in killed), runs
    for run in killed:
        assert _mended_after(Path(run["home"]), {good}, partial)
    assert _mended_after(tmp_path / f"kill-{len(runs)}", {good}, partial)


def _mended_after(home: Path, kept: set[str], partial: str) -> bool:
    _assert_mended(home, kept)
    return partial not in _versions(home)


def test_an_empty_latest_is_served_and_mended_by_the_next_registration(tmp_path):
    home, art = tmp_path / "home", _fake_artifacts(tmp_path / "art")
    old, new = _register(home, art), _register(home, art)
    (_model_dir(home) / "latest").write_text("")  # truncated, then killed before the write
    assert _service_resolution(home) == ("serves", new)
    _assert_mended(home, {old, new})


def test_an_empty_latest_does_not_stop_bentoml_serve(trained, tmp_path):
    home = tmp_path / "home"
    shutil.copytree(trained[2] / "models", home / "models")
    new = _register(home, _trained_artifacts(trained))
    (_model_dir(home) / "latest").write_text("")
    with open(tmp_path / "server.log", "w") as log:
        try:
            with serving(log, env={"BENTOML_HOME": str(home)}) as (_, base):
                status, body = http_get(base + "/model")
        except RuntimeError as exc:
            pytest.fail(f"{exc}:\n{(tmp_path / 'server.log').read_text()}")
    assert status == 200 and json.loads(body)["tag"] == f"{MODEL_NAME}:{new}"
    assert "serving the newest complete version" in (tmp_path / "server.log").read_text()


# What a registration killed mid-copy left before registrations were atomic: the version
# folder with some of its files.
DAMAGES = {
    "model.onnx missing": lambda v: (v / "model.onnx").unlink(),
    "model.onnx partial": lambda v: (v / "model.onnx").write_bytes(
        (v / "model.onnx").read_bytes()[:1000]),
    "model.yaml missing": lambda v: (v / "model.yaml").unlink(),
}


@pytest.mark.parametrize("damage", DAMAGES)
def test_a_partial_first_version_is_refused_with_the_fix_and_mended(tmp_path, damage):
    home = tmp_path / "home"
    partial = _register(home, _fake_artifacts(tmp_path / "art"))
    DAMAGES[damage](_model_dir(home) / partial)
    (_model_dir(home) / "latest").unlink()  # killed before BentoML wrote it
    verdict, reason = _service_resolution(home)
    assert verdict == "refuses" and f"{MODEL_NAME}:{partial}" in reason, reason
    assert "incomplete" in reason and "make train" in reason, reason
    _assert_mended(home, set())
    assert partial not in _versions(home)


def test_deleting_the_good_version_does_not_promote_a_partial_one(tmp_path):
    home, art = tmp_path / "home", _fake_artifacts(tmp_path / "art")
    good, partial = _register(home, art), _register(home, art)
    DAMAGES["model.onnx missing"](_model_dir(home) / partial)
    (_model_dir(home) / "latest").write_text(good)  # the kill came before `latest`
    proc = subprocess.run([str(Path(sys.executable).with_name("bentoml")), "models", "delete",
                           f"{MODEL_NAME}:{good}", "-y"], capture_output=True, text=True,
                          env={**os.environ, "BENTOML_HOME": str(home)}, timeout=60)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert _latest(home) == partial  # BentoML promoted it
    verdict, reason = _service_resolution(home)
    assert verdict == "refuses" and f"{MODEL_NAME}:{partial}" in reason, reason
    assert f"bentoml models delete {MODEL_NAME}:{partial}" in reason, reason
    assert "make train" in reason, reason
    _assert_mended(home, set())


def test_bentoml_serve_refuses_a_partial_version_with_one_line_naming_the_fix(tmp_path):
    home = tmp_path / "home"
    partial = _register(home, _fake_artifacts(tmp_path / "art"))
    DAMAGES["model.onnx missing"](_model_dir(home) / partial)
    (_model_dir(home) / "latest").unlink()
    code, out = serve_expecting_refusal({"BENTOML_HOME": str(home)})
    lines = [line for line in out.splitlines() if line.strip()]
    assert code == 1 and len(lines) == 1, out
    assert lines[0].startswith("mnist service cannot start: "), out
    assert f"{MODEL_NAME}:{partial}" in lines[0] and "make train" in lines[0], out
