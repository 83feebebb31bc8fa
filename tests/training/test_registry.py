"""The model store's versions without a reference profile (training/registry.py)."""

from __future__ import annotations

from core.contract import META_ONNX_FILE, META_SHA256, MODEL_NAME
from core.digests import file_digest
from core.modelstore import inspect, resolve_latest
from training.registry import read_info, register_in


def test_a_version_without_a_reference_profile_is_complete_and_kept(tmp_path, trained):
    """As registered before the job wrote profiles: served, and never mended away."""
    onnx_path = trained[1] / "model.onnx"
    store = tmp_path / "home" / "models"
    meta = {META_SHA256: file_digest(onnx_path), META_ONNX_FILE: onnx_path.name}
    first = register_in(store, MODEL_NAME, [onnx_path], {}, meta)
    register_in(store, MODEL_NAME, [onnx_path], {}, meta)  # mends the store first
    model_dir = store / MODEL_NAME
    old = model_dir / first.split(":")[1]
    assert old.is_dir() and inspect(old, read_info).problem is None
    served, warning = resolve_latest(model_dir, read_info, str(store))
    assert served is not None and served.problem is None and warning is None
