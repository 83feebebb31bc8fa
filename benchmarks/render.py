"""Render one `make bench` run: docs/benchmarks.md, and the summary block of README.md.

    python -m benchmarks.run         # measures, then publish()es here
    python -m benchmarks.render      # renders both again from docs/benchmarks.json

The run's results are kept in docs/benchmarks.json; both pages are rendered from them,
and tests/benchmarks/test_render.py checks that the committed pages are.
"""

from __future__ import annotations

import argparse
import functools
import json
from pathlib import Path
from typing import Any

from benchmarks import breakdown, perf_analyzer, side_by_side
from benchmarks.goals import Goal, bench_goals, mean_accuracy, ratio
from core.docblocks import write_block

RESULTS = Path("docs/benchmarks.json")
PAGE = Path("docs/benchmarks.md")
README = Path("README.md")
SUMMARY_BLOCK = "bench-summary"
TRAINING = Path("docs/training.md")
SEEDS_BLOCK = "training-seeds"


def met(ok: bool) -> str:
    """A goal table's last cell: a missed goal stands out."""
    return "yes" if ok else "**no**"


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
                     f"{off['failures']} / {on['failures']} | {ratio(on['rps'], off['rps'])} |")
    return lines + [""]


def _monitoring(result: dict | None) -> list[str]:
    """/predict with monitoring on and off, run by run in the order they were made."""
    lines = ["## Monitoring overhead", ""]
    if not result:
        return [*lines, "Not measured in this run.", ""]
    runs = [f"{r['rps']:.0f}" for r in result["off"]], [f"{r['rps']:.0f}" for r in result["on"]]
    cost = result["cost_us"]
    return [*lines,
            f"`/predict`, {result['users']} users, {result['seconds']} s per run, monitoring "
            f"off (`MNIST_MONITORING=0`) and on in ABBA order: off {', '.join(runs[0])} req/s, "
            f"on {', '.join(runs[1])} req/s; on ÷ off **{result['ratio']:.3f}×**.",
            "",
            f"In process, per answer of one image: {cost['in_passes']:.1f} µs as served "
            f"(observed in passes), {cost['one_at_a_time']:.1f} µs observed one at a time.",
            ""]


def _shadow(result: dict | None) -> list[str]:
    """/predict without and with a challenger in shadow, run by run in their order."""
    lines = ["## Shadow scoring overhead", ""]
    if not result:
        return [*lines, "Not measured in this run.", ""]
    runs = [f"{r['rps']:.0f}" for r in result["off"]], [f"{r['rps']:.0f}" for r in result["on"]]
    return [*lines,
            f"`/predict`, {result['users']} users, {result['seconds']} s per run, without a "
            f"challenger and with one in shadow (`MNIST_CHALLENGER_TAG`: the served model's "
            f"own version, `MNIST_SHADOW_SHARE={result['share']:g}`, the default) in ABBA "
            f"order: without {', '.join(runs[0])} req/s, with {', '.join(runs[1])} req/s; "
            f"with ÷ without **{result['ratio']:.3f}×**.",
            "",
            f"In process, sampling adds {result['offer_us']:.2f} µs to an answer of one "
            "image (the rest runs on the shadow thread: docs/shadow.md).",
            ""]


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


def _header(m: dict) -> list[str]:
    return [
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
    ]


def _row(what: str, x: dict, images_per_s: float, ratio_cell: str, rps: str = "") -> str:
    """A row of the service's other endpoints and the in-process ceilings."""
    return (f"| {what} | {rps or format(x['rps'], '.0f')} | {images_per_s:.0f} | "
            f"{x['p50']:.0f} | {x['p99']:.0f} | {x['failures']} | "
            + (f"{ratio_cell} |" if ratio_cell else "|"))


def _p99s(result: dict, key: str, users: int) -> str:
    """The range of a server's p99 over the rounds: lowest–highest."""
    values = [run["p99"] for run in result["servers"][key]["runs"][str(users)]]
    low, high = min(values), max(values)
    return f"{low:.0f}" if low == high else f"{low:.0f}–{high:.0f}"


