"""Render a `make attack` run as the Markdown of docs/attack.md: the goals, attack by attack.

    python -m benchmarks.under_attack     # calls render() at the end
"""

from __future__ import annotations

from benchmarks.goals import attack_goals, ms
from benchmarks.render import met

LABELS = {"baseline": "before", "current": "now"}


def _codes(codes: dict[str, int]) -> str:
    """{"200": 5, "0": 1} -> "5 × 200, 1 × no answer"."""
    return ", ".join(f"{n:,} × {'no answer' if c == '0' else c}" for c, n in codes.items()) \
        or "none"


def _goal_rows(attack: dict, trees: list[str]) -> list[str]:
    per_tree = [attack_goals(attack["runs"][t]) for t in trees]
    rows = []
    for i, first in enumerate(per_tree[0]):
        cells = " | ".join(f"{goals[i].measured} | {met(goals[i].met)}" for goals in per_tree)
        rows.append(f"| {attack['name']} | {first.goal} | {cells} |")
    return rows


def _details(attack: dict, trees: list[str]) -> list[str]:
    runs = [attack["runs"][t] for t in trees]

    def row(figure: str, cell) -> str:
        return f"| {figure} | " + " | ".join(cell(x) for x in runs) + " |"

    return [
        f"## {attack['name']}: {attack['what']}", "",
        (f"`POST {attack['endpoint']}`, a body of "
         + " or ".join(f"{n:,}" for n in attack["request_bytes"]) + " bytes a request."
         if attack["request_bytes"] else "No attacking client."), "",
        "| figure | " + " | ".join(LABELS[t] for t in trees) + " |",
        "|---" * (len(trees) + 1) + "|",
        row("`/readyz` ms: max / p99 / median", lambda x: " / ".join(
            ms(x["readyz_ms"][k]) for k in ("max", "p99", "median"))),
        row("`/readyz` probes, failed", lambda x: f"{x['readyz_ms']['n']}, "
            f"{x['readyz_ms']['failed']}"),
        row("normal `/predict`: answers", lambda x: _codes(x["normal"]["codes"])),
        row("normal `/predict` ms: p50 / p99", lambda x: f"{ms(x['normal']['p50_ms'])} / "
            f"{ms(x['normal']['p99_ms'])}"),
        row("the attackers' answers", lambda x: _codes(x["attack"]["codes"]) + (
            f"; {x['attack']['unanswered']} still waiting at the end"
            if x["attack"]["unanswered"] else "")),
        row("worker RSS MB: idle / peak (VmHWM) / 2 s after", lambda x: " / ".join(
            f"{x['worker_rss_mb'][k]:,.0f}" for k in ("idle", "peak", "after"))),
        row("workers (restarted during the run)",
            lambda x: f"{x['workers']} ({x['worker_restarts']})"),
        row("load: 1-min average before; others' CPU during the run", lambda x:
            f"{x['load']['loadavg_before']:.2f}; {x['load']['other_cores']:.2f} cores"),
        "",
    ]


def render(r: dict) -> str:
    m, attacks = r["meta"], r["attacks"]
    trees = [t for t in LABELS if t in m["trees"]]
    runs = [a["runs"][t] for a in attacks for t in trees]
    loads = sorted(x["load"]["loadavg_before"] for x in runs)
    others = sorted(x["load"]["other_cores"] for x in runs)
    head = " | ".join(f"{LABELS[t]} | met" for t in trees)
    return "\n".join([
        "# Under attack",
        "",
        f"Written by `make attack` on {m['date']}. Machine: {m['machine']}.",
        f"How measured: `{m['command']}` ({m['wall_s']:.0f} s in all). For each attack, "
        f"one fresh `bentoml serve` per tree, alone on the machine, with the service's "
        f"defaults ({runs[0]['workers']} workers) on its own copy of the model store: "
        f"{m['attackers']} clients send the attack as fast as it is answered for "
        f"{m['seconds']:g} s, while a probe GETs `/readyz` every 100 ms and {m['users']} "
        f"normal users each POST a real 28 × 28 digit to `/predict` every "
        f"{m['user_interval_s'] * 1000:g} ms, whatever the answers (open loop: a latency "
        f"counts from when its digit was due, so a stall weighs by its length). "
        + "; ".join(f"{LABELS[t]}: {m['trees'][t]}" for t in trees) + ".",
        "",
        f"Load: the machine is shared. 1-min load average before each run "
        f"{loads[0]:.2f}–{loads[-1]:.2f}; other processes used {others[0]:.2f}–"
        f"{others[-1]:.2f} cores during the runs. Compare the trees within this run.",
        "",
        "## Goals",
        "",
        f"| attack | goal | {head} |",
        "|---|---" + "|---|---" * len(trees) + "|",
        *[row for a in attacks for row in _goal_rows(a, trees)],
        "",
        *[line for a in attacks for line in _details(a, trees)],
    ])
