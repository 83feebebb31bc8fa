"""ONNX export and the PyTorch/ONNX Runtime parity check.

    python -m training --output-dir artifacts     # export + parity run in the pipeline

The file is self-contained (torch's exporter would otherwise put the weights in
a sidecar `.data` file), takes `pixels` [batch, 28, 28] raw 0-255 and returns
`logits` [batch, 10]; see core/contract.py.
"""

from __future__ import annotations

import json
import logging
import warnings
from pathlib import Path
from typing import Any

import numpy as np
import onnx
import torch

from core.contract import CONTRACT, check_session

OPSET = 18
# torch.export deep-copies the program's module call graph when the exporter decomposes
# it, and copying the pytree spec of a tensor input (a LeafSpec) goes through LeafSpec's
# deprecated constructor: a FutureWarning meant for code that uses LeafSpec, raised by
# torch itself (torch/export/exported_program.py, _get_updated_module_call_graph), about
# nothing this code does. Only that message is ignored, only during the export.
LEAFSPEC_COPY = r"`isinstance\(treespec, LeafSpec\)` is deprecated"


def export_onnx(model: torch.nn.Module, path: str | Path, metadata: dict[str, Any]) -> Path:
    """Export `model` (put in eval mode, on CPU) to one ONNX file with a dynamic batch axis."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    model = model.cpu().eval()
    example = torch.zeros(2, CONTRACT.height, CONTRACT.width)
    # The exporter narrates every pass at INFO; keep errors only.
    for noisy in ("torch.onnx", "onnxscript", "onnx_ir"):
        logging.getLogger(noisy).setLevel(logging.ERROR)
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", message=LEAFSPEC_COPY, category=FutureWarning)
        program = torch.onnx.export(
            model,
            (example,),
            input_names=[CONTRACT.input_name],
            output_names=[CONTRACT.output_name],
            dynamic_shapes=({0: torch.export.Dim("batch", min=1)},),
            opset_version=OPSET,
            dynamo=True,
            verbose=False,
            external_data=False,
        )
    assert program is not None  # dynamo=True always returns the program
    proto = program.model_proto
    for key, value in metadata.items():
        entry = proto.metadata_props.add()
        entry.key, entry.value = key, value if isinstance(value, str) else json.dumps(value)
    proto.doc_string = "MNIST MLP: pixels [batch,28,28] raw 0-255 white-on-black -> logits"
    onnx.checker.check_model(proto, full_check=True)
    # save_as_external_data=False keeps the weights inside the one file.
    onnx.save_model(proto, str(path), save_as_external_data=False)
    return path


def onnx_session(path: str | Path, providers: list[str] | None = None):
    import onnxruntime as ort

    return ort.InferenceSession(str(path), providers=providers or ["CPUExecutionProvider"])


def onnx_logits(session: Any, images: np.ndarray, batch_size: int = 1000) -> np.ndarray:
    """ONNX Runtime's logits [N, 10] of images [N, 28, 28] (any dtype, raw 0-255), fed as
    float32 like the service's input, batch by batch."""
    return np.concatenate([
        session.run([CONTRACT.output_name],
                    {CONTRACT.input_name: images[start:start + batch_size].astype(np.float32)})[0]
        for start in range(0, len(images), batch_size)])


@torch.no_grad()
def check_parity(model: torch.nn.Module, onnx_path: str | Path, images: np.ndarray,
                 batch_size: int = 1000) -> dict[str, Any]:
    """Compare PyTorch and ONNX Runtime logits on `images` (uint8 [N, 28, 28])."""
    model = model.cpu().eval()
    session = onnx_session(onnx_path)
    check_session(session)
    got = onnx_logits(session, images, batch_size)
    ref = np.concatenate([model(torch.from_numpy(images[start:start + batch_size]
                                                 .astype(np.float32))).numpy()
                          for start in range(0, len(images), batch_size)])
    return {
        "n": int(len(images)),
        "argmax_agreement": int((got.argmax(1) == ref.argmax(1)).sum()) / len(images),
        "max_abs_logit_diff": float(np.abs(got - ref).max()),
        "provider": session.get_providers()[0],
    }