def _peers(r: dict) -> list[str]:
    """The service, every peer and the transport ceiling, at each user count."""
    sbs, c = r["side_by_side"], r["ceiling"]
    service = side_by_side.SERVICE
    lines = ["## Against the frameworks a user would pick instead", "",
             f"`/predict` with one 28×28 PNG as multipart `image`, every server with "
             f"{r['meta']['workers']} workers (or replicas) and the same model.onnx on "
             f"onnxruntime (CPU); {sbs['rounds']} rounds of {sbs['seconds']} s per user count, "
             "every other round in reverse order; every answer's digit checked against the "
             "model's own (a wrong or failed answer is not counted). Right answers/s: the "
             "median of the rounds; p99: the rounds' range.", ""]
    for users in sbs["users"]:
        top = side_by_side.median(sbs, service, users)
        lines += [f"**{users} users**", "",
                  "| server | right answers/s | p99 ms | failures | vs the service |",
                  "|---|---|---|---|---|"]
        for key, server in sbs["servers"].items():
            rps = side_by_side.median(sbs, key, users, "right_rps" if key !=
                                      side_by_side.TRANSPORT else "rps")
            failures = sum(x["failures"] for x in server["runs"][str(users)])
            versus = "1.00×" if key == service else f"service {ratio(top, rps)}"
            lines.append(f"| {server['label']} | {rps:,.0f} | {_p99s(sbs, key, users)} | "
                         f"{failures} | {versus} |")
        lines.append("")
    lines += [f"In-process ceiling (decode → preprocess → infer, one image, one core, no "
              f"HTTP): {c['pipeline_images_per_s']:,.0f} images/s.", ""]
    return lines


def _breakdown(r: dict) -> list[str]:
    """Each profiled server's worker time per answered request, by category."""
    found = r.get("breakdown") or {}
    lines = ["## Where a request's time goes", ""]
    if not found:
        return [*lines, "Not measured in this run.", ""]
    first = next(iter(found.values()))
    lines += [f"py-spy on every worker (`benchmarks/breakdown.py`, `--idle`), over "
              f"{first['seconds']} s in the middle of a `/predict` run of {first['users']} "
              "users: each category's worker time per answered request. Idle is the event "
              "loop waiting, the batcher's wait included; busy is all but idle.", "",
              "| category | what it holds | " + " | ".join(
                  f"{x['label']} ({x['rps']:,.0f} req/s)" for x in found.values()) + " |",
              "|---|---|" + "---|" * len(found)]
    for name in (*breakdown.CATEGORIES, "busy", "total"):
        cells = " | ".join(f"{x['us'][name]['us']:,.0f} µs ({x['us'][name]['share']:.0%})"
                           for x in found.values())
        lines.append(f"| {name} | {breakdown.MEANING.get(name, '')} | {cells} |")
    return [*lines, ""]


def _side_by_side(r: dict) -> list[str]:
    s, c = r["service"], r["ceiling"]
    batch, pixels = s["predict_batch"], s["predict_pixels"]
    batch_ips = batch["rps"] * 64
    fast = c["preprocess_28_us"] / c["pillow_decode_28_us"]
    return [
        f"## The service's other endpoints, and the ceilings ({r['meta']['users']} users)",
        "",
        "| what | req/s | images/s | p50 ms | p99 ms | failures | ratio |",
        "|---|---|---|---|---|---|---|",
        _row("service `/predict_batch` (64 PNGs)", batch, batch_ips,
             f"{ratio(batch_ips, c['pipeline_batch64_images_per_s'])} of batch ceiling",
             rps=f"{batch['rps']:.1f}"),
        _row("service `/predict_pixels` (JSON)", pixels, pixels["rps"], ""),
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
    ]


def _training(r: dict) -> list[str]:
    t = r["training"]
    return [
        "## Training and start-up",
        "",
        f"- Default training command on `../shared/data/mnist`: {t['seconds']:.1f} s wall, "
        f"test accuracy {t['accuracy']:.4f}, {t['epochs']} epochs; its training floor "
        f"(`python -m training.floor`: the same {t['steps']} optimizer steps of the bare MLP "
        f"on ready batches) {t['floor_s']:.1f} s.",
        "- Test accuracy by seed: " + ", ".join(
            f"{seed}: {accuracy:.4f}" for seed, accuracy in t["seed_accuracy"].items()) + ".",
        f"- Cold start, `bentoml serve` to `/readyz` = 200 (median of 3): "
        f"{r['cold_start_s']:.2f} s.",
        "",
    ]


def _goals(goals: list[Goal]) -> list[str]:
    return ["## Goals", "", "| goal | measured | met |", "|---|---|---|",
            *[f"| {g.goal} | {g.measured} | {met(g.met)} |" for g in goals], ""]


def _gpu(r: dict) -> list[str]:
    gpu, c = r.get("gpu"), r["ceiling"]
    if gpu:
        return ["## GPU", "",
                f"Recorded on a lent GPU with `benchmarks/ceiling.py` (provider "
                f"{gpu['provider']}): batch-1 latency {gpu['infer_batch1_latency_us']:.0f} µs, "
                f"batch-256 throughput {gpu['infer_batch256_images_per_s']:.0f} images/s "
                f"(CPU, this run: {c['infer_batch1_latency_us']:.0f} µs and "
                f"{c['infer_batch256_images_per_s']:.0f} images/s)."]
    return ["## GPU", "",
            "No GPU was lent to the session that wrote this file, so there are no CUDA "
            "figures. On a GPU host, run `python -m benchmarks.ceiling --onnx model.onnx "
            "--data-dir DIR --providers CUDAExecutionProvider CPUExecutionProvider --json "
            "docs/benchmarks-gpu.json`; the next `make bench` puts those figures here."]


