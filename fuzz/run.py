"""The bounded fuzz run of CI and `make fuzz`: seeds, libFuzzer's limits, one summary line.

    python -m fuzz.run --seconds 60                  # make fuzz FUZZ_SECONDS=60
    python -m fuzz.run --seconds 600 --corpus fuzz/corpus   # longer, keeping what it learns
    python -m fuzz.run --seconds 60 -- -use_value_profile=1  # more libFuzzer flags

Writes the seeds (fuzz.seeds) to a fresh folder, runs fuzz.decode under libFuzzer for
`--seconds` with a per-input time limit (-timeout), a process memory limit
(-rss_limit_mb) and an input size limit (-max_len), and prints how many inputs ran, how
fast, the coverage reached and every finding. Exit 1 on any finding (crash-*, timeout-*,
oom-* in --artifacts: replay one with `python -m fuzz.decode FILE`), or when libFuzzer
itself fails.
"""

from __future__ import annotations

import argparse
import os
import re
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from fuzz.seeds import write_seeds

HERE = Path(__file__).resolve().parent
# glibc raises its mmap threshold as large blocks are freed, then keeps freed memory in
# its heaps: RSS then climbs over a long run with no leak (flat at ~120 MB with a fixed
# threshold, measured). A fixed threshold keeps -rss_limit_mb about one input's memory.
MALLOC_ENV = {"MALLOC_MMAP_THRESHOLD_": "131072"}
# What libFuzzer leaves for a finding: the input that crashed, hung or blew the memory.
FINDINGS = ("crash-*", "timeout-*", "oom-*", "leak-*", "slow-unit-*")
_STATS = {
    "inputs": re.compile(r"stat::number_of_executed_units:\s*(\d+)"),
    "per_second": re.compile(r"stat::average_exec_per_sec:\s*(\d+)"),
    "peak_rss_mb": re.compile(r"stat::peak_rss_mb:\s*(\d+)"),
    "cov": re.compile(r"\bcov: (\d+)"),
    "ft": re.compile(r"\bft: (\d+)"),
}


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--seconds", type=int, default=60, help="fuzzing time (-max_total_time)")
    p.add_argument("--timeout", type=int, default=10,
                   help="seconds one input may take (-timeout): a hang is a finding")
    p.add_argument("--rss-mb", type=int, default=1024,
                   help="process memory limit in MB (-rss_limit_mb): over it is a finding")
    p.add_argument("--max-len", type=int, default=128 * 1024, help="largest input, bytes")
    p.add_argument("--runs", type=int, default=-1,
                   help="stop after this many inputs too, with a fixed random seed (tests)")
    p.add_argument("--corpus", type=Path, default=None,
                   help="keep the inputs it finds here (default: a temporary folder)")
    p.add_argument("--artifacts", type=Path, default=Path("reports/fuzz"),
                   help="where findings are written")
    p.add_argument("libfuzzer", nargs="*", help="more libFuzzer flags, after --, e.g. "
                   "-- -use_value_profile=1")
    return p.parse_args(argv)


def libfuzzer_command(args: argparse.Namespace, corpus: Path, seeds: Path) -> list[str]:
    return [sys.executable, "-m", "fuzz.decode", f"-max_total_time={args.seconds}",
            f"-timeout={args.timeout}", f"-rss_limit_mb={args.rss_mb}",
            f"-max_len={args.max_len}", f"-dict={HERE / 'decode.dict'}",
            f"-artifact_prefix={args.artifacts}/", "-print_final_stats=1",
            *([f"-runs={args.runs}", "-seed=1"] if args.runs >= 0 else []),
            *args.libfuzzer, str(corpus), str(seeds)]


def stats(log: str) -> dict[str, int]:
    """The final figures of a libFuzzer log (the last cov/ft line for the coverage)."""
    out = {}
    for name, pattern in _STATS.items():
        found = pattern.findall(log)
        if found:
            out[name] = int(found[-1])
    return out


def summary(figures: dict[str, int], seconds: float, findings: list[Path]) -> str:
    f = figures
    line = (f"fuzz: {f.get('inputs', 0)} inputs in {seconds:.0f} s "
            f"({f.get('per_second', 0)}/s), cov {f.get('cov', 0)} ft {f.get('ft', 0)}, "
            f"peak RSS {f.get('peak_rss_mb', 0)} MB, {len(findings)} finding(s)")
    return line + "".join(f"\n  {p}" for p in findings)


def fuzz(args: argparse.Namespace, work: Path) -> tuple[int, str, float]:
    """(libFuzzer's exit status, its log, seconds): seeds in `work`, the run streamed."""
    seeds, corpus = work / "seeds", args.corpus or work / "corpus"
    corpus.mkdir(parents=True, exist_ok=True)
    print(f"fuzz: {write_seeds(seeds)} seeds, {args.seconds} s, -timeout={args.timeout} "
          f"-rss_limit_mb={args.rss_mb} -max_len={args.max_len}", flush=True)
    start, lines = time.monotonic(), []
    with subprocess.Popen(libfuzzer_command(args, corpus, seeds), stdout=subprocess.PIPE,
                          stderr=subprocess.STDOUT, text=True, errors="replace",
                          env={**MALLOC_ENV, **os.environ}) as proc:
        assert proc.stdout is not None
        for line in proc.stdout:
            lines.append(line)
            quiet = line.startswith("#") or line.startswith("INFO: Instrumenting")
            if not quiet or "pulse" in line or "INITED" in line:
                print(line, end="", flush=True)  # the findings, not every new input
    return proc.returncode, "".join(lines), time.monotonic() - start


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    args.artifacts.mkdir(parents=True, exist_ok=True)
    before = {p for pattern in FINDINGS for p in args.artifacts.glob(pattern)}
    with tempfile.TemporaryDirectory(prefix="fuzz-") as work:
        rc, log, seconds = fuzz(args, Path(work))
    findings = sorted({p for pattern in FINDINGS for p in args.artifacts.glob(pattern)}
                      - before)
    print(summary(stats(log), seconds, findings))
    if rc != 0 and not findings:
        print(f"fuzz: libFuzzer exited {rc} without a finding", file=sys.stderr)
    return 0 if rc == 0 and not findings else 1


if __name__ == "__main__":
    sys.exit(main())
