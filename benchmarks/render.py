"""Render the benchmark results as the Markdown of docs/benchmarks.md.

    python -m benchmarks.run     # calls render() at the end
"""

from __future__ import annotations


def met(ok: bool) -> str:
    """A goal table's last cell: a missed goal stands out."""
    return "yes" if ok else "**no**"


def _ratio(a: float, b: float) -> str:
    return f"{a / b:.2f}×" if b else "n/a"


def _sweep(r: dict) -> list[str]:
    """/predict by users, without and with adaptive batching."""
    m, sw = r["meta"], r["sweep"]
    users = sorted({int(k.split(":")[1]) for k in sw})
    lines = [f"## Concurrency, and adaptive batching (`MNIST_BATCH_MAX_LATENCY_MS="
             f"{m['batch_ms']}`)", "",
             "| users | req/s off | p50 / p99 ms off | req/s on | p50 / p99 ms on | "
             "failures off / on | on ÷ off |", "|---|---|---|---|---|---|---|"]
    for u in users:
        off, on = sw[f"0:{u}"], sw[f"{m['batch_ms']}:{u}"]
        lines.append(f"| {u} | {off['rps']:.0f} | {off['p50']:.0f} / {off['p99']:.0f} | "
                     f"{on['rps']:.0f} | {on['p50']:.0f} / {on['p99']:.0f} | "
                     f"{off['failures']} / {on['failures']} | {_ratio(on['rps'], off['rps'])} |")
    return lines + [""]


def _workers(r: dict) -> list[str]:
    m, wk = r["meta"], r["workers"]
    lines = [f"## Workers and memory ({m['users']} users, {m['soak_seconds']} s each)", "",
             "| workers | req/s | p50 ms | p99 ms | failures | RSS per worker after the load |",
             "|---|---|---|---|---|---|"]
    for w, x in sorted(wk.items(), key=lambda kv: int(kv[0])):
        p = x["predict"]
        rss = ", ".join(f"{mb:.0f} MB" for mb in x["rss_mb"]) or "n/a"
        lines.append(f"| {w} | {p['rps']:.0f} | {p['p50']:.0f} | {p['p99']:.0f} | "
                     f"{p['failures']} | {rss} |")
    return lines + [""]


def _model_goals(t: dict) -> list[tuple[str, str, bool]]:
    """Issue 12's goals for the default training command: accuracy in time, calibration,
    robustness (the figures of its metrics.json)."""
    return [
        ("default training: test accuracy ≥ 99.0 % in ≤ 90 s wall",
         f"{t['accuracy'] * 100:.2f} % in {t['seconds']:.0f} s",
         t["accuracy"] >= 0.99 and t["seconds"] <= 90),
        ("calibration: ECE ≤ 1 %", f"{t['ece'] * 100:.2f} %", t["ece"] <= 0.01),
        ("robustness: every perturbation class ≥ 97 %",
         f"worst {t['worst_accuracy'] * 100:.1f} % ({t['worst_class']})",
         t["worst_accuracy"] >= 0.97),
    ]


def render(r: dict) -> str:
    m, s, peer, c = r["meta"], r["service"], r["peer"], r["ceiling"]
    sp, pp, mp = s["predict"], peer["predict"], r["peer_minimal"]["predict"]
    batch_ips = s["predict_batch"]["rps"] * 64
    sw = r["sweep"]
    hi = max(int(k.split(":")[1]) for k in sw)
    off_hi, on_hi = sw[f"0:{hi}"], sw[f"{m['batch_ms']}:{hi}"]
    fast = c["preprocess_28_us"] / c["pillow_decode_28_us"]
    goals = [
        ("/predict req/s ≥ 1.0× same-work peer (stretch 1.2×)", _ratio(sp["rps"], pp["rps"]),
         sp["rps"] >= pp["rps"]),
        ("/predict req/s ≥ 0.8× minimal peer (decode + model)", _ratio(sp["rps"], mp["rps"]),
         sp["rps"] >= 0.8 * mp["rps"]),
        ("no failures in any run", str(sum(x["failures"] for x in
                                           [sp, pp, mp, *sw.values()])),
         not any(x["failures"] for x in [sp, pp, mp, *sw.values()])),
        ("28×28 preprocessing ≤ 1.5× its Pillow decode", f"{fast:.2f}×", fast <= 1.5),
        (f"/predict at {hi} users ≥ 1.3× before ({m['baseline_rps']:.0f} req/s, "
         f"p99 {m['baseline_p99']:.0f} ms), p99 no worse",
         f"{_ratio(on_hi['rps'], m['baseline_rps'])}, p99 {on_hi['p99']:.0f} ms (batching "
         f"off: {_ratio(off_hi['rps'], m['baseline_rps'])}, p99 {off_hi['p99']:.0f} ms)",
         on_hi["rps"] >= 1.3 * m["baseline_rps"] and on_hi["p99"] <= m["baseline_p99"]),
        ("/predict p99 ≤ peer p99", f"{sp['p99']:.0f} vs {pp['p99']:.0f} ms",
         sp["p99"] <= pp["p99"]),
        ("/predict_batch images/s ≥ 0.5× in-process batch ceiling",
         _ratio(batch_ips, c["pipeline_batch64_images_per_s"]),
         batch_ips >= 0.5 * c["pipeline_batch64_images_per_s"]),
        ("cold start ≤ 5 s", f"{r['cold_start_s']:.1f} s", r["cold_start_s"] <= 5),
        *_model_goals(r["training"]),
    ]
    lines = [
        "# Benchmarks",
        "",
        f"Written by `make bench` on {m['date']}. Machine: {m['machine']}.",
        f"Load: Locust FastHttpUser, {m['users']} users, {m['seconds']} s per run, no think "
        f"time, from the same machine. Servers: {m['workers']} worker processes each (one "
        f"per usable CPU, the service's default), the service with its default adaptive "
        f"batching, unless a table says otherwise. "
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
        f"| peer: bare FastAPI + uvicorn `/predict`, same work | {pp['rps']:.0f} | "
        f"{pp['rps']:.0f} | {pp['p50']:.0f} | {pp['p99']:.0f} | {pp['failures']} | 1.00× |",
        f"| minimal peer: FastAPI, Pillow decode + model only | {mp['rps']:.0f} | "
        f"{mp['rps']:.0f} | {mp['p50']:.0f} | {mp['p99']:.0f} | {mp['failures']} | "
        f"service {_ratio(sp['rps'], mp['rps'])} of it |",
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
        f"Preprocessing of a 28×28 MNIST PNG, in process: `to_model_input` "
        f"{c['preprocess_28_us']:.0f} µs against {c['pillow_decode_28_us']:.0f} µs for its "
        f"Pillow decode alone ({fast:.2f}×).",
        "",
        *_sweep(r),
        *_workers(r),
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
        *[f"| {g} | {v} | {met(ok)} |" for g, v, ok in goals],
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
