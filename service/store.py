"""The served model, read from BentoML's model store: a complete version, or one line
that names the fix.

    python -c "import service.store as s; print(s.complete_version('mnist_mlp:latest').tag)"

`name:latest` is resolved here (core/modelstore.py says what a complete version is), not
by BentoML, whose lookup adopts a partial version and fails on an empty `latest`. The
store is only read: the service may run on a read-only one.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import bentoml
from bentoml._internal.configuration.containers import BentoMLContainer

from core import modelstore
from core import profile as profiles
from service.engine import ModelLoadError
from service.lifecycle import refuse_to_start

log = logging.getLogger("mnist_service")


def store_location() -> str:
    """Where the model store is, as a person would look for it."""
    return modelstore.home()


def _read_info(folder: Path) -> tuple[Any, Any]:
    info = bentoml.Model.from_path(folder).info
    return info.metadata, info.creation_time


@contextmanager
def _quiet_yaml_errors() -> Iterator[None]:
    """BentoML logs a YAML error at ERROR before raising it: our one line says it all."""
    yaml_log = logging.getLogger("bentoml._internal.models.model")
    level = yaml_log.level
    yaml_log.setLevel(logging.CRITICAL)
    try:
        yield
    finally:
        yaml_log.setLevel(level)


def _version_name(tag: str) -> str:
    """The name of the complete version `tag` names; NotFound or StoreError otherwise."""
    ref = bentoml.Tag.from_taglike(tag)
    # The store BentoML serves from: $BENTOML_HOME/models, or a built bento's own.
    model_dir = Path(BentoMLContainer.model_store.get()._path) / ref.name
    if ref.version in (None, "latest"):
        version, warning = modelstore.resolve_latest(model_dir, _read_info, store_location())
        if warning:
            log.warning(warning)
        if version is None:
            raise bentoml.exceptions.NotFound(tag)
        return version.name
    folder = model_dir / ref.version  # an exact version, or a prefix of one as BentoML accepts
    version = modelstore.inspect(folder if folder.is_dir() else
                                 Path(bentoml.models.get(tag).path), _read_info)
    if version.problem:
        raise modelstore.StoreError(version.refusal(ref.name, store_location()))
    return version.name


def complete_version(tag: str) -> bentoml.Model:
    """The complete store version `tag` names; ModelLoadError names what is wrong and the
    exact fix."""
    name = bentoml.Tag.from_taglike(tag).name
    try:
        with _quiet_yaml_errors():
            return bentoml.models.get(f"{name}:{_version_name(tag)}")
    except bentoml.exceptions.NotFound:
        raise ModelLoadError(f"model {tag} is not in the model store under "
                             f"{store_location()}; run `make train` (or `python -m "
                             "training`) first") from None
    except modelstore.StoreError as exc:
        raise ModelLoadError(str(exc)) from None
    except Exception as exc:  # anything else BentoML raises on a damaged store: one line too
        reason = f"{type(exc).__name__}: {str(exc).splitlines()[0] if str(exc) else ''}"
        raise ModelLoadError(f"model {tag} cannot be read from the model store under "
                             f"{store_location()} ({reason}); run `make train` (or "
                             "`python -m training`)") from None


def reference_profile(model: bentoml.Model,
                      check: Callable[[profiles.Profile], None] = lambda _: None,
                      ) -> profiles.Profile | None:
    """The reference profile stored with the model (the file its metadata names), or None:
    a model registered without one, or one that cannot be read or fails `check` (damaged,
    another format), which is logged and served without a reference, not refused."""
    name = model.info.metadata.get(profiles.META_REFERENCE)
    if not name:
        return None
    try:
        # A file of the model's own folder: BentoML's path_of joins any path ("../..").
        if not isinstance(name, str) or Path(name).name != name or name == "..":
            raise ValueError(f"{name!r} is not a file name in the model's folder")
        profile = profiles.load(Path(model.path_of(name)))
        check(profile)
        return profile
    except (OSError, ValueError, KeyError, TypeError, AttributeError) as exc:
        log.warning("model %s: its reference profile %s cannot be used (%s: %s); serving "
                    "without a reference", model.tag, name, type(exc).__name__,
                    str(exc).splitlines()[0] if str(exc) else "")
        return None


class CompleteVersionRef(bentoml.models.BentoModel):
    """The service's model reference. BentoML resolves it through `stored` (its name)
    before any hook of ours runs, and again in each worker: so a damaged or half-written
    store serves a complete version or stops the service with one line that names the
    fix, never with BentoML's 100-line traceback or a partial version."""

    @property
    def stored(self) -> Any:
        try:
            return complete_version(str(self.tag))
        except ModelLoadError as exc:
            refuse_to_start(exc)
