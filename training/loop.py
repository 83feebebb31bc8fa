"""The training loop of the MNIST MLP: plain functions in the style of pytorch/examples.

    python -m training --dry-run            # runs fit() for 3 epochs

train_one_epoch, evaluate and fit take tensors and a TrainConfig; no files, no
command line. training/pipeline.py strings them together with the rest of the job.
"""

from __future__ import annotations

import copy
import math
import time
from dataclasses import dataclass, field

import numpy as np
import torch
import torch.nn.functional as F
from tqdm import tqdm

from training.config import TrainConfig


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
                  max_shift: float = 2.0, scale: float = 0.1, elastic: float = 0.0,
                  stroke: float = 0.0) -> torch.Tensor:
    """Small random rotations, shifts (pixels) and scalings of a [B, 28, 28] batch; with
    `elastic` > 0, an elastic warp of up to that many pixels (Simard et al. 2003: a
    random displacement field, smooth: drawn at 4x4 and upsampled, so it costs nothing
    beside the affine grid); with `stroke` > 0, strokes thickened or thinned by up to
    that fraction of a 3x3 grey dilation or erosion."""
    b, h, w = x.shape
    r = torch.rand(b, 4, generator=generator, device=x.device) * 2 - 1
    angle = r[:, 0] * math.radians(max_deg)
    s = 1.0 + r[:, 1] * scale
    cos, sin = torch.cos(angle) / s, torch.sin(angle) / s
    # affine_grid works in [-1, 1] coordinates: one pixel is 2/size.
    tx, ty = r[:, 2] * max_shift * 2 / w, r[:, 3] * max_shift * 2 / h
    theta = torch.stack([torch.stack([cos, -sin, tx], 1), torch.stack([sin, cos, ty], 1)], 1)
    grid = F.affine_grid(theta, [b, 1, h, w], align_corners=False)
    if elastic > 0:
        field = torch.rand(b, 2, 4, 4, generator=generator, device=x.device) * 2 - 1
        field = F.interpolate(field, size=(h, w), mode="bicubic", align_corners=False)
        grid = grid + field.permute(0, 2, 3, 1) * (elastic * 2 / w)
    out = F.grid_sample(x.unsqueeze(1), grid, align_corners=False)
    if stroke > 0:
        t = (torch.rand(b, 1, 1, 1, generator=generator, device=x.device) * 2 - 1) * stroke
        thick = F.max_pool2d(out, 3, stride=1, padding=1)
        thin = -F.max_pool2d(-out, 3, stride=1, padding=1)
        out = torch.where(t > 0, out + t * (thick - out), out - t * (thin - out))
    return out.squeeze(1)


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
                    desc="train", elastic=0.0, stroke=0.0) -> tuple[float, float]:
    """One pass over (x, y) in shuffled mini-batches; returns (mean loss, accuracy)."""
    model.train()
    order = torch.randperm(len(x), generator=generator, device=x.device)
    total_loss, correct = 0.0, 0
    bar = tqdm(range(0, len(x), batch_size), desc=desc, leave=False, disable=None, unit="batch")
    for start in bar:
        idx = order[start:start + batch_size]
        xb, yb = x[idx], y[idx]
        if augment:
            xb = random_affine(xb, generator, elastic=elastic, stroke=stroke)
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


def fit(model, train, val, cfg: TrainConfig, device) -> History:
    """Train with the chosen optimizer and schedule; early-stop on val loss, keep the best."""
    generator = torch.Generator(device=device).manual_seed(cfg.seed)
    optimizer = make_optimizer(cfg.optimizer, model.parameters(), cfg.lr, cfg.weight_decay)
    steps = math.ceil(len(train[0]) / cfg.batch_size)
    scheduler: torch.optim.lr_scheduler.LRScheduler | None = None
    if cfg.schedule == "onecycle":
        scheduler = torch.optim.lr_scheduler.OneCycleLR(
            optimizer, max_lr=cfg.lr, epochs=cfg.epochs, steps_per_epoch=steps)
    elif cfg.schedule == "cosine":
        scheduler = torch.optim.lr_scheduler.CosineAnnealingLR(optimizer, cfg.epochs * steps)
    hist, best_loss, best_state, waited = History(), math.inf, None, 0
    for epoch in range(1, cfg.epochs + 1):
        t0 = time.perf_counter()
        lr = optimizer.param_groups[0]["lr"]
        tl, ta = train_one_epoch(model, train[0], train[1], optimizer, scheduler,
                                 cfg.batch_size, generator, cfg.augment,
                                 desc=f"epoch {epoch}/{cfg.epochs}", elastic=cfg.elastic,
                                 stroke=cfg.stroke)
        vl, va, _ = evaluate(model, val[0], val[1])
        for key, v in (("train_loss", tl), ("train_acc", ta), ("val_loss", vl), ("val_acc", va),
                       ("lr", lr)):
            getattr(hist, key).append(v)
        improved = vl < best_loss - cfg.min_delta
        print(f"epoch {epoch:3d}/{cfg.epochs}  train loss {tl:.4f} acc {ta:.4f}  "
              f"val loss {vl:.4f} acc {va:.4f}  lr {lr:.2e}  {time.perf_counter() - t0:.1f}s"
              + ("  *" if improved else ""), flush=True)
        if improved:
            best_loss, best_state, waited, hist.best_epoch = vl, copy.deepcopy(
                model.state_dict()), 0, epoch
        else:
            waited += 1
            if waited >= cfg.patience:
                hist.stopped_early = True
                print(f"early stopping: val loss has not improved for {cfg.patience} epochs; "
                      f"restoring epoch {hist.best_epoch}", flush=True)
                break
    if best_state is not None:
        model.load_state_dict(best_state)
    return hist
