"""Render the benchmark results as the Markdown of docs/benchmarks.md.

    python -m benchmarks.run     # calls render() at the end
"""

from __future__ import annotations


def _ratio(a: float, b: float) -> str:
    return f"{a / b:.2f}×" if b else "n/a"


def render(r: dict) -> str:
    m, s, peer, c = r["meta"], r["service"], r["peer"], r["ceiling"]
    sp, pp = s["predict"], peer["predict"]
    batch_ips = s["predict_batch"]["rps"] * 64
    goals = [
        ("/predict req/s ≥ 0.8× peer (stretch 1.0×)", _ratio(sp["rps"], pp["rps"]),
         sp["rps"] >= 0.8 * pp["rps"]),
        ("/predict p99 ≤ peer p99", f"{sp['p99']:.0f} vs {pp['p99']:.0f} ms",
         sp["p99"] <= pp["p99"]),
        ("/predict_batch images/s ≥ 0.5× in-process batch ceiling",
         _ratio(batch_ips, c["pipeline_batch64_images_per_s"]),
         batch_ips >= 0.5 * c["pipeline_batch64_images_per_s"]),
        ("cold start ≤ 5 s", f"{r['cold_start_s']:.1f} s", r["cold_start_s"] <= 5),
    ]
    lines = [
        "# Benchmarks",
        "",
        f"Written by `make bench` on {m['date']}. Machine: {m['machine']}.",
        f"Load: Locust FastHttpUser, {m['users']} users, {m['seconds']} s per run, no think "
        f"time, from the same machine. Servers: {m['workers']} worker process each. "
        f"Whole run: {m['wall_s']:.0f} s.",
        "",
        "These machines are shared and noisy: compare the ratios, which are measured side by "
        "side in one run, not the absolute numbers across runs.",
        "",
        "## Side by side",
        "",
        "| what | req/s | images/s | p50 ms | p99 ms | failures | ratio |",
        "|---|---|---|---|---|---|---|",
        f"| service `/predict` (28×28 PNG) | {sp['rps']:.0f} | {sp['rps']:.0f} | "
        f"{sp['p50']:.0f} | {sp['p99']:.0f} | {sp['failures']} | "
        f"{_ratio(sp['rps'], pp['rps'])} of peer, "
        f"{_ratio(sp['rps'], c['pipeline_images_per_s'])} of ceiling |",
        f"| peer: bare FastAPI + uvicorn `/predict` | {pp['rps']:.0f} | {pp['rps']:.0f} | "
        f"{pp['p50']:.0f} | {pp['p99']:.0f} | {pp['failures']} | 1.00× |",
        f"| service `/predict_batch` (64 PNGs) | {s['predict_batch']['rps']:.1f} | "
        f"{batch_ips:.0f} | {s['predict_batch']['p50']:.0f} | {s['predict_batch']['p99']:.0f} "
        f"| {s['predict_batch']['failures']} | "
        f"{_ratio(batch_ips, c['pipeline_batch64_images_per_s'])} of batch ceiling |",
        f"| service `/predict_pixels` (JSON) | {s['predict_pixels']['rps']:.0f} | "
        f"{s['predict_pixels']['rps']:.0f} | {s['predict_pixels']['p50']:.0f} | "
        f"{s['predict_pixels']['p99']:.0f} | {s['predict_pixels']['failures']} | |",
        f"| ceiling: decode → preprocess → infer, 1 image, 1 core | | "
        f"{c['pipeline_images_per_s']:.0f} | | | | |",
        f"| ceiling: same, 64 images + 1 inference call | | "
        f"{c['pipeline_batch64_images_per_s']:.0f} | | | | |",
        f"| onnxruntime alone, batch 1 ({c['provider']}) | | "
        f"{c['infer_batch1_images_per_s']:.0f} | {c['infer_batch1_latency_us'] / 1000:.3f} | "
        "| | |",
        f"| onnxruntime alone, batch 256 | | {c['infer_batch256_images_per_s']:.0f} | | | | |",
        "",
        "## Training and start-up",
        "",
        f"- Default training command on `../shared/data/mnist`: "
        f"{r['training']['seconds']:.1f} s wall, test accuracy "
        f"{r['training']['accuracy']:.4f}, {r['training']['epochs']} epochs.",
        f"- Cold start, `bentoml serve` to `/readyz` = 200 (median of 3): "
        f"{r['cold_start_s']:.2f} s.",
        "",
        "## Goals",
        "",
        "| goal | measured | met |",
        "|---|---|---|",
        *[f"| {g} | {v} | {'yes' if ok else '**no**'} |" for g, v, ok in goals],
        "",
        "## GPU",
        "",
    ]
    gpu = r.get("gpu")
    if gpu:
        lines += [
            f"Recorded on a lent GPU with `benchmarks/ceiling.py` (provider "
            f"{gpu['provider']}): batch-1 latency {gpu['infer_batch1_latency_us']:.0f} µs, "
            f"batch-256 throughput {gpu['infer_batch256_images_per_s']:.0f} images/s "
            f"(CPU, this run: {c['infer_batch1_latency_us']:.0f} µs and "
            f"{c['infer_batch256_images_per_s']:.0f} images/s).",
        ]
    else:
        lines += [
            "No GPU was lent to the session that wrote this file, so there are no CUDA "
            "figures. On a GPU host, run `python -m benchmarks.ceiling --onnx model.onnx "
            "--data-dir DIR --providers CUDAExecutionProvider CPUExecutionProvider --json "
            "docs/benchmarks-gpu.json`; the next `make bench` puts those figures here.",
        ]
    return "\n".join(lines) + "\n"
