"""Registration in the BentoML model store: a version appears whole or not at all.

    python -m training --data-dir ../shared/data/mnist     # registers as its last step

bentoml.models.create copies the files into the version's folder in place, then writes
`latest` by truncating it: a kill in between leaves a partial version that BentoML adopts
or promotes, or an empty `latest` that stops every lookup and crashes every later
registration. Here a version is built and flushed to disk in a staging folder beside the
store ($BENTOML_HOME/staging/<model>: the same filesystem, and no folder BentoML lists), then
renamed into place; `latest` is replaced whole. Under an exclusive lock, every registration
first removes what a killed one left: staging folders, staged `latest` texts and
incomplete versions. A kill at any point leaves only complete versions in the store.

Complete is core/modelstore.py's `inspect`: model.yaml and the ONNX file it names, with its
SHA-256. The reference profile the job registers beside them (core/profile.py's
REFERENCE_FILE, named under META_REFERENCE) is not part of it, on purpose: versions
registered before the job wrote profiles hold none and must keep serving, with no
reference, so mend() never removes a version for lacking one.
"""

from __future__ import annotations

import fcntl
import shutil
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from datetime import datetime
from pathlib import Path
from typing import Any

from core.modelstore import (
    LATEST,
    StoreError,
    Version,
    atomic_write_text,
    fsync_path,
    inspect,
    resolve_latest,
    stale_temps,
    versions,
)

STAGING = "staging"


def read_info(folder: Path) -> tuple[Mapping[str, Any], datetime]:
    """A version folder's metadata and creation time, as BentoML reads its model.yaml."""
    import bentoml

    info = bentoml.Model.from_path(folder).info
    return info.metadata, info.creation_time


def store_folder() -> Path:
    """BentoML's model store folder, $BENTOML_HOME/models."""
    # Imported here: importing it costs seconds, and --no-register needs none of it.
    from bentoml._internal.configuration.containers import BentoMLContainer

    return Path(BentoMLContainer.model_store.get()._path)


def register(name: str, files: list[Path], labels: dict[str, str],
             metadata: dict[str, Any]) -> str:
    """Register files as a new version of `name` in BentoML's store; returns its tag."""
    return register_in(store_folder(), name, files, labels, metadata)


def find_version(store: Path, tag: str) -> tuple[str, Version | None]:
    """The complete version a tag names in the store folder: (`name:version`, it), with
    `name:latest` (or a bare name) resolved as the service resolves it; (tag, None) when
    the store holds no version of that name. StoreError when the version named is missing
    or incomplete."""
    name, _, version = tag.partition(":")
    model_dir = store / name
    if version in ("", LATEST):
        found, _ = resolve_latest(model_dir, read_info, str(store))
        return (f"{name}:{found.name}", found) if found else (f"{name}:{LATEST}", None)
    found = inspect(model_dir / version, read_info)
    if found.problem:
        raise StoreError(found.refusal(name, str(store)))
    return tag, found


def register_in(store: Path, name: str, files: list[Path], labels: dict[str, str],
                metadata: dict[str, Any]) -> str:
    """register() into the store folder `store` (a ModelStore's, $BENTOML_HOME/models)."""
    import bentoml

    model_dir, staging = store / name, store.parent / STAGING / name
    model_dir.mkdir(parents=True, exist_ok=True)
    staging.mkdir(parents=True, exist_ok=True)
    with _exclusive(staging / ".lock"):
        mend(model_dir, staging)
        tag = bentoml.Tag(name, None).make_new_version()
        version = str(tag.version)
        staged = staging / version
        try:
            _stage(staged, tag, files, labels, metadata)
            staged.rename(model_dir / version)  # atomic: the version is whole or absent
        except BaseException:  # a full disk, an interrupt: nothing of it stays behind
            shutil.rmtree(staged, ignore_errors=True)
            raise
        fsync_path(model_dir)
        atomic_write_text(model_dir / LATEST, version)
    return str(tag)


@contextmanager
def _exclusive(lock_file: Path) -> Iterator[None]:
    """One registration at a time per model: mend() may only remove what no running
    registration is writing. The kernel drops the lock when its holder dies."""
    with open(lock_file, "a") as f:
        fcntl.flock(f, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(f, fcntl.LOCK_UN)


def _stage(folder: Path, tag: Any, files: list[Path], labels: dict[str, str],
           metadata: dict[str, Any]) -> None:
    """The complete version in folder: the files, and model.yaml as bentoml.models.create
    writes it, all on disk before the caller renames the folder into the store."""
    import bentoml
    from bentoml._internal.models.model import ModelContext, ModelInfo, ModelOptions

    folder.mkdir()
    for f in files:
        shutil.copy2(f, folder / f.name)
        fsync_path(folder / f.name)
    info = ModelInfo(tag=tag, module="", api_version="v1", signatures={}, labels=labels,
                     options=ModelOptions(), metadata=metadata,
                     context=ModelContext(framework_name="", framework_versions={}))
    model = bentoml.Model(tag, folder, info, internal=True)
    model.flush()
    fsync_path(folder / "model.yaml")
    fsync_path(folder)
    # A full disk shows here (a short file, a model.yaml that does not read back), not in
    # the store.
    staged = inspect(folder, read_info)
    if staged.problem:
        raise OSError(f"staged model {tag} is incomplete: {staged.problem}")


def mend(model_dir: Path, staging: Path) -> None:
    """Remove what killed registrations left: their staging folders and staged `latest`
    texts, and incomplete versions in the store (an older registration's partial copy).
    Each leaves the store by a rename first, so a kill here removes nothing by half."""
    name = model_dir.name
    for leftover in sorted(p for p in staging.iterdir() if p.is_dir()):
        shutil.rmtree(leftover, ignore_errors=True)
        print(f"model store: removed {leftover}, left by an interrupted registration",
              flush=True)
    for temp in stale_temps(model_dir / LATEST):
        temp.unlink(missing_ok=True)
    for version in versions(model_dir, read_info):
        if version.problem is None:
            continue
        trash = staging / f"removed-{version.name}"
        version.folder.rename(trash)
        shutil.rmtree(trash, ignore_errors=True)
        print(f"model store: removed {name}:{version.name}, incomplete ({version.problem})",
              flush=True)
