"""The model contract shared by the training job, the service, the clients and the tests.

    python -c "from core.contract import CONTRACT; print(CONTRACT.to_dict())"

One source of truth: the exporter writes a graph that satisfies this, the
service refuses to start on a graph that does not, and the tests check both
against it. Training and service share nothing else but the model's name and
the two metadata keys below. Pure Python on purpose: the service and load-test
images import it without torch.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from typing import Any

MODEL_NAME = "mnist_mlp"
# The model-store metadata the training job writes and the service verifies against.
META_ONNX_FILE = "onnx_file"  # the ONNX file's name inside the store entry
META_SHA256 = "onnx_sha256"  # its SHA-256, checked before a worker loads it
ONNX_FILE = "model.onnx"


@dataclass(frozen=True)
class ModelContract:
    input_name: str = "pixels"
    output_name: str = "logits"
    # The graph's second output: the digit the network reads (thickened, deskewed and
    # centred inside the graph), [batch, 28, 28] on the input's 0-255 scale, white on
    # black. Optional: a graph exported before it existed returns logits only.
    normalised_name: str = "normalised"
    dtype: str = "float32"
    height: int = 28
    width: int = 28
    num_classes: int = 10
    # Raw 8-bit intensities, white digit on black: the MNIST convention.
    # Normalisation lives inside the graph, so clients never see MEAN/STD.
    pixel_min: int = 0
    pixel_max: int = 255
    labels: tuple[str, ...] = field(default=tuple(str(d) for d in range(10)))
    # Training-set statistics of MNIST on the 0..1 scale, applied inside the model.
    mean: float = 0.1307
    std: float = 0.3081

    @property
    def input_shape(self) -> tuple[str, int, int]:
        return ("batch", self.height, self.width)

    @property
    def output_shape(self) -> tuple[str, int]:
        return ("batch", self.num_classes)

    @property
    def normalised_shape(self) -> tuple[str, int, int]:
        return self.input_shape

    def output_names(self, normalised: bool = True) -> tuple[str, ...]:
        """The graph's outputs, in order: logits, then the normalised digit if it has it."""
        return (self.output_name, self.normalised_name) if normalised else (self.output_name,)

    def to_dict(self, normalised: bool = True) -> dict[str, Any]:
        """A JSON-friendly description, used in model metadata and GET /model; `outputs`
        names what the graph returns (`normalised`: a graph with the normalised digit)."""
        d = asdict(self)
        d["labels"] = list(self.labels)
        d["input_shape"] = list(self.input_shape)
        d["output_shape"] = list(self.output_shape)
        d["normalised_shape"] = list(self.normalised_shape)
        d["outputs"] = list(self.output_names(normalised))
        d["layout"] = "white digit on black background, raw intensities 0-255"
        return d


CONTRACT = ModelContract()


class ContractError(ValueError):
    """The ONNX graph does not match the contract."""


def _dims_match(actual: list[Any], expected: tuple[str | int, ...]) -> bool:
    if len(actual) != len(expected):
        return False
    for a, e in zip(actual, expected, strict=True):
        if isinstance(e, int) and a != e:
            return False
        # The batch axis must be symbolic (dynamic); onnxruntime reports it as a
        # string or None, never as a fixed int.
        if isinstance(e, str) and isinstance(a, int):
            return False
    return True


def _check_node(what: str, node: Any, name: str, shape: tuple[str | int, ...],
                onnx_type: str) -> None:
    if node.name != name:
        raise ContractError(f"{what} is named {node.name!r}, expected {name!r}")
    if node.type != onnx_type:
        raise ContractError(f"{what} {name!r} has type {node.type}, expected {onnx_type}")
    if not _dims_match(list(node.shape), shape):
        raise ContractError(
            f"{what} {name!r} has shape {list(node.shape)}, expected {list(shape)} "
            "with a dynamic batch axis"
        )


def check_session(session: Any, contract: ModelContract = CONTRACT) -> None:
    """Raise ContractError unless an onnxruntime InferenceSession matches the contract:
    one input, and the outputs [logits] or [logits, normalised], in that order.

    Duck-typed on purpose: this module must not import onnxruntime.
    """
    inputs, outputs = session.get_inputs(), session.get_outputs()
    if len(inputs) != 1 or len(outputs) not in (1, 2):
        raise ContractError(
            f"expected exactly 1 input and 1 or 2 outputs "
            f"({', '.join(contract.output_names())}), got {len(inputs)} and {len(outputs)}"
        )
    onnx_type = f"tensor({'float' if contract.dtype == 'float32' else contract.dtype})"
    _check_node("input", inputs[0], contract.input_name, contract.input_shape, onnx_type)
    _check_node("output", outputs[0], contract.output_name, contract.output_shape, onnx_type)
    if len(outputs) == 2:
        _check_node("second output", outputs[1], contract.normalised_name,
                    contract.normalised_shape, onnx_type)


def has_normalised(session: Any, contract: ModelContract = CONTRACT) -> bool:
    """Whether a session check_session accepted also returns the normalised digit (a
    model exported before that output existed does not)."""
    return tuple(node.name for node in session.get_outputs()) == contract.output_names()
