"""The libFuzzer entry point (atheris): fuzz.pipeline.run_one, coverage-instrumented.

    python -m fuzz.run --seconds 60     # the bounded run: seeds, limits, summary (make fuzz)
    python -m fuzz.decode -max_total_time=60 -timeout=10 -rss_limit_mb=1024 CORPUS SEEDS
    python -m fuzz.decode crash-<sha1>  # replay one finding: its traceback, exit 1

Coverage comes from the Python bytecode of the whole decode path: our code, Starlette's
form parser, python-multipart and Pillow's plugins (Pillow's C decoders are not
instrumented; their work shows up as time and memory). FUZZ_COLLECT=DIR: explore past
findings, saving each new one (exception type and place) to DIR instead of stopping.
"""

from __future__ import annotations

import hashlib
import os
import sys
import traceback
from collections.abc import Callable
from pathlib import Path

INSTRUMENTED = ["core", "service", "starlette", "python_multipart", "multipart", "PIL"]


def _load() -> Callable[[bytes], int]:
    """fuzz.pipeline.run_one, with the decode path imported under instrumentation."""
    import atheris

    with atheris.instrument_imports(include=INSTRUMENTED):
        # Pillow imports most plugins on first use: import them here, instrumented.
        import PIL.ExifTags
        import PIL.ImageOps
        import PIL.JpegImagePlugin
        import PIL.MpoImagePlugin
        import PIL.PngImagePlugin
        import PIL.TiffImagePlugin  # noqa: F401 (EXIF is read with it)

        from fuzz.pipeline import run_one
    return run_one


def _signature(exc: BaseException) -> str:
    """What tells findings apart: the exception type and where it was raised."""
    where = traceback.extract_tb(exc.__traceback__)[-1]
    return f"{type(exc).__name__}-{Path(where.filename).stem}-{where.lineno}"


def collecting(run: Callable[[bytes], int], folder: Path) -> Callable[[bytes], None]:
    """run, but each finding of a new signature is saved (input and traceback), not raised."""
    seen: set[str] = set()

    def test_one(data: bytes) -> None:
        try:
            run(data)
        except Exception as exc:  # every escape is a finding: save it, go on
            sig = _signature(exc)
            if sig not in seen:
                seen.add(sig)
                stem = folder / f"{sig}-{hashlib.sha1(data).hexdigest()[:12]}"
                stem.with_suffix(".bin").write_bytes(data)
                stem.with_suffix(".txt").write_text("".join(traceback.format_exception(exc)))
                print(f"FINDING {sig}: {exc!s:.200}", file=sys.stderr, flush=True)

    return test_one


def main(argv: list[str]) -> None:
    import atheris

    run = _load()
    folder = os.environ.get("FUZZ_COLLECT")
    if folder:
        Path(folder).mkdir(parents=True, exist_ok=True)
    atheris.Setup(argv, collecting(run, Path(folder)) if folder else run)
    atheris.Fuzz()


if __name__ == "__main__":
    main(sys.argv)
