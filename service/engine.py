"""The inference engine: a verified ONNX model in an onnxruntime session. No BentoML here.

    python -c "from service.engine import Engine; print(Engine('artifacts/model.onnx').provider)"

Verification before serving: the file's SHA-256 against the model store's
record, and the graph's inputs/outputs against the contract. onnxruntime falls
back to CPU silently when CUDA libraries are missing; that is detected from the
session's active providers, logged, exposed, and refused with require_gpu.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from pathlib import Path

import numpy as np

from core.contract import CONTRACT, ContractError, check_session, has_normalised
from core.digests import file_digest

log = logging.getLogger(__name__)

CUDA, CPU = "CUDAExecutionProvider", "CPUExecutionProvider"


class ModelLoadError(RuntimeError):
    """The model cannot be served; the message is one line."""


def gpu_visible() -> bool:
    """An NVIDIA driver and device are visible (the container got a GPU)."""
    return Path("/proc/driver/nvidia/version").exists() or Path("/dev/nvidiactl").exists()


def choose_providers(requested: Sequence[str] = ()) -> list[str]:
    import onnxruntime as ort

    available = ort.get_available_providers()
    if requested:
        missing = [p for p in requested if p not in available]
        if missing:
            raise ModelLoadError(f"providers {missing} not available; onnxruntime has {available}")
        return list(requested)
    if CUDA in available and gpu_visible():
        return [CUDA, CPU]
    return [CPU]


def _preload_cuda_libraries() -> None:
    """Load CUDA/cuDNN from the nvidia-* pip packages (GPU image) before the session needs
    them; a no-op where they are absent, and the fallback is then detected below."""
    import onnxruntime as ort

    preload = getattr(ort, "preload_dlls", None)
    if preload is not None:
        try:
            preload()
        except Exception as exc:  # best effort: a missing library shows as a CPU fallback
            log.debug("onnxruntime.preload_dlls failed: %s", exc)


class Engine:
    def __init__(self, onnx_path: str | Path, expected_sha256: str | None = None,
                 providers: Sequence[str] = (), require_gpu: bool = False,
                 threads: int = 1) -> None:
        import onnxruntime as ort

        path = Path(onnx_path)
        if not path.is_file():
            raise ModelLoadError(f"model file {path} is missing")
        if expected_sha256 is not None:
            actual = file_digest(path)
            if actual != expected_sha256:
                raise ModelLoadError(f"model file {path} is corrupt: SHA-256 {actual[:12]}… "
                                     f"does not match the store's {expected_sha256[:12]}…")
        wanted = choose_providers(providers)
        if CUDA in wanted:
            _preload_cuda_libraries()
        opts = ort.SessionOptions()
        opts.intra_op_num_threads = threads  # workers are processes: no oversubscription
        opts.inter_op_num_threads = 1
        opts.log_severity_level = 3
        try:
            self.session = ort.InferenceSession(str(path), opts, providers=wanted)
        except Exception as exc:  # onnxruntime raises its own Fail/InvalidGraph types
            raise ModelLoadError(f"model file {path} cannot be loaded by onnxruntime: "
                                 f"{str(exc).splitlines()[0]}") from None
        try:
            check_session(self.session)
        except ContractError as exc:
            raise ModelLoadError(f"model file {path} breaks the contract: {exc}") from None
        self.provider = self.session.get_providers()[0]
        self.requested = wanted
        self.fell_back = CUDA in wanted and self.provider != CUDA
        if self.fell_back:
            log.warning("CUDA was requested but onnxruntime fell back to %s: the CUDA/cuDNN "
                        "libraries onnxruntime-gpu needs are missing or unusable", self.provider)
        if require_gpu and self.provider != CUDA:
            raise ModelLoadError(f"MNIST_REQUIRE_GPU=1 but the active provider is "
                                 f"{self.provider} (requested {wanted})")
        # A model exported before the graph returned the normalised digit has logits only.
        self.has_normalised = has_normalised(self.session)
        self._io = ([CONTRACT.output_name], CONTRACT.input_name)

    def logits(self, batch: np.ndarray) -> np.ndarray:
        """float32 [N, 28, 28] raw pixels -> float32 [N, 10] logits, one session call that
        fetches the logits only: an answer costs the same whether or not the graph also
        returns the normalised digit."""
        names, input_name = self._io
        return self.session.run(names, {input_name: batch})[0]

    def seen(self, batch: np.ndarray) -> tuple[np.ndarray, str]:
        """What the network reads of float32 [N, 28, 28] raw pixels, and the name of that
        tensor in the graph: its `normalised` output (thickened, deskewed, centred; 0-255),
        one session call, when the graph has it; else the input itself, `pixels`."""
        if not self.has_normalised:
            return batch, CONTRACT.input_name
        name = CONTRACT.normalised_name
        return self.session.run([name], {CONTRACT.input_name: batch})[0], name

    def probabilities(self, batch: np.ndarray) -> np.ndarray:
        return softmax(self.logits(batch))


def softmax(logits: np.ndarray) -> np.ndarray:
    """Row-wise, shifted by the row maximum so that exp() cannot overflow."""
    e = np.exp(logits - logits.max(axis=1, keepdims=True))
    return e / e.sum(axis=1, keepdims=True)
