"""ONNX export and the PyTorch/ONNX Runtime parity check.

    python -m training --output-dir artifacts     # export + parity run in the pipeline

The file is self-contained (torch's exporter would otherwise put the weights in
a sidecar `.data` file), takes `pixels` [batch, 28, 28] raw 0-255 and returns
`logits` [batch, 10] and `normalised` [batch, 28, 28], the digit the network reads (so a
client can show it); see core/contract.py.
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
from training.model import MLP, WithNormalised

OPSET = 18
# torch.export deep-copies the program's module call graph when the exporter decomposes
# it, and copying the pytree spec of a tensor input (a LeafSpec) goes through LeafSpec's
# deprecated constructor: a FutureWarning meant for code that uses LeafSpec, raised by
# torch itself (torch/export/exported_program.py, _get_updated_module_call_graph), about
# nothing this code does. Only that message is ignored, only during the export.
LEAFSPEC_COPY = r"`isinstance\(treespec, LeafSpec\)` is deprecated"


def export_onnx(model: MLP, path: str | Path, metadata: dict[str, Any]) -> Path:
    """Export `model` (put in eval mode, on CPU) to one ONNX file with a dynamic batch axis:
    its logits and the normalised digit it reads (WithNormalised)."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    graph = WithNormalised(model.cpu()).eval()
    example = torch.zeros(2, CONTRACT.height, CONTRACT.width)
    # The exporter narrates every pass at INFO; keep errors only.
    for noisy in ("torch.onnx", "onnxscript", "onnx_ir"):
        logging.getLogger(noisy).setLevel(logging.ERROR)
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", message=LEAFSPEC_COPY, category=FutureWarning)
        program = torch.onnx.export(
            graph,
            (example,),
            input_names=[CONTRACT.input_name],
            output_names=list(CONTRACT.output_names()),
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
    proto.doc_string = ("MNIST MLP: pixels [batch,28,28] raw 0-255 white-on-black -> logits, "
                        "and the normalised digit it reads [batch,28,28] 0-255")
    onnx.checker.check_model(proto, full_check=True)
    # save_as_external_data=False keeps the weights inside the one file.
    onnx.save_model(proto, str(path), save_as_external_data=False)
    return path


def onnx_session(path: str | Path, providers: list[str] | None = None):
    import onnxruntime as ort

    return ort.InferenceSession(str(path), providers=providers or ["CPUExecutionProvider"])


def onnx_run(session: Any, names: list[str], images: np.ndarray,
             batch_size: int = 1000) -> list[np.ndarray]:
    """ONNX Runtime's outputs `names` of images [N, 28, 28] (any dtype, raw 0-255), fed as
    float32 like the service's input, batch by batch; each concatenated over the batches."""
    runs = [session.run(names, {CONTRACT.input_name:
                                images[start:start + batch_size].astype(np.float32)})
            for start in range(0, len(images), batch_size)]
    return [np.concatenate([run[i] for run in runs]) for i in range(len(names))]


def onnx_logits(session: Any, images: np.ndarray, batch_size: int = 1000) -> np.ndarray:
    """ONNX Runtime's logits [N, 10] of images [N, 28, 28]: the only output it asks for."""
    return onnx_run(session, [CONTRACT.output_name], images, batch_size)[0]


@torch.no_grad()
def _torch_outputs(model: MLP, images: np.ndarray,
                   batch_size: int) -> tuple[np.ndarray, np.ndarray]:
    """PyTorch's logits and normalised digits of images, batch by batch."""
    logits, digits = [], []
    for start in range(0, len(images), batch_size):
        normalised = model.normalise(torch.from_numpy(
            images[start:start + batch_size].astype(np.float32)))
        logits.append(model.classify(normalised).numpy())
        digits.append(normalised.numpy())
    return np.concatenate(logits), np.concatenate(digits)


def check_parity(model: MLP, onnx_path: str | Path, images: np.ndarray,
                 batch_size: int = 1000) -> dict[str, Any]:
    """Compare PyTorch and ONNX Runtime on `images` (uint8 [N, 28, 28]): the logits (the
    pipeline's gate) and the normalised digits (reported, on the 0-255 scale)."""
    model = model.cpu().eval()
    session = onnx_session(onnx_path)
    check_session(session)
    got, got_digits = onnx_run(session, list(CONTRACT.output_names()), images, batch_size)
    ref, ref_digits = _torch_outputs(model, images, batch_size)
    return {
        "n": int(len(images)),
        "argmax_agreement": int((got.argmax(1) == ref.argmax(1)).sum()) / len(images),
        "max_abs_logit_diff": float(np.abs(got - ref).max()),
        "max_abs_normalised_diff": float(np.abs(got_digits - ref_digits).max()),
        "provider": session.get_providers()[0],
    }