def render(r: dict) -> str:
    """docs/benchmarks.md of one run's results."""
    lines = [*_header(r["meta"]), *_peers(r), *_breakdown(r), *_side_by_side(r),
             *_sweep(r),
             *perf_analyzer.section(r.get("perf_analyzer")),
             *_monitoring(r.get("monitoring")), *_shadow(r.get("shadow")), *_workers(r),
             *_training(r), *_goals(bench_goals(r)), *_gpu(r)]
    return "\n".join(lines) + "\n"


def _against_peers(sbs: dict[str, Any]) -> str:
    """README's words for the service against its closest peer at each user count."""
    service, peers = side_by_side.SERVICE, side_by_side.peers(sbs)
    parts = []
    for users in sbs["users"]:
        mine = side_by_side.median(sbs, service, users)
        closest = max(peers, key=functools.partial(side_by_side.median, sbs, users=users))
        parts.append(f"at {users} users **{ratio(mine, side_by_side.median(sbs, closest, users))}"
                     f"** the closest of {len(peers)} peers ({closest}), p99 "
                     f"{side_by_side.median(sbs, service, users, 'p99'):.0f} vs "
                     f"{side_by_side.median(sbs, closest, users, 'p99'):.0f} ms")
    return "; ".join(parts)


def summary(r: dict[str, Any]) -> str:
    """README.md's block: the run's headline figures, with its machine and date."""
    m, sweep = r["meta"], r["sweep"]
    users = sorted({int(k.split(":")[1]) for k in sweep})
    on = {u: sweep[f"{m['batch_ms']}:{u}"] for u in users}
    off = {u: sweep[f"0:{u}"] for u in users}
    top = users[-1]
    workers = sorted(r["workers"].items(), key=lambda kv: int(kv[0]))
    rss = [mb for _, x in workers for mb in x["rss_mb"]]
    return "\n".join([
        f"On {m['machine']}, {m['date']} (one run): `/predict` right answers/s "
        f"{_against_peers(r['side_by_side'])}; at {top} users "
        f"{ratio(on[top]['rps'], m['baseline_rps'])} the throughput of the tree before "
        f"({on[top]['rps']:.0f} vs {m['baseline_rps']:.0f} req/s, p99 {on[top]['p99']:.0f} "
        f"vs {m['baseline_p99']:.0f} ms).",
        f"Adaptive batching, on ÷ off at {', '.join(map(str, users))} users: "
        + ", ".join(ratio(on[u]["rps"], off[u]["rps"]) for u in users) + ". "
        + ", ".join(f"{w} worker{'' if w == '1' else 's'}: {x['predict']['rps']:.0f} req/s"
                    for w, x in workers)
        + (f"; {min(rss):.0f}–{max(rss):.0f} MB per worker." if rss else "."),
    ])


def seeds(r: dict[str, Any]) -> str:
    """docs/training.md's block: the default command's figures by seed, and the mean."""
    t, m = r["training"], r["meta"]
    rows = [f"| {seed} | {accuracy * 100:.2f} % |" for seed, accuracy in
            t["seed_accuracy"].items()]
    return "\n".join([
        f"`make bench` on {m['machine']}, {m['date']}: the default command, one run per seed.",
        "", "| seed | test accuracy |", "|---|---|", *rows,
        f"| **mean** | **{mean_accuracy(t) * 100:.2f} %** |", "",
        f"Seed {next(iter(t['seed_accuracy']))} (the default) took {t['seconds']:.0f} s wall, "
        f"{t['seconds'] / t['floor_s']:.2f}× its training floor ({t['floor_s']:.1f} s); "
        f"ECE {t['ece'] * 100:.2f} %; robustness: "
        + ", ".join(f"{name} {value * 100:.2f} %" for name, value in t["robustness"].items())
        + "."])


def publish(results: dict[str, Any], root: Path = Path(".")) -> str:
    """Write the run's results (docs/benchmarks.json), its page, README's block and
    docs/training.md's; returns the page."""
    (root / RESULTS).write_text(json.dumps(results, indent=2) + "\n")
    page = render(results)
    (root / PAGE).write_text(page)
    write_block(root / README, SUMMARY_BLOCK, summary(results))
    write_block(root / TRAINING, SEEDS_BLOCK, seeds(results))
    return page


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--results", type=Path, default=RESULTS,
                        help="the results of a `make bench` run")
    args = parser.parse_args(argv)
    publish(json.loads(args.results.read_text()))
    print(f"written: {RESULTS}, {PAGE}, the {SUMMARY_BLOCK} block of {README}, the "
          f"{SEEDS_BLOCK} block of {TRAINING}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
