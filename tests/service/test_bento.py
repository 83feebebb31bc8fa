"""The bento ships exactly what serves: every module it includes imports from the bento alone.

    pytest tests/service/test_bento.py

`bentoml build` with the project's bentofile, then, in a fresh interpreter whose
only path to our code is the built bento's src/ folder (the project's editable
install switched off), import every .py in it. A service module that imported
`training` or `clients` (which the bento lacks) would fail here.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from tests.helpers import ROOT

pytestmark = pytest.mark.slow

IMPORT_ALL = r"""
import importlib, json, sys
from pathlib import Path
src = Path(sys.argv[1]).resolve()
# The development checkout is installed in editable mode: take its finder away, so
# that our packages can only come from src.
sys.meta_path[:] = [f for f in sys.meta_path if "__editable__" not in repr(f)]
sys.path_importer_cache.clear()
sys.path.insert(0, str(src))
names = sorted(".".join(p.relative_to(src).with_suffix("").parts).removesuffix(".__init__")
               for p in src.rglob("*.py"))
failed = {}
for name in names:
    try:
        importlib.import_module(name)
    except Exception as exc:
        failed[name] = f"{type(exc).__name__}: {exc}"
ours = {m.__name__: getattr(m, "__file__", None) for m in list(sys.modules.values())
        if m.__name__.split(".")[0] in ("core", "service", "training", "clients", "load_tests")}
print(json.dumps({"imported": names, "failed": failed, "ours": ours}))
"""


def build_bento(home: Path) -> Path:
    """`bentoml build` into the store at home; returns the bento's src/ folder."""
    env = {**os.environ, "BENTOML_HOME": str(home), "BENTOML_DO_NOT_TRACK": "true"}
    proc = subprocess.run([str(Path(sys.executable).with_name("bentoml")), "build", "-o", "tag"],
                          cwd=ROOT, env=env, capture_output=True, text=True, timeout=180)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    tag = proc.stdout.strip().splitlines()[-1].removeprefix("__tag__:")
    name, version = tag.split(":")
    return home / "bentos" / name / version / "src"


def import_all(src: Path) -> dict:
    proc = subprocess.run([sys.executable, "-I", "-c", IMPORT_ALL, str(src)], cwd=src.parent,
                          capture_output=True, text=True, timeout=180,
                          env={**os.environ, "BENTOML_HOME": os.environ["BENTOML_HOME"]})
    assert proc.returncode == 0, proc.stderr
    return json.loads(proc.stdout.strip().splitlines()[-1])


@pytest.fixture(scope="module")
def bento_src(trained) -> Path:
    return build_bento(trained[2])


def test_bento_holds_the_shared_layer_and_the_service_only(bento_src):
    packages = {p.name for p in bento_src.iterdir() if p.is_dir() and p.name != "__pycache__"}
    assert packages == {"core", "service"}


def test_every_module_of_the_bento_imports_with_only_the_bento_on_the_path(bento_src):
    result = import_all(bento_src)
    assert "service.service" in result["imported"] and "core.contract" in result["imported"]
    assert result["failed"] == {}
    outside = {m: f for m, f in result["ours"].items()
               if f and not Path(f).resolve().is_relative_to(bento_src.resolve())}
    assert outside == {}


def test_the_check_fails_for_a_module_that_needs_what_the_bento_lacks(tmp_path):
    src = tmp_path / "src"
    (src / "service").mkdir(parents=True)
    (src / "service" / "__init__.py").write_text("")
    (src / "service" / "demo.py").write_text("import training.pipeline\n")
    result = import_all(src)
    assert result["failed"] == {"service.demo": "ModuleNotFoundError: No module named "
                                                "'training'"}
