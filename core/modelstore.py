"""The model store's versions as the training job writes them and the service reads them.

    python -c "import core.modelstore as s; print(s.read_latest('bentoml_home/models/mnist_mlp'))"

BentoML copies a version's files into its folder in place and writes `latest` by truncating
then writing it: a kill or a full disk in between leaves a folder its lookup adopts or an
empty `latest` that stops every lookup. One definition of a complete version serves both
sides here: the training job registers whole versions and removes incomplete ones, the
service resolves `latest` to a complete version or refuses with the exact fix. Reading a
model.yaml needs BentoML (and YAML), which core does not import: callers pass the reader.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any

from core.contract import META_ONNX_FILE, META_SHA256, ONNX_FILE
from core.digests import file_digest

LATEST = "latest"  # the file in a model's folder that names its current version
DEFAULT_HOME = "~/bentoml"  # BentoML's, when $BENTOML_HOME is not set
# (metadata, creation time) of a version folder; raises when its model.yaml cannot be read.
ReadInfo = Callable[[Path], tuple[Mapping[str, Any], datetime]]


def home() -> str:
    """The BentoML home a process started here reads, as a person would write it:
    $BENTOML_HOME, else BentoML's default."""
    return os.environ.get("BENTOML_HOME", DEFAULT_HOME)


def register_fix(name: str, version: str) -> str:
    """The exact fix for an incomplete version: either command mends the store."""
    return (f"run `make train` (or `python -m training`), which removes incomplete versions "
            f"and rewrites latest, or `bentoml models delete {name}:{version} -y`")


class StoreError(Exception):
    """The store holds nothing the service can serve; the message names the fix."""


@dataclass(frozen=True)
class Version:
    folder: Path
    created: datetime | None  # None when its model.yaml cannot be read
    problem: str | None  # why it cannot be served, as one clause; None: complete
    cause: str = ""  # "yaml" or "onnx" when there is a problem

    @property
    def name(self) -> str:
        return self.folder.name

    def refusal(self, model: str, where: str, via: str = "") -> str:
        """One line: what is wrong with this version and the exact fix."""
        fix = register_fix(model, self.name)
        if self.cause == "yaml":
            return (f"model {model}:{self.name}{via} cannot be read from the model store "
                    f"under {where} ({self.problem}); {fix}")
        return f"{self.problem}: {model}:{self.name}{via} is incomplete; {fix}"


def inspect(folder: Path, read_info: ReadInfo) -> Version:
    """Complete: model.yaml readable, the ONNX file it names present with the SHA-256 it
    records. What a registration killed mid-copy leaves fails one of the three."""
    try:
        metadata, created = read_info(folder)
    except Exception as exc:
        first = str(exc).splitlines()[0] if str(exc) else ""
        return Version(folder, None, f"{type(exc).__name__}: {first}", "yaml")
    onnx = folder / str(metadata.get(META_ONNX_FILE, ONNX_FILE))
    if not onnx.is_file():
        return Version(folder, created, f"model file {onnx} is missing", "onnx")
    expected = metadata.get(META_SHA256)
    if expected and (actual := file_digest(onnx)) != expected:
        return Version(folder, created, f"model file {onnx} is corrupt: SHA-256 "
                       f"{actual[:12]}… does not match the store's {str(expected)[:12]}…",
                       "onnx")
    return Version(folder, created, None)


def versions(model_dir: Path, read_info: ReadInfo) -> list[Version]:
    """Every version folder, newest first (BentoML's order: by creation time); the unreadable
    ones last. Hashes every model: for when `latest` cannot say which one."""
    found = [inspect(p, read_info) for p in sorted(model_dir.iterdir()) if p.is_dir()] \
        if model_dir.is_dir() else []
    # Timestamps, not datetimes: an older model.yaml may hold a naive one beside aware ones.
    return sorted(found, key=lambda v: v.created.timestamp() if v.created else float("-inf"),
                  reverse=True)


def read_latest(model_dir: str | Path) -> str | None:
    """The version `latest` names; None when it is missing, empty, unreadable or names no
    folder of this model."""
    model_dir = Path(model_dir)
    try:
        named = (model_dir / LATEST).read_text().strip()
    except (OSError, UnicodeDecodeError):
        return None
    if not named or named.startswith(".") or os.sep in named:
        return None
    return named if (model_dir / named).is_dir() else None


def resolve_latest(model_dir: Path, read_info: ReadInfo,
                   where: str) -> tuple[Version | None, str | None]:
    """(the version `name:latest` serves, a warning or None); (None, None): no version at all.

    `latest` naming a complete version: that one. Naming an incomplete one: StoreError
    (serving another than the one it names would hide the damage). Missing, empty or
    dangling: the newest complete version, as BentoML would recreate it, but never a
    partial one. Raises StoreError when every version is incomplete.
    """
    model = model_dir.name
    named = read_latest(model_dir)
    if named is not None:
        version = inspect(model_dir / named, read_info)
        if version.problem is None:
            return version, None
        raise StoreError(version.refusal(model, where, via=f", which {LATEST} names,"))
    found = versions(model_dir, read_info)
    if not found:
        return None, None
    complete = [v for v in found if v.problem is None]
    broken = "; ".join(f"{model}:{v.name} ({v.problem})" for v in found if v.problem)
    if not complete:
        raise StoreError(f"the model store under {where} holds only incomplete versions of "
                         f"{model}: {broken}; {register_fix(model, found[0].name)}")
    warning = (f"{model}/{LATEST} under {where} is missing, empty or dangling: serving the "
               f"newest complete version, {model}:{complete[0].name}")
    if broken:
        warning += f"; incomplete, not served: {broken}"
    return complete[0], warning + "; the next `make train` rewrites latest"


def fsync_path(path: Path) -> None:
    """Flush a file's data, or a folder's entries, to disk: a rename is only as durable as
    the data and the folder it moves."""
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def temp_name(path: Path) -> Path:
    """Where atomic_write_text stages path's new text: a dot file beside it (BentoML lists
    folders only), named by the writer's process."""
    return path.with_name(f".{path.name}.{os.getpid()}.tmp")


def stale_temps(path: Path) -> list[Path]:
    """The staged texts of path that writers killed before their rename left behind."""
    return sorted(path.parent.glob(f".{path.name}.*.tmp"))


def atomic_write_text(path: Path, text: str) -> None:
    """Replace path's text whole: a reader sees the old text or the new, never an empty or
    partial file, whenever the writer is killed or the disk fills."""
    tmp = temp_name(path)
    try:
        with open(tmp, "w", encoding="utf-8") as f:
            f.write(text)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except OSError:  # a full disk: path keeps its old text, and no staged text stays
        tmp.unlink(missing_ok=True)
        raise
    fsync_path(path.parent)
